"""Duplicate mention rows: what makes two rows the same mention, and finding them in one streaming pass."""

from __future__ import annotations

import hashlib
from typing import Any

from .report import BuildReport, DuplicateRecord


def duplicate_key(row: dict[str, Any]) -> bytes:
    """What makes two mention rows duplicates: the same mention name, the same sentence, the same set of
    candidate QIDs (in any order) and the same mention image bytes (or both none).

    Names and sentences are compared as the row holds them (white space already collapsed by `mention_parts`);
    the gold QID is left out on purpose, so that two copies of a mention labelled differently are caught too.
    The image is part of the key because in a multi-modal dataset the same text over two images is two mentions.
    """
    image = row.get("mention_image")
    image_digest = hashlib.sha256(image["bytes"]).hexdigest() if image and image.get("bytes") else ""
    parts = (row["mention_name"] or "", row["sentence"] or "", *sorted(row["candidate_qids"]), image_digest)
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


class DuplicateFinder:
    """Remembers the first row of each `duplicate_key` (16 bytes and its id per row) and lists every later copy in
    ``report``; with ``drop``, the copies are to be left out."""

    def __init__(self, report: BuildReport, drop: bool = False) -> None:
        self.report, self.drop = report, drop
        self._first: dict[bytes, tuple[str, str]] = {}

    def keep(self, row: dict[str, Any]) -> bool:
        """Whether to write ``row``: a first occurrence is kept, a copy is reported and kept unless ``drop``."""
        first_id, first_split = self._first.setdefault(duplicate_key(row), (row["id"], row["split"]))
        if first_id == row["id"]:
            return True
        self.report.duplicates.append(DuplicateRecord(row["id"], row["split"], first_id, first_split, self.drop))
        return not self.drop
