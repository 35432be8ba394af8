"""``python -m rawlab`` runs the command line."""

import sys

from rawlab.cli import main

sys.exit(main())
