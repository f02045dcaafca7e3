"""Resumable checkpoints written atomically: a checkpoint is either complete and named ``latest``, or absent.

``accelerator.save_state`` writes into a hidden staging folder; only once it and the trainer state are on disk
is the folder renamed to ``checkpoint-<step>`` and the ``latest`` pointer replaced (both renames are atomic on
POSIX). A crash or a full disk mid-save therefore never leaves a corrupt checkpoint as ``latest``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from accelerate import Accelerator

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"
STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    """Where training stands: what a resumed run needs beyond the weights, optimizer, scheduler and RNG states."""

    step: int = 0
    epoch: int = 0
    batches_done_in_epoch: int = 0
    best_accuracy: float | None = None
    epochs_without_improvement: int = 0
    undecodable_images: int = 0
    history: list[dict] = field(default_factory=list)


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; the previous complete one is still ``latest``."""


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def save_checkpoint(accelerator: Accelerator, output_dir: str | os.PathLike, state: TrainerState, keep: int) -> Path:
    """Save everything needed to resume at ``state.step`` and make it ``latest``; keep the ``keep`` newest."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    final, staging = root / f"checkpoint-{state.step}", root / f".staging-checkpoint-{state.step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(staging))
        if accelerator.is_main_process:
            (staging / STATE_FILE).write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(staging, final)
            _write_atomically(root / LATEST_FILE, final.name)
    except OSError as error:
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        previous = latest_checkpoint(output_dir)
        raise CheckpointError(
            f"Could not write the checkpoint of step {state.step} in {root} ({error}); the last complete "
            f"checkpoint is {previous or 'none'}. Free disk space and resume with --resume."
        ) from error
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _prune(root, keep)
    logger.info("Saved checkpoint %s", final)
    return final


def _prune(root: Path, keep: int) -> None:
    checkpoints = sorted(root.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    for old in checkpoints[: max(0, len(checkpoints) - max(keep, 1))]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The last complete checkpoint of a run, or ``None``."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    pointer = root / LATEST_FILE
    if not pointer.is_file():
        return None
    path = root / pointer.read_text(encoding="utf-8").strip()
    return path if (path / STATE_FILE).is_file() else None


def load_checkpoint(accelerator: Accelerator, path: Path) -> TrainerState:
    """Restore model, optimizer, scheduler and RNG states from ``path`` and return its trainer state."""
    accelerator.load_state(str(path))
    return TrainerState(**json.loads((path / STATE_FILE).read_text(encoding="utf-8")))
