"""Hydra config tree of scaling.train (a package so Hydra can find it when the app is imported by name)."""
