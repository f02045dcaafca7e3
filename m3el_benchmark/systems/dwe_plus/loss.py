"""DWE+ losses: the N-pair ranking loss of DWE's code, and the coarse/fine contrastive losses (CLIP or MSC).

DWE's ``triplet_loss.py`` is an N-pair loss on raw dot products, not the margin triplet loss the paper prints
(its margin 0.5 is passed but unused); we follow the code (``../shared/seed-systems.md``, B2.4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_LOGIT_SCALE = math.log(100.0)
"""As in CLIP and open_clip: the learnable scale is clamped at 100, so that the logits cannot blow up."""


def n_pair_loss(
    queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, l2_weight: float = 0.02
) -> torch.Tensor:
    """``mean_b log(1 + Σ_k exp(g_b·n_bk − g_b·p_b)) + l2_weight · Σ_b(‖g_b‖² + ‖p_b‖²) / B`` [DWET code].

    Args:
        queries (`torch.Tensor` of shape `(batch, dim)`): mention vectors g.
        positives (`torch.Tensor` of shape `(batch, dim)`): gold entity vectors.
        negatives (`torch.Tensor` of shape `(batch, num_negatives, dim)`): negative entity vectors.
        l2_weight (`float`, *optional*, defaults to 0.02): weight of the L2 term.
    """
    positive = (queries * positives).sum(-1, keepdim=True)
    negative = torch.einsum("bd,bkd->bk", queries, negatives)
    # log(1 + Σ exp(x_k)) = logsumexp([0, x_1..x_K]), stable for large dot products
    margins = torch.cat([torch.zeros_like(positive), negative - positive], dim=1)
    ranking = torch.logsumexp(margins, dim=1).mean()
    l2 = (queries.pow(2).sum(-1) + positives.pow(2).sum(-1)).sum() / queries.shape[0]
    return ranking + l2_weight * l2


def clip_contrastive_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE ``½[CE(s â b̂ᵀ, I) + CE(s b̂ âᵀ, I)]``, â, b̂ L2-normalised, ``s = exp(logit_scale)``
    clamped at 100 [DWET code; clamp ours]."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp() * a @ b.T
    target = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def mean_shifted_contrastive_loss(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.25) -> torch.Tensor:
    """Mean-shifted contrastive loss (Reiss & Hoshen 2021) between paired views ``a`` and ``b`` [paper §4.5].

    Both views are normalised, shifted by the batch's mean normalised feature, normalised again, and scored by the
    symmetric InfoNCE at ``temperature`` (the paper's Eq. 10 is garbled and τ unspecified; this is the MSC form).
    """
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    center = torch.cat([a, b]).mean(dim=0, keepdim=True)
    a, b = F.normalize(a - center, dim=-1), F.normalize(b - center, dim=-1)
    return clip_contrastive_loss(a, b, torch.tensor(math.log(1.0 / temperature), device=a.device))
