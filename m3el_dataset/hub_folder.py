"""Telling an exported M3EL folder from a raw release and from another dataset's folder.

An exported folder (what ``m3el-dataset build`` and ``convert`` write) has a card declaring the ``mentions``
config and mention shards ``data/<group>/<split>-*.parquet`` with M3EL's columns. A folder of another dataset
(Parquet or Arrow files, ``save_to_disk`` output) is refused with one sentence saying so, rather than read as a
raw release or handed to `datasets` (``BuilderConfig 'mentions' not found``).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .card import DATA_DIR
from .parquet_shards import open_parquet
from .rows import COMMON_COLUMNS, MENTIONS_CONFIG

MENTION_SHARDS = f"{DATA_DIR}/*/*.parquet"
_DATASET_FILES = ("*.parquet", "*/*.parquet", "*/*/*.parquet", "*.arrow", "*/*.arrow", "dataset_info.json",
                  "dataset_dict.json", "state.json")  # fmt: skip


class NotM3ELLayoutError(ValueError):
    """A folder holding a dataset, but not in the layout ``m3el-dataset build`` writes."""

    def __init__(self, folder: str | os.PathLike, problem: str):
        super().__init__(f"{folder} is not an M3EL-layout folder: {problem}. Export a release with 'm3el-dataset "
                         "build RAW_DIR OUT_DIR' or convert a peer dataset with 'm3el-dataset convert'.")  # fmt: skip


def holds_a_dataset(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a built dataset (a ``data/`` folder, Parquet or Arrow files, ``save_to_disk``
    files) rather than the raw release's JSON records."""
    folder = Path(folder)
    return (folder / DATA_DIR).is_dir() or any(any(folder.glob(pattern)) for pattern in _DATASET_FILES)


def _declared_configs(card: Path) -> list[str]:
    """The ``config_name`` of each entry of the card's YAML ``configs`` (none without a YAML header)."""
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return []
    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return []
    configs = meta.get("configs") if isinstance(meta, dict) else None
    return [entry.get("config_name") for entry in configs or [] if isinstance(entry, dict)]


def check_m3el_layout(folder: str | os.PathLike) -> list[Path]:
    """The mention shards of the exported M3EL folder ``folder``, sorted; `NotM3ELLayoutError` saying what is
    missing otherwise, and ``ValueError`` naming a shard that is not readable Parquet."""
    folder = Path(folder)
    card = folder / "README.md"
    if not card.is_file():
        raise NotM3ELLayoutError(folder, "it has no README.md (the card declaring its configs)")
    if MENTIONS_CONFIG not in _declared_configs(card):
        raise NotM3ELLayoutError(folder, f"its README.md declares no {MENTIONS_CONFIG!r} config")
    shards = sorted(folder.glob(MENTION_SHARDS))
    if not shards:
        raise NotM3ELLayoutError(folder, f"it has no mention shards {MENTION_SHARDS}")
    columns = set(open_parquet(shards[0]).schema_arrow.names)
    lacking = [column for column in COMMON_COLUMNS if column not in columns]
    if lacking:
        relative = shards[0].relative_to(folder).as_posix()
        raise NotM3ELLayoutError(folder, f"its shard {relative} has no column {', '.join(lacking)}")
    return shards

