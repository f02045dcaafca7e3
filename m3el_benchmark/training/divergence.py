"""A diverging run stops: a non-finite loss or embedding stops the step on every process, and non-finite weights are
never saved; the error names the step, the mentions and the last good checkpoint."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from accelerate import Accelerator
from torch import nn

from .checkpointing import TrainerState, latest_checkpoint

__all__ = ["TrainingDivergedError", "check_parameters_finite", "check_step_finite"]


class TrainingDivergedError(RuntimeError):
    """The loss, an embedding or a weight became NaN or infinite; nothing after the last good checkpoint was saved."""


def check_step_finite(
    accelerator: Accelerator, loss: torch.Tensor, bad_embeddings: torch.Tensor, state: TrainerState,
    ids: Sequence[str], output_dir: str | os.PathLike,
) -> None:  # fmt: skip
    """Stop, on every process at once, if the loss or an embedding of a present input is not finite."""
    flags = torch.stack([~torch.isfinite(loss.detach()), bad_embeddings]).to(torch.float32)
    loss_bad, embeddings_bad = accelerator.gather(flags.reshape(1, 2)).amax(dim=0).tolist()
    if loss_bad or embeddings_bad:
        what = f"The loss is {loss.item()}"
        if embeddings_bad:
            what = "Embeddings of present inputs (not missing images) are NaN or infinite"
        where = (f"step {state.step + 1} (epoch {state.epoch}, batch {state.batches_done_in_epoch} of the epoch, "
                 f"mentions {list(ids)[:5]}...); it was not applied")  # fmt: skip
        _diverged(f"{what} at {where}", output_dir)


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
