# Times whole-knowledge-base ranking (the benchmark's `protocol: kb`) against a plain torch count and FAISS in one run.
#
#   python benchmark/perf/perf_kb.py [--mentions 10000] [--kb_size 100000] [--dim 512] [--batch_size 1024]
#
# Synthetic unit vectors, as a CLIP-like model gives: the KB entities at random, and the mentions near their gold
# as a model that works puts them (half close, a quarter farther, a quarter at random: the gold anywhere from rank
# 1 to the end of the KB). Each method ranks every mention's gold against the whole KB, preparing its KB side
# included, and the best of `--repeats` rounds (methods taken in turn) is kept:
#   project        `kb_ranking.count_at_least_gold` as the benchmark calls it (KBKeys prepared once, batches of
#                  `--batch_size` mentions: `KBRankingSettings.mention_batch`; the default backend, the fused count);
#   plain torch    per batch and chunk, `(scores >= gold - tolerance).sum(dim=1)`: the least a torch count can do;
#   plain torch, int32 sum  the same summing the mask as int32 (as the project does: many times faster than the
#                  default int64 sum of a bool mask), to show what the fused pass adds beyond that trick;
#   project, backend faiss  the same with FAISS's top-k first, the fused count where it cannot decide a rank;
#   FAISS top-20   `IndexFlatIP.search` of every mention at once: H@k only, no MR or MRR.
# It prints each method's time and mentions/s, the ratios of the project to the two references, and whether the
# figures (H@1/3/5/10/20, and MR and MRR where a method has them) are identical; it exits with an error if not.

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import HfArgumentParser

if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from m3el_benchmark.evaluation.kb_counting import tie_bounds  # noqa: E402
from m3el_benchmark.evaluation.kb_ranking import (  # noqa: E402
    TIE_TOLERANCE,
    KBKeys,
    KBRankingSettings,
    count_at_least_gold,
    kb_scores_pairwise,
)
from m3el_benchmark.m3el_accuracy.ranking_metrics import compute_ranking_metrics_from_ranks, ranks_from_counts  # noqa: E402

KS = (1, 3, 5, 10, 20)


@dataclass
class PerfKBArguments:
    """What to time."""

    mentions: int = field(default=10_000, metadata={"help": "Mentions ranked."})
    kb_size: int = field(default=100_000, metadata={"help": "KB entities."})
    dim: int = field(default=512, metadata={"help": "Embedding width (512: CLIP ViT-B/32)."})
    batch_size: int = field(default=1024, metadata={"help": "Mentions per tile (KBRankingSettings.mention_batch)."})
    chunk_size: int = field(default=16384, metadata={"help": "KB entities per tile."})
    repeats: int = field(default=2, metadata={"help": "Rounds of every method; the best time is kept."})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's default)."})
    seed: int = field(default=0, metadata={"help": "Seed of the synthetic vectors."})


def synthetic(args: PerfKBArguments) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(keys (n, 1, d), queries (m, 1, d), gold (m,))``: unit vectors, mentions near their gold (see the banner)."""
    generator = torch.Generator().manual_seed(args.seed)
    keys = F.normalize(torch.randn(args.kb_size, 1, args.dim, generator=generator), dim=-1)
    gold = torch.randint(0, args.kb_size, (args.mentions,), generator=generator)
    noise = torch.randn(args.mentions, 1, args.dim, generator=generator)
    spread = torch.tensor([2.0, 2.0, 5.0, 1000.0]).repeat_interleave(-(-args.mentions // 4))[: args.mentions]
    queries = F.normalize(keys[gold] + spread[:, None, None] * noise / args.dim**0.5, dim=-1)
    return keys, queries, gold


def project(keys, queries, gold, args: PerfKBArguments, backend: str = "torch") -> np.ndarray:
    """Gold ranks by `count_at_least_gold`, batch after batch as `KBScorer` calls it."""
    settings = KBRankingSettings(chunk_size=args.chunk_size, backend=backend, mention_batch=args.batch_size)
    table = KBKeys(keys, settings)
    ranks = []
    for first in range(0, len(queries), args.batch_size):
        batch = slice(first, first + args.batch_size)
        n_at_least, _ = count_at_least_gold(queries[batch], table, gold[batch], settings)
        ranks.append(ranks_from_counts(n_at_least.numpy(), np.zeros_like(n_at_least.numpy())))
    return np.concatenate(ranks)


def plain_torch(keys, queries, gold, args: PerfKBArguments, count_dtype: torch.dtype | None = None) -> np.ndarray:
    """Gold ranks by the plainest chunked count: scores at least the gold's minus the tolerance, gold included
    (the gold's score and that bound computed as the project does, so that the same entities tie)."""
    ranks = []
    for first in range(0, len(queries), args.batch_size):
        batch = queries[first : first + args.batch_size]
        gold_scores = kb_scores_pairwise(batch, keys[gold[first : first + args.batch_size]])
        threshold, batch = tie_bounds(gold_scores, TIE_TOLERANCE)[0][:, None], batch[:, 0]
        count = torch.zeros(len(batch), dtype=torch.long)
        for start in range(0, len(keys), args.chunk_size):
            count += (batch @ keys[start : start + args.chunk_size, 0].T >= threshold).sum(dim=1, dtype=count_dtype)
        ranks.append(count.numpy())
    return np.concatenate(ranks)


def faiss_top20(keys, queries, gold, args: PerfKBArguments) -> np.ndarray:
    """Gold ranks within FAISS's exact top 20 (beyond it: 21, enough for H@k only)."""
    import faiss

    index = faiss.IndexFlatIP(keys.shape[2])
    index.add(np.ascontiguousarray(keys[:, 0].numpy()))
    _, listed = index.search(np.ascontiguousarray(queries[:, 0].numpy()), max(KS))
    found = listed == gold.numpy()[:, None]
    return np.where(found.any(axis=1), found.argmax(axis=1) + 1, max(KS) + 1)


def figures(ranks: np.ndarray, with_mean_rank: bool) -> dict[str, float]:
    metrics = compute_ranking_metrics_from_ranks(ranks, ks=KS)
    names = [f"top_{k}" for k in KS] + (["mean_rank", "mrr"] if with_mean_rank else [])
    return {name: metrics[name] for name in names}


def best_times(
    methods: dict[str, Callable[[], np.ndarray]], repeats: int
) -> dict[str, tuple[float, float, np.ndarray]]:
    """Each method's best wall time and best CPU time (every thread of the process, which other users of shared
    cores do not inflate) over ``repeats`` rounds, the methods taken in turn in each round, and its ranks."""
    best: dict[str, tuple[float, float, np.ndarray]] = {}
    for _ in range(repeats):
        for name, method in methods.items():
            wall, cpu = time.perf_counter(), time.process_time()
            ranks = method()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            previous = best.get(name, (wall, cpu, ranks))
            best[name] = (min(wall, previous[0]), min(cpu, previous[1]), ranks)
    return best


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(PerfKBArguments).parse_args_into_dataclasses(args=argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    keys, queries, gold = synthetic(args)
    methods = {
        "project": lambda: project(keys, queries, gold, args),
        "plain torch": lambda: plain_torch(keys, queries, gold, args),
        "plain torch, int32 sum": lambda: plain_torch(keys, queries, gold, args, torch.int32),
    }
    try:
        import faiss  # noqa: F401

        methods["project, backend faiss"] = lambda: project(keys, queries, gold, args, backend="faiss")
        methods["FAISS top-20"] = lambda: faiss_top20(keys, queries, gold, args)
    except ImportError:
        print("FAISS is not installed (pip install 'm3el[faiss]'): no FAISS figures.")
    results = best_times(methods, args.repeats)
    print(f"CPU, {torch.get_num_threads()} threads; {args.mentions:,} mentions x {args.kb_size:,} entities, dim "
          f"{args.dim}, batch {args.batch_size}, chunk {args.chunk_size}; best of {args.repeats}")  # fmt: skip
    print("| method | wall s | CPU s | mentions / wall s | H@1 | H@20 | MR | MRR |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    reference = figures(results["project"][2], True)
    differing = []
    for name, (wall, cpu, ranks) in results.items():
        full = name != "FAISS top-20"
        ours = figures(ranks, full)
        differing += [name] if ours != {key: reference[key] for key in ours} else []
        rank_figures = f"{ours['mean_rank']:.2f} | {ours['mrr']:.4f}" if full else "- | -"
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {args.mentions / wall:,.0f} | {ours['top_1']:.4f} | "
              f"{ours['top_20']:.4f} | {rank_figures} |")  # fmt: skip
    for reference_name, goal in (("plain torch", 1.2), ("plain torch, int32 sum", 1.2), ("FAISS top-20", 1.5)):
        if reference_name in results:
            wall, cpu = (results["project"][i] / results[reference_name][i] for i in (0, 1))
            print(f"project / {reference_name}: {wall:.2f} wall, {cpu:.2f} CPU (goal <= {goal})")
    print(f"identical figures (H@k; MR and MRR where a method has them): {'NO: ' if differing else 'yes'}"
          f"{', '.join(differing)}")  # fmt: skip
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
