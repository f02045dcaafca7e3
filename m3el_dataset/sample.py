"""The bundled synthetic sample release: where it is, and the name that stands for it on command lines."""

from __future__ import annotations

from pathlib import Path

SAMPLE_NAME = "sample"
"""Passing ``sample`` as a dataset means the bundled sample release."""

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
"""The sample in the original release format (regenerate it with ``python scripts/make_sample.py``)."""


def resolve_sample(dataset: str) -> str:
    """``dataset`` itself, or the sample's folder when it is `SAMPLE_NAME`."""
    return str(SAMPLE_DIR) if dataset == SAMPLE_NAME else dataset
