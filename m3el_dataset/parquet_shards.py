"""Streaming Parquet shards: a writer with bounded shard sizes and small row groups (image bytes stored as they
are), and a reader that names the file when one is not readable Parquet."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq


def _row_bytes(value: Any) -> int:
    """A cheap estimate of a row's size: the bytes and characters it holds."""
    if isinstance(value, (bytes, str)):
        return len(value)
    if isinstance(value, dict):
        return sum(_row_bytes(item) for item in value.values())
    if isinstance(value, list):
        return sum(_row_bytes(item) for item in value)
    return 8


@dataclass(frozen=True)
class ShardLimits:
    """How large shards and row groups may grow.

    Args:
        max_shard_bytes (`int`, defaults to 500 MB): start a new shard before one would grow past this (the Hub's
            recommendation for Parquet files).
        row_group_rows (`int`, defaults to 100) / row_group_bytes (`int`, defaults to 64 MiB): flush a row group at
            whichever comes first; small row groups keep the Hub's dataset viewer able to page through images.
    """

    max_shard_bytes: int = 500 * 10**6
    row_group_rows: int = 100
    row_group_bytes: int = 64 * 2**20


class ParquetShardWriter:
    """Writes rows of one `datasets.Features` schema to ``<folder>/<prefix>-NNNNN-of-MMMMM.parquet`` shards.

    Args:
        folder (`Path`): where the shards go.
        prefix (`str`): the shard name prefix, e.g. ``train``.
        features (`datasets.Features`): the schema; stored in the Parquet metadata so that `datasets` decodes the
            image columns as `Image`.
        limits (`ShardLimits`): shard and row group sizes.
    """

    def __init__(self, folder: Path, prefix: str, features: datasets.Features, limits: ShardLimits):
        self.folder, self.prefix, self.schema, self.limits = folder, prefix, features.arrow_schema, limits
        self._rows: list[dict[str, Any]] = []
        self._buffered_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._shard_bytes = 0
        self._paths: list[Path] = []
        self.num_rows = 0

    def write(self, row: dict[str, Any]) -> None:
        """Buffer one row; a full row group is flushed to the current shard."""
        self._rows.append(row)
        self._buffered_bytes += _row_bytes(row)
        self.num_rows += 1
        if len(self._rows) >= self.limits.row_group_rows or self._buffered_bytes >= self.limits.row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._writer is not None and self._shard_bytes + self._buffered_bytes > self.limits.max_shard_bytes:
            self._writer.close()
            self._writer = None
        if self._writer is None:
            path = self.folder / f"{self.prefix}-{len(self._paths):05d}.parquet"
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema)
            self._paths.append(path)
            self._shard_bytes = 0
        self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
        self._shard_bytes += self._buffered_bytes
        self._rows, self._buffered_bytes = [], 0

    def close(self) -> list[Path]:
        """Flush, close and give the shards their final ``-NNNNN-of-MMMMM`` names; return their paths.

        A writer that got no row writes no shard: `datasets` cannot load a split without rows (nor one whose
        files are empty), so the export leaves such a split out of the card instead.
        """
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        final = []
        for index, path in enumerate(self._paths):
            target = path.with_name(f"{self.prefix}-{index:05d}-of-{len(self._paths):05d}.parquet")
            os.replace(path, target)
            final.append(target)
        return final


def _unreadable(path: Path, error: Exception) -> ValueError:
    return ValueError(f"{path} is not a readable Parquet file ({type(error).__name__}: {error}); it is damaged or "
                      "truncated: replace it with a complete copy (rebuild it, or download it again).")  # fmt: skip


def open_parquet(path: Path) -> pq.ParquetFile:
    """``path`` opened as Parquet; ``ValueError`` naming it when it is not readable Parquet."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from error


def iter_parquet_batches(
    path: Path, columns: Iterable[str] | None = None, batch_size: int = 256
) -> Iterator[pa.RecordBatch]:
    """The record batches of a Parquet file, one in memory at a time; a damaged file raises ``ValueError`` naming
    it, wherever the damage is."""
    parquet = open_parquet(path)
    try:
        yield from parquet.iter_batches(batch_size=batch_size, columns=None if columns is None else list(columns))
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from error
