"""What makes a captured log (stderr of a run, not a terminal) unreadable: `log_problems` lists each instance."""

from __future__ import annotations

import re
from collections import Counter

RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?:\[rank \d+\] )?(DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
BAR = re.compile(r"(\d+%\|)|(\[\d\d:\d\d(?:<[^\]]*)?, [^\]]*/s\])")
EMPTY_BAR = re.compile(r": 0(?:\s?[A-Za-z ]*)? \[|\b0/0 \[")
PYTHON_WARNING = re.compile(r"^(?P<where>\S+?):\d+: (?P<category>\w*Warning): (?P<text>.*)$")
REPO_CODE = ("m3el_benchmark/", "m3el_dataset/", "modeling_clip_nd/", "benchmark/")
SUMMARY_LOGGER = "m3el_benchmark.run_logging:"


def _segments(log: str) -> list[str]:
    """What a terminal would show of each carriage-return-separated piece of every line."""
    return [piece for line in log.split("\n") for piece in line.split("\r") if piece.strip()]


def warning_texts(log: str) -> list[str]:
    """The text of every warning record and Python warning of ``log`` (digits as ``N``: one kind, many counts),
    leaving out the run's closing summary of repeated warnings."""
    texts = []
    for segment in _segments(log):
        record = RECORD.search(segment)
        if record and record.group(1) == "WARNING" and SUMMARY_LOGGER not in segment:
            texts.append(re.sub(r"\b\d+\b", "N", segment[record.end():]))
        elif not record and (found := PYTHON_WARNING.match(segment.strip())):
            texts.append(re.sub(r"\b\d+\b", "N", f"{found['category']}: {found['text']}"))
    return texts


def log_problems(log: str) -> list[str]:
    """Every reason ``log`` is hard to read: a warning printed twice, a deprecation warning raised from this
    repository's code, a record glued onto a progress bar (or preceded by other text), a cursor-up escape of
    nested bars, a bar that ended having done nothing."""
    problems = []
    if "\x1b[A" in log:
        problems.append("cursor-up escape (\\x1b[A) of nested progress bars")
    for text, count in Counter(warning_texts(log)).items():
        if count > 1:
            problems.append(f"warning printed {count} times: {text}")
    for segment in _segments(log):
        found = PYTHON_WARNING.match(segment.strip())
        if found and found["category"] in ("FutureWarning", "DeprecationWarning") and any(
            part in found["where"] for part in REPO_CODE
        ):
            problems.append(f"deprecation warning from our code: {segment.strip()}")
        record = RECORD.search(segment)
        if record and (BAR.search(segment[: record.start()]) or segment[: record.start()].strip()):
            problems.append(f"log record glued onto other output: {segment[:160]!r}")
    last_frame = {}
    for segment in _segments(log):
        if BAR.search(segment) or EMPTY_BAR.search(segment):
            last_frame[segment.split(":")[0]] = segment
    problems += [f"empty progress bar: {frame!r}" for frame in last_frame.values() if EMPTY_BAR.search(frame)]
    return problems
