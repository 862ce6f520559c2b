"""Synthetic-truth studies of the fitting side: synthetic sweeps, estimator and interval calibration studies, the fit
benchmark."""
