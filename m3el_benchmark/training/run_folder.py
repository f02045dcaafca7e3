"""The training output folder: one training at a time, and never another run's checkpoints mixed with this one's.

Two trainings writing into one folder would interleave their checkpoints and prune each other's (pruning keeps the
highest steps), so a training holds an exclusive lock on its folder (``.lock``, released when it ends or its
process dies), and a new training refuses a folder that holds another run's checkpoints unless it resumes them
(``--resume``) or deletes them (``--overwrite_output_dir``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from .checkpointing import CHECKPOINTS_DIR

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"


class OutputDirInUseError(RuntimeError):
    """Another training holds the output folder's lock."""


class RunFolderLock:
    """An exclusive, advisory lock on a training's output folder (``fcntl.flock``: the kernel drops it when the
    holding process exits, so a killed training leaves no stale lock)."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_FILE
        self._handle = None

    def acquire(self) -> None:
        """Take the lock, or raise `OutputDirInUseError` naming the folder and the process holding it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputDirInUseError(
                f"Another training (process {holder}) is writing to {self.path.parent}; wait for it to end or choose "
                "another --output_dir."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def claim_checkpoints(folder: str | os.PathLike, *, resume: bool, overwrite: bool) -> None:
    """Refuse a folder holding an earlier run's checkpoints unless this run resumes them or deletes them."""
    root = Path(folder) / CHECKPOINTS_DIR
    earlier = sorted(path.name for path in root.glob("checkpoint-*")) if root.is_dir() else []
    if not earlier or resume:
        return
    if overwrite:
        logger.warning("--overwrite_output_dir: deleting the earlier run's checkpoints in %s", root)
        shutil.rmtree(root)
        return
    shown = ", ".join(earlier[:3]) + (", ..." if len(earlier) > 3 else "")
    raise ValueError(
        f"{folder} holds checkpoints of an earlier run ({shown}); pass --resume to continue that run, "
        "--overwrite_output_dir to delete them and start over, or choose another --output_dir."
    )
