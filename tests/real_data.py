"""The real third-party excerpts of ``../shared/real-data`` (beside the repository; see its README): tests that read
them skip when the folder is absent, and never copy them into the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real-data"


def real_data(*parts: str) -> Path:
    """The path of a real excerpt, or skip the test when it is not there."""
    path = REAL_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"no {path}: the shared real-data excerpts are not beside this repository")
    return path
