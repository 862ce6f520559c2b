"""Where does the separate fits' M bias 10x beyond the largest budget come from? The compare study's design and
noise, full-data Approach 3 fits only (no bootstrap): bias of M at 1e18 / 1e20 with its Monte Carlo SE, and ln(M_hat/M)
at 1e20 regressed on the two fits' differences in log E, alpha, beta.

    PYTHONPATH=. python scripts/compare_bias_diag.py PAIRS MULTIPLIER SEED      # e.g. 300 3.0 11
"""

import sys
import time
import warnings

import numpy as np
import pandas as pd

from analysis.compare.multiplier import log_multiplier
from analysis.compare.study import BUDGETS, N_PER_BUDGET, SPAN, TARGETS, _frame, law_with_multiplier, noisy
from analysis.fits.approach3 import fit_approach3_resamples
from analysis.studies.synthetic import CHINCHILLA, isoflop_design

warnings.simplefilter("ignore")
P = int(sys.argv[1])
m = float(sys.argv[2])
seed = int(sys.argv[3])
base = CHINCHILLA
lb = law_with_multiplier(base, m, "b")
rng = np.random.default_rng(seed)
design = isoflop_design(BUDGETS, N_PER_BUDGET, SPAN, base)[["budget", "C", "N", "D"]]
n = len(design)
grid = np.unique(np.concatenate([np.geomspace(1e14, 1e23, 240), TARGETS]))
at = np.searchsorted(grid, TARGETS)
losses = np.stack([noisy(design, base if j % 2 == 0 else lb, rng, 0.03, 0.05, 0.2) for j in range(2 * P)])
st = pd.concat([_frame(design, losses[j]) for j in range(2 * P)], ignore_index=True)
st.attrs.update(flops_convention="6n", params_convention="synthetic")
t = time.time()
f = fit_approach3_resamples(st, [np.arange(j * n, (j + 1) * n) for j in range(2 * P)], grid="small", n_threads=1)
lm = np.array(
    [
        log_multiplier(grid, f[2 * p].compute_optimal(grid).loss, f[2 * p + 1].compute_optimal(grid).loss, at)
        for p in range(P)
    ]
)
r = lm - np.log(m)
for i, c in enumerate(TARGETS):
    ok = np.isfinite(r[:, i])
    x = r[ok, i]
    print(
        f"C={c:.0e}: bias {np.expm1(x.mean()):+.3f} SE {np.exp(x.mean()) * x.std(ddof=1) / np.sqrt(len(x)):.3f} "
        f"median {np.expm1(np.median(x)):+.3f} sd(lnM) {x.std():.3f} inf {int((~ok).sum())}"
    )
lp = np.array([x.log_params for x in f])  # log E, log A, log B, alpha, beta
d = lp[1::2] - lp[0::2]
y = r[:, 1]
ok = np.isfinite(y)
X = np.column_stack([np.ones(ok.sum()), d[ok][:, 0], d[ok][:, 3], d[ok][:, 4]])
coef, *_ = np.linalg.lstsq(X, y[ok], rcond=None)
pred = X @ coef
print(
    "ln(M_hat/M) at 1e20 ~ a + b dlogE + c dalpha + e dbeta:",
    np.round(coef, 3),
    "R2",
    round(1 - np.var(y[ok] - pred) / np.var(y[ok]), 3),
)
for nm, k in (("dlogE", 0), ("dalpha", 3), ("dbeta", 4)):
    print(f"  {nm}: mean {d[:, k].mean():+.4f} sd {d[:, k].std():.4f}")
print(
    f"true alpha {base.alpha} beta {base.beta} E {base.E}; fitted A-sweep mean alpha {lp[0::2, 3].mean():.3f} "
    f"beta {lp[0::2, 4].mean():.3f} E {np.exp(lp[0::2, 0]).mean():.3f}"
)
# does the bias sit in the pairs whose floors differ most?
q = np.abs(d[ok][:, 0]) < np.median(np.abs(d[ok][:, 0]))
print(
    f"  pairs with |dlogE| below median: bias {np.expm1(y[ok][q].mean()):+.3f}; "
    f"above: {np.expm1(y[ok][~q].mean()):+.3f}"
)
print(f"{time.time() - t:.0f} s")
