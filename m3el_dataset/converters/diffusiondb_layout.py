"""Where a DiffusionDB download keeps its prompts and images: the layouts the converter reads, found by content.

* Parquet shards of the Hub's ``2m_random_1k`` config: columns ``image`` (``{"bytes", "path"}``) and ``prompt``.
* Parts ``part-NNNNNN``: a table ``part-NNNNNN.json`` (image file name -> ``{"p": prompt, "se", "c", "st",
  "sa"}``) and the images, as the Hub stores them (``images/part-NNNNNN.zip``), unzipped into a folder of their own
  (``part-NNNNNN/``), or unzipped flat, the tables and images of every part side by side (what
  ``scripts/download.py --unzip`` leaves, the zip files staying in ``images/``).
* The metadata table ``metadata.parquet`` (``metadata-large.parquet`` for DiffusionDB Large): one row per image,
  ``image_name``, ``prompt``, ``part_id`` and the parameters. Beside the parts, it gives their prompts; alone, it
  has no image to link a prompt to.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..parquet_shards import open_parquet
from ..release import ReleaseRecordError

logger = logging.getLogger(__name__)

SHARD_COLUMNS = {"image", "prompt"}
METADATA_COLUMNS = {"image_name", "prompt", "part_id"}
_PART = re.compile(r"^part-(\d{6})$")
NO_IMAGES = "holds DiffusionDB's prompts but no image, and each prompt is linked to its image"
GET_IMAGES = ("Download the image parts too (images/part-NNNNNN.zip of huggingface.co/datasets/poloclub/diffusiondb, "
              "or 'python scripts/download.py -i 1 -r 2 --unzip') and convert the folder holding both.")  # fmt: skip


@dataclass
class Part:
    """One part of DiffusionDB: its table, unzipped (``table``) or inside ``archive``, and its images beside it."""

    name: str
    table: Path | None = None
    archive: Path | None = None

    @property
    def number(self) -> int:
        return int(self.name.removeprefix("part-"))


@dataclass
class Layout:
    """What a DiffusionDB folder holds: ``2m_random_1k`` shards, or parts with (optionally) the metadata table."""

    shards: list[Path]
    parts: list[Part]
    metadata: Path | None


def _columns(path: Path) -> set[str]:
    return set(open_parquet(path).schema_arrow.names)


def classify_parquet(src: Path) -> tuple[list[Path], list[Path]]:
    """The ``2m_random_1k`` shards and the metadata tables among the Parquet files of ``src``; any other Parquet
    file is refused by name (no --skip-invalid: every one of its rows would be skipped)."""
    shards, metadata = [], []
    for path in sorted(src.rglob("*.parquet")):
        columns = _columns(path)
        if METADATA_COLUMNS <= columns and "image" not in columns:
            metadata.append(path)
        elif SHARD_COLUMNS <= columns:
            shards.append(path)
        else:
            expected = (f"neither a 2m_random_1k shard ({', '.join(sorted(SHARD_COLUMNS))}) nor DiffusionDB's "
                        f"metadata table ({', '.join(sorted(METADATA_COLUMNS))})")  # fmt: skip
            raise ReleaseRecordError(path.relative_to(src).as_posix(), None, None, f"a Parquet file with columns "
                                     f"{', '.join(sorted(columns))}: {expected}", remedy="Remove it from the folder, "
                                     "or convert the folder that holds DiffusionDB's own files.")  # fmt: skip
    return shards, metadata


def find_parts(src: Path) -> list[Part]:
    """Every part of ``src``, by name; a part both zipped and unzipped is read from its unzipped files (the zip is
    what they were unzipped from), a part found twice in one form is refused."""
    parts: dict[str, Part] = {}
    for path in sorted([*src.rglob("part-*.json"), *src.rglob("part-*.zip")]):
        if not _PART.match(path.stem) or not path.is_file():
            continue
        part = parts.setdefault(path.stem, Part(path.stem))
        kind = "table" if path.suffix == ".json" else "archive"
        if getattr(part, kind) is not None:
            raise ValueError(f"{path.stem} is in {src} twice: {getattr(part, kind).relative_to(src)} and "
                             f"{path.relative_to(src)} (DiffusionDB 2M and Large number their parts alike); "
                             "convert one copy at a time.")  # fmt: skip
        setattr(part, kind, path)
    for part in parts.values():
        if part.table is not None and part.archive is not None:
            logger.info("%s is read from its unzipped files; %s is not opened.", part.name, part.archive)
    return [parts[name] for name in sorted(parts)]


def find_layout(src: Path) -> Layout:
    """The `Layout` of ``src``, or an error naming what was found and what to pass."""
    shards, metadata = classify_parquet(src)
    parts = find_parts(src)
    if shards and parts:
        raise ValueError(f"{src} holds two DiffusionDB layouts, 2m_random_1k Parquet shards and part-NNNNNN files; "
                         "keep one, so that no prompt is converted twice.")  # fmt: skip
    if len(metadata) > 1:
        names = ", ".join(path.relative_to(src).as_posix() for path in metadata)
        raise ValueError(f"{src} holds several DiffusionDB metadata tables ({names}); keep the one of the parts "
                         "you convert (metadata.parquet for DiffusionDB 2M, metadata-large.parquet for Large).")
    table = metadata[0] if metadata else None
    if table is not None and shards:
        logger.info("%s is not read: the 2m_random_1k shards hold their own prompts.", table)
        table = None
    if table is not None and not parts:
        raise ReleaseRecordError(table.relative_to(src).as_posix(), None, None, NO_IMAGES, remedy=GET_IMAGES)
    if not (shards or parts):
        raise FileNotFoundError(f"No DiffusionDB data in {src}: expected the 2m_random_1k Parquet shards, the Hub's "
                                "images/part-NNNNNN.zip archives (with or without metadata.parquet), or unzipped "
                                "part-NNNNNN.json files with their images.")  # fmt: skip
    return Layout(shards, parts, table)


def read_metadata(path: Path, parts: list[Part]) -> dict[int, list[dict[str, Any]]]:
    """The ``image_name`` and ``prompt`` of each metadata row of ``parts``, by part number, in table order."""
    numbers = [part.number for part in parts]
    try:
        table = pq.read_table(path, columns=["image_name", "prompt", "part_id"], filters=[("part_id", "in", numbers)])
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path} is not a readable DiffusionDB metadata table ({type(error).__name__}: {error}); "
                         "download it again.") from error  # fmt: skip
    rows: dict[int, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        rows.setdefault(row["part_id"], []).append(row)
    return rows
