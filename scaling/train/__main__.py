"""``python -m scaling.train [overrides]``: one run, or a sweep with ``-m`` (scaling/train/entry.py)."""
# Call main through its importable name, not as __main__: the joblib launcher pickles the task function, and a
# function from __main__ would be pickled by value (dragging torch's modules along) instead of by reference.
from scaling.train.entry import main

main()
