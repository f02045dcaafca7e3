"""Stage 4: write the release-format records, one JSON array per topic, from the finished image items.

Records follow the published M3EL format (``Qid``, ``name``, ``description``, ``sentence``, ``image``,
``candidates``) so that `m3el_dataset.release` and the Hub export read the pipeline's output unchanged. What the
format has no room for (who chose the gold, where it was found, dropped candidates) goes to
``<work>/records/<topic>.provenance.jsonl``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .sources import load_source_mentions

logger = logging.getLogger(__name__)


def release_record(item: dict[str, Any]) -> dict[str, Any]:
    """One release record from a finished images-stage item."""
    gold = item["gold"]
    return {
        "Qid": gold["qid"],
        "name": item["mention"]["surface"],
        "description": gold["description"],
        "sentence": item["mention"]["context"],
        "image": item["image"],
        "candidates": [
            {"Qid": c["qid"], "name": c["label"], "description": c["description"], "image": c["image"]}
            for c in item["candidates"]
        ],
    }


def provenance(item: dict[str, Any]) -> dict[str, Any]:
    """The audit line of one record: key, gold, how it was chosen and found, and dropped candidates."""
    return {"key": item["mention"]["key"], "Qid": item["gold"]["qid"], "gold_chosen_by": item["gold_chosen_by"],
            "gold_placement": item["gold_placement"], "dropped": item.get("dropped", [])}


def release_path(release_dir: Path, topic: str) -> Path:
    return Path(release_dir) / f"{topic}.json"


def write_records(work_dir: Path, release_dir: Path, topic: str,
                  load_item: Callable[[str], dict[str, Any] | None]) -> int:
    """Write ``<release>/<topic>.json`` in source order from the items ``load_item`` returns; return the count.

    Items that are not finished (failed upstream) are left out; the stage reports say why.
    """
    items = [item for m in load_source_mentions(work_dir, topic) if (item := load_item(m.key)) is not None]
    records = [release_record(item) for item in items]
    atomic_write_text(release_path(release_dir, topic), json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    lines = "".join(json.dumps(provenance(item), ensure_ascii=False) + "\n" for item in items)
    atomic_write_text(Path(work_dir) / "records" / f"{topic}.provenance.jsonl", lines)
    placements = Counter(item["gold_placement"] for item in items)
    logger.info("Stage records: %d %s records (gold first %d, elsewhere %d, absent %d)", len(records), topic,
                placements["first"], placements["elsewhere"], placements["absent"])
    return len(records)
