"""Runs the command line as ``python -m doorwatch``."""

import sys

from doorwatch.cli import main

sys.exit(main())
