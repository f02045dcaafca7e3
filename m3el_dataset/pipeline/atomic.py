"""Atomic file commits: a crash or Ctrl-C mid-write leaves either the old file or the new one, never half a file."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"
"""Prefix of in-progress files; readers skip them and `remove_stale_tmp` cleans them after a crash."""


def _create_tmp(folder: Path) -> tuple[int, Path]:
    """A new, empty temporary file in ``folder``, created with mode 0o666 less the umask (as ``open`` would; the
    0o600 of ``tempfile.mkstemp`` would leave every release file readable by its owner only)."""
    for _ in range(100):
        tmp = folder / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"Could not create a temporary file in {folder}; remove its {TMP_PREFIX}* files.")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync it and rename it in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_tmp(path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # os.replace is atomic on POSIX and Windows when both paths are on one file system (same folder here).
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """`atomic_write_bytes` for one JSON document (UTF-8, non-ASCII kept readable)."""
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def read_json(path: Path) -> Any:
    """Read one JSON document, raising ``ValueError`` that names the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it so that its stage re-creates it.") from err


def remove_stale_tmp(folder: Path) -> int:
    """Delete temporary files that a killed run left in ``folder`` (recursively); return how many."""
    folder = Path(folder)
    if not folder.exists():
        return 0
    stale = [p for p in folder.rglob(f"{TMP_PREFIX}*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
