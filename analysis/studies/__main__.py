"""``python -m analysis.studies estimators|calibration`` (analysis/studies/accuracy.py)."""

import sys

from analysis.studies.accuracy import main

sys.exit(main())
