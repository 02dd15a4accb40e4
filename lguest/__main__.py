"""python -m lguest: see lguest.cli."""
import sys

from .cli import main

sys.exit(main())
