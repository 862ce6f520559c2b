"""``python -m scaling.data prepare|info <source>``: prepare a source into the cache once, or show what is there."""

from __future__ import annotations

import argparse
import json
import sys

from scaling.data import cache


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scaling.data", description=cache.__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare", help="prepare a source into the cache (once)")
    pi = sub.add_parser("info", help="print a prepared dataset's metadata")
    for q in (pp, pi):
        q.add_argument(
            "source",
            nargs="?",
            default="shakespeare",
            help="shakespeare | markov | chain[:order=1,support=16,zipf=1,alpha=0.5,tokens=20e6,seed=0] "
            "(synthetic, difficulty dialled, exact entropy rate; the dials shown are the defaults) | "
            "text:<glob> | shards:<glob of .bin/.npy> | disk:<saved dataset> | parquet:<glob> | jsonl:<glob> | "
            "hf:<name>[:<config>] | mix (with --mixture)",
        )
        q.add_argument("--tokenizer", default=None, help="a Hugging Face tokenizer.json instead of training a BPE")
        q.add_argument("--text-column", default="text", help="datasets: the column holding the text")
        q.add_argument("--shard-dtype", default="uint16", help="shards: dtype of .bin shards (uint16 | uint32)")
        q.add_argument("--val-shards", default=None, help="shards: a glob of validation shards")
        q.add_argument(
            "--mixture",
            action="append",
            default=[],
            metavar="SOURCE=WEIGHT",
            help="mix: a source and its weight, once per source (e.g. --mixture 'text:a/*.txt=0.7')",
        )
        q.add_argument("--vocab-size", type=int, default=512)
        q.add_argument("--folio", action="store_true", help="shakespeare: also include the First Folio texts")
        q.add_argument("--cache-dir", default=None, help=f"default $SCALING_DATA_DIR or {cache.DEFAULT_CACHE}")
        q.add_argument("--val-fraction", type=float, default=0.05)
    pp.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")
    args = p.parse_args(argv)
    try:
        mixture = []
        for m in args.mixture:
            src, eq, w = m.rpartition("=")
            try:
                mixture.append({"source": src, "weight": float(w)})
            except ValueError:
                raise ValueError(f"--mixture {m!r}: must be SOURCE=WEIGHT with a number for WEIGHT") from None
        o = cache.Options(
            args.source,
            args.vocab_size,
            args.folio,
            args.val_fraction,
            args.tokenizer,
            args.text_column,
            args.shard_dtype,
            args.val_shards,
            tuple(mixture),
        )
        if args.cmd == "prepare":
            path = cache.prepare(**{**o.__dict__}, cache_dir=args.cache_dir, force=args.force)
        else:
            path = cache.cache_root(args.cache_dir) / cache.dataset_name(o)
        meta = cache.verify(path)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    shown = dict(meta)
    if len(shown.get("documents", [])) > 6:
        shown["documents"] = shown["documents"][:6] + [f"... {len(meta['documents']) - 6} more"]
    print(json.dumps({"path": str(path), **shown}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
