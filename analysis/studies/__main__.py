"""``python -m analysis.studies estimators|calibration`` (analysis/studies/cli.py)."""

import sys

from analysis.studies.cli import main

sys.exit(main())
