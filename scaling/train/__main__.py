"""``python -m scaling.train [overrides]``: one run, or a sweep with ``-m`` (scaling/train/entry.py)."""
# Call main through its importable name, not as __main__: the joblib launcher pickles the task function, and a
# function from __main__ would be pickled by value (dragging torch's modules along) instead of by reference.
from scaling.launch import preemption

preemption.catch()  # first: a job preempted while it imports and composes exits 75 with a summary, not 143
from scaling.train.entry import main  # noqa: E402

main()
