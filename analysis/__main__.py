"""``python -m analysis report|fit|predict|plot ...`` (analysis/cli/main.py)."""

import os
import sys

# One BLAS thread a process: the report's arrays are small (a gemv over a few dozen runs), so OpenBLAS's threads
# only contend with the report's second process on 2 cores (RESULTS.md, "Report time and calibrated intervals").
# Before numpy is imported, and inherited by the spawned worker; a user's own setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from analysis.cli.main import main  # noqa: E402

sys.exit(main())
