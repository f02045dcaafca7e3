"""The trainable parts of Gan et al. (2021) within Hub constraints (spec A2, A5 "Trained version").

* `TextScorerHead`: 300-d projections of frozen text features of mentions and entities, scored by cosine (the
  MulRel local scorer, whose Wikipedia statistics and entity embeddings are not on the Hub, replaced by a dual
  encoder's text features);
* `VisualEncoder`: the paper's visual entity linker, 64 patches (8 x 8 grid) + positional encodings, 6 post-norm
  transformer layers, mean over the patch tokens; the same encoder embeds mention images and entity images;
* `margin_ranking_loss` (γ = 0.01) and `triplet_loss` (margin 0.2): the paper's Eq. 11 first two terms, small pure
  functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Gan21HeadsConfig:
    """Sizes of the trainable heads; the defaults are the paper's and the spec's proposals.

    Args:
        text_feature_size (`int`, *optional*, defaults to 512): width of the frozen text features (CLIP B/32: 512).
        hidden_size (`int`, *optional*, defaults to 300): d of both modalities (paper §5.1).
        image_size (`int`, *optional*, defaults to 224): input resolution; ``image_size / grid`` must be whole.
        grid (`int`, *optional*, defaults to 8): patches per side (64 patches).
        num_layers (`int`, *optional*, defaults to 6), num_heads (`int`, *optional*, defaults to 6),
        ffn_size (`int`, *optional*, defaults to 1200): the visual transformer.
        dropout (`float`, *optional*, defaults to 0.3): the paper's NEL dropout.
    """

    text_feature_size: int = 512
    hidden_size: int = 300
    image_size: int = 224
    grid: int = 8
    num_layers: int = 6
    num_heads: int = 6
    ffn_size: int = 1200
    dropout: float = 0.3

    def __post_init__(self):
        if self.image_size % self.grid:
            raise ValueError(f"image_size {self.image_size} is not a multiple of grid {self.grid}; patches must tile.")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}.")

    @property
    def patch_size(self) -> int:
        return self.image_size // self.grid


class TextScorerHead(nn.Module):
    """Cosine of projected mention and entity text features: ``(n, c)`` scores of n mentions' c candidates."""

    def __init__(self, config: Gan21HeadsConfig):
        super().__init__()
        self.mention = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(config.text_feature_size, config.hidden_size)
        )
        self.entity = nn.Linear(config.text_feature_size, config.hidden_size)

    def embed_mentions(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mention(features), dim=-1)

    def forward(self, mention_features: torch.Tensor, candidate_features: torch.Tensor) -> torch.Tensor:
        entities = F.normalize(self.entity(candidate_features), dim=-1)
        return torch.einsum("nd,ncd->nc", self.embed_mentions(mention_features), entities)


class VisualEncoder(nn.Module):
    """Image ``(batch, 3, H, W)`` to a normalised ``(batch, hidden)`` vector: patches, 6 layers, mean pool."""

    def __init__(self, config: Gan21HeadsConfig):
        super().__init__()
        self.config = config
        self.patches = nn.Linear(3 * config.patch_size**2, config.hidden_size)  # flatten + linear (spec proposal)
        self.positions = nn.Parameter(torch.zeros(config.grid**2, config.hidden_size))
        nn.init.normal_(self.positions, std=0.02)
        layer = nn.TransformerEncoderLayer(
            config.hidden_size, config.num_heads, config.ffn_size, dropout=0.1, batch_first=True, norm_first=False
        )  # post-norm: o = LayerNorm(x + MultiHead(x)), z = LayerNorm(o + FFN(o)), as the paper writes
        self.layers = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.patch_size
        if images.shape[-2:] != (self.config.image_size, self.config.image_size):
            raise ValueError(f"images are {tuple(images.shape[-2:])}, the encoder takes {self.config.image_size}².")
        patches = F.unfold(images, kernel_size=size, stride=size).transpose(1, 2)  # (batch, 64, 3 * size²)
        hidden = self.layers(self.patches(patches) + self.positions)
        return F.normalize(hidden.mean(dim=1), dim=-1)


def margin_ranking_loss(scores: torch.Tensor, gold: torch.Tensor, margin: float = 0.01) -> torch.Tensor:
    """``sum_i sum_{e != gold} max(0, γ - ρ_i(gold) + ρ_i(e))`` over mentions with a gold (``gold >= 0``), averaged
    over them. ``scores (n, c)``; padded candidates must score -inf."""
    keep = gold >= 0
    scores, gold = scores[keep], gold[keep]
    if not len(gold):
        return scores.new_zeros(())
    positive = scores.gather(1, gold[:, None])
    hinge = (margin - positive + scores).clamp(min=0)
    hinge = hinge.scatter(1, gold[:, None], 0.0).nan_to_num(nan=0.0)  # the gold against itself adds nothing
    return hinge.sum(dim=1).mean()


def triplet_loss(scores: torch.Tensor, gold: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """``max(0, margin - s(e+, m) + s(e-, m))`` with every other candidate as e-, averaged over the triplets."""
    keep = gold >= 0
    scores, gold = scores[keep], gold[keep]
    if not len(gold) or scores.shape[1] < 2:
        return scores.new_zeros(())
    positive = scores.gather(1, gold[:, None])
    negatives = torch.ones_like(scores, dtype=torch.bool).scatter(1, gold[:, None], False)
    hinge = (margin - positive + scores).clamp(min=0)
    return hinge[negatives & torch.isfinite(scores)].mean()
