"""The build report: every skipped record, unusable image, normalised value, duplicate, empty file and ignored
field, listed.

Nothing a build leaves out or changes is silent: it is saved as ``build_report.json`` beside the data.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .images import LoadedImage
    from .release import ReleaseRecordError

REPORT_FILE_NAME = "build_report.json"


@dataclass
class SkippedRecord:
    """A record (or a whole file, ``index`` None) left out with ``--skip-invalid``, and why."""

    file: str
    index: int | None
    field: str | None
    problem: str


@dataclass
class ImageProblem:
    """An image referenced by a record that became an empty cell: missing, unreadable or outside the folder."""

    record_id: str
    role: str  # "mention" or "candidate <position>"
    path: str
    status: str
    detail: str


@dataclass
class KBConflict:
    """An entity met again with other content than the copy the ``kb`` config keeps (``fields``: which differ among
    name, description and image bytes)."""

    qid: str
    fields: list[str]
    kept_record: str
    record_id: str


@dataclass
class NormalisedValue:
    """A field value read differently from how it is written, because its meaning is unambiguous (``q102``)."""

    file: str
    index: int
    field: str
    original: str
    value: str


@dataclass
class DuplicateRecord:
    """A mention row that repeats an earlier one (see `duplicates.duplicate_key`); ``dropped`` with
    ``--drop-duplicates``."""

    id: str
    split: str
    duplicate_of: str
    duplicate_of_split: str
    dropped: bool = False


@dataclass
class IgnoredField:
    """A field the source's records hold and the schema has no column for: not kept, and counted here. ``first``
    names the first record holding it."""

    field: str
    records: int
    first: str


@dataclass
class BuildReport:
    """What a build skipped, could not use or changed. ``images_ok`` counts the image cells that hold bytes;
    ``empty_files`` are record files that hold no record at all."""

    skipped_records: list[SkippedRecord] = field(default_factory=list)
    image_problems: list[ImageProblem] = field(default_factory=list)
    images_ok: int = 0
    kb_conflicts: list[KBConflict] = field(default_factory=list)
    normalised_values: list[NormalisedValue] = field(default_factory=list)
    duplicates: list[DuplicateRecord] = field(default_factory=list)
    empty_files: list[str] = field(default_factory=list)
    ignored_fields: list[IgnoredField] = field(default_factory=list)
    image_check: str = ""  # which check the images got (`images.IMAGE_CHECKS`, or "header"); "" when not recorded

    def add_skip(self, error: ReleaseRecordError) -> None:
        """List a record skipped because of ``error``."""
        self.skipped_records.append(SkippedRecord(error.source_file, error.index, error.field_name, error.problem))

    def add_image(self, record_id: str, role: str, image: LoadedImage) -> None:
        """Count a usable image, or list why ``image`` could not be used."""
        if image.data is not None:
            self.images_ok += 1
        else:
            self.image_problems.append(ImageProblem(record_id, role, image.path, image.status.value, image.detail))

    def add_ignored_field(self, name: str, where: str, records: int = 1) -> None:
        """Count ``records`` more records (the first at ``where``) holding the field ``name``, which is not kept."""
        entry = next((entry for entry in self.ignored_fields if entry.field == name), None)
        if entry is None:
            self.ignored_fields.append(IgnoredField(name, records, where))
        else:
            entry.records += records

    def merge(self, other: BuildReport) -> None:
        """Add ``other``'s entries (from another worker process) to this report."""
        self.skipped_records.extend(other.skipped_records)
        self.image_problems.extend(other.image_problems)
        self.images_ok += other.images_ok
        self.kb_conflicts.extend(other.kb_conflicts)
        self.normalised_values.extend(other.normalised_values)
        self.duplicates.extend(other.duplicates)
        self.empty_files.extend(other.empty_files)
        for entry in other.ignored_fields:
            self.add_ignored_field(entry.field, entry.first, entry.records)

    def image_problem_counts(self) -> dict[str, int]:
        """How many images are missing, unreadable or outside the folder."""
        counts = Counter(problem.status for problem in self.image_problems)
        return {status: counts.get(status, 0) for status in ("missing", "unreadable", "outside_folder")}

    def to_dict(self) -> dict:
        return {
            "image_check": self.image_check,
            "images_ok": self.images_ok,
            "image_problem_counts": self.image_problem_counts(),
            "skipped_records": [asdict(skip) for skip in self.skipped_records],
            "image_problems": [asdict(problem) for problem in self.image_problems],
            "kb_conflicts": [asdict(conflict) for conflict in self.kb_conflicts],
            "normalised_values": [asdict(value) for value in self.normalised_values],
            "duplicates": [asdict(duplicate) for duplicate in self.duplicates],
            "empty_files": list(self.empty_files),
            "ignored_fields": [asdict(entry) for entry in self.ignored_fields],
        }

    @classmethod
    def from_dict(cls, data: dict) -> BuildReport:
        return cls(
            skipped_records=[SkippedRecord(**skip) for skip in data.get("skipped_records", [])],
            image_problems=[ImageProblem(**problem) for problem in data.get("image_problems", [])],
            images_ok=data.get("images_ok", 0),
            image_check=data.get("image_check", ""),
            kb_conflicts=[KBConflict(**conflict) for conflict in data.get("kb_conflicts", [])],
            normalised_values=[NormalisedValue(**value) for value in data.get("normalised_values", [])],
            duplicates=[DuplicateRecord(**duplicate) for duplicate in data.get("duplicates", [])],
            empty_files=list(data.get("empty_files", [])),
            ignored_fields=[IgnoredField(**entry) for entry in data.get("ignored_fields", [])],
        )

    def save(self, folder: str | os.PathLike, file_name: str = REPORT_FILE_NAME) -> Path:
        """Write the report as ``build_report.json`` (or ``file_name``) in ``folder``."""
        path = Path(folder) / file_name
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> BuildReport | None:
        """Read ``build_report.json`` from ``folder``, or ``None`` when there is none."""
        path = Path(folder) / REPORT_FILE_NAME
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None
