"""Throughput and memory of the Hub export as the release grows.

Builds two synthetic releases in the original format (small images, three candidates per mention), exports
each in a fresh process and prints mentions per second and the process's peak resident memory, so that growth
with the release's size is visible:

    python benchmark/perf/perf_dataset.py --sizes 2000 8000 --num-proc 2
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


def write_synthetic_release(root: Path, num_mentions: int, image_size: int) -> None:
    """A release of ``num_mentions`` records spread over the topics, each with 4 distinct JPEG images."""
    per_topic = {topic: [] for topic in TOPICS}
    for index in range(num_mentions):
        topic = TOPICS[index % len(TOPICS)]
        qids = [f"Q{10 * index + k}" for k in range(3)]
        folder = f"mention {index}-{qids[0]}"
        refs = {}
        for k, qid in enumerate(qids):
            buffer = io.BytesIO()
            colour = (index % 256, k * 80, (index // 256) % 256)
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


def export_and_measure(raw: Path, out: Path, num_proc: int) -> tuple[int, float, float]:
    """Export ``raw``; return the mentions exported, the seconds taken and the peak memory in MiB (workers too)."""
    start = time.perf_counter()
    result = export_release(raw, out, ExportConfig(num_proc=num_proc))
    elapsed = time.perf_counter() - start
    return result.statistics.total.mentions, elapsed, peak_memory_mib(include_children=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(PerfArguments.sizes))
    parser.add_argument("--num-proc", type=int, default=PerfArguments.num_proc)
    parser.add_argument("--image-size", type=int, default=PerfArguments.image_size)
    parsed = parser.parse_args(argv)
    args = PerfArguments(sizes=tuple(parsed.sizes), num_proc=parsed.num_proc, image_size=parsed.image_size)
    logging.basicConfig(level=logging.WARNING)
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
