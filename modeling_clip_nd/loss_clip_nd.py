# Copyright 2025 The M3EL authors. Licensed under the Apache License, Version 2.0.
"""What training CLIP-ND computes: CLIP's symmetric contrastive loss (the M3EL paper's Eq. 2 writes one of its two
directions) and the output that carries it.

The loss is a pure function of embeddings, so a trainer can call it on features gathered across ranks. This file
travels to the Hub with the model (the modeling file imports it): it imports only torch and transformers.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.utils import ModelOutput, logging

logger = logging.get_logger(__name__)


@dataclass
class CLIPNDOutput(ModelOutput):
    r"""
    Output of [`CLIPNDModel.forward`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*, returned when `return_loss` is `True`):
            Symmetric contrastive loss between mentions and their gold entities (the paper's Eq. 2).
        logits_per_mention (`torch.Tensor` of shape `(num_mentions, num_entities)`):
            Cosine similarities scaled by the clamped inverse temperature.
        logits_per_entity (`torch.Tensor` of shape `(num_entities, num_mentions)`):
            The transpose of `logits_per_mention`.
        mention_embeds (`torch.Tensor` of shape `(num_mentions, projection_dim)`):
            L2-normalised mention embeddings (NaN rows for missing images).
        entity_embeds (`torch.Tensor` of shape `(num_entities, projection_dim)`):
            L2-normalised entity embeddings (NaN rows for missing images).
        logit_scale (`torch.Tensor` of shape `()`):
            The inverse temperature used, `exp(min(logit_scale, config.logit_scale_max))`.
        logits_per_text, logits_per_image (`torch.Tensor`, *optional*):
            CLIP's names for `logits_per_mention` and `logits_per_entity`, set only when the forward matched texts
            with images as CLIP does (no entity inputs), e.g. in the ``zero-shot-image-classification`` pipeline.
    """

    loss: torch.Tensor | None = None
    logits_per_mention: torch.Tensor | None = None
    logits_per_entity: torch.Tensor | None = None
    mention_embeds: torch.Tensor | None = None
    entity_embeds: torch.Tensor | None = None
    logit_scale: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    logits_per_image: torch.Tensor | None = None


def _present_rows(embeds: torch.Tensor, mask: torch.Tensor | None, name: str, check: bool = True) -> torch.Tensor:
    """Return the boolean mask of rows of ``embeds`` that are present: ``mask`` if given, else the non-NaN rows.
    With ``check``, a row that ``mask`` marks present but is NaN is refused (this waits for the device)."""
    nan_rows = torch.isnan(embeds).any(dim=-1)
    if mask is None:
        return ~nan_rows
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != nan_rows.shape:
        raise ValueError(
            f"{name} must be a boolean tensor of shape {tuple(nan_rows.shape)}, got "
            f"{getattr(mask, 'dtype', type(mask).__name__)} of shape {tuple(getattr(mask, 'shape', ()))}."
        )
    mask = mask.to(embeds.device)
    if check and (mask & nan_rows).any():
        rows = (mask & nan_rows).nonzero().flatten().tolist()
        raise ValueError(f"Rows {rows} are NaN but {name} marks them present; set {name} to False there.")
    return mask


def clip_nd_contrastive_loss(
    mention_embeds: torch.Tensor,
    entity_embeds: torch.Tensor,
    logit_scale: torch.Tensor | float,
    mention_mask: torch.Tensor | None = None,
    entity_mask: torch.Tensor | None = None,
    entity_ids: torch.Tensor | None = None,
    check_inputs: bool = True,
) -> torch.Tensor:
    """Symmetric InfoNCE between mentions and their gold entities, as CLIP trains (the paper's Eq. 2 writes only the
    first of its two directions, mention-to-entity and entity-to-mention, which are averaged here).

    Mention ``i`` is paired with entity ``i``; entities past the number of mentions are extra (hard) negatives,
    used only in the mention-to-entity direction. Missing rows (NaN, as embeddings of missing images are, or
    ``False`` in a mask) are left out: a pair counts only if both sides are present, and a missing entity is never
    a negative. Pass features gathered across ranks to use every rank's negatives.

    With ``entity_ids``, the same entity appearing in another column (another mention's gold, a hard negative,
    a repeated sample) is not a negative of a mention it is the gold of: such a column would push the mention away
    from its own entity.

    Args:
        mention_embeds (`torch.Tensor` of shape `(num_mentions, dim)`): L2-normalised mention embeddings.
        entity_embeds (`torch.Tensor` of shape `(num_entities, dim)`): L2-normalised entity embeddings,
            `num_entities >= num_mentions`.
        logit_scale (`torch.Tensor` or `float`): the inverse temperature, already exponentiated (and clamped).
        mention_mask, entity_mask (`torch.BoolTensor`, *optional*): `True` for present rows.
        entity_ids (`torch.LongTensor` of shape `(num_entities,)`, *optional*): an id per entity row (e.g. a hash
            of its QID); equal ids are the same entity. Negative ids never match anything.
        check_inputs (`bool`, *optional*, defaults to `True`): refuse a row that a mask marks present but is NaN,
            and warn when no pair is present. Both wait for the device; a training loop whose masks leave out every
            non-finite row, and that checks its loss itself, passes `False` and never waits.

    Returns:
        The scalar loss; a zero still attached to the graph when no pair is present, so that every rank can step.
    """
    if mention_embeds.ndim != 2 or entity_embeds.ndim != 2 or mention_embeds.shape[1] != entity_embeds.shape[1]:
        raise ValueError(
            "mention_embeds and entity_embeds must be 2-D with the same embedding size, got shapes "
            f"{tuple(mention_embeds.shape)} and {tuple(entity_embeds.shape)}."
        )
    num_pairs = mention_embeds.shape[0]
    if entity_embeds.shape[0] < num_pairs:
        raise ValueError(
            f"Got {num_pairs} mentions but only {entity_embeds.shape[0]} entities; entity i must be the gold "
            "entity of mention i, with any hard negatives appended after them."
        )
    mention_mask = _present_rows(mention_embeds, mention_mask, "mention_mask", check_inputs)
    entity_mask = _present_rows(entity_embeds, entity_mask, "entity_mask", check_inputs)
    pairs = mention_mask & entity_mask[:num_pairs]
    if check_inputs and not pairs.any():
        logger.warning("No mention-entity pair of this batch has both sides present; its contrastive loss is 0.")
    # Dense and masked (no row selection, so no data-dependent shape and nothing to wait for): missing rows are
    # zeroed before the product, so NaN never enters the graph, and absent columns get -inf logits, which is the
    # cross-entropy over the present columns only.
    mentions = torch.where(mention_mask[:, None], mention_embeds, 0.0)
    entities = torch.where(entity_mask[:, None], entity_embeds, 0.0)
    logits_per_mention = logit_scale * mentions @ entities.T
    logits_per_entity = logit_scale * entities[:num_pairs] @ mentions.T
    logits_per_mention = logits_per_mention.masked_fill(~entity_mask[None, :], float("-inf"))
    logits_per_entity = logits_per_entity.masked_fill(~pairs[None, :], float("-inf"))  # mentions of pairs
    if entity_ids is not None:
        logits_per_mention, logits_per_entity = _mask_same_entity(logits_per_mention, logits_per_entity, entity_ids)
    targets = torch.arange(num_pairs, device=mentions.device)
    # Rows of absent pairs are -inf everywhere or have an absent target: give them a finite target, weight 0.
    safe = pairs[:, None]
    mention_loss = F.cross_entropy(torch.where(safe, logits_per_mention, 0.0), targets, reduction="none")
    entity_loss = F.cross_entropy(torch.where(safe, logits_per_entity, 0.0), targets, reduction="none")
    weights = pairs.to(mention_loss.dtype)
    count = weights.sum().clamp(min=1.0)
    return ((mention_loss * weights).sum() + (entity_loss * weights).sum()) / (2.0 * count)


def _mask_same_entity(
    logits_per_mention: torch.Tensor, logits_per_entity: torch.Tensor, entity_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set to -inf every logit that pairs a mention with another copy of its own gold entity (not its target)."""
    num_pairs = logits_per_mention.shape[0]
    num_entities = logits_per_mention.shape[1]
    if entity_ids.ndim != 1 or entity_ids.shape[0] != num_entities or entity_ids.dtype.is_floating_point:
        raise ValueError(
            f"entity_ids must be a 1-D integer tensor with one id per entity row, got {entity_ids.dtype} of shape "
            f"{tuple(entity_ids.shape)}."
        )
    entity_ids = entity_ids.to(logits_per_mention.device)
    gold_ids = entity_ids[:num_pairs]
    rows = torch.arange(num_pairs, device=entity_ids.device)
    same_column = (gold_ids[:, None] == entity_ids[None, :]) & (gold_ids[:, None] >= 0)
    same_column[rows, rows] = False
    same_mention = (gold_ids[:, None] == gold_ids[None, :]) & (gold_ids[:, None] >= 0)
    same_mention[rows, rows] = False
    return (
        logits_per_mention.masked_fill(same_column, float("-inf")),
        logits_per_entity.masked_fill(same_mention, float("-inf")),
    )


__all__ = ["CLIPNDOutput", "clip_nd_contrastive_loss"]
