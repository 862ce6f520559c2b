"""scaling/core/design.py: the vertex and its delta-method variance, the interval of N_opt at the target, repeats as
data, the gate, and which candidate run is worth its FLOPs."""

import math

import numpy as np
import pytest

from scaling.core import design


def curve(c, n, n_opt=None, depth=0.12, floor=3.0):
    """A parabola in ln N with its vertex at N_opt(C) = 2e4 (C/1e12)^0.75 (or ``n_opt``)."""
    n_opt = n_opt or 2e4 * (c / 1e12) ** 0.75
    return floor - 0.1 * math.log(c / 1e12) + depth * math.log(n / n_opt) ** 2


def ladder(budgets, points=5, spread=2.5, noise=None, rng=None, centre=1.0):
    runs = []
    for c in budgets:
        mid = 2e4 * (c / 1e12) ** 0.75 * centre
        for n in mid * spread ** np.linspace(-1, 1, points):
            e = rng.normal(0, noise) if noise else 0.0
            runs.append(design.Run(c, float(n), curve(c, n) + e))
    return runs


WIDE = [1e11 * 2 ** (k / 2) for k in range(9)]


def test_the_vertex_is_n_opt_and_its_variance_matches_repeated_noise():
    exact = design.fit(ladder(WIDE), sd=0.03)
    for b in exact.used:
        assert math.exp(b.vertex) == pytest.approx(2e4 * (b.budget / 1e12) ** 0.75, rel=1e-9)
    assert exact.line[1] == pytest.approx(0.75, abs=1e-9) and len(exact.used) == 9
    # the delta-method sd of one budget's vertex against the spread of vertices over 2000 noisy draws
    rng = np.random.default_rng(0)
    b0 = exact.used[4]
    xs = b0.x
    X = np.stack([np.ones_like(xs), xs, xs**2], axis=1)
    ys = np.array([curve(b0.budget, math.exp(x)) for x in xs]) + rng.normal(0, 0.01, (2000, len(xs)))
    coef = np.linalg.lstsq(X, ys.T, rcond=None)[0]
    vertices = -coef[1] / (2 * coef[2])
    assert np.std(vertices) == pytest.approx(0.01 * math.sqrt(b0.var_unit), rel=0.1)


def test_the_interval_of_n_opt_at_the_target_has_its_stated_spread():
    # sd of ln N_opt(target) over noisy sweeps against the linearised width (t quantile and Birge ratio aside)
    rng = np.random.default_rng(1)
    preds, widths = [], []
    for _ in range(80):
        f = design.fit(ladder(WIDE, noise=0.01, rng=rng), sd=0.01, min_tau=0.0, min_bias=0.0)
        preds.append(f.ln_nopt(f.target))
        w, _ = design.widths(f)
        widths.append(w / (2 * design._t(0.9, len(f.used) - 2) * math.sqrt(f.birge)))
    truth = math.log(2e4 * (10 * WIDE[-1] / 1e12) ** 0.75)
    assert abs(np.mean(preds) - truth) < 0.02
    assert np.std(preds) == pytest.approx(np.median(widths), rel=0.2)


def test_repeats_are_averaged_into_one_point_that_knows_its_noise():
    runs = ladder(WIDE[:4])
    twice = runs + [design.Run(r.budget, r.n, r.loss + d) for r, d in zip(runs[:4], (0.02, -0.02, 0.04, -0.04))]
    f1, f2 = design.fit(runs, sd=0.03), design.fit(twice, sd=0.03)
    assert len(f2.used) == len(f1.used) == 4  # more runs, not more budgets
    b = f2.budgets[0]
    assert list(b.k[:4]) == [2, 2, 2, 2] and len(b.x) == 5
    assert b.var_unit < f1.budgets[0].var_unit  # the averaged points weigh twice
    # the seed spread: sd between the two seeds of each point, and the pooled noise from them
    assert b.seed_sd[0] == pytest.approx(0.02 / math.sqrt(2), rel=1e-9)
    sd, dof = design.noise_sd([design.pool([r for r in twice if r.budget == WIDE[0]])[0]], twice[:5] + twice[-4:])
    assert dof == 4 + 2 and sd > 0


def test_a_run_far_above_its_budgets_curve_is_gated_and_a_noisy_one_is_kept():
    runs = ladder(WIDE[:3])
    bad = design.Run(runs[2].budget, runs[2].n, runs[2].loss + 0.2)  # the middle size of the first budget, 0.2 high
    kept, dropped = design.gate([bad if r is runs[2] else r for r in runs])
    assert [r for r, _ in dropped] == [bad] and len(kept) == len(runs) - 1 and "0.200 nats above" in dropped[0][1]
    mild = design.Run(runs[2].budget, runs[2].n, runs[2].loss + 0.05)
    assert design.gate([mild if r is runs[2] else r for r in runs])[1] == []


def test_a_new_budget_beats_repeats_when_the_line_is_poorly_determined():
    # three budgets within 1.4x: the slope, and so N_opt 10x past them, is barely known
    narrow = design.fit(ladder([1e11, 1.2e11, 1.41e11]), sd=0.03, target=1.41e12)
    ranked = design.score(narrow, design.candidates(narrow, math.log(2.5) / 2, [2.83e11], 5))
    assert ranked[0].kind == "budget" and ranked[0].width_after < design.widths(narrow)[0] / 2
    # nine budgets over 16x: the slope is pinned, and cheap runs at the small budgets beat a whole new budget
    wide = design.fit(ladder(WIDE), sd=0.03)
    ranked = design.score(wide, design.candidates(wide, math.log(2.5) / 2, [WIDE[-1] * 2**0.5], 5))
    assert ranked[0].kind in ("size", "repeat")
    assert next(c for c in ranked if c.kind == "budget").score < ranked[0].score / 2


def test_scores_do_not_depend_on_the_loss_offset_or_the_units_of_n():
    runs = ladder(WIDE[:5], noise=0.02, rng=np.random.default_rng(4))
    step = math.log(2.5) / 2

    def ranked(rs):
        f = design.fit(rs, sd=0.03)
        return [(c.kind, round(c.width_after, 7)) for c in design.score(f, design.candidates(f, step, [], 5))]

    base = ranked(runs)
    assert ranked([design.Run(r.budget, r.n, r.loss + 1.0) for r in runs]) == base
    assert ranked([design.Run(r.budget, r.n * 3.0, r.loss) for r in runs]) == base


def test_a_batch_fills_the_slots_and_counts_what_it_already_chose():
    f = design.fit(ladder(WIDE[:5]), sd=0.03)
    cands = design.candidates(f, math.log(2.5) / 2, [WIDE[5]], 5)
    batch = design.choose(f, cands, 2)
    assert sum(len(c.ns) for c in batch) == 2 or batch[0].kind == "budget"
    # the second choice is scored with the first one's run already planned: its gain is measured from there
    first = design.score(f, cands)[0]
    after_first = design.widths(f, design.var_units_after(f, [(first.budget, n) for n in first.ns]))[0]
    assert batch[0].kind == first.kind and batch[0].width_after == pytest.approx(first.width_after)
    if len(batch) > 1:
        assert batch[1].width_after <= after_first + 1e-12


def test_the_noise_is_measured_from_the_sweep_or_assumed_with_too_few_degrees_of_freedom():
    rng = np.random.default_rng(3)
    f = design.fit(ladder(WIDE, noise=0.03, rng=rng))
    assert f.sd_source.startswith("measured") and 0.02 < f.sd < 0.045
    few = design.fit(ladder(WIDE[:2], points=3))
    assert few.sd == design.DEFAULT_SD and few.sd_source == "assumed"
    assert few.interval()["n_opt_lo"] is None  # two budgets: a line, no interval (no residual degrees of freedom)


def test_a_vertex_is_never_trusted_past_the_misfit_floor_so_piling_seeds_on_one_budget_stops_paying():
    gains = {}
    for min_tau in (design.MIN_TAU, 0.0):
        f = design.fit(ladder(WIDE), sd=0.03, min_tau=min_tau)
        assert f.tau2 == pytest.approx(min_tau**2)  # exact parabolas: no measured misfit, only the floor
        b = f.used[0]
        now = design.widths(f)[0]
        gains[min_tau] = [
            now - design.widths(f, design.var_units_after(f, [(b.budget, math.exp(b.x[0]))] * k))[0] for k in (1, 8, 64)
        ]
    g = gains[design.MIN_TAU]
    assert 0 < g[0] < g[1] < g[2] < 1.25 * g[1]  # more seeds of one point help less and less
    assert g[2] < gains[0.0][2]  # and less than they would if its vertex could be known exactly


def test_a_misfit_all_vertices_share_widens_the_level_by_a_constant_and_leaves_the_slope():
    # every vertex off by the same parabola bias moves the line's level only: N_opt(target) gets it, a does not
    f0 = design.fit(ladder(WIDE), sd=0.03, min_bias=0.0)
    f1 = design.fit(ladder(WIDE), sd=0.03, min_bias=0.05)
    (w0, a0), (w1, a1) = design.widths(f0), design.widths(f1)
    q = design._t(design.LEVEL, len(WIDE) - 2)
    assert (w1 / (2 * q)) ** 2 == pytest.approx((w0 / (2 * q)) ** 2 + 0.05**2) and a1 == pytest.approx(a0)
    # so no number of budgets or seeds brings the interval of N_opt below it
    many = design.fit(ladder(WIDE, points=9) * 16, sd=0.03, min_tau=0.0, min_bias=0.05)
    assert 2 * q * 0.05 <= design.widths(many)[0] < 2 * q * 0.06


def test_a_new_budget_can_be_offered_whole_and_as_three_sizes_over_the_same_span():
    f = design.fit(ladder(WIDE[:5]), sd=0.03)
    step = math.log(2.5) / 2
    new = [c for c in design.candidates(f, step, [WIDE[5]], 5, sparse=True) if c.kind == "budget"]
    full, sparse = sorted(new, key=lambda c: -len(c.ns))
    assert len(full.ns) == 5 and len(sparse.ns) == 3 and sparse.extra["layout"] == "sparse"
    assert sparse.ns[0] == pytest.approx(full.ns[0]) and sparse.ns[-1] == pytest.approx(full.ns[-1])
    assert sparse.ns[1] == pytest.approx(full.ns[2])
    # per FLOP the three sizes narrow the interval more: the vertex misfit is paid once a budget, whatever its sizes
    ranked = design.score(f, new)
    assert ranked[0] is not None and ranked[0].extra["layout"] == "sparse"
    assert [c.kind for c in design.candidates(f, step, [WIDE[5]], 5)].count("budget") == 1  # off by default
