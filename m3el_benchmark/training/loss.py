"""The training loss: CLIP's symmetric InfoNCE over the global batch, optionally with hard negatives.

What the loss is: for a batch of N mention-entity pairs with similarities ``s_ij = cos(m_i, e_j) / tau``, the mean
of two cross-entropies, mention -> entity (each mention against the N entities) and entity -> mention (each entity
against the N mentions), as CLIP and open_clip train. The paper's Eq. 2 writes one direction only (image -> text,
without its minus sign); we keep CLIP's symmetric form, which is what "the CLIP loss" trains in practice, and
``tau`` is CLIP's learnable temperature (its inverse clamped at 100). With ``--hard_negatives`` (off by default:
not in Eq. 2) each mention's non-gold candidates are appended as extra entities, negatives of every mention in the
mention -> entity direction only.

Like open_clip's ``ClipLoss`` with ``gather_with_grad=True``, features are gathered from every process with their
gradients and each process computes the loss of the whole global batch. Every process thus holds the same loss
value (exactly the single-process loss of that global batch), and after DDP averages the gradients, each parameter
gets the gradient of that global loss: the all-gather's backward sums the ``world_size`` identical contributions.
The cost is a (global batch × global entities) similarity matrix per process, which is small next to the encoders.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed import _functional_collectives as functional_collectives

from modeling_clip_nd import clip_nd_contrastive_loss


def _gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 with gradients: the backward reduce-scatters (sums) each process's slice back.

    torch deprecates ``torch.distributed.nn.functional.all_gather`` (a FutureWarning at every step) in favour of the
    functional collectives; ``all_gather_single`` (torch >= 2.13) is the autograd-aware one, and older torch
    releases name it ``all_gather_tensor_autograd``.
    """
    gather = getattr(functional_collectives, "all_gather_single", None)
    if gather is None:  # torch < 2.13
        gather = functional_collectives.all_gather_tensor_autograd
    return gather(tensor.contiguous(), 0, dist.group.WORLD)


def _gather(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """All-gather a tensor that needs no gradient (entity ids)."""
    if tensor is None:
        return None
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


class Embedded(NamedTuple):
    """One side of a batch, embedded: ``embeds`` ``(rows, dim)`` and which rows have an input (``present``: not a
    padding slot, not a missing image). Missing inputs are known from the batch, never inferred from NaN, so an
    embedding that turns NaN (a diverging run) is caught (`non_finite`) instead of being taken for a missing image."""

    embeds: torch.Tensor
    present: torch.Tensor

    def finite_rows(self) -> torch.Tensor:
        return torch.isfinite(self.embeds).all(dim=-1)

    def non_finite(self) -> torch.Tensor:
        """A 0-d bool tensor: whether a present row is NaN or infinite (no host sync)."""
        return (self.present & ~self.finite_rows()).any()

    def usable(self) -> torch.Tensor:
        """The rows the loss may use: present and finite (the trainer refuses the step if they differ)."""
        return self.present & self.finite_rows()


class GatheredContrastiveLoss(nn.Module):
    """CLIP's symmetric InfoNCE between mentions and their gold entities (the mean of the mention -> entity and
    entity -> mention cross-entropies; the paper's Eq. 2 shows the first direction only); the other pairs' entities
    (and mentions) are the negatives, plus the hard negatives passed to `forward`.

    Args:
        gather (`bool`, defaults to `True`): take the negatives of the whole global batch (gathered across
            processes with gradients), so that N processes train as one process with their global batch;
            with `False`, only the process's own batch.
    """

    def __init__(self, gather: bool = True):
        super().__init__()
        self.gather = gather

    def forward(
        self,
        mentions: Embedded,
        entities: Embedded,
        logit_scale: torch.Tensor,
        negatives: Embedded | None = None,
        entity_ids: torch.Tensor | None = None,
        negative_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of mention ``i`` against entity ``i``; ``negatives`` (empty slots not present) are extra entities,
        used as negatives of every mention. With ``entity_ids`` and ``negative_ids`` (see `data.entity_id`), another
        copy of a mention's own gold entity is never one of its negatives."""
        sides = [mentions, entities] + ([negatives] if negatives is not None else [])
        embeds, masks = [side.embeds for side in sides], [side.usable() for side in sides]
        ids = [entity_ids] + ([negative_ids] if negatives is not None else [])
        if self.gather and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            embeds = [_gather_with_grad(side) for side in embeds]
            masks = [_gather(mask.to(torch.uint8)).bool() for mask in masks]  # gloo gathers no bool tensors
            ids = [_gather(side_ids) for side_ids in ids]
        entity_embeds, entity_mask = torch.cat(embeds[1:], dim=0), torch.cat(masks[1:], dim=0)
        all_ids = torch.cat(ids, dim=0) if all(i is not None for i in ids) else None
        # Masks hold only present, finite rows (`Embedded.usable`), and the trainer checks the loss itself.
        return clip_nd_contrastive_loss(embeds[0], entity_embeds, logit_scale, mention_mask=masks[0],
                                        entity_mask=entity_mask, entity_ids=all_ids, check_inputs=False)  # fmt: skip


def embed_side(model: nn.Module, side: dict[str, dict[str, torch.Tensor]], size: int, dim: int) -> Embedded:
    """Embeddings of one side of a batch (see `PairCollator`): each modality group through its encoders, then
    put back in example order. Every row of a group has its inputs (the collator routed missing images); rows that
    no group covers (padding slots, missing images without a text fallback) are NaN and not present."""
    embeds = present = None
    for inputs in side.values():
        features = model.get_present_features(**{key: value for key, value in inputs.items() if key != "index"})
        if embeds is None:
            embeds = features.new_full((size, features.shape[-1]), float("nan"))
            present = torch.zeros(size, dtype=torch.bool, device=features.device)
        index = inputs["index"].to(features.device)
        embeds = embeds.index_copy(0, index, features)
        present = present.index_fill(0, index, True)
    if embeds is None:
        embeds = torch.full((size, dim), float("nan"), device=model.logit_scale.device)
        present = torch.zeros(size, dtype=torch.bool, device=embeds.device)
    return Embedded(embeds, present)


class ContrastiveTrainingModule(nn.Module):
    """Wraps a CLIP-ND model (or a peft model around one) so that DDP sees one ``forward`` per step."""

    def __init__(self, model: nn.Module, num_slots: int):
        super().__init__()
        self.model, self.num_slots = model, num_slots

    def forward(self, batch: dict) -> tuple[Embedded, Embedded, Embedded | None, torch.Tensor]:
        """Return the embedded mentions, gold entities and hard negatives, and the clamped inverse temperature."""
        size, dim = len(batch["labels"]), self.model.config.projection_dim
        mentions = embed_side(self.model, batch["mentions"], size, dim)
        entities = embed_side(self.model, batch["entities"], size, dim)
        negatives = embed_side(self.model, batch["negatives"], size * self.num_slots, dim) if self.num_slots else None
        return mentions, entities, negatives, self.model.get_logit_scale()
