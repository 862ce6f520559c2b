"""``python -m analysis.studies estimators|calibration`` (analysis/studies/accuracy.py)."""

from analysis.studies.accuracy import main

main()
