"""The interface every baseline adapter implements: normalised text, image and (I+T) embeddings of one model.

An adapter turns raw inputs into model inputs (``collate_*``, which run in DataLoader workers) and model inputs
into embeddings (``encode_*``). Every embedding has shape ``(batch, num_vectors, dim)``, L2-normalised on the last
axis: one vector for most models, one per query token for BLIP-2. Two embeddings are compared by the maximum dot
product over their vectors (`similarity`), which is the cosine similarity when each has one vector.

(I+T) embeddings use the model's own fusion where it has one (``fusion = "multimodal-encoder"``, FLAVA): the
adapter then encodes (text, image) pairs. Otherwise ``fusion = "mean"``: the normalised weighted mean of the text and
image embeddings, computed from the cached unimodal embeddings without another encoder pass (`fuse_mean`); the
image's weight is `EmbeddingAdapter.image_weight` (0.5, or CLIP-ND's ``config.fusion_image_weight``).

Texts longer than a model's context are cut at the end (`truncate_texts`), counted in one warning per batch.
Mention texts that a model reads differently from the dataset's text columns (CLIP-ND keeps the mention of the
``-M`` formats within its context, as in its training) come from `EmbeddingAdapter.mention_texts`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

logger = logging.getLogger(__name__)

FUSION_MEAN = "mean"
FUSION_MULTIMODAL_ENCODER = "multimodal-encoder"


@dataclass(frozen=True)
class ModelInfo:
    """What the results record about a loaded model."""

    name: str
    source: str
    revision: str
    family: str
    model_type: str
    fusion: str
    dtype: str


def pooled(output: Any) -> torch.Tensor:
    """The pooled embedding of a ``get_*_features`` call: a tensor, or the ``pooler_output`` of transformers 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def normalise(embeddings: torch.Tensor) -> torch.Tensor:
    """Float32, L2-normalised embeddings of shape ``(batch, num_vectors, dim)`` (a 2-D input gets one vector)."""
    embeddings = embeddings.float()
    if embeddings.ndim == 2:
        embeddings = embeddings[:, None, :]
    return F.normalize(embeddings, dim=-1)


def fuse_mean(text: torch.Tensor, image: torch.Tensor, image_weight: float = 0.5) -> torch.Tensor:
    """``normalize(w * image + (1 - w) * text)`` (broadcast over vectors), ``w = image_weight``; NaN where the image
    is missing. With ``w = 0.5`` it is the normalised mean."""
    return F.normalize(image_weight * image + (1.0 - image_weight) * text, dim=-1)


def truncate_texts(
    tokenizer, texts: Sequence[str], max_length: int, padding: bool | str, model_name: str
) -> dict[str, torch.Tensor]:
    """Tokenize ``texts`` cut at ``max_length`` tokens; one warning counts the texts that did not fit.

    Returns ``input_ids`` and ``attention_mask`` (what every text tower here takes).
    """
    texts = list(texts)
    lengths = [len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"]]
    too_long = sum(length > max_length for length in lengths)
    if too_long:
        logger.warning(
            "%s: %d of %d texts of this batch are longer than its %d-token context (longest: %d) and were cut at "
            "the end.", model_name, too_long, len(texts), max_length, max(lengths),
        )  # fmt: skip
    encoded = tokenizer(
        texts, padding=padding, truncation=True, max_length=max_length, return_tensors="pt", verbose=False
    )
    return {key: value for key, value in encoded.items() if key in ("input_ids", "attention_mask")}


def similarity(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Scores ``(batch, num_keys)`` of ``queries (batch, q, d)`` against ``keys (batch, num_keys, k, d)``.

    The maximum over every pair of vectors (BLIP-2 scores a text against its best-matching query token).
    """
    if queries.shape[1] == 1 and keys.shape[2] == 1:
        return torch.einsum("bd,bcd->bc", queries[:, 0], keys[:, :, 0])
    return torch.einsum("bqd,bckd->bcqk", queries, keys).flatten(2).amax(dim=2)


class EmbeddingAdapter:
    """One model seen as three encoders. Subclasses set `family` and implement the ``collate``/``encode`` pairs.

    Args:
        model (`torch.nn.Module`): the loaded model, in eval mode, on its device.
        processor: its processor (tokenizer and image processor).
        info (`ModelInfo`): name, source and revision for the results.
    """

    family: str = "base"
    fusion: str = FUSION_MEAN
    text_padding: str = "longest"
    """``"longest"``, or ``"max_length"`` for models trained on padded texts (SigLIP, OWL-ViT)."""
    max_text_tokens: int | None = None
    """Text context; by default the text config's position embeddings."""
    supported_tasks: tuple[str, ...] | None = None
    supported_text_formats: tuple[str, ...] | None = None
    """The tasks and mention text formats a model can be scored on (`None`: all); run.py refuses the others."""

    def __init__(self, model: torch.nn.Module, processor: Any, info: ModelInfo):
        self.model = model
        self.processor = processor
        self.info = info

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def image_weight(self) -> float:
        """Weight of the image in the (I+T) fusion of `fuse_mean` (0.5: the normalised mean)."""
        return 0.5

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def image_processor(self):
        return getattr(self.processor, "image_processor", self.processor)

    def _to_device(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        moved = {}
        for key, value in batch.items():
            value = value.to(self.device)
            moved[key] = value.to(self.dtype) if value.is_floating_point() else value
        return moved

    @property
    def text_context(self) -> int:
        """How many tokens of a text the model reads."""
        if self.max_text_tokens is not None:
            return self.max_text_tokens
        return self.model.config.text_config.max_position_embeddings

    def collate_texts(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize a batch of texts (padded, truncated to `text_context` with one warning per batch)."""
        return truncate_texts(self.tokenizer, texts, self.text_context, self.text_padding, self.info.name)

    def mention_texts(
        self, text_format: str, texts: Sequence[str], parts: Sequence[Mapping[str, str]]
    ) -> list[str] | None:
        """The mention texts of ``text_format`` as this model reads them, given the dataset's ``texts`` and each
        mention's parts (``M``, ``S``, ``S1``, ``D``); ``None``: the dataset's texts as they are, which most models
        read."""
        return None

    def collate_images(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """Process a batch of decoded RGB images into ``pixel_values``."""
        return {"pixel_values": self.image_processor(images=list(images), return_tensors="pt")["pixel_values"]}

    def collate_pairs(self, texts: Sequence[str], images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """Model inputs of (text, image) pairs; only for adapters whose fusion is a multimodal encoder."""
        return {**self.collate_texts(texts), **self.collate_images(images)}

    def encode_texts(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Normalised text embeddings ``(batch, num_vectors, dim)``."""
        raise NotImplementedError

    def encode_images(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Normalised image embeddings ``(batch, num_vectors, dim)``."""
        raise NotImplementedError

    def encode_pairs(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Normalised (I+T) embeddings from the model's own multimodal encoder."""
        raise NotImplementedError(f"{type(self).__name__} fuses by the normalised mean; it has no pair encoder.")
