"""``python -m scaling.train [overrides]``: one run, or a sweep with ``-m`` (scaling/train/entry.py)."""

# Call main through its importable name, not as __main__: the joblib launcher pickles the task function, and a
# function from __main__ would be pickled by value (dragging torch's modules along) instead of by reference.
from scaling.launch import preemption

preemption.catch()  # first: a job preempted while it imports and composes exits 75 with a summary, not 143
import sys  # noqa: E402

from scaling.train import faults  # noqa: E402  (light: os, signal; the start-up stages are its points)

faults.hit("startup.caught")

from scaling.train.command_line import problem  # noqa: E402

error = problem(sys.argv[1:])  # before Hydra makes any folder: a rejected command line writes nothing
if error is not None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
faults.hit("startup.checked")
from scaling.train.entry import main  # noqa: E402

faults.hit("startup.imported")

main()
