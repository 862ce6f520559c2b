"""``python -m analysis.studies estimators|calibration|percalibration`` (analysis/studies/cli.py)."""

from analysis.studies.cli import main

main()
