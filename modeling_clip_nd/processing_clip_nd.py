# Copyright 2025 The M3EL authors. Licensed under the Apache License, Version 2.0.
"""Preparing CLIP-ND inputs with the standard `CLIPProcessor`: the cases that people get wrong.

* `tokenize_texts` truncates texts to CLIP's 77-token context and says so in one warning per batch
  (`resolve_max_length` says which context a tokenizer has).
* `prepare_images` turns a list of images with ``None`` for missing ones into ``pixel_values`` (NaN rows for the
  missing images) and an ``image_mask``, the form every `CLIPNDModel` method understands.

Imports only torch and transformers, like the model files, so it stays Hub-portable; the model does not need it,
so ``save_pretrained`` does not copy it (copy it next to the model files to offer it on the Hub). Mention texts
that keep their mention within the context are fitted by the dataset library
(``m3el_dataset.text_formats.fit_mention_texts``), which this Hub code must not import.
"""

from collections.abc import Sequence

import torch
from transformers import BatchEncoding, BatchFeature
from transformers.utils import logging

logger = logging.get_logger(__name__)

CLIP_MAX_TOKENS = 77
"""CLIP's text context, special tokens included: the one definition of the limit (the tiny training model uses it
too); used when a tokenizer does not state a sensible maximum."""


def resolve_max_length(tokenizer, max_length: int | None = None) -> int:
    """``max_length``, or by default the tokenizer's context (CLIP's when it states none); at least 3 tokens."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    if max_length is None:
        max_length = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else CLIP_MAX_TOKENS
    if max_length < 3:
        raise ValueError(f"max_length={max_length} leaves no room for text between CLIP's two special tokens.")
    return max_length


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ValueError("Got an empty batch of texts; pass at least one text.")
    bad = [index for index, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise ValueError(
            f"Texts at positions {bad} are not strings (e.g. {texts[bad[0]]!r}); every mention and entity has "
            "text, so replace empty cells by '' or drop those examples."
        )
    return texts


def tokenize_and_count(
    tokenizer, texts: Sequence[str], max_length: int | None = None, return_tensors: str = "pt"
) -> tuple[BatchEncoding, int]:
    """`tokenize_texts` without its warning: the encoding and how many texts were cut.

    One tokenizer pass: each text is tokenized whole (so its length is known), then cut to ``max_length`` keeping
    its last (end-of-text) token, exactly as ``truncation=True`` cuts a single text, and padded by the tokenizer.
    A training collator adds the counts up and reports them once per run.
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    texts = _check_texts(texts)
    max_length = resolve_max_length(tokenizer, max_length)
    encoded = tokenizer(texts, verbose=False)["input_ids"]
    too_long = sum(len(ids) > max_length for ids in encoded)
    cut = [ids if len(ids) <= max_length else ids[: max_length - 1] + ids[-1:] for ids in encoded]
    batch = tokenizer.pad({"input_ids": cut}, padding=True, return_tensors=return_tensors, verbose=False)
    return batch, too_long


def tokenize_texts(
    tokenizer, texts: Sequence[str], max_length: int | None = None, return_tensors: str = "pt"
) -> BatchEncoding:
    """Tokenize ``texts`` padded to the longest and truncated to ``max_length`` tokens (default: the tokenizer's).

    Texts that do not fit are cut at the end (the end-of-text token is kept) and counted in one warning for the
    whole batch. ``tokenizer`` may be a `CLIPTokenizer` or a `CLIPProcessor`.
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    max_length = resolve_max_length(tokenizer, max_length)
    batch, too_long = tokenize_and_count(tokenizer, texts, max_length, return_tensors)
    if too_long:
        logger.warning("%d of %d texts are longer than %d tokens and were truncated at the end.", too_long,
                       len(batch["input_ids"]), max_length)  # fmt: skip
    return batch


def prepare_images(image_processor, images: Sequence) -> BatchFeature:
    """Process a batch of images in which ``None`` marks a missing image (an empty cell of the dataset).

    Returns ``pixel_values`` with one row per item, entirely NaN for missing images, and ``image_mask`` (``True``
    for real images). Only real images go through ``image_processor`` (a CLIP image processor or processor).
    """
    image_processor = getattr(image_processor, "image_processor", image_processor)
    images = list(images)
    if not images:
        raise ValueError("Got an empty batch of images; pass at least one image (None for a missing one).")
    image_mask = torch.tensor([image is not None for image in images], dtype=torch.bool)
    if image_mask.any():
        present = image_processor(images=[image for image in images if image is not None], return_tensors="pt")
        present = present["pixel_values"]
        shape = tuple(present.shape[1:])
    else:
        crop = image_processor.crop_size
        shape = (3, crop["height"], crop["width"])
    pixel_values = torch.full((len(images), *shape), float("nan"))
    if image_mask.any():
        pixel_values[image_mask] = present.to(pixel_values.dtype)
    return BatchFeature({"pixel_values": pixel_values, "image_mask": image_mask})


__all__ = ["CLIP_MAX_TOKENS", "prepare_images", "resolve_max_length", "tokenize_and_count", "tokenize_texts"]
