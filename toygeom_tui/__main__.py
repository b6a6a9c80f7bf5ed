import sys

from toygeom_tui.cli import main

sys.exit(main())
