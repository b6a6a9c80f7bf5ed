"""What the dynamics view draws: D_i against step and the loss with its jumps marked."""
