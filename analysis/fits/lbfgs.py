"""A batched L-BFGS: many small, independent minimisations advanced together, each objective evaluation one
vectorised call over every problem still running (Nocedal & Wright 2006, Alg. 7.4 and 7.5).

The Approach 3 fit runs its 4,500 starts, and its bootstrap every (resample, start) pair, through ``lbfgs_batch``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

# Second pass from the best starts: a relative stop test, so a summed Huber loss of ~1e-4 is not cut short.
REFINE: dict[str, Any] = dict(ftol=0.0, gtol=1e-9, max_iter=5000)
# First pass from every start: scipy's stop tests, and an iteration cap (99% of starts stop by ~170 iterations on
# the benchmark; the stragglers' points still compete for the refinement pass).
FIRST: dict[str, Any] = dict(max_iter=400)

# L-BFGS stop reasons
RUNNING, GTOL, FTOL, LINESEARCH, MAXITER = 0, 1, 2, 3, 4
STOP_MESSAGES = {
    GTOL: "gradient below gtol",
    FTOL: "reduction of f below ftol",
    LINESEARCH: "line search found no decrease",
    MAXITER: "iteration limit reached",
}


def lbfgs_batch(
    fun_grad: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    *,
    memory: int = 10,
    max_iter: int = 1000,
    gtol: float = 1e-5,
    ftol: float = 2.220446049250313e-09,
    f_floor: float = 1.0,
    max_ls: int = 30,
    c1: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minimise S independent problems at once with L-BFGS (Nocedal & Wright 2006, Alg. 7.4 and 7.5).

    ``fun_grad(X, rows)`` maps (k, P) points of problems ``rows`` (indices into x0) to (f (k,), grad (k, P)), so
    every objective evaluation is one vectorised call over the problems still running. Each problem has its own
    memory, backtracking Armijo line search and stop test; a problem stops when max|grad| <= gtol or
    (f_old - f_new) <= ftol * max(|f_old|, |f_new|, f_floor).
    The defaults are scipy's L-BFGS-B's, whose f_floor of 1 makes the test absolute for small objectives: a summed
    Huber loss of ~1e-4 then stops while still far from the minimum, so refinement passes use f_floor=0 (a purely
    relative test). Returns x, f, status (see STOP_MESSAGES), iterations.
    """
    x = np.array(x0, dtype=float)
    S, P = x.shape
    f, g = fun_grad(x, np.arange(S))
    f, g = np.array(f, dtype=float), np.array(g, dtype=float)
    m = memory
    sh, yh, rho = np.zeros((S, m, P)), np.zeros((S, m, P)), np.zeros((S, m))
    n_hist, head, nit = np.zeros(S, int), np.zeros(S, int), np.zeros(S, int)
    status = np.zeros(S, int)
    status[~np.isfinite(f)] = LINESEARCH
    status[(status == RUNNING) & (np.abs(g).max(1) <= gtol)] = GTOL
    for _ in range(max_iter):
        act = np.flatnonzero(status == RUNNING)
        if act.size == 0:
            break
        ga, na, ha = g[act], n_hist[act], head[act]
        # two-loop recursion over each problem's stored pairs, gathered newest first; empty slots have rho = 0
        order = (ha[:, None] - 1 - np.arange(m)) % m
        rows = act[:, None]  # one gather each (not a copy then take_along_axis, whose (k, m, P) index is slow)
        S_o, Y_o = sh[rows, order], yh[rows, order]
        R_o = rho[rows, order] * (np.arange(m) < na[:, None])
        q = -ga
        alpha = np.empty((act.size, m))
        for j in range(m):
            alpha[:, j] = R_o[:, j] * np.einsum("ij,ij->i", S_o[:, j], q)
            q -= alpha[:, j, None] * Y_o[:, j]
        sy, yy = np.einsum("ij,ij->i", S_o[:, 0], Y_o[:, 0]), np.einsum("ij,ij->i", Y_o[:, 0], Y_o[:, 0])
        gnorm = np.maximum(np.linalg.norm(ga, axis=1), 1e-300)
        gamma = np.where(na > 0, sy / np.where(yy > 0, yy, 1.0), 1.0 / gnorm)
        q *= gamma[:, None]
        for j in range(m - 1, -1, -1):
            bj = R_o[:, j] * np.einsum("ij,ij->i", Y_o[:, j], q)
            q += (alpha[:, j] - bj)[:, None] * S_o[:, j]
        p = q
        gp = np.einsum("ij,ij->i", ga, p)
        bad = ~(gp < 0)
        if bad.any():  # not a descent direction: forget the memory, take a unit steepest-descent step
            p[bad] = -ga[bad] / gnorm[bad, None]
            n_hist[act[bad]] = 0
            gp[bad] = -gnorm[bad]
        # backtracking line search with safeguarded quadratic interpolation
        t = np.ones(act.size)
        fa = f[act]
        xn, fn, gn = np.empty((act.size, P)), np.empty(act.size), np.empty((act.size, P))
        pend = np.arange(act.size)
        for _ls in range(max_ls):
            xt = x[act[pend]] + t[pend, None] * p[pend]
            ft, gt = fun_grad(xt, act[pend])
            ok = np.isfinite(ft) & (ft <= fa[pend] + c1 * t[pend] * gp[pend])
            done = pend[ok]
            xn[done], fn[done], gn[done] = xt[ok], ft[ok], gt[ok]
            pend = pend[~ok]
            if pend.size == 0:
                break
            tr, fr = t[pend], ft[~ok]
            curv = 2 * (fr - fa[pend] - gp[pend] * tr)
            tq = np.where(np.isfinite(curv) & (curv > 0), -gp[pend] * tr * tr / np.where(curv > 0, curv, 1.0), 0.5 * tr)
            t[pend] = np.clip(tq, 0.1 * tr, 0.5 * tr)
        failed = np.zeros(act.size, bool)
        failed[pend] = True
        status[act[failed]] = LINESEARCH
        okm = ~failed
        ai = act[okm]
        s_new, y_new = xn[okm] - x[ai], gn[okm] - g[ai]
        sy = np.einsum("ij,ij->i", s_new, y_new)
        keep = sy > 1e-10 * np.einsum("ij,ij->i", y_new, y_new)  # curvature condition, else skip the update
        ki = ai[keep]
        slot = head[ki]
        sh[ki, slot], yh[ki, slot], rho[ki, slot] = s_new[keep], y_new[keep], 1.0 / sy[keep]
        head[ki] = (slot + 1) % m
        n_hist[ki] = np.minimum(n_hist[ki] + 1, m)
        f_old = f[ai]
        x[ai], f[ai], g[ai] = xn[okm], fn[okm], gn[okm]
        nit[ai] += 1
        st = np.zeros(ai.size, int)
        st[(f_old - f[ai]) <= ftol * np.maximum(np.maximum(np.abs(f_old), np.abs(f[ai])), f_floor)] = FTOL
        st[np.abs(g[ai]).max(1) <= gtol] = GTOL
        status[ai] = np.where(st > 0, st, status[ai])
    status[status == RUNNING] = MAXITER
    return x, f, status, nit
