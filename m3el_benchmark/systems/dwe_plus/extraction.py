"""Cached DWE+ feature extraction for training: every unique text, image and person crop encoded once.

Texts and images go through the benchmark's embedding cache (`evaluation.encoding.encode_unique`, keyed by model
revision and content hash) under the CLIP's own key, so extraction runs once per dataset and model revision and
shares its vectors with the CLIP baseline; crops are extra unique image inputs keyed by the hash of their PNG
bytes; the detector's boxes are cached per image under the detector's key (with its threshold and crop limit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from accelerate import Accelerator

from m3el_dataset.images import decode_rgb

from ...baselines.base import ModelInfo
from ...evaluation.cache import EmbeddingCache, model_cache_key
from ...evaluation.data import content_key
from ...evaluation.encoding import IMAGE, TEXT, EncodingSettings, encode_unique
from ...run_logging import progress_bar
from .detection import PersonDetector, crop_boxes
from .features import DWEPlusFeatureExtractor, MentionFeatures, dwe_text, png_bytes, stack_crops

logger = logging.getLogger(__name__)

BOXES = "person_boxes"
"""Embedding-cache kind of the detector's boxes: ``(max_crops, 5)`` rows ``x0, y0, x1, y1, score``, NaN padded."""


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
    for start in progress_bar(range(0, len(todo), batch_size), desc=desc, unit="batch"):
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
