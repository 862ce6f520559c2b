"""Peak memory of preparing a text corpus against its size: the data side streams, so the peak should not grow with
the corpus (issue 16). Prints one row per corpus size; figures go in RESULTS.md.

    python -m scaling.bench.prepare_memory                          # 50, 200 and 800 MB, a trained BPE
    python -m scaling.bench.prepare_memory --sizes 50,200 --limit-mb 600   # each prepare under an address-space cap
    python -m scaling.bench.prepare_memory --sizes 1000 --memory-mb 256    # under a 256 MB memory cgroup (root, v1)

Each corpus is generated locally (lines of random words from a fixed vocabulary, so it tokenizes like text) and
prepared in a fresh child process (``python -m scaling.data prepare text:<file>``); the child reports its own peak
resident set (``getrusage(RUSAGE_SELF).ru_maxrss``). ``--limit-mb`` caps the child's address space
(``RLIMIT_AS``, as ``prlimit --as`` or ``ulimit -v`` would), so a corpus several times larger than the cap shows that
it prepares in bounded memory rather than merely fitting. ``--memory-mb`` instead runs the child in a fresh memory
cgroup (cgroup v1, ``/sys/fs/cgroup/memory``, writable by root) whose ``memory.limit_in_bytes`` caps what it may hold
resident (page cache included, which the kernel reclaims at the cap; no swap): a child that needs more is killed by
the kernel, so a corpus several times the cap that prepares shows the memory is bounded, not merely sufficient.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import json, resource, sys, time
t0 = time.time()
from scaling.data.cache import prepare
from scaling.data import verify
path = prepare(sys.argv[1], vocab_size=int(sys.argv[2]), cache_dir=sys.argv[3], tokenizer=sys.argv[4] or None)
meta = verify(path)
print(json.dumps({"seconds": time.time() - t0, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "tokens": meta["n_train_tokens"] + meta["n_val_tokens"], "text_bytes": meta["text_bytes"]}))
"""


def write_corpus(path: Path, megabytes: float, seed: int = 0) -> int:
    """About ``megabytes`` MB of text: 200,000 lines of random words (a 20,000-word vocabulary, Zipf-like
    frequencies), repeated in shuffled order; written a block at a time."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=int(rng.integers(2, 10)))) for _ in range(20_000)]
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    idx = rng.choice(len(words), size=(200_000, 12), p=p)
    lines = [" ".join(words[i] for i in row) + ".\n" for row in idx]
    target, written = int(megabytes * 1e6), 0
    with open(path, "w") as f:
        while written < target:
            block = "".join(lines[i] for i in rng.permutation(len(lines)))[: target - written]
            f.write(block)
            written += len(block)
    return written


CGROUP_ROOT = Path("/sys/fs/cgroup/memory")


class MemoryCap:
    """A fresh cgroup-v1 memory cgroup of ``megabytes``; ``enter`` (a ``preexec_fn``) moves the child into it."""

    def __init__(self, megabytes: float):
        if not (CGROUP_ROOT / "cgroup.procs").exists() or not os.access(CGROUP_ROOT, os.W_OK):
            raise SystemExit(f"--memory-mb: needs a writable cgroup-v1 memory hierarchy at {CGROUP_ROOT} (root)")
        self.path = CGROUP_ROOT / f"scaling-bench-{os.getpid()}"
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(int(megabytes * 2**20)))

    def enter(self) -> None:
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak_mb(self) -> float:  # resident set and page cache together, at their highest
        return int((self.path / "memory.max_usage_in_bytes").read_text()) / 2**20

    def oom_kills(self) -> int:
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        self.path.rmdir()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scaling.bench.prepare_memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="50,200,800", help="corpus sizes in MB (default: %(default)s)")
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--tokenizer", default="", help="a tokenizer.json to encode with instead of training a BPE")
    ap.add_argument("--limit-mb", type=float, default=0, help="cap each prepare's address space (RLIMIT_AS); 0: none")
    ap.add_argument(
        "--memory-mb", type=float, default=0, help="run each prepare in a memory cgroup of this size (root); 0: none"
    )
    ap.add_argument("--dir", default=None, help="where to write the corpora (default: a temporary folder)")
    args = ap.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",")]
    cap = int(args.limit_mb * 2**20) if args.limit_mb else None

    def limit():  # in the child, before it starts: its whole address space, as prlimit --as would
        if cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        if group is not None:
            group.enter()

    print(
        f"cpu: {os.cpu_count()} cores; python {sys.version.split()[0]}; address-space cap: {args.limit_mb or 'none'}"
        f" MB; memory cgroup: {args.memory_mb or 'none'} MB"
    )
    print(f"{'corpus MB':>10} {'tokens':>12} {'prepare s':>10} {'MB/s':>6} {'peak RSS MB':>12} {'RSS / corpus':>13}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for mb in sizes:
            corpus = Path(tmp) / f"corpus_{mb:g}MB.txt"
            t0 = time.time()
            n = write_corpus(corpus, mb)
            gen = time.time() - t0
            cmd = [sys.executable, "-c", CHILD, f"text:{corpus}", str(args.vocab_size), str(Path(tmp) / "cache")]
            group = MemoryCap(args.memory_mb) if args.memory_mb else None
            try:
                r = subprocess.run(cmd + [args.tokenizer], capture_output=True, text=True, preexec_fn=limit)
                in_group = (
                    f"; cgroup peak {group.peak_mb():.0f} MB (page cache included), oom kills {group.oom_kills()}"
                    if group
                    else ""
                )
            finally:
                if group:
                    group.close()
            if r.returncode != 0:
                print(f"{n / 1e6:>10.0f}  failed (exit {r.returncode}){in_group}: {r.stderr.strip().splitlines()[-1:]}")
                continue
            out = json.loads(r.stdout.strip().splitlines()[-1])
            rss_mb = out["peak_rss_kb"] / 1024
            print(
                f"{n / 1e6:>10.0f} {out['tokens']:>12,} {out['seconds']:>10.1f} {n / 1e6 / out['seconds']:>6.1f} "
                f"{rss_mb:>12.0f} {rss_mb / (n / 2**20):>13.2f}   (corpus written in {gen:.0f} s{in_group})",
                flush=True,
            )
            corpus.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
