"""Validation ACC during training: each mention against its own candidates, through the metric core."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from torch import nn

from m3el_benchmark.m3el_accuracy.ranking_metrics import compute_ranking_metrics_from_ranks, gold_ranks

from .loss import embed_side


@torch.no_grad()
def candidate_scores(model: nn.Module, batch: dict, num_slots: int) -> torch.Tensor:
    """Cosine similarity of each mention with each of its candidates, ``(batch, num_slots)``.

    A score involving a missing image (NaN embedding) or a padding slot is ``-inf``: such a candidate ranks last,
    and a mention whose own image is missing ranks its gold last (pessimistic ties), i.e. counts as wrong.
    """
    size, dim = len(batch["labels"]), model.config.projection_dim
    mentions = embed_side(model, batch["mentions"], size, dim).embeds
    candidates = embed_side(model, batch["candidates"], size * num_slots, dim).embeds.view(size, num_slots, dim)
    scores = torch.einsum("bd,bkd->bk", mentions.float(), candidates.float())
    return scores.nan_to_num(nan=float("-inf"))


def evaluate_accuracy(accelerator: Accelerator, model: nn.Module, loader, num_slots: int) -> dict:
    """ACC (top-1) and MRR over every mention of ``loader`` (sharded across processes, gathered for the metric)."""
    model.eval()
    ranks = []
    for batch in loader:
        scores = candidate_scores(model, batch, num_slots)
        batch_ranks = gold_ranks(scores.cpu(), batch["labels"].cpu(), lengths=batch["num_candidates"].cpu())
        ranks.append(accelerator.gather_for_metrics(torch.as_tensor(batch_ranks, device=scores.device)))
    model.train()
    return compute_ranking_metrics_from_ranks(torch.cat(ranks).cpu().numpy(), ks=(1,))
