# Times the ranking-metric core (m3el_benchmark/m3el_accuracy/ranking_metrics.py): all figures (accuracy, Top-k, MRR,
# mean rank, NIL, per-topic breakdown) for 1,000,000 mentions x 3 candidates by default, on one core.
#
#   python benchmark/perf/perf_metric.py [--mentions 1000000] [--candidates 3] [--repeats 5]
#
# Prints the best wall-clock time of each input form: a dense array, and variable-length per-mention lists.

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# One core, as the issue asks; must be set before numpy loads its BLAS.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from m3el_benchmark.m3el_accuracy.ranking_metrics import compute_ranking_metrics  # noqa: E402


def best_time(function: Callable[[], object], repeats: int) -> float:
    """The shortest of ``repeats`` wall-clock times of ``function()``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time the ranking-metric core on random scores.")
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    scores = rng.random((args.mentions, args.candidates), dtype=np.float32)
    gold = rng.integers(-1, args.candidates, size=args.mentions)
    topics = rng.integers(0, 5, size=args.mentions)
    options = {"ks": (1, 3, 5, 10), "groups": {"topic": topics}, "nil_threshold": 0.1}

    dense = best_time(lambda: compute_ranking_metrics(scores, gold, **options), args.repeats)
    print(f"dense {args.mentions:,} x {args.candidates}: {dense:.3f} s (best of {args.repeats})")
    rows = [row[: 1 + i % args.candidates] for i, row in enumerate(scores.tolist())]
    ragged_gold = np.minimum(gold, [len(row) - 1 for row in rows])
    ragged = best_time(lambda: compute_ranking_metrics(rows, ragged_gold, **options), max(1, args.repeats // 2))
    print(f"lists of 1..{args.candidates} candidates, {args.mentions:,} mentions: {ragged:.3f} s")


if __name__ == "__main__":
    main()
