"""On-disk embedding cache, keyed by model revision and input content.

Layout: ``<root>/<model key>/<kind>/<shard>.npz``, each shard holding ``keys`` (content hashes, see
`data.content_key`) and ``embeddings`` (float32, ``(n, num_vectors, dim)``), stored uncompressed so that rows are
read through a memory map instead of the whole shard. The model key hashes the model's source, revision, adapter,
dtype and text length, so a retrained checkpoint, a new Hub revision, bf16 instead of fp32 or another text length
never reads stale vectors, while a second run, another task, format or topic, or another dataset sharing inputs
reuses them.

Beside the shards, ``<kind>/keys.index`` maps each cached key (by a 64-bit hash, sorted) to its shard and row, so a
lookup costs a binary search per requested key and a read of the rows found, whatever the cache holds
(`benchmark/perf/perf_cache.py`). The index is only ever a summary of the shards: a shard it does not list yet
(written by another run) is read and added, an entry whose shard is gone is dropped, a row whose stored key differs
from the requested one is not used, and an unreadable index is rebuilt from the shards. Once more than
`MERGE_AFTER` shards are smaller than `SMALL_SHARD_BYTES`, a save merges them into one.

Files are only ever written whole (written, fsynced, then renamed), so concurrent runs cannot corrupt each other;
a merge writes its shard before it removes the small ones, so a crash leaves duplicates at worst. A shard that
cannot be read (truncated, empty, not an ``.npz``) is deleted with a warning and its embeddings are computed again;
a temporary file left by a killed run is removed once it is older than `ORPHAN_SECONDS`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..baselines.base import ModelInfo
from .npz_rows import open_stored, stored_arrays, stored_layouts

logger = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
"""Bump when the embeddings an adapter returns change meaning, to leave old caches unused."""

ORPHAN_SECONDS = 3600
"""A temporary shard this old belongs to no running writer (a shard is written in seconds): it is removed."""

INDEX_NAME = "keys.index"
"""The key index of one kind's folder (an ``.npz`` archive under a name the shard listing does not match)."""

MERGE_AFTER = 16
"""A save merges the small shards once there are more than this many."""

SMALL_SHARD_BYTES = 128 * 2**20
"""Shards below this size are merged; a merged shard stays whole afterwards."""

_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
"""What `numpy.load` raises on a truncated, empty or foreign file."""


def model_cache_key(info: ModelInfo, adapter_name: str) -> str:
    """A readable, unique folder name for one model revision, adapter, dtype and text length."""
    identity = f"{CACHE_FORMAT_VERSION}|{info.source}|{info.revision}|{adapter_name}|{info.dtype}|{info.text_tokens}"
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(info.source).name or info.source)[:40]
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


TEMPORARY_SUFFIX = ".npz.tmp"


_FNV_OFFSET, _FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)


def key_hashes(keys: Sequence[str]) -> np.ndarray:
    """``uint64`` FNV-1a hashes of ``keys``' code points, the index's sort key, vectorised over the keys (a
    collision is caught by comparing the stored key). Padding code points (0) are skipped, so a key hashes alike
    in arrays of any width."""
    codes = np.asarray(list(keys), dtype=str)
    hashes = np.full(len(codes), _FNV_OFFSET, dtype=np.uint64)
    if not codes.size or not codes.itemsize:
        return hashes
    points = codes.astype(f"<U{codes.itemsize // 4}").view("<u4").reshape(len(codes), -1).astype(np.uint64)
    for column in points.T:
        hashes = np.where(column != 0, (hashes ^ column) * _FNV_PRIME, hashes)
    return hashes


class KeyIndex:
    """Key hashes sorted, with their shard (a number into ``names``) and row: the lookup table of one kind's
    folder. The arrays may be memory maps of the index file: a lookup then reads a few pages per key. ``layouts``
    says where each shard's ``keys`` and ``embeddings`` lie in its file (JSON, ``""`` if unknown), so a lookup
    opens them without parsing the archive (shards are never rewritten: their names are fresh UUIDs)."""

    def __init__(self, hashes: np.ndarray, shards: np.ndarray, rows: np.ndarray, names: list[str], layouts: list[str]):
        self.hashes, self.shards, self.rows, self.names, self.layouts = hashes, shards, rows, names, layouts

    @classmethod
    def build(cls, hashes, shards, rows, names: list[str], layouts: list[str]) -> KeyIndex:
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], shards[order], rows[order], names, layouts)

    @classmethod
    def empty(cls) -> KeyIndex:
        return cls(np.zeros(0, dtype="<u8"), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64), [], [])

    def find(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(positions of the requested hashes found, their index entries)``: one binary search each."""
        at = np.searchsorted(self.hashes, hashes)
        found = at < len(self.hashes)
        found[found] = self.hashes[at[found]] == hashes[found]
        return np.flatnonzero(found), at[found]

    def entries(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(shards, rows)`` of the index entries ``at``."""
        return np.asarray(self.shards[at]), np.asarray(self.rows[at])

    def with_shards(self, added: dict[str, tuple[np.ndarray, str]], kept: set[str]) -> KeyIndex:
        """This index restricted to the shards ``kept``, plus the ``added`` shards' (key hashes, layout)."""
        names = [name for name in self.names if name in kept] + sorted(added)
        layouts = [layout for name, layout in zip(self.names, self.layouts, strict=True) if name in kept]
        layouts += [added[name][1] for name in sorted(added)]
        number = {name: i for i, name in enumerate(names)}
        old = np.array([number.get(name, -1) for name in self.names], dtype=np.int32)
        shards = np.asarray(self.shards)
        keep = old[shards] >= 0 if len(shards) else np.zeros(0, dtype=bool)
        parts = [(np.asarray(self.hashes)[keep], old[shards[keep]], np.asarray(self.rows)[keep])]
        for name in sorted(added):
            hashes = added[name][0]
            parts.append((hashes, np.full(len(hashes), number[name], dtype=np.int32), np.arange(len(hashes))))
        return KeyIndex.build(*(np.concatenate(column) for column in zip(*parts, strict=True)), names, layouts)


class EmbeddingCache:
    """The cached embeddings of one model.

    Args:
        root (`str` or `Path`, *optional*): the cache folder; `None` disables caching.
        model_key (`str`): from `model_cache_key`.
    """

    def __init__(self, root: str | Path | None, model_key: str):
        self.folder = Path(root) / model_key if root is not None else None

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def load(self, kind: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached embeddings among ``keys`` (a missing or unreadable shard is skipped with a warning)."""
        if not self.enabled or not (self.folder / kind).is_dir() or not len(keys):
            return {}
        folder = self.folder / kind
        self._remove_orphans(folder)
        index = self._current_index(folder)
        keys = list(dict.fromkeys(keys))
        wanted, at = index.find(key_hashes(keys))
        shards, rows = index.entries(at)
        found: dict[str, np.ndarray] = {}
        for shard in np.unique(shards):
            mine = shards == shard
            path = folder / f"{index.names[shard]}.npz"
            vectors = self._read_rows(path, index.layouts[shard], rows[mine], [keys[i] for i in wanted[mine]])
            found.update(vectors if vectors is not None else {})
        return found

    def save(self, kind: str, keys: Sequence[str], embeddings: np.ndarray) -> None:
        """Add one shard of ``embeddings`` (row i is the embedding of ``keys[i]``), index it, and merge the small
        shards once there are more than `MERGE_AFTER`."""
        if not self.enabled or not len(keys):
            return
        folder = self.folder / kind
        folder.mkdir(parents=True, exist_ok=True)
        self._write_shard(folder, list(keys), embeddings)
        logger.debug("Cached %d %s embeddings in %s", len(keys), kind, folder)
        self._current_index(folder)  # indexes the new shard
        small = [path for path in self._shards(folder).values() if path.stat().st_size < SMALL_SHARD_BYTES]
        if len(small) > MERGE_AFTER:
            self._merge(folder, small)

    @staticmethod
    def _shards(folder: Path) -> dict[str, Path]:
        return {path.stem: path for path in sorted(folder.glob("*.npz"))}

    def _current_index(self, folder: Path) -> KeyIndex:
        """The folder's index, brought up to date with its shards (and rewritten if it changed)."""
        on_disk, index = self._shards(folder), self._read_index(folder)
        added = {}
        for name in sorted(set(on_disk) - set(index.names)):
            hashes = self._read_whole(on_disk[name], lambda data: key_hashes(data["keys"].tolist()))
            if hashes is not None:
                added[name] = hashes, self._layout(on_disk[name])
        kept = {name for name in index.names if (folder / f"{name}.npz").exists()}
        if not added and len(kept) == len(index.names):
            return index
        index = index.with_shards(added, kept)
        try:
            columns = {"hashes": index.hashes, "shards": index.shards, "rows": index.rows}
            columns.update(names=np.asarray(index.names, dtype=str), layouts=np.asarray(index.layouts, dtype=str))
            self._write_atomically(folder, INDEX_NAME, lambda stream: np.savez(stream, **columns))
        except OSError as error:  # a read-only cache still answers from the shards
            logger.info("Could not rewrite the embedding cache index of %s (%s); it is rebuilt next time.", folder,
                        error)  # fmt: skip
        return index

    @staticmethod
    def _read_index(folder: Path) -> KeyIndex:
        path = folder / INDEX_NAME
        if not path.exists():
            return KeyIndex.empty()
        try:
            columns = stored_arrays(path, ("hashes", "shards", "rows", "names", "layouts"))
            if len({len(columns[name]) for name in ("hashes", "shards", "rows")}) != 1:
                raise ValueError("its columns differ in length")
            names, layouts = columns["names"].tolist(), columns["layouts"].tolist()
            if len(names) != len(layouts):
                raise ValueError("its shard names and layouts differ in length")
            return KeyIndex(columns["hashes"], columns["shards"], columns["rows"], names, layouts)
        except _UNREADABLE as error:
            logger.warning("Rebuilding the unreadable embedding cache index %s (%s: %s) from its shards.", path,
                           type(error).__name__, error)  # fmt: skip
            path.unlink(missing_ok=True)
            return KeyIndex.empty()

    @staticmethod
    def _layout(shard: Path) -> str:
        """Where ``shard``'s arrays lie (JSON), or ``""`` if it cannot say (compressed, or unreadable: the lookup
        then parses the archive and reports the damage)."""
        try:
            layouts = stored_layouts(shard, ("keys", "embeddings"))
        except _UNREADABLE:
            return ""
        return json.dumps(layouts) if layouts is not None else ""

    def _read_rows(self, shard: Path, layout: str, rows: np.ndarray, keys: list[str]) -> dict[str, np.ndarray] | None:
        """The embeddings of ``keys`` at ``rows`` of ``shard`` whose stored key matches (read through a memory map),
        or `None` if the shard is gone (merged by another run: computed again) or damaged (discarded)."""
        if not shard.exists():
            return None
        order = np.argsort(rows)  # ascending rows: sequential reads
        try:
            if layout:
                stored = open_stored(shard, json.loads(layout))
            else:
                stored = stored_arrays(shard, ("keys", "embeddings"))
            stored_keys, vectors = stored["keys"][rows[order]], np.asarray(stored["embeddings"][rows[order]])
        except FileNotFoundError:
            return None
        except (*_UNREADABLE, IndexError) as error:
            self._discard(shard, error)
            return None
        chosen = [keys[i] for i in order]
        return {key: vectors[i] for i, key in enumerate(chosen) if stored_keys[i] == key}

    def _read_whole(self, shard: Path, read: Callable[[np.lib.npyio.NpzFile], object]) -> object | None:
        """``read(data)`` of a whole shard, or `None` if it is gone or damaged (then discarded)."""
        try:
            with np.load(shard, allow_pickle=False) as data:
                return read(data)
        except FileNotFoundError:
            return None
        except _UNREADABLE as error:
            self._discard(shard, error)
            return None

    @staticmethod
    def _discard(shard: Path, error: BaseException) -> None:
        logger.warning("Discarding the damaged embedding cache shard %s (%s: %s); its embeddings will be "
                       "computed again.", shard, type(error).__name__, error)  # fmt: skip
        shard.unlink(missing_ok=True)

    def _merge(self, folder: Path, small: list[Path]) -> None:
        """One shard from the ``small`` ones, written before they are removed (a crash leaves duplicates only)."""
        parts = [self._read_whole(path, lambda data: (data["keys"], data["embeddings"])) for path in small]
        parts = [part for part in parts if part is not None]
        shapes = {embeddings.shape[1:] for _, embeddings in parts}
        if len(shapes) != 1:  # shards of another shape cannot be stacked; leave them as they are
            return
        keys = np.concatenate([keys for keys, _ in parts])
        unique = np.unique(keys, return_index=True)[1]
        self._write_shard(folder, keys[unique].tolist(), np.concatenate([vectors for _, vectors in parts])[unique])
        for path in small:
            path.unlink(missing_ok=True)
        self._current_index(folder)
        logger.debug("Merged %d small embedding cache shards of %s", len(small), folder)

    def _write_shard(self, folder: Path, keys: list[str], embeddings: np.ndarray) -> None:
        self._write_atomically(folder, f"{uuid.uuid4().hex}.npz", lambda stream: np.savez(
            stream, keys=np.asarray(keys), embeddings=embeddings.astype(np.float32)))  # fmt: skip

    @staticmethod
    def _write_atomically(folder: Path, name: str, write: Callable) -> None:
        """``write(stream)`` into a temporary file, on disk before the rename makes it visible as ``name``."""
        handle, temporary = tempfile.mkstemp(suffix=TEMPORARY_SUFFIX, dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                write(stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, folder / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @staticmethod
    def _remove_orphans(folder: Path) -> None:
        """Remove temporary shards left by a killed writer (old enough that no running writer owns them)."""
        cutoff = time.time() - ORPHAN_SECONDS
        for temporary in folder.glob(f"*{TEMPORARY_SUFFIX}"):
            try:
                if temporary.stat().st_mtime < cutoff:
                    temporary.unlink()
                    logger.info("Removed %s, left by an interrupted cache write", temporary)
            except FileNotFoundError:  # another process removed or renamed it meanwhile
                continue
