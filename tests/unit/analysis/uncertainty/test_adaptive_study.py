"""The adaptive-sweep simulation study and its oracle bound (analysis/studies/adaptive.py, adaptive_oracle.py): the
truth's parabola bias, the coverage of a biased interval, and both commands end to end on a few sweeps."""

import json
import math

import pytest

from analysis.studies import adaptive, adaptive_oracle


def test_a_centred_parabola_on_the_asymmetric_truth_puts_every_vertex_below_n_opt_by_the_same_amount():
    truth = adaptive.Truth.cpu_like()
    budgets = [1e11 * 2 ** (k / 2) for k in range(9)]
    vu, bias = adaptive_oracle.var_units(truth, budgets, 5, 2.5, 1, 0.03)
    assert -0.1 < bias < -0.04  # the CPU-like curve, 5 sizes over a 6x span: a few per cent below the true N_opt
    assert all(vu[i] < vu[i + 1] for i in range(len(vu) - 1))  # flatter curves at larger budgets: vaguer vertices
    _, wider = adaptive_oracle.var_units(truth, budgets, 5, 5.0, 1, 0.03)
    assert wider < bias  # a wider span: a larger bias


def test_a_biased_interval_covers_less_and_an_unbiased_one_its_level():
    assert adaptive_oracle.cover(0.5, 0.0, 9) == pytest.approx(0.9)
    assert adaptive_oracle.cover(0.5, 0.1, 9) < 0.85 and adaptive_oracle.cover(0.5, -0.1, 9) < 0.85


def test_the_study_and_the_oracle_run_end_to_end_on_a_few_sweeps(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert adaptive.main(["--sweeps", "2", "--seed", "5", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["summary"]) >= set(adaptive.DESIGNS) and len(doc["sweeps"]) == 2
    for row in doc["sweeps"]:
        assert row["adaptive"]["flops"] <= row["ladder"]["flops"] * 1.0001  # equal compute, never more
        assert math.isfinite(row["ladder"]["width"])
    assert adaptive.main(["--sweeps", "0"]) == 2 and "--sweeps=0" in capsys.readouterr().err
