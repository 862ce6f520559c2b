"""Fitting procedures, one file each: approach1, approach2, approach3, kaplan, lbfgs, minima."""
