"""A user's own model class (model.arch=<module>:<Class>, protocol in scaling/model/user.py) through a real Hydra
IsoFLOP multirun: its parameter count checked against its modules, its FLOPs measured by torch's flop counter once per
shape and recorded as measured, and the sweep fitted by the analysis."""

import json
import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from support import REPO, run_cli

ARCH = f"{__name__}:PositionwiseNet"


class PositionwiseNet(nn.Module):
    """A user's model: token embedding, n_layer residual GELU layers of d x d applied at each position (so a bigram
    model), tied output head. It gives its parameter counts and leaves its FLOPs to the harness's flop counter."""

    def __init__(self, shape):
        super().__init__()
        self.emb = nn.Embedding(shape.vocab_size, shape.d_model)
        self.layers = nn.ModuleList(nn.Linear(shape.d_model, shape.d_model, bias=False) for _ in range(shape.n_layer))
        self.head = nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        self.head.weight = self.emb.weight
        nn.init.normal_(self.emb.weight, std=0.02)

    @staticmethod
    def param_counts(shape):
        emb = shape.vocab_size * shape.d_model
        return {"total": emb + shape.n_layer * shape.d_model**2, "embedding": emb}

    def forward(self, idx, targets=None):
        x = self.emb(idx)
        for layer in self.layers:
            x = x + F.gelu(layer(x))
        logits = self.head(x)
        loss = None if targets is None else F.cross_entropy(logits.float().flatten(0, 1), targets.reshape(-1))
        return logits, loss


@pytest.mark.slow
def test_a_users_model_runs_an_isoflop_sweep_with_its_counts_checked(tmp_path, default_corpus):
    import analysis

    args = ["-m", "scaling.train", "-m", f"model.arch={ARCH}", "model.size=2e3,8e3,3e4", "model.seq_len=32"]
    args += ["model.head_size=8"]
    args += ["train.budget=2e8,6e8,1.8e9", "train.batch_size=8", "train.eval_tokens=1024"]
    args += ["train.final_eval_tokens=4096", "train.threads=1", "log.progress=false"]
    args += ["hydra/launcher=basic", f"results_dir={tmp_path}", "sweep=mine"]
    r = run_cli(args, cwd=REPO, env={"PYTHONPATH": str(REPO / "tests"), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    # measured once per shape in the sweep's process, not once per run or per plan
    measured = [line for line in r.stderr.splitlines() if "measured by torch's flop counter" in line]
    assert len(measured) == 3, measured

    summaries = [json.loads(p.read_text()) for p in (tmp_path / "mine").glob("*/summary.json")]
    assert len(summaries) == 9 and all(s["status"] == "complete" for s in summaries)
    for s in summaries:
        assert s["arch"] == ARCH and s["flops_source"] == "flop_counter"
        L, d, V = s["n_layer"], s["d_model"], s["vocab_size"]
        model = PositionwiseNet(type("S", (), {"vocab_size": V, "d_model": d, "n_layer": L})())
        assert s["params_total"] == sum(p.numel() for p in model.parameters()) == V * d + L * d * d
        assert s["params_non_embedding"] == L * d * d
        # the counter's count: every layer's matmul and the head's, forward + backward (3x); the lookup is not a matmul
        fpt = s["flops_per_token"]
        assert fpt["chinchilla"] == fpt["6n_attn"] == 3 * 2 * (L * d * d + d * V)
        assert fpt["6n"] == 6 * L * d * d
        assert s["flops"]["chinchilla"] == fpt["chinchilla"] * s["tokens"]

    runs = analysis.load_runs(tmp_path / "mine")
    assert len(runs) == 9 and set(runs["flops_source"]) == {"flop_counter"}
    with warnings.catch_warnings():  # minima at the edge of so small a grid are flagged: the fit still runs
        warnings.simplefilter("ignore")
        fit = analysis.fit_approach2(runs)
    assert math.isfinite(fit.a) and "3 of 3 budgets used" in repr(fit)  # too small a sweep to say more


def test_the_protocol_counts_match_the_module_and_the_counter():
    from scaling.core.family import shape_for
    from scaling.model import registry, user

    registry.prepare(ARCH)
    s = shape_for("6e3", vocab_size=512, seq_len=32, arch=ARCH)
    registry.prepare(ARCH, s)  # its parameter count against its modules, on the meta device
    m = registry.build(s)
    assert sum(p.numel() for p in m.parameters()) == s.params_total()
    assert user.measure_flops_per_token(PositionwiseNet, s) == 6 * (s.n_layer * s.d_model**2 + s.d_model * 512)
    assert torch.isfinite(m(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))[1])


class MiscountedNet(PositionwiseNet):
    """Reports one parameter fewer than its modules hold."""

    @staticmethod
    def param_counts(shape):
        c = PositionwiseNet.param_counts(shape)
        return {"total": c["total"] - 1, "embedding": c["embedding"]}


def test_a_miscounted_user_model_on_the_command_line_is_one_error_line_and_writes_nothing(tmp_path):
    # the other bad classes (not found, not a module, protocol missing, bad FLOPs) are refused by the same ConfigError
    # path: tests/unit/scaling/model/test_archs.py
    arch, says = f"{__name__}:MiscountedNet", "MiscountedNet.param_counts gives total="
    args = ["-m", "scaling.train", f"model.arch={arch}", "train.tokens=1e4", "dry_run=true", f"results_dir={tmp_path}"]
    r = run_cli(args, cwd=REPO, env={"PYTHONPATH": str(REPO / "tests")}, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-1500:]
    assert f"model.arch='{arch}'" in lines[0] and says in lines[0]
    assert not any(tmp_path.iterdir())
