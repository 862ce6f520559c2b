"""Tissue et al. 2024 ("Scaling Law with Learning Rate Annealing", arXiv:2408.11029, eq. 1), fitted to one curve:

    L(s) = L0 + A·S1(s)^-alpha - C·S2(s)

The law and its fit live in the torch-free core (``scaling.core.curve_law``), where the trainer's early stop uses
them too; this module is the analysis's name for them.
"""

from __future__ import annotations

from scaling.core.curve_law import ALPHA_RANGE, DECAYS, TissueFit, fit_tissue, fit_tissue_curves

__all__ = ["ALPHA_RANGE", "DECAYS", "TissueFit", "fit_tissue", "fit_tissue_curves"]
