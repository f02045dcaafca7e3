"""Reading a records file, streaming: a JSON array, JSON Lines, or (for small files such as a QID map) one JSON
document spread over several lines.

Whatever the reader finds wrong becomes a `ReleaseRecordError` naming the file, and the record or the character
where reading stopped, so that the caller can stop or skip and report it; nothing is dropped without a word.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_READ_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
_TOO_DEEP = "nested too deeply to read (more levels than Python's recursion limit)"


SKIP_REMEDY = "Fix the release or pass --skip-invalid (skip_invalid=True) to skip it."


class ReleaseRecordError(ValueError):
    """A record (or a whole file) of the release that cannot be read as the format describes.

    ``remedy`` ends the message (default `SKIP_REMEDY`); a problem that skipping cannot solve, such as a file of
    another layout whose every record would be skipped, says instead what to run.
    """

    def __init__(
        self, source_file: str, index: int | None, field_name: str | None, problem: str, remedy: str = SKIP_REMEDY
    ):
        self.source_file, self.index, self.field_name, self.problem = source_file, index, field_name, problem
        where = source_file if index is None else f"{source_file}, record {index}"
        if field_name:
            where += f", field {field_name!r}"
        super().__init__(f"{where}: {problem}. {remedy}")


class _ChunkedText:
    """A text file read chunk by chunk; ``offset`` counts the characters dropped before ``buffer``."""

    def __init__(self, file) -> None:
        self.file, self.buffer, self.position, self.offset, self.exhausted = file, "", 0, 0, False

    def fill(self, required: int) -> bool:
        """Read on until ``required`` characters follow ``position`` (False at the end of the file)."""
        while len(self.buffer) - self.position < required and not self.exhausted:
            chunk = self.file.read(_READ_CHUNK)
            self.exhausted = not chunk
            self.offset += self.position
            self.buffer, self.position = self.buffer[self.position :] + chunk, 0
        return len(self.buffer) - self.position >= required

    def skip_space(self) -> str:
        """Skip white space and return the next character (``""`` at the end of the file)."""
        while self.fill(1) and self.buffer[self.position].isspace():
            self.position += 1
        return self.buffer[self.position] if self.fill(1) else ""

    def decode(self, decoder: json.JSONDecoder) -> tuple[Any, str | None]:
        """The JSON value at ``position`` and ``None``, or ``None`` and why it does not parse."""
        while True:
            try:
                value, self.position = decoder.raw_decode(self.buffer, self.position)
                return value, None
            except json.JSONDecodeError as error:
                available = len(self.buffer) - self.position
                self.fill(available + 1)  # the value may only be cut by the end of the buffer: read on
                if len(self.buffer) - self.position == available:
                    return None, f"invalid JSON ({error.msg})"
            except RecursionError:
                return None, _TOO_DEEP


def _iter_json_array(file, display_name: str) -> Iterator[tuple[int, Any]]:
    """Stream the elements of a JSON array file chunk by chunk, so memory stays bounded by one record.

    An element that does not parse ends the file: the error is yielded at its index (nothing after it can be
    located), so that the caller reports where reading stopped. So does anything but white space after the
    closing ``]`` (a second array, junk): it is never silently ignored.
    """
    text, decoder, index = _ChunkedText(file), json.JSONDecoder(), 0
    text.skip_space()
    text.position += 1  # the opening "[" (the caller checked it)
    separator = "]" if text.skip_space() == "]" else ","  # the first record needs no comma before it
    text.position += separator == "]"
    while separator == ",":
        text.skip_space()  # raw_decode does not skip leading white space
        value, problem = text.decode(decoder)
        if problem is not None:
            problem += "; the rest of the file cannot be read"
            yield index, ReleaseRecordError(display_name, index, None, problem)
            return
        yield index, value
        index += 1
        separator = text.skip_space()
        if separator not in (",", "]"):
            problem = f"expected ',' or ']' after this record, found {separator or 'the end of the file'!r}"
            yield index, ReleaseRecordError(display_name, index, None, problem)
            return
        text.position += 1  # the comma, or the closing "]"
    if text.skip_space():
        found = text.buffer[text.position : text.position + 20]
        problem = (f"data after the end of the JSON array at character {text.offset + text.position} (found "
                   f"{found!r}...); a records file holds one JSON array, and nothing after it was read")  # fmt: skip
        yield index, ReleaseRecordError(display_name, None, None, problem)


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
        except RecursionError:
            yield index, ReleaseRecordError(display_name, index, None, _TOO_DEEP)
        index += 1


def _opens_multi_line_document(head: bytes) -> bool:
    """Whether a file starting with ``head`` holds one JSON object spread over lines (``{`` then a newline, as
    ``json.dump(indent=...)`` writes it), which no JSON Lines record can start like."""
    first_line, newline, _ = head.partition(b"\n")
    return bool(newline) and first_line.rstrip().endswith((b"{", b"[")) and first_line.lstrip().startswith(b"{")


def _read_document(path: Path, display_name: str) -> Any:
    """The one JSON value of a file, read whole."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise ReleaseRecordError(display_name, None, None, f"invalid JSON at line {error.lineno}, column "
                                 f"{error.colno} ({error.msg})") from error  # fmt: skip
    except RecursionError as error:
        raise ReleaseRecordError(display_name, None, None, _TOO_DEEP) from error


def read_raw_records(path: Path, display_name: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, parsed JSON value)`` for each record of a JSON array or JSON Lines file, streaming.

    A record that does not parse yields a `ReleaseRecordError` as its value, so that the caller can skip it (in a
    JSON array, reading stops there); a file that cannot be opened or decoded raises one. A file holding one JSON
    object over several lines yields it as record 0 (the caller decides whether an object is what it expects).
    """
    try:
        with open(path, "rb") as probe:
            head = probe.read(4096).removeprefix(_BOM).lstrip()  # a UTF-8 byte order mark is allowed
        if head[:1] == b"[":
            with open(path, encoding="utf-8-sig") as file:
                yield from _iter_json_array(file, display_name)
        elif _opens_multi_line_document(head):
            yield 0, _read_document(path, display_name)
        else:
            with open(path, "rb") as file:
                yield from _iter_json_lines(file, display_name)
    except (OSError, UnicodeDecodeError) as error:
        raise ReleaseRecordError(display_name, None, None, f"unreadable record file ({error})") from error


def first_record(path: Path, display_name: str) -> Any:
    """The first record of a records file (read no further), or ``None`` when it holds none or cannot be read: for
    telling what a file holds, the reader names any problem when it reads the file."""
    records = read_raw_records(path, display_name)
    try:
        return next(records, (0, None))[1]
    except ReleaseRecordError:
        return None
    finally:
        records.close()
