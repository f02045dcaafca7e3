# Times the Gan21-OT joint step (m3el_benchmark.systems.gan21) against the plain adapter it sits on.
#
#   python benchmark/perf/perf_gan21.py [--model CLIP] [--splits train validation test] [--document_sizes 2 8 32]
#
# 1. On the bundled sample: the same model scored plainly and as "Gan21-OT(<model>)", on a warm embedding cache
#    (both read the same cached vectors, so the difference is the joint step: documents, couplings, the added
#    partner scores). Prints documents/s and mentions/s of each. The default model is a tiny random CLIP built
#    from tests/tiny_clip.py (no download); pass a Hub name for a real one. The sample's documents hold one
#    mention each, so its couplings are trivial (p qᵀ, assigned without a solver).
# 2. The GW solver alone on synthetic documents of n textual and n visual mentions: documents/s per n, POT one
#    document at a time against the batched solver (Gan21-OT's default: POT's iterations on every document of one
#    shape at once, the same plans), and whether their plans agree.

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

from m3el_benchmark.baselines import load_adapter, parse_model_spec  # noqa: E402
from m3el_benchmark.evaluation.data import load_mentions  # noqa: E402
from m3el_benchmark.evaluation.encoding import EncodingSettings  # noqa: E402
from m3el_benchmark.evaluation.evaluate import evaluate_model  # noqa: E402
from m3el_benchmark.evaluation.scoring import settings_for  # noqa: E402
from m3el_benchmark.systems.gan21.coupling import CouplingConfig, gw_coupling, gw_couplings  # noqa: E402
from m3el_benchmark.systems.gan21.documents import group_documents  # noqa: E402
from m3el_dataset.loading import resolve_source  # noqa: E402


@dataclass
class PerfGan21Arguments:
    """What to time."""

    model: str = field(default="tiny", metadata={"help": "A model spec (CLIP, a folder), or 'tiny' (random CLIP)."})
    splits: list[str] = field(default_factory=lambda: ["train", "validation", "test"], metadata={"help": "Splits."})
    tasks: list[str] = field(default_factory=lambda: ["Tm-Te", "Im-Ie"], metadata={"help": "Scored tasks."})
    text_format: str = field(default="M-S1", metadata={"help": "Mention text format."})
    repeats: int = field(default=3, metadata={"help": "Timed runs of each; the best is printed."})
    document_sizes: list[int] = field(default_factory=lambda: [2, 8, 32], metadata={"help": "n for the solver."})
    documents: int = field(default=200, metadata={"help": "Synthetic documents per size (batched solver)."})
    pot_documents: int = field(default=10, metadata={"help": "Of those, timed with POT one at a time (slow)."})


def _model_spec(args: PerfGan21Arguments, work: Path) -> str:
    if args.model != "tiny":
        return args.model
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_clip import save_tiny_clip

    return f"CLIP={save_tiny_clip(work / 'tiny_clip')}"


def time_sample(args: PerfGan21Arguments, work: Path) -> None:
    """Best-of-``repeats`` seconds of the plain and the joint evaluation on a warm cache, as rates."""
    spec = _model_spec(args, work)
    mentions = load_mentions(resolve_source("sample", work / "datasets"), args.splits, text_formats=[args.text_format])
    documents = len(group_documents(mentions))
    settings = settings_for(args.tasks, [args.text_format])
    run = (Accelerator(cpu=True), EncodingSettings(num_workers=0), work / "cache", [args.text_format])
    print(f"Sample: {len(mentions)} mentions in {documents} documents; tasks {', '.join(args.tasks)}")
    print("| model | documents / s | mentions / s |")
    print("|:---|---:|---:|")
    for label in (spec, f"Gan21-OT({spec})"):
        adapter = load_adapter(parse_model_spec(label))
        evaluate_model(adapter, mentions, settings, *run, "sample")  # fills the cache (and warms up)
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            evaluate_model(adapter, mentions, settings, *run, "sample")
            best = min(best, time.perf_counter() - start)
        print(f"| {adapter.info.name} | {documents / best:,.0f} | {len(mentions) / best:,.0f} |")


def time_solver(args: PerfGan21Arguments) -> None:
    """Documents/s of the GW couplings of random documents of n textual and n visual 512-d mentions: POT one
    document at a time (on the first ``pot_documents``) and the batched solver (on all), and whether their plans
    agree."""
    print("\n| mentions per modality | POT, per document (documents / s) | batched (documents / s) | same plans |")
    print("|---:|---:|---:|:---|")
    generator = torch.Generator().manual_seed(0)
    for n in args.document_sizes:
        vectors = F.normalize(torch.randn(args.documents, 2, n, 512, generator=generator), dim=-1)
        pairs = [(texts, images) for texts, images in vectors]
        start = time.perf_counter()
        pot = [gw_coupling(texts, images, CouplingConfig()) for texts, images in pairs[: args.pot_documents]]
        pot_rate = len(pot) / (time.perf_counter() - start)
        start = time.perf_counter()
        batched = gw_couplings(pairs, CouplingConfig())
        batched_rate = len(pairs) / (time.perf_counter() - start)
        same = all(torch.allclose(a, b, rtol=0, atol=1e-12) for (a, _), (b, _) in zip(pot, batched, strict=False))
        print(f"| {n} | {pot_rate:,.1f} | {batched_rate:,.1f} | {'yes' if same else 'NO'} |")


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(PerfGan21Arguments).parse_args_into_dataclasses(args=argv)
    print(f"CPU, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as work:
        time_sample(args, Path(work))
    time_solver(args)


if __name__ == "__main__":
    main()
