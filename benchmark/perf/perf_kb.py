# Times whole-knowledge-base ranking (the benchmark's `protocol: kb`) on CPU with synthetic embeddings.
#
#   python benchmark/perf/perf_kb.py [--kb_sizes 10000 100000] [--mentions 2048] [--dim 512] [--chunk_size 16384]
#
# For each KB size, in a fresh process (so that the peak memory is that size's alone), it draws random unit vectors
# for the KB and the mentions (one vector each, as CLIP-like models), ranks every mention's gold against the whole
# KB with `kb_ranking.count_above_gold` (chunked matrix products, batches of mentions as in the benchmark) and
# prints mentions ranked per second, building the KB vectors included, and the peak resident memory (the process's,
# as the kernel reports it: the KB embeddings plus one batch x chunk score matrix).

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import HfArgumentParser

if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from perf_utils import peak_memory_mib, run_in_fresh_process  # noqa: E402

from m3el_benchmark.evaluation.kb_ranking import KBRankingSettings, count_above_gold  # noqa: E402


@dataclass
class PerfKBArguments:
    """What to time."""

    kb_sizes: list[int] = field(default_factory=lambda: [10_000, 100_000], metadata={"help": "KB entities."})
    mentions: int = field(default=2048, metadata={"help": "Mentions ranked per KB size."})
    dim: int = field(default=512, metadata={"help": "Embedding width (512: CLIP ViT-B/32)."})
    batch_size: int = field(default=256, metadata={"help": "Mentions per batch (the benchmark's --batch_size)."})
    chunk_size: int = field(default=16384, metadata={"help": "KB entities per matrix product."})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's default)."})


def time_kb(size: int, args: PerfKBArguments) -> tuple[float, float]:
    """Mentions ranked per second against ``size`` synthetic entities (building their vectors included), and the
    peak memory of this process after it; run it in a fresh process (`run_in_fresh_process`)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(size)
    keys = F.normalize(torch.randn(size, 1, args.dim, generator=generator), dim=-1)
    queries = F.normalize(torch.randn(args.mentions, 1, args.dim, generator=generator), dim=-1)
    gold = torch.randint(0, size, (args.mentions,), generator=generator)
    settings = KBRankingSettings(chunk_size=args.chunk_size)
    for first in range(0, args.mentions, args.batch_size):
        batch = slice(first, first + args.batch_size)
        count_above_gold(queries[batch], keys, gold[batch], settings)
    seconds = time.perf_counter() - start
    return args.mentions / seconds, peak_memory_mib()


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(PerfKBArguments).parse_args_into_dataclasses(args=argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU, {torch.get_num_threads()} threads; {args.mentions} mentions, dim {args.dim}, batch "
          f"{args.batch_size}, chunk {args.chunk_size}; each KB size in a fresh process (this one's peak: "
          f"{peak_memory_mib():.0f} MiB)")  # fmt: skip
    print("| KB entities | mentions ranked / s | peak memory (MiB) |")
    print("|---:|---:|---:|")
    for size in args.kb_sizes:
        rate, peak = run_in_fresh_process(time_kb, size, args)
        print(f"| {size:,} | {rate:,.0f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
