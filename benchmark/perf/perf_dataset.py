"""Throughput and memory of the Hub export as the release grows, and the cost of the image check.

Builds two synthetic releases in the original format (small images, three candidates per mention), exports
each in a fresh process and prints mentions per second and the process's peak resident memory, so that growth
with the release's size is visible:

    python benchmark/perf/perf_dataset.py --sizes 2000 8000 --num-proc 2

``--compare-checks N`` instead builds one release of N mentions with photo-like 512-pixel JPEGs and exports it
with the default image check (``verify``) and with ``--image-check full``, each in a fresh process, and prints the
ratio (the goal: the default at least 2x faster):

    python benchmark/perf/perf_dataset.py --compare-checks 300
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from perf_utils import peak_memory_mib, run_in_fresh_process  # noqa: E402

from m3el_dataset.constants import TOPICS  # noqa: E402
from m3el_dataset.export import ExportConfig, export_release  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class PerfArguments:
    """Release sizes (mentions) to build, export processes, and the side of the synthetic images."""

    sizes: tuple[int, ...] = (2_000, 8_000)
    num_proc: int = 1
    image_size: int = 64
    compare_checks: int = 0  # mentions of the image-check comparison (0: the size sweep instead)
    check_image_size: int = 512


def _photo_like(size: int, seed: int) -> Image.Image:
    """A smooth colour field with fine noise: JPEG-compresses and decodes like a photograph, unlike a flat colour."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 1.0, size)
    field = np.stack([np.sin(axis[:, None] * rng.uniform(2, 12) + axis[None, :] * rng.uniform(2, 12) + phase)
                      for phase in rng.uniform(0, 6.3, 3)], axis=-1)  # fmt: skip
    pixels = 128 + 90 * field + rng.normal(0, 12, (size, size, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def write_synthetic_release(root: Path, num_mentions: int, image_size: int, photo_like: bool = False) -> None:
    """A release of ``num_mentions`` records spread over the topics, each with 3 distinct JPEG images (flat colours,
    or photo-like with ``photo_like``); the mention's image is its first candidate's file, so 4 image cells."""
    per_topic = {topic: [] for topic in TOPICS}
    for index in range(num_mentions):
        topic = TOPICS[index % len(TOPICS)]
        qids = [f"Q{10 * index + k + 1}" for k in range(3)]  # Q0 is no Wikidata id
        folder = f"mention {index}-{qids[0]}"
        refs = {}
        for k, qid in enumerate(qids):
            buffer = io.BytesIO()
            colour = (index % 256, k * 80, (index // 256) % 256)
            if photo_like:
                _photo_like(image_size, 10 * index + k).save(buffer, "JPEG", quality=90)
            else:
                Image.new("RGB", (image_size, image_size), colour).save(buffer, "JPEG")
            path = root / f"{topic}_candidates_images" / folder / f"{qid}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buffer.getvalue())
            refs[qid] = [f"{qid}.jpg", "https://example.org", f"/M3EL/{topic}_candidates_images/{folder}/{qid}.jpg"]
        per_topic[topic].append(
            {
                "Qid": qids[0],
                "name": f"mention {index}",
                "description": f"entity {index} of {topic}",
                "sentence": f"Here is mention {index}. It is about {topic}.\n",
                "image": refs[qids[0]],
                "candidates": [
                    {"Qid": q, "name": f"entity {q}", "description": f"about {q}", "image": refs[q]} for q in qids
                ],
            }
        )
    for topic, records in per_topic.items():
        # Both record formats of the release: JSON arrays (streamed by the reader) and JSON Lines.
        if TOPICS.index(topic) % 2:
            (root / f"{topic}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        else:
            (root / f"{topic}.json").write_text(json.dumps(records, indent=1), encoding="utf-8")


def export_and_measure(raw: Path, out: Path, num_proc: int, image_check: str = "verify") -> tuple[int, float, float]:
    """Export ``raw``; return the mentions exported, the seconds taken and the peak memory in MiB (workers too)."""
    start = time.perf_counter()
    result = export_release(raw, out, ExportConfig(num_proc=num_proc, image_check=image_check))
    elapsed = time.perf_counter() - start
    return result.statistics.total.mentions, elapsed, peak_memory_mib(include_children=True)


def compare_checks(args: PerfArguments) -> None:
    """Build time with the default image check and with the full decode, on photo-like images; ratio printed."""
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "raw"
        write_synthetic_release(raw, args.compare_checks, args.check_image_size, photo_like=True)
        # The mention image is its first candidate's file: 4 image cells per mention, 3 distinct files.
        print(f"{args.compare_checks} mentions: {4 * args.compare_checks} image cells, {3 * args.compare_checks} "
              f"distinct JPEG files of {args.check_image_size} px; {args.num_proc} process(es)")  # fmt: skip
        print(f"{'image check':<12} {'seconds':>8} {'mentions/s':>11}")
        seconds = {}
        for check in ("verify", "full"):
            mentions, seconds[check], _ = run_in_fresh_process(
                export_and_measure, raw, Path(folder) / f"hub-{check}", args.num_proc, check
            )
            print(f"{check:<12} {seconds[check]:>8.2f} {mentions / seconds[check]:>11.0f}")
        print(f"full / verify build time: {seconds['full'] / seconds['verify']:.2f}x (goal: >= 2x)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(PerfArguments.sizes))
    parser.add_argument("--num-proc", type=int, default=PerfArguments.num_proc)
    parser.add_argument("--image-size", type=int, default=PerfArguments.image_size)
    parser.add_argument("--compare-checks", type=int, default=0, metavar="MENTIONS",
                        help="time the default image check against the full decode on MENTIONS mentions")
    parser.add_argument("--check-image-size", type=int, default=PerfArguments.check_image_size)
    parsed = parser.parse_args(argv)
    args = PerfArguments(sizes=tuple(parsed.sizes), num_proc=parsed.num_proc, image_size=parsed.image_size,
                         compare_checks=parsed.compare_checks, check_image_size=parsed.check_image_size)
    logging.basicConfig(level=logging.WARNING)
    if args.compare_checks:
        compare_checks(args)
        return
    print(f"{'mentions':>9} {'images':>8} {'seconds':>8} {'mentions/s':>11} {'peak RSS MiB':>13}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            raw, out = Path(folder) / "raw", Path(folder) / "hub"
            write_synthetic_release(raw, size, args.image_size)
            # A fresh process each, so that the peak memory is this size's alone.
            mentions, elapsed, peak_mib = run_in_fresh_process(export_and_measure, raw, out, args.num_proc)
            rate = mentions / elapsed
            print(f"{mentions:>9} {4 * mentions:>8} {elapsed:>8.2f} {rate:>11.0f} {peak_mib:>13.0f}")


if __name__ == "__main__":
    main()
