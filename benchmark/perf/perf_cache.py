# Times embedding-cache lookups (m3el_benchmark/evaluation/cache.py) as the cache grows.
#
#   python benchmark/perf/perf_cache.py [--sizes 3000 300000] [--lookup 3000] [--dim 512] [--shard_rows 1000]
#
# For each size, it fills a fresh cache folder the way the benchmark does (one `save` of `--shard_rows` rows per
# encoder pass, content-hash keys, float32 vectors; the saves merge small shards as they go), then times
# `EmbeddingCache.load` of `--lookup` cached keys drawn at random (best of `--repeats`, the files in the page
# cache), and checks that every vector read is the one saved. It prints the fill time, the lookup time and the
# ratio of the largest size's lookup to the smallest's (goal: at most 2).

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import HfArgumentParser

if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from m3el_benchmark.evaluation.cache import EmbeddingCache  # noqa: E402
from m3el_benchmark.evaluation.data import content_key  # noqa: E402


@dataclass
class PerfCacheArguments:
    """What to time."""

    sizes: list[int] = field(default_factory=lambda: [3_000, 300_000], metadata={"help": "Cached rows."})
    lookup: int = field(default=3_000, metadata={"help": "Keys asked for per lookup."})
    dim: int = field(default=512, metadata={"help": "Embedding width (512: CLIP ViT-B/32)."})
    shard_rows: int = field(default=1_000, metadata={"help": "Rows per save (one encoder pass's new inputs)."})
    repeats: int = field(default=5, metadata={"help": "Lookups timed per size; the best is kept."})
    seed: int = 0


def vectors_of(rows: np.ndarray, dim: int) -> np.ndarray:
    """A vector per row number that the check can recompute: ``(n, 1, dim)`` float32."""
    return (rows[:, None, None] + np.arange(dim, dtype=np.float32)[None, None, :] / dim).astype(np.float32)


def time_size(size: int, args: PerfCacheArguments, root: Path) -> tuple[float, float, int]:
    """``(fill seconds, best lookup seconds, shards on disk)`` for a cache of ``size`` rows under ``root``."""
    keys = [content_key(f"input {i}") for i in range(size)]
    cache = EmbeddingCache(root, f"model-{size}")
    start = time.perf_counter()
    for first in range(0, size, args.shard_rows):
        rows = np.arange(first, min(first + args.shard_rows, size))
        cache.save("image", [keys[i] for i in rows], vectors_of(rows, args.dim))
    fill = time.perf_counter() - start
    wanted = np.random.default_rng(args.seed).choice(size, size=min(args.lookup, size), replace=False)
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        found = cache.load("image", [keys[i] for i in wanted])
        best = min(best, time.perf_counter() - start)
    if len(found) != len(wanted):
        raise RuntimeError(f"The cache of {size} rows found {len(found)} of the {len(wanted)} keys asked for.")
    expected = vectors_of(wanted, args.dim)
    if not all(np.array_equal(found[keys[i]], expected[n]) for n, i in enumerate(wanted)):
        raise RuntimeError(f"The cache of {size} rows returned another vector than the one saved.")
    return fill, best, len(list((cache.folder / "image").glob("*.npz")))


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(PerfCacheArguments).parse_args_into_dataclasses(args=argv)
    print(f"{args.lookup:,} keys looked up; dim {args.dim}; saves of {args.shard_rows:,} rows; best of "
          f"{args.repeats}")  # fmt: skip
    print("| cached rows | fill (s) | shards | lookup (s) |")
    print("|---:|---:|---:|---:|")
    lookups = []
    with tempfile.TemporaryDirectory(prefix="perf_cache_") as root:
        for size in args.sizes:
            fill, lookup, shards = time_size(size, args, Path(root))
            lookups.append(lookup)
            print(f"| {size:,} | {fill:.1f} | {shards} | {lookup:.4f} |")
    print(f"lookup at {args.sizes[-1]:,} rows / at {args.sizes[0]:,} rows: {lookups[-1] / lookups[0]:.2f} "
          f"(goal <= 2)")  # fmt: skip


if __name__ == "__main__":
    main()
