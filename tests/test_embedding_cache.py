"""The embedding cache survives damaged files: a truncated, empty or foreign shard is discarded, reported and
recomputed; temporary files of killed writers are removed; a failed write leaves nothing behind."""

import logging
import os
import time

import numpy as np
import pytest

from m3el_benchmark.evaluation.cache import ORPHAN_SECONDS, TEMPORARY_SUFFIX, EmbeddingCache


def _shard(cache: EmbeddingCache, kind: str = "text"):
    cache.save(kind, ["a", "b"], np.arange(8, dtype=np.float32).reshape(2, 1, 4))
    (shard,) = (cache.folder / kind).glob("*.npz")
    return shard


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign"])
def test_a_damaged_shard_is_discarded_reported_and_recomputed(tmp_path, caplog, damage):
    cache = EmbeddingCache(tmp_path, "model")
    shard = _shard(cache)
    data = shard.read_bytes()
    shard.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "foreign": b"not a zip file"}[damage])
    with caplog.at_level(logging.WARNING):
        assert cache.load("text", ["a", "b"]) == {}  # nothing read from it, and no crash
    assert str(shard) in caplog.text and "computed again" in caplog.text
    assert not shard.exists()
    cache.save("text", ["a"], np.ones((1, 1, 4), dtype=np.float32))  # the caller recomputes and saves again
    assert list(cache.load("text", ["a", "b"])) == ["a"]


def test_orphan_temporary_files_are_removed_but_not_a_fresh_one(tmp_path):
    cache = EmbeddingCache(tmp_path, "model")
    _shard(cache)
    old, fresh = (cache.folder / "text" / f"{name}{TEMPORARY_SUFFIX}" for name in ("old", "fresh"))
    old.write_bytes(b"partial"), fresh.write_bytes(b"partial")
    stale = time.time() - ORPHAN_SECONDS - 10
    os.utime(old, (stale, stale))
    assert set(cache.load("text", ["a"])) == {"a"}
    assert not old.exists() and fresh.exists()  # a fresh one may belong to a running writer


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, "model")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        cache.save("text", ["a"], np.ones((1, 1, 4), dtype=np.float32))
    assert list((cache.folder / "text").iterdir()) == []
