"""A diverging run stops: a non-finite loss or embedding stops the run on every process at the next check (every
``--logging_steps`` steps, and before anything is saved), and non-finite weights are never saved; the error names
the first bad step, its mentions and the last good checkpoint."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from accelerate import Accelerator
from torch import nn

from .checkpointing import TrainerState, latest_checkpoint

__all__ = ["StepChecks", "TrainingDivergedError", "check_parameters_finite"]


class TrainingDivergedError(RuntimeError):
    """The loss, an embedding or a weight became NaN or infinite; nothing after the last good checkpoint was saved."""


class StepChecks:
    """Whether each step's loss and embeddings are finite, kept on the device and checked every N steps.

    Reading a flag on the host waits for the device, so `record` only stacks two 0-d flags per step (no host
    sync), and `check` gathers them from every process at once: the trainer calls it at each logging interval and
    before anything is saved (checkpoint, model, validation). A non-finite step therefore still stops the run on
    every process, naming the first bad step, its batch and mentions, and no weights after it are ever saved; what
    changed is that the steps up to the check have run (a bad step's update is applied, and its NaN weights are
    then refused by `check_parameters_finite` as well).
    """

    def __init__(self):
        self.flags: list[torch.Tensor] = []
        self.losses: list[torch.Tensor] = []
        self.places: list[tuple[int, int, int, list[str]]] = []

    def record(self, loss: torch.Tensor, bad_embeddings: torch.Tensor, state: TrainerState, ids: Sequence[str]):
        """Keep the step's flags (non-finite loss, non-finite embedding of a present input) without reading them."""
        loss = loss.detach()
        self.flags.append(torch.stack([~torch.isfinite(loss), bad_embeddings]))
        self.losses.append(loss)
        self.places.append((state.step + 1, state.epoch, state.batches_done_in_epoch, list(ids)[:5]))

    def check(self, accelerator: Accelerator, state: TrainerState, output_dir: str | os.PathLike) -> None:
        """Read every recorded flag (one gather, one host sync) and stop if a step was not finite on any process."""
        if not self.flags:
            return
        flags = accelerator.gather(torch.stack(self.flags).to(torch.float32))  # (processes * steps, 2)
        flags = flags.reshape(-1, len(self.flags), 2).amax(dim=0).tolist()
        losses, places = self.losses, self.places
        self.flags, self.losses, self.places = [], [], []
        for (loss_bad, embeddings_bad), loss, (step, epoch, batch, ids) in zip(flags, losses, places, strict=True):
            if not (loss_bad or embeddings_bad):
                continue
            what = f"The loss is {loss.item()}"
            if embeddings_bad:
                what = "Embeddings of present inputs (not missing images) are NaN or infinite"
            where = (f"step {step} (epoch {epoch}, batch {batch} of the epoch, mentions {ids}...), found by the check "
                     f"after step {state.step} (every --logging_steps steps and before each save)")  # fmt: skip
            _diverged(f"{what} at {where}; no weights after step {step - 1} were saved", output_dir)


def check_parameters_finite(model: nn.Module, step: int, output_dir: str | os.PathLike) -> None:
    """Refuse to save non-finite weights: a step can leave NaN parameters behind a finite loss."""
    bad = [name for name, parameter in model.named_parameters() if not torch.isfinite(parameter).all()]
    if bad:
        _diverged(f"{len(bad)} parameter tensors (e.g. {bad[0]}) are NaN or infinite after step {step}; they were "
                  "not saved", output_dir)  # fmt: skip


def _diverged(what: str, output_dir: str | os.PathLike) -> None:
    latest = latest_checkpoint(output_dir)
    raise TrainingDivergedError(
        f"{what}. The last good checkpoint is {latest or 'none (none written yet)'}: lower --learning_rate or "
        "check those mentions, then continue with --resume."
    )
