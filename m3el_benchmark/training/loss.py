"""The training loss: the paper's symmetric InfoNCE over the global batch, plus hard negatives.

Like open_clip's ``ClipLoss`` with ``gather_with_grad=True``, features are gathered from every process with their
gradients and each process computes the loss of the whole global batch. Every process thus holds the same loss
value (exactly the single-process loss of that global batch), and after DDP averages the gradients, each parameter
gets the gradient of that global loss: the all-gather's backward sums the ``world_size`` identical contributions.
The cost is a (global batch × global entities) similarity matrix per process, which is small next to the encoders.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import nn

from modeling_clip_nd import clip_nd_contrastive_loss


def _gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    return torch.cat(dist_nn.all_gather(tensor), dim=0)


def _gather(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """All-gather a tensor that needs no gradient (entity ids)."""
    if tensor is None:
        return None
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


class GatheredContrastiveLoss(nn.Module):
    """Symmetric InfoNCE between mentions and their gold entities; the other pairs' entities are the negatives.

    Args:
        gather (`bool`, defaults to `True`): take the negatives of the whole global batch (gathered across
            processes with gradients); with `False`, only the process's own batch.
    """

    def __init__(self, gather: bool = True):
        super().__init__()
        self.gather = gather

    def forward(
        self,
        mention_embeds: torch.Tensor,
        entity_embeds: torch.Tensor,
        logit_scale: torch.Tensor,
        negative_embeds: torch.Tensor | None = None,
        entity_ids: torch.Tensor | None = None,
        negative_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of mention ``i`` against entity ``i``; ``negative_embeds`` (NaN rows for empty slots) are extra
        entities, used as negatives of every mention. With ``entity_ids`` and ``negative_ids`` (see
        `data.entity_id`), another copy of a mention's own gold entity is never one of its negatives."""
        if self.gather and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            mention_embeds = _gather_with_grad(mention_embeds)
            entity_embeds = _gather_with_grad(entity_embeds)
            entity_ids = _gather(entity_ids)
            if negative_embeds is not None:
                negative_embeds = _gather_with_grad(negative_embeds)
                negative_ids = _gather(negative_ids)
        if negative_embeds is not None:
            entity_embeds = torch.cat([entity_embeds, negative_embeds], dim=0)
            if entity_ids is not None and negative_ids is not None:
                entity_ids = torch.cat([entity_ids, negative_ids], dim=0)
        return clip_nd_contrastive_loss(mention_embeds, entity_embeds, logit_scale, entity_ids=entity_ids)


def embed_side(model: nn.Module, side: dict[str, dict[str, torch.Tensor]], size: int, dim: int) -> torch.Tensor:
    """Embeddings of one side of a batch (see `PairCollator`): each modality group through its encoders, then
    put back in example order. Rows that no group covers (padding slots) are NaN."""
    embeds = None
    for inputs in side.values():
        features = model.get_features(**{key: value for key, value in inputs.items() if key != "index"})
        if embeds is None:
            embeds = features.new_full((size, features.shape[-1]), float("nan"))
        embeds = embeds.index_copy(0, inputs["index"], features)
    if embeds is None:
        embeds = torch.full((size, dim), float("nan"), device=model.logit_scale.device)
    return embeds


class ContrastiveTrainingModule(nn.Module):
    """Wraps a CLIP-ND model (or a peft model around one) so that DDP sees one ``forward`` per step."""

    def __init__(self, model: nn.Module, num_slots: int):
        super().__init__()
        self.model, self.num_slots = model, num_slots

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Return mention, gold-entity and hard-negative embeddings and the clamped inverse temperature."""
        size, dim = len(batch["labels"]), self.model.config.projection_dim
        mentions = embed_side(self.model, batch["mentions"], size, dim)
        entities = embed_side(self.model, batch["entities"], size, dim)
        negatives = embed_side(self.model, batch["negatives"], size * self.num_slots, dim) if self.num_slots else None
        return mentions, entities, negatives, self.model.get_logit_scale()
