"""Resumable checkpoints written atomically: a checkpoint is either complete and named ``latest``, or absent.

``accelerator.save_state`` writes into a hidden staging folder; only once it and the trainer state are on disk
is the folder renamed to ``checkpoint-<step>`` and the ``latest`` pointer replaced (both renames are atomic on
POSIX). A crash or a full disk mid-save therefore never leaves a corrupt checkpoint as ``latest``. Resuming takes
the newest complete checkpoint: if ``latest`` names an incomplete one, or a file of it turns out damaged, the run
says so, names the file, and falls back to the next older complete one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zipfile
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
    arguments: dict = field(default_factory=dict)  # the run's arguments, compared when it is resumed


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
    except (OSError, RuntimeError) as error:  # torch reports a full disk as RuntimeError ("file write failed")
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


def _step(path: Path) -> int:
    return int(path.name.split("-")[1])


def _prune(root: Path, keep: int) -> None:
    for old in complete_checkpoints(root.parent)[max(keep, 1) :]:
        shutil.rmtree(old, ignore_errors=True)


def complete_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The complete checkpoints of ``output_dir`` (their trainer state was written last), newest first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    found = [path for path in root.glob("checkpoint-*") if path.name.split("-")[1].isdigit()]
    return sorted((path for path in found if (path / STATE_FILE).is_file()), key=_step, reverse=True)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The last complete checkpoint of a run, or ``None``. If ``latest`` names an incomplete checkpoint (a crash or
    a manual deletion), the newest complete one is returned with a warning."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    pointer = root / LATEST_FILE
    complete = complete_checkpoints(output_dir)
    if not pointer.is_file():
        return complete[0] if complete else None
    path = root / pointer.read_text(encoding="utf-8").strip()
    if (path / STATE_FILE).is_file():
        return path
    fallback = complete[0] if complete else None
    logger.warning("%s names %s, which is incomplete; using the newest complete checkpoint, %s.", pointer, path,
                   fallback or "none (starting from step 0)")  # fmt: skip
    return fallback


def damaged_file(path: Path) -> tuple[Path, str] | None:
    """The first file of checkpoint ``path`` that cannot be what its name says, and why (no file is unpickled)."""
    for file in sorted(path.rglob("*")):
        if not file.is_file():
            continue
        try:
            if file.suffix == ".json":
                json.loads(file.read_text(encoding="utf-8"))
            elif file.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(file), framework="pt") as weights:
                    for name in weights.keys():
                        weights.get_slice(name)
            elif file.suffix in (".bin", ".pt", ".pth", ".pkl") and not zipfile.is_zipfile(file):
                return file, "not a complete torch archive"
        except Exception as error:  # each format raises its own types for a damaged file
            return file, f"{type(error).__name__}: {error}"
    return None


def load_checkpoint(accelerator: Accelerator, path: Path) -> TrainerState:
    """Restore model, optimizer, scheduler and RNG states from ``path`` and return its trainer state; a damaged
    checkpoint raises `CheckpointError` naming the damaged file."""
    try:
        state = TrainerState(**json.loads((path / STATE_FILE).read_text(encoding="utf-8")))
        accelerator.load_state(str(path))
    except Exception as error:  # accelerate, torch, safetensors and json raise many types for a damaged file
        bad = damaged_file(path)
        what = f"{bad[0]} is damaged ({bad[1]})" if bad else f"it cannot be loaded ({type(error).__name__}: {error})"
        raise CheckpointError(f"Checkpoint {path}: {what}.") from error
    return state


def resume_state(accelerator: Accelerator, output_dir: str | os.PathLike) -> tuple[TrainerState, Path] | None:
    """Load the newest complete checkpoint that loads (a damaged one is named in a warning and the previous one
    tried); ``None`` if there is none, `CheckpointError` if none of them loads."""
    newest = latest_checkpoint(output_dir)
    candidates = [newest] + [path for path in complete_checkpoints(output_dir) if path != newest]
    candidates = [path for path in candidates if path is not None]
    for path in candidates:
        try:
            return load_checkpoint(accelerator, path), path
        except CheckpointError as error:
            logger.warning("%s Trying the previous complete checkpoint.", error)
    if candidates:
        raise CheckpointError(f"No checkpoint of {output_dir} could be loaded (each is named in a warning above).")
    return None


RESULT_NEUTRAL_ARGUMENTS = frozenset(
    {"resume", "overwrite_output_dir", "allow_changed_arguments", "report_to", "logging_steps", "checkpointing_steps",
     "checkpoints_total_limit", "dataloader_num_workers", "dataset_cache_dir", "output_dir", "verbose", "quiet"}
)  # fmt: skip
"""Arguments a resumed run may change freely: they shape where and how often things are written, not the model."""

LENGTH_ARGUMENTS = ("max_steps", "num_train_epochs")
"""A resumed run may also be made longer, when the learning rate is constant: its schedule does not depend on it."""


def changed_arguments(saved: dict, current: dict) -> dict[str, tuple]:
    """``{name: (saved, current)}`` for every argument that shapes the results and differs (none for a checkpoint
    written before arguments were recorded)."""
    if not saved:
        return {}
    names = (saved.keys() | current.keys()) - RESULT_NEUTRAL_ARGUMENTS
    changes = {name: (saved.get(name), current.get(name)) for name in sorted(names)}
    changes = {name: values for name, values in changes.items() if values[0] != values[1]}
    constant_rate = saved.get("lr_scheduler_type") == "constant" and not saved.get("warmup_steps")
    if constant_rate and not changes.keys() & {"lr_scheduler_type", "warmup_steps"}:
        for name in LENGTH_ARGUMENTS:  # a longer run: the steps already taken are those a longer run takes
            changes.pop(name, None)
    return changes


def describe_changes(changes: dict[str, tuple]) -> str:
    return ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in changes.items())
