"""``python -m analysis report|fit|predict|plot ...`` (analysis/cli/main.py)."""

import sys

from analysis.cli.main import main

sys.exit(main())
