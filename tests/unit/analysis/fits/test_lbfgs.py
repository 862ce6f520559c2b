"""The batched L-BFGS (analysis/fits/lbfgs.py): many independent problems solved in one call."""

from __future__ import annotations

import numpy as np

from analysis.fits.lbfgs import lbfgs_batch


def test_lbfgs_batch_solves_many_rosenbrock_problems_at_once():
    """Each row is its own problem; all reach the minimum (1, 1) within 1e-4."""

    def rosen(X):
        x, y = X[:, 0], X[:, 1]
        f = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        g = np.column_stack([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
        return f, g

    x0 = np.random.default_rng(0).uniform(-2, 2, (50, 2))
    x, f, status, nit = lbfgs_batch(lambda X, rows: rosen(X), x0, gtol=1e-8, max_iter=2000)
    np.testing.assert_allclose(x, 1.0, atol=1e-4)
    assert np.all(status <= 2)
