"""Sample from a finished run, so you can see what a model of each size learned.

    python -m scaling.train.generate results/isoflop_cpu/<run_id> --prompt "ROMEO." --max-new-tokens 200
    python -m scaling.train.generate results/isoflop_cpu/<run_id> --temperature 0.8 --top-k 40 --seed 1 --num-samples 3

For the synthetic Markov source (no tokenizer) the prompt is a space-separated list of token ids.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import cast

import torch
import yaml
from omegaconf import OmegaConf

from scaling.config.schema import Config, apply_point
from scaling.core import records
from scaling.core.family import Shape
from scaling.data.batches import Dataset
from scaling.data.cache import Options, cache_root, dataset_name
from scaling.model import registry
from scaling.train.state import safe_load


def load_run(run_dir: Path) -> tuple[torch.nn.Module, Config, Dataset]:
    """The final weights, config and dataset of a finished run. Safe on a run directory from someone else: the
    weights load with ``weights_only=True`` (a file carrying code is refused, not run) and the config is YAML."""
    run_dir = Path(run_dir)
    weights = run_dir / records.WEIGHTS_FILE
    if not weights.exists():
        raise FileNotFoundError(f"{run_dir}: no {records.WEIGHTS_FILE}; only finished runs keep their final weights")
    try:
        loaded = OmegaConf.load(run_dir / records.CONFIG_FILE)
    except yaml.YAMLError as e:  # e.g. a !!python/object tag: refused, never constructed
        raise ValueError(
            f"{run_dir / records.CONFIG_FILE}: not a plain YAML config, refused: {' '.join(str(e).split())[:200]}"
        ) from None
    # a run's config.yaml is a mapping, so its container is a dict; to_object of the schema merge is a Config
    raw = {k: v for k, v in cast(dict, OmegaConf.to_container(loaded)).items() if k != "hydra"}
    cfg: Config = apply_point(cast(Config, OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), raw))))
    s = records.read_summary(run_dir)  # the shape as trained, whatever the config spelled
    shape = Shape(
        n_layer=s.n_layer,
        d_model=s.d_model,
        n_head=s.n_head,
        d_ff=s.d_ff,
        vocab_size=s.vocab_size,
        seq_len=s.seq_len,
        tie_embeddings=s.tie_embeddings,
        arch=s.arch,
    )
    registry.prepare(shape.arch)
    model = registry.build(shape)
    state_dict = safe_load(weights, map_location="cpu")  # raises UnsafeFile (a ValueError): refused, not executed
    if not isinstance(state_dict, dict):
        raise ValueError(f"{weights}: not a state dict of tensors (got {type(state_dict).__name__})")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise ValueError(
            f"{weights}: does not match the shape recorded in {records.SUMMARY_FILE}: {str(e).splitlines()[0]}"
        ) from None
    model.eval()
    ds = Dataset.load(cache_root(cfg.data.cache_dir) / dataset_name(Options.of(cfg.data)))
    return model, cfg, ds


def generate(
    run_dir: Path,
    prompt: str,
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 40,
    seed: int = 0,
    num_samples: int = 1,
) -> list[str]:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
    if temperature < 0:
        raise ValueError(f"temperature={temperature}: must be >= 0 (0 is greedy)")
    model, cfg, ds = load_run(run_dir)
    tok = ds.tokenizer()
    if tok is not None:
        ids = tok.encode(prompt).ids if prompt else [tok.token_to_id("<|endoftext|>")]
    else:
        ids = [int(t) for t in prompt.split()] if prompt.strip() else [0]
        if any(not (0 <= t < ds.vocab_size) for t in ids):
            raise ValueError(f"prompt token ids must be in [0, {ds.vocab_size})")
    g = torch.Generator().manual_seed(seed)
    idx = torch.tensor([ids] * num_samples, dtype=torch.long)
    # GPT and Llama share GPT.generate
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=g)  # type: ignore[operator]
    texts = []
    for row in out.tolist():
        texts.append(tok.decode(row) if tok is not None else " ".join(map(str, row)))
    return texts


MAX_NEW_TOKENS = 100_000  # a tiny model on a CPU writes a few thousand tokens a second: beyond this, a typo
MAX_PROMPT_CHARS = 1_000_000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scaling.train.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--prompt", default="")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-samples", type=int, default=1)
    a = p.parse_args(argv)
    # argument checks, before any file is opened: each names the option, the value and what is allowed
    problems = [
        (
            not a.run_dir.is_dir(),
            f"run_dir={str(a.run_dir)!r}: must be an existing run directory results/<sweep>/<run_id>",
        ),
        (
            not 1 <= a.max_new_tokens <= MAX_NEW_TOKENS,
            f"--max-new-tokens={a.max_new_tokens}: must be an integer in [1, {MAX_NEW_TOKENS:,}]",
        ),
        (
            not (math.isfinite(a.temperature) and 0 <= a.temperature <= 100),
            f"--temperature={a.temperature}: must be a number in [0, 100] (0 is greedy)",
        ),
        (a.top_k < 0, f"--top-k={a.top_k}: must be an integer >= 0 (0 samples from the whole vocabulary)"),
        (not 0 <= a.seed < 2**63, f"--seed={a.seed}: must be an integer in [0, 2**63)"),
        (not 1 <= a.num_samples <= 1000, f"--num-samples={a.num_samples}: must be an integer in [1, 1000]"),
        (
            len(a.prompt) > MAX_PROMPT_CHARS,
            f"--prompt of {len(a.prompt):,} characters: must be at most {MAX_PROMPT_CHARS:,}",
        ),
    ]
    try:
        a.prompt.encode("utf-8")
    except UnicodeEncodeError as e:  # bytes that were not UTF-8 on the command line arrive as lone surrogates
        problems.append((True, f"--prompt={a.prompt!r}: must be valid UTF-8 text (position {e.start} is not)"))
    for bad, message in problems:
        if bad:
            print(f"error: {message}", file=sys.stderr)
            return 2
    try:
        texts = generate(
            a.run_dir,
            a.prompt,
            max_new_tokens=a.max_new_tokens,
            temperature=a.temperature,
            top_k=a.top_k,
            seed=a.seed,
            num_samples=a.num_samples,
        )
    except (FileNotFoundError, ValueError) as e:  # UnsafeFile included
        print(f"error: {e}", file=sys.stderr)
        return 2
    for i, t in enumerate(texts):
        if len(texts) > 1:
            print(f"--- sample {i + 1}")
        print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
