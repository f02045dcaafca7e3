"""The DWE+ head: mention features (m, t, v, person crops d_i) to one mention vector g, compared with the frozen
CLIP entity feature e by cosine.

As in DWET commit ``0af9140`` (``src/nel.py``, ``../shared/seed-systems.md`` B2.3)::

    φ_T(x) = Dropout(LayerNorm(ReLU(W_T x + b_T)))      shared by m, t
    φ_V(x) = Dropout(LayerNorm(ReLU(W_V x + b_V)))      shared by v, d_i
    m_d    = MHA(q = φ_T(m), k = v = φ_V(D))
    g      = W_o Dropout(concat[t', v', m', m_d]) + b_o    (fusion "concat"; "sum" is the paper's Eq. 8)

The head is ~2.6 M parameters over cached 512-d features; it saves as ``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.utils import ModelOutput

from .configuration import DWEPlusConfig
from .loss import clip_contrastive_loss, mean_shifted_contrastive_loss, n_pair_loss

WEIGHTS_NAME = "model.safetensors"


@dataclass
class DWEPlusOutput(ModelOutput):
    """What `DWEPlusHead.forward` returns.

    Args:
        loss (`torch.Tensor`, *optional*): the weighted training loss, when entities were given.
        mention_embeds (`torch.Tensor` of shape `(batch, feature_dim)`): g, not normalised.
        ranking_loss, coarse_loss, fine_loss (`torch.Tensor`, *optional*): the loss's terms, unweighted.
    """

    loss: torch.Tensor | None = None
    mention_embeds: torch.Tensor | None = None
    ranking_loss: torch.Tensor | None = None
    coarse_loss: torch.Tensor | None = None
    fine_loss: torch.Tensor | None = None


def _projection(config: DWEPlusConfig) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(config.feature_dim, config.hidden_size), nn.ReLU(), nn.LayerNorm(config.hidden_size),
        nn.Dropout(config.dropout),
    )  # fmt: skip


class DWEPlusHead(nn.Module):
    """The trainable part of DWE+ (see the module docstring); ``config`` is a `DWEPlusConfig`."""

    def __init__(self, config: DWEPlusConfig):
        super().__init__()
        self.config = config
        self.text_projection = _projection(config)  # φ_T
        self.image_projection = _projection(config)  # φ_V
        self.crop_attention = nn.MultiheadAttention(config.hidden_size, config.num_attention_heads, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        width = 4 * config.hidden_size if config.fusion == "concat" else config.hidden_size
        self.output = nn.Linear(width, config.feature_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """xavier_uniform on every parameter with more than one dimension, as DWE's code [``train.py``]."""
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    def _attend(self, query: torch.Tensor, keys: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        attended, _ = self.crop_attention(query[:, None], keys, keys, key_padding_mask=padding, need_weights=False)
        return attended[:, 0]

    def forward(
        self,
        mention: torch.Tensor,
        text: torch.Tensor,
        image: torch.Tensor,
        crops: torch.Tensor,
        crop_mask: torch.Tensor | None = None,
        positives: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
    ) -> DWEPlusOutput:
        """Mention vectors g, and with ``positives`` and ``negatives`` the training loss.

        Args:
            mention, text, image (`torch.Tensor` of shape `(batch, feature_dim)`): CLIP features m, t, v.
            crops (`torch.Tensor` of shape `(batch, num_crops, feature_dim)`): person crop features d_i (a zero
                row for an image without person), zero-padded.
            crop_mask (`torch.Tensor` of shape `(batch, num_crops)`, *optional*): `True` for real crop rows; used
                only with ``config.key_padding_mask``.
            positives (`torch.Tensor` of shape `(batch, feature_dim)`, *optional*): gold entity features.
            negatives (`torch.Tensor` of shape `(batch, num_negatives, feature_dim)`, *optional*): negatives.
        """
        config = self.config
        m, t = self.text_projection(mention), self.text_projection(text)
        v, d = self.image_projection(image), self.image_projection(crops)
        padding = ~crop_mask if config.key_padding_mask and crop_mask is not None else None
        m_d = self._attend(m, d, padding)
        if config.fusion == "concat":
            g = self.output(self.dropout(torch.cat([t, v, m, m_d], dim=-1)))
        else:  # paper Eq. 8: g = m + m_t + m_v, m_t through the same attention (one key: a linear map of t')
            g = self.output(self.dropout(m + m_d + self._attend(m, t[:, None], None)))
        if positives is None:
            return DWEPlusOutput(mention_embeds=g)
        ranking = n_pair_loss(g, positives, negatives, config.ranking_l2_weight)
        coarse, fine = self._contrastive(v, t), self._contrastive(m, m_d) if config.fine_loss_weight else None
        loss = config.ranking_loss_weight * ranking + config.coarse_loss_weight * coarse
        if fine is not None:
            loss = loss + config.fine_loss_weight * fine
        return DWEPlusOutput(loss, g, ranking, coarse, fine)

    def _contrastive(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.config.contrastive_loss == "msc":
            return mean_shifted_contrastive_loss(a, b, self.config.msc_temperature)
        return clip_contrastive_loss(a, b, self.logit_scale)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(folder)
        save_file({name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()},
                  str(folder / WEIGHTS_NAME))  # fmt: skip
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> DWEPlusHead:
        """Load a head saved by `save_pretrained` (in eval mode)."""
        folder = Path(folder)
        if not (folder / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(
                f"{folder} holds no DWE+ head ({WEIGHTS_NAME} is missing); train one with "
                "`python -m m3el_benchmark.systems.dwe_plus.training --dataset <folder> --output_dir <folder>`."
            )
        head = cls(DWEPlusConfig.from_pretrained(folder))
        head.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
        return head.eval()
