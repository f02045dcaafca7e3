"""The console scripts ``m3el-train`` and ``m3el-benchmark``: a user's mistake ends in one line naming it (exit 2),
not a traceback; ``--version`` says which m3el runs.

Both run under ``accelerate launch`` too: ``accelerate launch -m m3el_benchmark.train`` (or ``.run``) from anywhere,
``accelerate launch benchmark/train.py`` from a clone.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

logger = logging.getLogger(__name__)


def package_version() -> str:
    """The installed m3el version (``unknown`` when run from a clone that was never installed)."""
    try:
        return version("m3el")
    except PackageNotFoundError:
        return "unknown"


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors that report a user's input or environment (a message says what to do), not a bug."""
    from .training.checkpointing import CheckpointError
    from .training.divergence import TrainingDivergedError
    from .training.run_folder import OutputDirInUseError

    return ValueError, OSError, CheckpointError, OutputDirInUseError, TrainingDivergedError  # a missing model: OSError


def run_cli(prog: str, main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; print a user error as ``<prog>: error: <message>`` and return 2, else return 0."""
    try:
        main(argv)
    except user_errors() as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return 0
