"""`python -m core.cli`: what the `clipmark` console script runs."""

import sys

from core.cli import main

sys.exit(main())
