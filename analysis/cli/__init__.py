"""``python -m analysis``: the command line and its argument checks."""
