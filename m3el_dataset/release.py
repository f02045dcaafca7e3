"""Reader of the original M3EL release: per-topic JSON or JSON Lines files of mention records.

The format follows the release's README (see ``shared/m3el-release-format.md``). Records are validated field by
field; a malformed one raises `ReleaseRecordError` naming the file, the record index and the field, unless the
caller asks to skip such records, in which case each skip is listed in the `BuildReport`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .constants import TOPICS
from .images import release_image_root
from .report import BuildReport

logger = logging.getLogger(__name__)

RECORD_FILE_SUFFIXES = (".json", ".jsonl")
_TOPIC_ALIASES = {**{topic: topic for topic in TOPICS}, "movie": "movies", "book": "books", "sport": "sports"}
_IMAGE_FOLDER = re.compile(r"^/?(?:M3EL/)?([A-Za-z]+)_candidates_images/")


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

    @property
    def id(self) -> str:
        """Stable id: the record file's path without extension, and the record's position in it."""
        return f"{Path(self.source_file).with_suffix('').as_posix()}-{self.index:06d}"

    @property
    def label(self) -> int:
        """Index of the gold entity among the candidates, ``-1`` when it is not among them."""
        return next((i for i, candidate in enumerate(self.candidates) if candidate.qid == self.qid), -1)


class ReleaseRecordError(ValueError):
    """A record (or a whole file) of the release that cannot be read as the format describes."""

    def __init__(self, source_file: str, index: int | None, field_name: str | None, problem: str):
        self.source_file, self.index, self.field_name, self.problem = source_file, index, field_name, problem
        where = source_file if index is None else f"{source_file}, record {index}"
        if field_name:
            where += f", field {field_name!r}"
        super().__init__(f"{where}: {problem}. Fix the release or pass --skip-invalid (skip_invalid=True) to skip it.")


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


_READ_CHUNK = 1 << 20


def _iter_json_array(file, display_name: str) -> Iterator[tuple[int, Any]]:
    """Stream the elements of a JSON array file chunk by chunk, so memory stays bounded by one record.

    An element that does not parse ends the file: the error is yielded at its index (nothing after it can be
    located), so that the caller reports where reading stopped.
    """
    decoder, buffer, position, index, exhausted = json.JSONDecoder(), "", 0, 0, False

    def fill(required: int) -> bool:
        nonlocal buffer, position, exhausted
        while len(buffer) - position < required and not exhausted:
            chunk = file.read(_READ_CHUNK)
            exhausted = not chunk
            buffer, position = buffer[position:] + chunk, 0
        return len(buffer) - position >= required

    def skip_space() -> str:
        nonlocal position
        while fill(1) and buffer[position].isspace():
            position += 1
        return buffer[position] if fill(1) else ""

    skip_space()
    position += 1  # the opening "[" (the caller checked it)
    if skip_space() == "]":
        return
    while True:
        skip_space()  # raw_decode does not skip leading white space
        while True:
            try:
                value, end = decoder.raw_decode(buffer, position)
                break
            except json.JSONDecodeError as error:
                available = len(buffer) - position
                fill(available + 1)  # the record may only be cut by the end of the buffer: read on
                if len(buffer) - position == available:
                    problem = f"invalid JSON ({error.msg}); the rest of the file cannot be read"
                    yield index, ReleaseRecordError(display_name, index, None, problem)
                    return
        yield index, value
        index, position = index + 1, end
        separator = skip_space()
        if separator == "]":
            return
        if separator != ",":
            problem = f"expected ',' or ']' after this record, found {separator or 'the end of the file'!r}"
            yield index, ReleaseRecordError(display_name, index, None, problem)
            return
        position += 1


def _iter_json_lines(file, display_name: str) -> Iterator[tuple[int, Any]]:
    """The records of a JSON Lines file (binary), a line that does not decode or parse failing alone."""
    index = 0
    for line in file:
        if not line.strip():
            continue
        try:
            yield index, json.loads(line.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            yield index, ReleaseRecordError(display_name, index, None, f"invalid JSON or UTF-8 ({error})")
        index += 1


def read_raw_records(path: Path, display_name: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, parsed JSON value)`` for each record of a JSON array or JSON Lines file, streaming.

    A record that does not parse yields a `ReleaseRecordError` as its value, so that the caller can skip it (in a
    JSON array, reading stops there); a file that cannot be opened or decoded raises one.
    """
    try:
        with open(path, "rb") as probe:
            first = probe.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()[:1]  # a UTF-8 byte order mark is allowed
        if first == b"[":
            with open(path, encoding="utf-8-sig") as file:
                yield from _iter_json_array(file, display_name)
        else:
            with open(path, "rb") as file:
                yield from _iter_json_lines(file, display_name)
    except (OSError, UnicodeDecodeError) as error:
        raise ReleaseRecordError(display_name, None, None, f"unreadable record file ({error})") from error


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


def _parse_candidate(value: Any, where: tuple[str, int], position: int) -> Candidate:
    prefix = f"candidates[{position}]."
    fields = {key: require(value, key, str, where, prefix) for key in ("Qid", "name", "description")}
    if not fields["Qid"].strip():
        raise ReleaseRecordError(*where, prefix + "Qid", "empty candidate Qid")
    image = _parse_image(require(value, "image", list, where, prefix), where, prefix + "image")
    return Candidate(qid=fields["Qid"], name=fields["name"], description=fields["description"], image=image)


def topic_of(image: ImageRef, source_file: str) -> str | None:
    """The record's topic: the prefix of its image folder (``movies_candidates_images``), else its file's name."""
    match = _IMAGE_FOLDER.match(image.local_path.replace("\\", "/"))
    if match and match.group(1).lower() in _TOPIC_ALIASES:
        return _TOPIC_ALIASES[match.group(1).lower()]
    for token in re.split(r"[^a-z]+", Path(source_file).stem.lower()):
        if token in _TOPIC_ALIASES:
            return _TOPIC_ALIASES[token]
    return None


def parse_record(value: Any, source_file: str, index: int) -> MentionRecord:
    """Validate one raw record and return it as a `MentionRecord`; raise `ReleaseRecordError` if malformed."""
    where = (source_file, index)
    fields = {key: require(value, key, str, where) for key in ("Qid", "name", "description", "sentence")}
    if not fields["Qid"].strip():
        raise ReleaseRecordError(*where, "Qid", "empty gold Qid")
    image = _parse_image(require(value, "image", list, where), where, "image")
    raw_candidates = require(value, "candidates", list, where)
    if not raw_candidates:
        raise ReleaseRecordError(*where, "candidates", "no candidates")
    candidates = [_parse_candidate(candidate, where, i) for i, candidate in enumerate(raw_candidates)]
    topic = topic_of(image, source_file)
    if topic is None:
        raise ReleaseRecordError(
            *where, "image", f"no topic: neither the image folder nor the file name names one of {', '.join(TOPICS)}"
        )
    return MentionRecord(
        topic=topic,
        index=index,
        source_file=source_file,
        qid=fields["Qid"],
        name=fields["name"],
        description=fields["description"],
        sentence=fields["sentence"],
        image=image,
        candidates=candidates,
    )


def iter_file_records(
    path: Path, raw_dir: Path, *, skip_invalid: bool = False, report: BuildReport | None = None
) -> Iterator[MentionRecord]:
    """Validated records of one record file; malformed ones raise or, with ``skip_invalid``, are reported."""
    display_name = path.relative_to(raw_dir).as_posix()
    try:
        for index, value in read_raw_records(path, display_name):
            try:
                if isinstance(value, ReleaseRecordError):
                    raise value
                yield parse_record(value, display_name, index)
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
