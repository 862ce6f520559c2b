"""Fitting procedures, one file each: approach1, approach2, approach3, kaplan, datacon, lr, lbfgs, minima."""

# readable names of the fits, everywhere they are shown (report, figures, CLI); a law registered later brings its own
LABELS = {
    "approach1": "Approach 1 (envelope)",
    "approach2": "Approach 2 (IsoFLOP)",
    "approach3": "Approach 3 (parametric)",
    "kaplan": "Kaplan L(N, D)",
    "approach3_fixed_E": "Approach 3, E fixed",
    "datacon": "Data-constrained (Muennighoff+ 2023)",
}
