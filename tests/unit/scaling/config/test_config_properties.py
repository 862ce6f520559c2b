"""Property: any command-line overrides are either a plan or a one-line error naming the field, value and allowed range.

Random overrides (every field of the schema, wrong types, out-of-range and non-finite numbers, unknown keys, sweep
points, presets) go through the same path as ``python -m scaling.train``: Hydra's compose API on the real config tree,
then ``apply_point`` and ``validate``. Each is either rejected by Hydra (the message names the key), rejected by
``validate`` with a ``ConfigError`` ("<field>=<value>: must be ..."), or accepted, and then its plan, run id and dry-run
line are computed without error. Anything else (a traceback) fails the property. A few real CLI calls check the
same outcome end to end: exit code 2, one ``error:`` line, nothing written.
"""

import dataclasses
import math
import os
import re

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from scaling.config.schema import Config, ConfigError, apply_point, plan, run_id, validate
from support import REPO, run_cli

# per property; derandomized, so every run of the suite tries the same examples (PROPERTY_EXAMPLES=500 to hunt)
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", 50))

ConfigStore.instance().store(name="base_config", node=Config)


def _fields(node, prefix=""):
    out = []
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if dataclasses.is_dataclass(v):
            out += _fields(v, f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


FIELDS = [f for f in _fields(Config()) if f != "point"]


def _literal(v) -> str:
    """A Python value as a Hydra override literal."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v)
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


numbers = st.one_of(
    st.integers(-10, 10),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, 7, 8, 16, 64, 257, 512, 65536, 10**6]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e-9, 0.05, 0.5, 1.0, 1.5, 1e12, 1e300]),
)
texts = st.one_of(
    st.sampled_from(
        [
            "",
            "tiny",
            "nano",
            "xl",
            "300k",
            "0.3M",
            "3e5",
            "-5",
            "1e100",
            "abc",
            "cpu",
            "cuda",
            "cuda:0",
            "cudaX",
            "cuda:-1",
            "cosine",
            "wsd",
            "constant",
            "6n",
            "chinchilla",
            "bf16",
            "fp32",
            "auto",
            "markov",
            "shakespeare",
            "text:/nonexistent/*.txt",
            "text:",
            "hf:",
            "hf:x",
            "bogus:x",
            "online",
            "../x",
            ".hidden",
            "a/b",
            "mine",
        ]
    ),
    st.text(max_size=12),
)
values = st.one_of(numbers, texts, st.booleans(), st.none())
overrides = st.one_of(
    st.tuples(st.sampled_from(FIELDS), values).map(lambda kv: f"{kv[0]}={_literal(kv[1])}"),
    # a sweep point pairs budget/size/tokens; unknown point keys must be rejected too
    st.tuples(st.sampled_from(["budget", "size", "tokens", "steps", "lr"]), values).map(
        lambda kv: f"+point.{kv[0]}={_literal(kv[1])}"
    ),
    # unknown keys (a typo), a raw unparsed value
    st.tuples(st.sampled_from(["train.budgett", "model.sise", "foo", "train.lr.x"]), values).map(
        lambda kv: f"{kv[0]}={_literal(kv[1])}"
    ),
    st.tuples(st.sampled_from(FIELDS), st.text(max_size=8)).map(lambda kv: f"{kv[0]}={kv[1]}"),
)
# most examples get a valid base so that range checks (not just "budget or tokens") are reached
base = st.sampled_from([[], ["model.size=tiny", "train.budget=1e12"], ["model.size=2e4", "train.tokens=2e6"]])
presets = st.sampled_from([("scaling/conf", "config"), ("sweeps", "isoflop_tiny"), ("sweeps", "isoflop_cpu")])

FIELD_FIRST = re.compile(r"^(point\.\w+|[a-z_]+(\.[a-z_0-9]+)*(/[a-z_.]+)?)=")


def outcome(config_dir: str, name: str, ovs: list[str]):
    """('hydra', message) | ('config', message) | ('ok', plan line). Any other exception propagates."""
    with initialize_config_dir(config_dir=str(REPO / config_dir), version_base="1.3"):
        try:
            c = compose(config_name=name, overrides=ovs)
            cfg = OmegaConf.to_object(c)
        except (HydraException, OmegaConfBaseException) as e:
            return "hydra", str(e)
    try:
        apply_point(cfg)
        validate(cfg)
    except ConfigError as e:
        return "config", str(e)
    p = plan(cfg)
    runnable(cfg, p)
    return "ok", f"{run_id(cfg)} steps={p.steps} N={p.shape.params_non_embedding()} D={p.tokens} {p.row()}"


def runnable(cfg: Config, p) -> None:
    """What an accepted config must satisfy for the trainer to start without an error of its own."""
    import torch

    for group in (cfg.model, cfg.data, cfg.train, cfg.log):
        for f in dataclasses.fields(group):
            v = getattr(group, f.name)
            assert not (isinstance(v, float) and not math.isfinite(v)), (f.name, v)
    assert 0 < p.lr <= 1 and 1 <= p.steps and p.tokens < 2**62, p.row()  # metrics.parquet counters are int64
    if cfg.train.device != "auto":
        torch.device(cfg.train.device)
    assert "\x00" not in cfg.results_dir + cfg.sweep and cfg.results_dir.strip()
    kind, _, rest = cfg.data.source.partition(":")
    if kind == "text":
        import glob

        assert glob.glob(rest, recursive=True)
    if kind == "hf":
        assert rest


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(preset=presets, base=base, extra=st.lists(overrides, min_size=1, max_size=4))
def test_random_overrides_are_a_plan_or_an_error_naming_the_field(preset, base, extra):
    ovs = base + extra
    kind, message = outcome(*preset, ovs)
    if kind == "hydra":  # Hydra's own rejection names the offending key or the override it could not parse
        keys = {o.split("=", 1)[0].lstrip("+~").split(".")[-1] for o in ovs}
        assert any(k in message for k in keys) or "override" in message.lower(), (ovs, message)
    elif kind == "config":
        assert FIELD_FIRST.match(message) and "must" in message, (ovs, message)
        assert "\n" not in message, message
    else:
        assert "steps=" in message


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, field",
    [
        (["data.source=text:/nonexistent/*.txt"], "data.source='text:/nonexistent/*.txt'"),
        (["+point.budget=abc"], "point.budget='abc'"),
    ],
)
def test_the_cli_rejects_bad_values_before_writing_anything(tmp_path, overrides, field):
    r = run_cli(
        [
            "-m",
            "scaling.train",
            "model.size=tiny",
            "train.tokens=1e5",
            *overrides,
            f"results_dir={tmp_path}",
            "log.progress=false",
        ],
        cwd=REPO,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and f"error: {field}" in r.stderr, r.stderr[-2000:]
    written = [p for p in tmp_path.rglob("*") if "_hydra" not in p.parts]
    assert written in ([], [tmp_path / "default"]), written
