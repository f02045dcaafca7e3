# Copyright 2025 The M3EL authors. Licensed under the Apache License, Version 2.0.
"""Preparing CLIP-ND inputs with the standard `CLIPProcessor`: the cases that people get wrong.

* `tokenize_texts` truncates texts to CLIP's 77-token context and says so in one warning per batch.
* `fit_mention_texts` builds mention texts in the ``-M`` formats (e.g. ``"{S} {M}"``) so that a long sentence is
  shortened before the mention at its end would be cut off.
* `prepare_images` turns a list of images with ``None`` for missing ones into ``pixel_values`` (NaN rows for the
  missing images) and an ``image_mask``, the form every `CLIPNDModel` method understands.

Imports only torch and transformers, like the model files, so it stays Hub-portable; the model does not need it,
so ``save_pretrained`` does not copy it (copy it next to the model files to offer it on the Hub).
"""

from collections.abc import Mapping, Sequence
from string import Formatter

import torch
from transformers import BatchEncoding, BatchFeature
from transformers.utils import logging

logger = logging.get_logger(__name__)

MENTION_FIELD = "M"
"""Placeholder of the mention's surface form in a text format template."""

SENTENCE_FIELDS = ("S", "S1")
"""Placeholders of the mention's context (the whole context, or the sentence holding the mention)."""

CLIP_MAX_TOKENS = 77
"""CLIP's text context, special tokens included; used when a tokenizer does not state a sensible maximum."""


def _max_length(tokenizer, max_length: int | None) -> int:
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


def _num_tokens(tokenizer, text: str) -> int:
    """Number of tokens of ``text`` without special tokens (``verbose=False``: no per-text length warning)."""
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def tokenize_texts(
    tokenizer, texts: Sequence[str], max_length: int | None = None, return_tensors: str = "pt"
) -> BatchEncoding:
    """Tokenize ``texts`` padded to the longest and truncated to ``max_length`` tokens (default: the tokenizer's).

    Texts that do not fit are cut at the end (the end-of-text token is kept) and counted in one warning for the
    whole batch. ``tokenizer`` may be a `CLIPTokenizer` or a `CLIPProcessor`.
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    texts = _check_texts(texts)
    max_length = _max_length(tokenizer, max_length)
    lengths = [len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"]]
    too_long = sum(length > max_length for length in lengths)
    if too_long:
        logger.warning(
            "%d of %d texts are longer than %d tokens (longest: %d) and were truncated at the end.",
            too_long,
            len(texts),
            max_length,
            max(lengths),
        )
    return tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors=return_tensors, verbose=False
    )


def sentence_before_mention(template: str) -> str | None:
    """Return the sentence placeholder that precedes ``{M}`` in ``template`` (``"S"`` in ``"{S} {M}"``), or None."""
    fields = [name for _, name, _, _ in Formatter().parse(template) if name]
    if MENTION_FIELD not in fields:
        return None
    before = fields[: fields.index(MENTION_FIELD)]
    return next((name for name in before if name in SENTENCE_FIELDS), None)


def _shorten_field(tokenizer, template: str, parts: Mapping[str, str], field: str, budget: int) -> str:
    """Cut ``parts[field]`` at a token boundary so that the formatted text has at most ``budget`` tokens."""
    rest = _num_tokens(tokenizer, template.format(**{**parts, field: ""}))
    offsets = tokenizer(parts[field], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = offsets["offset_mapping"]
    keep = min(max(budget - rest, 0), len(offsets))
    while True:
        cut = offsets[keep - 1][1] if keep > 0 else 0
        text = template.format(**{**parts, field: parts[field][:cut].rstrip()}).strip()
        # Re-tokenizing the joined text can differ by a token at the seam: drop one more token until it fits.
        if keep == 0 or _num_tokens(tokenizer, text) <= budget:
            return text
        keep -= 1


def fit_mention_texts(
    tokenizer,
    template: str,
    parts: Sequence[Mapping[str, str]],
    keep_mention: bool = True,
    max_length: int | None = None,
) -> list[str]:
    """Format one mention text per item of ``parts`` with ``template`` (e.g. ``"{S} {M}: {D}"``).

    In the ``-M`` formats the mention comes after its sentence, so plain truncation would cut the mention off.
    With ``keep_mention`` (the default) a text that would not fit in ``max_length`` tokens (special tokens
    included; default: the tokenizer's) has its sentence (``S`` or ``S1``) shortened at the end first; what follows
    the mention (``D``) is only cut, by `tokenize_texts`, if the text still does not fit. Formats that start with
    the mention are returned as formatted. One warning per batch counts the shortened sentences.
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    parts = list(parts)
    if not parts:
        raise ValueError("Got an empty batch of mentions; pass at least one mapping of text parts.")
    try:
        texts = [template.format(**item) for item in parts]
    except KeyError as error:
        raise ValueError(f"Template {template!r} needs the part {error.args[0]!r}, which a mention lacks.") from None
    field = sentence_before_mention(template)
    if not keep_mention or field is None:
        return texts
    budget = _max_length(tokenizer, max_length) - 2  # room left by the start and end tokens
    shortened = 0
    for index, item in enumerate(parts):
        if _num_tokens(tokenizer, texts[index]) > budget:
            texts[index] = _shorten_field(tokenizer, template, item, field, budget)
            shortened += 1
    if shortened:
        logger.warning(
            "%d of %d mention texts did not fit in %d tokens; their %s was shortened so that the mention is kept.",
            shortened,
            len(texts),
            budget + 2,
            field,
        )
    return texts


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


__all__ = ["fit_mention_texts", "prepare_images", "sentence_before_mention", "tokenize_texts"]
