"""Speed measurements behind `toygeom-tui bench`: each module also runs alone (`python -m`)."""
