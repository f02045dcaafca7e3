"""Sharding work across the processes of ``accelerate launch`` and putting the pieces back together.

Unique inputs are dealt out round-robin (`shard`), so that every process gets a share of long and short texts,
and put back in their original order (`interleave`) after `gather_pieces`; nothing is padded or duplicated, so
every unique input is encoded exactly once whatever the number of processes. Mentions go through a prepared
DataLoader and `Accelerator.gather_for_metrics`, which drops the duplicates that even batches add.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from accelerate import Accelerator
from accelerate.utils import gather_object

Item = TypeVar("Item")


def shard(items: Sequence[Item], accelerator: Accelerator) -> list[Item]:
    """This process's share of ``items``: every ``num_processes``-th item from its index."""
    return list(items[accelerator.process_index :: accelerator.num_processes])


def gather_pieces(piece: Any, accelerator: Accelerator) -> list[Any]:
    """Every process's ``piece`` (any picklable object), in process order, on every process."""
    if accelerator.num_processes == 1:
        return [piece]
    return gather_object([piece])


def interleave(pieces: Sequence[np.ndarray], total: int) -> np.ndarray:
    """Undo `shard`: row ``i`` of the result is row ``i // n`` of ``pieces[i % n]`` for ``n = len(pieces)``."""
    merged = np.empty((total, *pieces[0].shape[1:]), dtype=pieces[0].dtype)
    for rank, piece in enumerate(pieces):
        merged[rank :: len(pieces)] = piece
    return merged
