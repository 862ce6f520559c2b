"""``python -m scaling.bench``: the side-by-side training benchmark (scaling/bench/side_by_side.py)."""

import sys

from scaling.bench.side_by_side import main

main()
sys.exit()
