"""Split assignment: 8:1:1 train/validation/test from a stable hash of the mention id."""

from __future__ import annotations

import hashlib
from itertools import accumulate

from .constants import SPLIT_RATIOS, SPLITS


def split_of(mention_id: str) -> str:
    """The learning split of a mention, from SHA-256 of its id.

    SHA-256 (unlike Python's ``hash``) gives the same answer on every machine, process and Python version, and is
    independent of the topic, so every topic is split 8:1:1 in expectation; small topics deviate by sampling
    noise only (the statistics report the real counts).
    """
    bucket = int.from_bytes(hashlib.sha256(mention_id.encode("utf-8")).digest()[:8], "big") % sum(SPLIT_RATIOS)
    for split, upper in zip(SPLITS, accumulate(SPLIT_RATIOS), strict=True):
        if bucket < upper:
            return split
    raise AssertionError("unreachable: the buckets cover every value")  # pragma: no cover

