"""Split assignment: 8:1:1 train/validation/test from a stable hash of the mention id."""

from __future__ import annotations

import hashlib
from itertools import accumulate

from .constants import SPLIT_RATIOS, SPLITS


def split_of(
    mention_id: str, splits: tuple[str, ...] = SPLITS, ratios: tuple[int, ...] = SPLIT_RATIOS
) -> str:  # fmt: skip
    """The learning split of a mention, from SHA-256 of its id.

    SHA-256 (unlike Python's ``hash``) gives the same answer on every machine, process and Python version, and is
    independent of the topic, so every topic is split 8:1:1 in expectation; small topics deviate by sampling
    noise only (the statistics report the real counts). A source that has its own test split divides the rest
    among fewer ``splits`` in its own ``ratios`` (WIKIPerson's Train_Dev file: train and validation, 8:1).
    """
    bucket = int.from_bytes(hashlib.sha256(mention_id.encode("utf-8")).digest()[:8], "big") % sum(ratios)
    for split, upper in zip(splits, accumulate(ratios), strict=True):
        if bucket < upper:
            return split
    raise AssertionError("unreachable: the buckets cover every value")  # pragma: no cover

