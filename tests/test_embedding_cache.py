"""The embedding cache survives damaged files: a truncated, empty or foreign shard is discarded, reported and
recomputed; temporary files of killed writers are removed; a failed write leaves nothing behind. Its key index
answers as a scan of every shard would: across merges, shards written by other runs, a damaged index, collisions."""

import logging
import os
import time

import numpy as np
import pytest

from m3el_benchmark.evaluation import cache as cache_module
from m3el_benchmark.evaluation.cache import INDEX_NAME, MERGE_AFTER, ORPHAN_SECONDS, TEMPORARY_SUFFIX, EmbeddingCache


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


def _vectors(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 4)).astype(np.float32)


def test_lookups_through_the_index_match_every_save_across_merges(tmp_path, monkeypatch):
    cache, expected = EmbeddingCache(tmp_path, "model"), {}
    for shard in range(3 * MERGE_AFTER):  # enough saves for several merges
        keys = [f"k{(shard * 7 + i) % 150}" for i in range(10)]  # keys saved again in later shards too
        vectors = np.concatenate([_vectors(int(key[1:]), 1) for key in keys])  # a key's content, a key's vector
        cache.save("text", keys, vectors)
        expected.update(zip(keys, vectors, strict=True))
    assert len(list((cache.folder / "text").glob("*.npz"))) <= MERGE_AFTER + 1
    monkeypatch.setattr(np, "load", None)  # a lookup reads the index and the rows asked for, never a whole file
    wanted = [f"k{i}" for i in range(0, 200, 3)]
    found = cache.load("text", wanted)
    assert sorted(found) == sorted(key for key in wanted if key in expected)
    for key, vector in found.items():
        assert np.array_equal(vector, expected[key]), key


def test_shards_the_index_does_not_list_are_read_and_gone_ones_dropped(tmp_path):
    cache = EmbeddingCache(tmp_path, "model")
    cache.save("text", ["a"], _vectors(0, 1))
    folder = cache.folder / "text"
    np.savez(folder / "from-another-run.npz", keys=np.asarray(["b"]), embeddings=_vectors(1, 1))  # not indexed
    assert sorted(cache.load("text", ["a", "b"])) == ["a", "b"]
    (folder / "from-another-run.npz").unlink()  # merged away by another run meanwhile
    assert sorted(cache.load("text", ["a", "b"])) == ["a"]


def test_a_damaged_index_is_rebuilt_from_the_shards(tmp_path, caplog):
    cache = EmbeddingCache(tmp_path, "model")
    cache.save("text", ["a", "b"], _vectors(0, 2))
    (cache.folder / "text" / INDEX_NAME).write_bytes(b"not an index")
    with caplog.at_level(logging.WARNING):
        found = cache.load("text", ["b", "a"])
    assert np.array_equal(found["a"], _vectors(0, 2)[0]) and np.array_equal(found["b"], _vectors(0, 2)[1])
    assert "Rebuilding" in caplog.text
    assert cache.load("text", ["a"]).keys() == {"a"}  # and written again


def test_a_hash_collision_is_never_answered_with_another_keys_vector(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, "model")
    monkeypatch.setattr(cache_module, "key_hashes", lambda keys: np.zeros(len(keys), dtype="<u8"))
    cache.save("text", ["a", "b"], _vectors(0, 2))
    found = cache.load("text", ["a", "b"])
    assert len(found) == 1  # the index's first entry for the hash matches one key only; the other is recomputed
    (key,) = found
    assert np.array_equal(found[key], _vectors(0, 2)[["a", "b"].index(key)])


def test_a_cache_written_before_the_index_is_indexed_on_first_read(tmp_path):
    folder = tmp_path / "model" / "text"
    folder.mkdir(parents=True)
    for i in range(3):
        np.savez(folder / f"old{i}.npz", keys=np.asarray([f"k{i}"]), embeddings=_vectors(i, 1))
    assert sorted(EmbeddingCache(tmp_path, "model").load("text", ["k0", "k2", "k9"])) == ["k0", "k2"]
    assert (folder / INDEX_NAME).is_file()
