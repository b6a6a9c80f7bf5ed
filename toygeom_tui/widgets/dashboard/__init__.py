"""What the dashboard draws: status line, instance list, loss, ‖W‖²_F and geometry charts."""
