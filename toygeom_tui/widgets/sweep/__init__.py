"""What the sweep screen draws: its table, chart and seed spread."""
