"""DWE+ feature extraction (training-free): CLIP features of the mention m, of ``"{mention} [SEP] {sentence}"`` t,
of the mention image v and of its person crops d_i, and of the entity texts e.

Two paths share the same encoders (a CLIP `EmbeddingAdapter` and a `PersonDetector`):

* `extract_features`, for training: every unique text, image and crop is encoded once through the benchmark's
  embedding cache (`evaluation.encoding.encode_unique`, keyed by model revision and content hash), so extraction
  runs once per dataset and model revision; crops are extra unique image inputs keyed by the hash of their PNG
  bytes, and the detector's boxes are cached per image under the detector's own key. Batched, with progress.
* `DWEPlusFeatureExtractor.mention_features`, in memory, for the benchmark adapter (whose g is cached instead).

The host's CLIP features are L2-normalised; DWE used unnormalised ones (a documented deviation).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from PIL import Image
from tqdm.auto import tqdm

from m3el_dataset.images import decode_rgb

from ...baselines.base import EmbeddingAdapter, ModelInfo
from ...evaluation.cache import EmbeddingCache, model_cache_key
from ...evaluation.data import content_key
from ...evaluation.encoding import IMAGE, TEXT, EncodingSettings, encode_unique
from .detection import PersonDetector, crop_boxes

logger = logging.getLogger(__name__)

SEPARATOR = " [SEP] "
"""DWE's literal separator between the mention and its sentence in t [code: ``prepare_wikipedia.py``]."""

BOXES = "person_boxes"
"""Embedding-cache kind of the detector's boxes: ``(max_crops, 5)`` rows ``x0, y0, x1, y1, score``, NaN padded."""


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


def detector_cache_key(info: ModelInfo, detector: PersonDetector) -> str:
    """The embedding-cache folder of a detector's boxes: its revision and the threshold and crop limit."""
    return model_cache_key(info, f"PersonDetector-t{detector.threshold:g}-k{detector.max_crops}")


def cached_boxes(
    detector: PersonDetector, images: dict[str, bytes], cache: EmbeddingCache, batch_size: int, desc: str
) -> dict[str, torch.Tensor]:
    """The person boxes of each image (key to bytes), detected once per detector revision (cached). An
    undecodable image has no box (its mention has no v and is left out by the caller)."""
    found = {key: torch.from_numpy(rows) for key, rows in cache.load(BOXES, list(images)).items()}
    todo = sorted(key for key in images if key not in found)
    fresh_keys, fresh = [], []
    for start in tqdm(range(0, len(todo), batch_size), desc=desc, unit="batch"):
        keys = todo[start : start + batch_size]
        decoded = [(key, decode_rgb(images[key])[0]) for key in keys]
        decoded = [(key, image) for key, image in decoded if image is not None]
        for (key, _), rows in zip(decoded, detector.detect([image for _, image in decoded]), strict=True):
            padded = torch.full((detector.max_crops, 5), float("nan"))
            padded[: len(rows)] = rows
            fresh_keys.append(key)
            fresh.append(padded)
    if fresh:
        cache.save(BOXES, fresh_keys, torch.stack(fresh).numpy())
    found.update(zip(fresh_keys, fresh, strict=True))
    return {key: rows[~rows.isnan().any(dim=1)] for key, rows in found.items()}


@dataclass
class ExtractedFeatures:
    """`MentionFeatures` of a list of mentions, plus the normalised features of a list of entity texts."""

    mentions: MentionFeatures
    entities: torch.Tensor


def _unique(values: Sequence) -> dict[str, object]:
    return {content_key(value): value for value in values}


def _crops_of(images: dict[str, bytes], boxes: dict[str, torch.Tensor]) -> tuple[dict[str, bytes], dict[str, list]]:
    """Crop bytes by content key, and each image's crop keys."""
    crops, keys_of = {}, {}
    for key, rows in boxes.items():
        keys_of[key] = []
        if len(rows):
            for crop in crop_boxes(decode_rgb(images[key])[0], rows):
                data = png_bytes(crop)
                crops[content_key(data)] = data
                keys_of[key].append(content_key(data))
    return crops, keys_of


def extract_features(
    extractor: DWEPlusFeatureExtractor,
    detector_info: ModelInfo,
    names: Sequence[str],
    sentences: Sequence[str],
    images: Sequence[bytes],
    entity_texts: Sequence[str],
    cache_root: str | None,
    accelerator: Accelerator,
    encoding: EncodingSettings,
) -> ExtractedFeatures:
    """Features of mentions (names, sentences, image bytes) and entity texts, every unique input once, cached.

    Images must decode (the caller leaves out mentions without a usable image, and says how many).
    """
    clip = extractor.clip
    cache = EmbeddingCache(cache_root, model_cache_key(clip.info, type(clip).__name__))
    texts = [dwe_text(name, sentence) for name, sentence in zip(names, sentences, strict=True)]
    text_table = encode_unique(clip, TEXT, _unique([*names, *texts, *entity_texts]), cache, accelerator, encoding)
    image_items = _unique(images)
    boxes_cache = EmbeddingCache(cache_root, detector_cache_key(detector_info, extractor.detector))
    desc = f"{detector_info.name} | detect persons"
    boxes = cached_boxes(extractor.detector, image_items, boxes_cache, encoding.batch_size, desc)
    crops, crop_keys = _crops_of(image_items, boxes)
    image_table = encode_unique(clip, IMAGE, {**image_items, **crops}, cache, accelerator, encoding)
    undecodable = [key for key in image_items if key in image_table.undecodable]
    if undecodable:
        raise ValueError(f"{len(undecodable)} mention images do not decode (first key {undecodable[0]}); leave "
                         "their mentions out before extracting DWE+ features.")  # fmt: skip

    def rows(table, values):
        return table.embeddings[[table.index[content_key(value)] for value in values], 0]

    image_keys = [content_key(image) for image in images]
    per_mention = [image_table.embeddings[[image_table.index[key] for key in crop_keys[image]], 0]
                   for image in image_keys]  # fmt: skip
    stacked, mask = stack_crops(per_mention, text_table.embeddings.shape[-1])
    features = MentionFeatures(rows(text_table, names), rows(text_table, texts), rows(image_table, images), stacked,
                               mask)  # fmt: skip
    with_person = sum(bool(crop_keys[key]) for key in image_keys)
    logger.info("DWE+ features: %d mentions (%d with a person crop, %d unique crops), %d entity texts",
                len(names), with_person, len(crops), len(entity_texts))  # fmt: skip
    return ExtractedFeatures(features, rows(text_table, entity_texts))
