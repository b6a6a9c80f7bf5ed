"""toygeom-tui: the terminal app and command line over the `engine` library."""
