"""On-disk embedding cache, keyed by model revision and input content.

Layout: ``<root>/<model key>/<kind>/<shard>.npz``, each shard holding ``keys`` (content hashes, see
`data.content_key`) and ``embeddings`` (float32, ``(n, num_vectors, dim)``). The model key hashes the model's source,
revision, adapter, dtype and text length, so a retrained checkpoint, a new Hub revision, bf16 instead of fp32 or
another text length never reads stale vectors, while a second run, another task, format or topic, or another
dataset sharing inputs reuses them. Shards are only ever added (written, fsynced, then renamed), so concurrent runs
cannot corrupt each other. A shard that cannot be read (truncated, empty, not an ``.npz``) is deleted with a warning
and its embeddings are computed again; a temporary file left by a killed run is removed once it is older than
`ORPHAN_SECONDS`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..baselines.base import ModelInfo

logger = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
"""Bump when the embeddings an adapter returns change meaning, to leave old caches unused."""

ORPHAN_SECONDS = 3600
"""A temporary shard this old belongs to no running writer (a shard is written in seconds): it is removed."""

_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
"""What `numpy.load` raises on a truncated, empty or foreign file."""


def model_cache_key(info: ModelInfo, adapter_name: str) -> str:
    """A readable, unique folder name for one model revision, adapter, dtype and text length."""
    identity = f"{CACHE_FORMAT_VERSION}|{info.source}|{info.revision}|{adapter_name}|{info.dtype}|{info.text_tokens}"
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(info.source).name or info.source)[:40]
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


TEMPORARY_SUFFIX = ".npz.tmp"


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
        if not self.enabled or not (self.folder / kind).is_dir():
            return {}
        self._remove_orphans(self.folder / kind)
        wanted, found = set(keys), {}
        for shard in sorted((self.folder / kind).glob("*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    shard_keys, embeddings = data["keys"], data["embeddings"]
            except _UNREADABLE as error:
                logger.warning("Discarding the damaged embedding cache shard %s (%s: %s); its embeddings will be "
                               "computed again.", shard, type(error).__name__, error)  # fmt: skip
                shard.unlink(missing_ok=True)
                continue
            for row, key in enumerate(shard_keys.tolist()):
                if key in wanted and key not in found:
                    found[key] = embeddings[row]
        return found

    def save(self, kind: str, keys: Sequence[str], embeddings: np.ndarray) -> None:
        """Add one shard of ``embeddings`` (row i is the embedding of ``keys[i]``)."""
        if not self.enabled or not len(keys):
            return
        folder = self.folder / kind
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=TEMPORARY_SUFFIX, dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, keys=np.asarray(list(keys)), embeddings=embeddings.astype(np.float32))
                stream.flush()
                os.fsync(stream.fileno())  # on disk before the rename makes it visible
            os.replace(temporary, folder / f"{uuid.uuid4().hex}.npz")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        logger.debug("Cached %d %s embeddings in %s", len(keys), kind, folder)

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
