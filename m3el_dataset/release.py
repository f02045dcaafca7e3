"""Reader of the original M3EL release: per-topic JSON or JSON Lines files of mention records.

The format follows the release's README (see ``shared/m3el-release-format.md``). Records are validated field by
field; a malformed one raises `ReleaseRecordError` naming the file, the record index and the field, unless the
caller asks to skip such records, in which case each skip is listed in the `BuildReport`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .constants import TOPICS
from .images import is_inside, release_image_root
from .json_records import ReleaseRecordError, first_record, read_raw_records
from .report import BuildReport, NormalisedValue

logger = logging.getLogger(__name__)

RECORD_FILE_SUFFIXES = (".json", ".jsonl")
_TOPIC_ALIASES = {**{topic: topic for topic in TOPICS}, "movie": "movies", "book": "books", "sport": "sports"}
_IMAGE_FOLDER = re.compile(r"^/?(?:M3EL/|DiffMEL/)?([A-Za-z]+)_candidates_images/")
_QID = re.compile(r"Q[1-9][0-9]*")
RECORD_FIELDS = ("Qid", "name", "description", "sentence", "image", "candidates")
CANDIDATE_FIELDS = ("Qid", "name", "description", "image")
EXTRA_FIELDS: dict[str, type] = {"difficulty": int}
"""Record fields beyond `RECORD_FIELDS` that are kept, each as a column of its own: the DifFMEL release's
``difficulty``. Any other field is counted in the build report's ``ignored_fields``, never dropped silently."""


@dataclass(frozen=True)
class ImageRef:
    """A record's ``image`` triple: original file name, source URL and the local path inside the release."""

    original_name: str
    url: str
    local_path: str


@dataclass(frozen=True)
class Candidate:
    """One candidate entity of a mention."""

    qid: str
    name: str
    description: str
    image: ImageRef


@dataclass(frozen=True)
class MentionRecord:
    """One validated mention record, with where it came from (``source_file`` relative to the release folder)."""

    topic: str
    index: int
    source_file: str
    qid: str
    name: str
    description: str
    sentence: str
    image: ImageRef
    candidates: list[Candidate] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the `EXTRA_FIELDS` the record holds

    @property
    def id(self) -> str:
        """Stable id: the record file's path without extension, and the record's position in it."""
        return f"{Path(self.source_file).with_suffix('').as_posix()}-{self.index:06d}"

    @property
    def label(self) -> int:
        """Index of the gold entity among the candidates, ``-1`` when it is not among them."""
        return next((i for i, candidate in enumerate(self.candidates) if candidate.qid == self.qid), -1)


def find_release_files(raw_dir: str | os.PathLike) -> list[Path]:
    """The record files of a release folder (``*.json`` and ``*.jsonl``, image folders excluded), sorted."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"Release folder {raw_dir} does not exist; pass the folder the archive unpacks to.")
    files = sorted(path for path in raw_dir.rglob("*") if _is_record_file(path, raw_dir))
    if not files:
        raise FileNotFoundError(f"No record files (*.json, *.jsonl) found in {raw_dir}.")
    return files


def _is_record_file(path: Path, raw_dir: Path) -> bool:
    """A ``*.json``/``*.jsonl`` file, not hidden (``._x.json`` of macOS archives) and not inside an image folder or
    a hidden folder of the release (folders above ``raw_dir`` do not count)."""
    relative = path.relative_to(raw_dir).parts
    if path.suffix.lower() not in RECORD_FILE_SUFFIXES or relative[-1].startswith(".") or not path.is_file():
        return False
    return not any(part.endswith("_candidates_images") or part.startswith(".") for part in relative[:-1])


def require(
    record: Any, key: str, expected: type | tuple[type, ...], where: tuple[str, int], prefix: str = ""
) -> Any:
    """``record[key]`` if ``record`` is an object holding a value of type ``expected``; else `ReleaseRecordError`
    naming the file, the record and the field (``prefix + key``, e.g. ``candidates[0].Qid``)."""
    if not isinstance(record, dict):
        got = type(record).__name__
        raise ReleaseRecordError(*where, prefix.rstrip(".") or None, f"expected an object, got {got}")
    if key not in record:
        raise ReleaseRecordError(*where, prefix + key, "missing field")
    value = record[key]
    if not isinstance(value, expected) or isinstance(value, bool):
        names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise ReleaseRecordError(*where, prefix + key, f"expected {names}, got {type(value).__name__}")
    return value


def _parse_image(value: Any, where: tuple[str, int], name: str) -> ImageRef:
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(isinstance(v, str) for v in value):
        raise ReleaseRecordError(*where, name, "expected [original file name, source URL, local path] as 3 strings")
    return ImageRef(*value)


def _qid(raw: str, where: tuple[str, int], field_name: str, normalised: list[NormalisedValue]) -> str:
    """A Wikidata item id. White space around it and a lower-case ``q`` are unambiguous: they are normalised and
    the change listed in ``normalised``; anything else that is not ``Q`` and digits is refused."""
    qid = raw.strip()
    if not qid:
        raise ReleaseRecordError(*where, field_name, f"empty {'gold' if field_name == 'Qid' else 'candidate'} Qid")
    qid = "Q" + qid[1:] if qid.startswith("q") else qid
    if not _QID.fullmatch(qid):
        raise ReleaseRecordError(*where, field_name, f"{raw!r} is not a Wikidata item id (Q followed by digits)")
    if qid != raw:
        normalised.append(NormalisedValue(*where, field_name, raw, qid))
    return qid


def _parse_candidate(
    value: Any, where: tuple[str, int], position: int, normalised: list[NormalisedValue]
) -> Candidate:
    prefix = f"candidates[{position}]."
    fields = {key: require(value, key, str, where, prefix) for key in ("Qid", "name", "description")}
    qid = _qid(fields["Qid"], where, prefix + "Qid", normalised)
    image = _parse_image(require(value, "image", list, where, prefix), where, prefix + "image")
    return Candidate(qid=qid, name=fields["name"], description=fields["description"], image=image)


def _parse_candidates(value: Any, where: tuple[str, int], normalised: list[NormalisedValue]) -> list[Candidate]:
    """The candidates, each entity once: a repeated QID would be ranked twice and make the label ambiguous."""
    raw_candidates = require(value, "candidates", list, where)
    if not raw_candidates:
        raise ReleaseRecordError(*where, "candidates", "no candidates")
    candidates = [_parse_candidate(candidate, where, i, normalised) for i, candidate in enumerate(raw_candidates)]
    first_position: dict[str, int] = {}
    for position, candidate in enumerate(candidates):
        earlier = first_position.setdefault(candidate.qid, position)
        if earlier != position:
            raise ReleaseRecordError(*where, f"candidates[{position}].Qid", f"{candidate.qid} is already "
                                     f"candidates[{earlier}]; a mention names each candidate entity once")  # fmt: skip
    return candidates


def topic_of(image: ImageRef, source_file: str) -> str | None:
    """The record's topic: the prefix of its image folder (``movies_candidates_images``), else its file's name."""
    match = _IMAGE_FOLDER.match(image.local_path.replace("\\", "/"))
    if match and match.group(1).lower() in _TOPIC_ALIASES:
        return _TOPIC_ALIASES[match.group(1).lower()]
    for token in re.split(r"[^a-z]+", Path(source_file).stem.lower()):
        if token in _TOPIC_ALIASES:
            return _TOPIC_ALIASES[token]
    return None


def parse_record(value: Any, source_file: str, index: int, report: BuildReport | None = None) -> MentionRecord:
    """Validate one raw record and return it as a `MentionRecord`; raise `ReleaseRecordError` if malformed.

    QIDs written with white space around them or a lower-case ``q`` are normalised and, given ``report``, listed
    in it (`NormalisedValue`).
    """
    where, normalised = (source_file, index), []
    if isinstance(value, dict) and not value.keys() & set(RECORD_FIELDS):
        keys, expected = ", ".join(repr(key) for key in list(value)[:5]), ", ".join(RECORD_FIELDS)
        raise ReleaseRecordError(*where, None, f"expected a JSON array or JSON Lines of mention records, found an "
                                 f"object with keys {keys} and none of the fields {expected}")  # fmt: skip
    fields = {key: require(value, key, str, where) for key in ("Qid", "name", "description", "sentence")}
    qid = _qid(fields["Qid"], where, "Qid", normalised)
    image = _parse_image(require(value, "image", list, where), where, "image")
    candidates = _parse_candidates(value, where, normalised)
    extra = {key: require(value, key, kind, where) for key, kind in EXTRA_FIELDS.items() if key in value}
    topic = topic_of(image, source_file)
    if topic is None:
        raise ReleaseRecordError(
            *where, "image", f"no topic: neither the image folder nor the file name names one of {', '.join(TOPICS)}"
        )
    if report is not None:
        report.normalised_values.extend(normalised)
        _count_ignored_fields(value, where, report)
    return MentionRecord(
        topic=topic,
        index=index,
        source_file=source_file,
        qid=qid,
        name=fields["name"],
        description=fields["description"],
        sentence=fields["sentence"],
        image=image,
        candidates=candidates,
        extra=extra,
    )


def _count_ignored_fields(value: dict[str, Any], where: tuple[str, int], report: BuildReport) -> None:
    """List in ``report`` the fields of a valid record that no column keeps (``candidates[].x`` for a candidate's)."""
    place = f"{where[0]}, record {where[1]}"
    for key in value.keys() - {*RECORD_FIELDS, *EXTRA_FIELDS}:
        report.add_ignored_field(key, place)
    for key in {key for candidate in value["candidates"] for key in candidate} - set(CANDIDATE_FIELDS):
        report.add_ignored_field(f"candidates[].{key}", place)


def release_extra_fields(raw_dir: str | os.PathLike) -> tuple[str, ...]:
    """The `EXTRA_FIELDS` the release's records hold, read from the first record of each record file (a release
    gives its records the same fields; a later record holding one the first lacks is reported by the export)."""
    found: set[str] = set()
    try:
        files = find_release_files(raw_dir)
    except FileNotFoundError:
        return ()  # the reader says what is missing when it reads the folder
    for path in files:
        first = first_record(path, path.name)
        if isinstance(first, dict):
            found.update(first.keys() & EXTRA_FIELDS.keys())
    return tuple(name for name in EXTRA_FIELDS if name in found)


def iter_file_records(
    path: Path, raw_dir: Path, *, skip_invalid: bool = False, report: BuildReport | None = None
) -> Iterator[MentionRecord]:
    """Validated records of one record file; malformed ones raise or, with ``skip_invalid``, are reported.

    A file that is a symbolic link out of ``raw_dir`` is refused as an image would be; a file holding no record
    at all (0 bytes, ``[]``) is read as none, with a warning and an entry in ``report``.
    """
    display_name = path.relative_to(raw_dir).as_posix()
    count = 0
    try:
        if not is_inside(path, raw_dir):
            raise ReleaseRecordError(display_name, None, None, f"a link to {path.resolve()}, outside the release "
                                     "folder; record files, like images, are only read inside it")  # fmt: skip
        for index, value in read_raw_records(path, display_name):
            count += 1
            try:
                if isinstance(value, ReleaseRecordError):
                    raise value
                yield parse_record(value, display_name, index, report)
            except ReleaseRecordError as error:
                if not skip_invalid:
                    raise
                if report is not None:
                    report.add_skip(error)
    except ReleaseRecordError as error:
        if not skip_invalid or error.index is not None:
            raise
        if report is not None:
            report.add_skip(error)
        return
    if count == 0:
        logger.warning("Record file %s holds no record (it is empty); check that it was copied whole.", path)
        if report is not None:
            report.empty_files.append(display_name)


def iter_release(
    raw_dir: str | os.PathLike,
    *,
    skip_invalid: bool = False,
    report: BuildReport | None = None,
    files: list[Path] | None = None,
) -> Iterator[MentionRecord]:
    """Stream the validated mention records of a release folder, file by file in sorted order.

    Args:
        raw_dir: the folder the release archive unpacks to (the ``/M3EL/`` of its image paths).
        skip_invalid: skip malformed records (and unreadable files) instead of raising `ReleaseRecordError`.
        report: where skips are listed (a `BuildReport`), when given.
        files: a subset of `find_release_files(raw_dir)` to read (used to shard work across processes).
    """
    raw_dir = Path(raw_dir)
    # Names (and so ids and splits) are relative to the folder /M3EL/ stands for, whichever of it or its parent the
    # user gave, so that both give the same splits.
    root = release_image_root(raw_dir)
    for path in files if files is not None else find_release_files(raw_dir):
        base = root if path.is_relative_to(root) else raw_dir
        yield from iter_file_records(path, base, skip_invalid=skip_invalid, report=report)
