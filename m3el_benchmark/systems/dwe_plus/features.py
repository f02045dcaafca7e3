"""DWE+ feature extraction (training-free): CLIP features of the mention m, of ``"{mention} [SEP] {sentence}"`` t,
of the mention image v and of its person crops d_i, and of the entity texts e.

Two paths share the same encoders (a CLIP `EmbeddingAdapter` and a `PersonDetector`):

* `extraction.extract_features`, for training: every unique text, image and crop encoded once, through the
  benchmark's embedding cache (see that module).
* `DWEPlusFeatureExtractor.mention_features`, in memory, for the benchmark adapter (whose g is cached instead).

The host's CLIP features are L2-normalised; DWE used unnormalised ones (a documented deviation).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from ...baselines.base import EmbeddingAdapter
from .detection import PersonDetector, crop_boxes

logger = logging.getLogger(__name__)

SEPARATOR = " [SEP] "
"""DWE's literal separator between the mention and its sentence in t [code: ``prepare_wikipedia.py``]."""


def dwe_text(mention: str, sentence: str) -> str:
    """DWE's text input t: ``"{mention} [SEP] {sentence}"``."""
    return f"{mention}{SEPARATOR}{sentence}"


def split_dwe_text(text: str) -> tuple[str, str]:
    """``(mention, sentence)`` of a `dwe_text` (split at the first separator)."""
    mention, _, sentence = text.partition(SEPARATOR)
    return mention, sentence


@dataclass
class MentionFeatures:
    """DWE+ inputs of a batch of mentions: m, t, v ``(n, dim)``, crops ``(n, num_crops, dim)`` (a zero row for an
    image without person, zero padding after the real rows) and ``crop_mask`` ``(n, num_crops)`` (`True`: a row
    that is not padding, the zero no-person row included)."""

    mention: torch.Tensor
    text: torch.Tensor
    image: torch.Tensor
    crops: torch.Tensor
    crop_mask: torch.Tensor


def stack_crops(per_mention: Sequence[torch.Tensor], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad each mention's ``(k_i, dim)`` crop features to ``(n, max(1, max k_i), dim)`` and their mask; a mention
    without crop gets DWE's single zero vector, which counts as a real row."""
    width = max([1, *(len(crops) for crops in per_mention)])
    crops = torch.zeros((len(per_mention), width, dim))
    mask = torch.zeros((len(per_mention), width), dtype=torch.bool)
    for row, features in enumerate(per_mention):
        crops[row, : len(features)] = features
        mask[row, : max(1, len(features))] = True
    return crops, mask


def png_bytes(image: Image.Image) -> bytes:
    """A crop's content as PNG bytes: what its cache key hashes and what `encode_unique` decodes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class DWEPlusFeatureExtractor:
    """The frozen encoders of DWE+: a CLIP adapter (normalised text and image features) and a person detector."""

    def __init__(self, clip: EmbeddingAdapter, detector: PersonDetector):
        self.clip, self.detector = clip, detector

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """``(n, dim)`` normalised CLIP text features (77 tokens, cut at the end as DWE's ``clip.tokenize``)."""
        return self.clip.encode_texts(self.clip.collate_texts(texts))[:, 0].float().cpu()

    def image_features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``(n, dim)`` normalised CLIP image features."""
        if not images:
            return torch.zeros((0, self.dim))
        return self.clip.encode_images(self.clip.collate_images(images))[:, 0].float().cpu()

    @property
    def dim(self) -> int:
        return int(self.text_features(["a"]).shape[-1])

    def mention_features(self, texts: Sequence[str], images: Sequence[Image.Image]) -> MentionFeatures:
        """Features of mentions given as `dwe_text` strings and decoded images, all computed now."""
        names = [split_dwe_text(text)[0] for text in texts]
        boxes = self.detector.detect(images)
        crops = [crop_boxes(image, found) for image, found in zip(images, boxes, strict=True)]
        flat = self.image_features([crop for mention in crops for crop in mention])
        per_mention = list(flat.split([len(mention) for mention in crops]))
        image = self.image_features(images)
        stacked, mask = stack_crops(per_mention, image.shape[-1])
        return MentionFeatures(self.text_features(names), self.text_features(texts), image, stacked, mask)


