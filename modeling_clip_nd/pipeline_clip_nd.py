# Copyright 2025 The M3EL authors. Licensed under the Apache License, Version 2.0.
"""The ``multimodal-entity-linking`` pipeline: rank a mention's candidate entities with CLIP-ND.

```python
>>> from transformers import pipeline

>>> linker = pipeline("multimodal-entity-linking", model="<org>/clip_nd", trust_remote_code=True)
>>> linker({"text": "Paris is the capital of France", "image": "paris.jpg"},
...        candidates=[{"name": "Paris", "description": "capital of France", "image": "city.jpg"},
...                    {"name": "Paris Hilton", "description": "American celebrity", "image": "hilton.jpg"}])
[{'score': 0.83, 'index': 0, 'name': 'Paris', ...}, {'score': 0.41, 'index': 1, 'name': 'Paris Hilton', ...}]
```

A mention is text, an image or both; its candidates are names/descriptions, images or both. A row of the M3EL
dataset (``text_<format>``, ``mention_image``, ``candidate_names``, ``candidate_descriptions``, ``candidate_images``)
is a mention with its candidates; a `datasets.Dataset` of such rows streams through ``batch_size`` rows at a time.
A side uses every modality it is given a key for: a key whose value is ``None`` (an empty image cell) is a missing
image, embedded as `CLIPNDModel` does (its (I+T) embedding follows ``config.missing_image_fallback``; an image-only
score with a missing image is NaN and ranked last).

This file travels to the Hub with the model (the modeling file imports it, so ``save_pretrained`` copies it and
writes ``custom_pipelines`` into config.json): it imports only torch, transformers and its sibling
``processing_clip_nd.py``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModel, Pipeline
from transformers.image_utils import load_image
from transformers.utils import logging

from .processing_clip_nd import prepare_images, tokenize_texts

logger = logging.get_logger(__name__)

PIPELINE_TASK = "multimodal-entity-linking"
"""The task name under which `CLIPNDLinkingPipeline` is registered and saved."""

DEFAULT_TEXT_FORMAT = "M-S1"
"""The mention text column read from a dataset row (``text_M-S1``) unless ``text_format`` says otherwise."""

MODALITIES = ("text", "image")

# The entity text Te of the M3EL dataset. The dataset library owns this rule (m3el_dataset.text_formats.entity_text),
# but Hub code cannot import it: this copy must stay identical (tests/test_clip_nd_pipeline.py checks that they agree).
ENTITY_TEXT_TEMPLATE = "{name}: {description}"


def entity_text(name: str | None, description: str | None) -> str:
    """``"{name}: {description}"``, or the name (or description) alone when the other is empty (spaces collapsed)."""
    name, description = " ".join((name or "").split()), " ".join((description or "").split())
    if name and description:
        return ENTITY_TEXT_TEMPLATE.format(name=name, description=description)
    return name or description


@dataclass
class LinkingSide:
    """Texts and/or images of one side (a mention, or a mention's candidates); ``None`` for an unused modality."""

    texts: list[str] | None = None
    images: list[Any] | None = None

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(
            name for name, value in zip(MODALITIES, (self.texts, self.images), strict=True) if value is not None
        )


@dataclass
class LinkingExample:
    """One mention (a side of one item) with its candidates (a side of K items) and what to report for each."""

    mention: LinkingSide
    candidates: LinkingSide
    candidate_info: list[dict[str, Any]] = field(default_factory=list)


def _load_images(images: Sequence, where: str) -> list:
    """Load paths, URLs and PIL images (``None`` stays ``None``: a missing image)."""
    try:
        return [None if image is None else load_image(image) for image in images]
    except (ValueError, TypeError, OSError) as error:
        raise ValueError(f"Could not load an image of {where}: {error}") from error


def _pick(side: LinkingSide, modalities: Sequence[str] | str | None, where: str) -> LinkingSide:
    """Keep the modalities asked for (all that are given by default); asking for one not given is an error."""
    if modalities is None:
        return side
    wanted = {modalities} if isinstance(modalities, str) else set(modalities)
    unknown, absent = wanted - set(MODALITIES), wanted - set(side.modalities)
    if unknown or absent or not wanted:
        raise ValueError(
            f"{where}_modalities={modalities!r} is not a non-empty subset of the modalities given for the {where}, "
            f"{side.modalities}; pass 'text', 'image' or ('text', 'image')."
        )
    return LinkingSide(
        texts=side.texts if "text" in wanted else None, images=side.images if "image" in wanted else None
    )


def _mention_side(inputs: Any, text_format: str) -> LinkingSide:
    """A mention from a string (text), an image, or a mapping (``text``/``image`` or a dataset row)."""
    if isinstance(inputs, str):
        return LinkingSide(texts=[inputs])
    if not isinstance(inputs, Mapping):
        return LinkingSide(images=_load_images([inputs], "the mention"))
    text_key = next((key for key in ("text", f"text_{text_format}") if key in inputs), None)
    image_key = next((key for key in ("image", "mention_image") if key in inputs), None)
    if text_key is None and image_key is None:
        raise ValueError(
            f"The mention has neither text nor image: got keys {sorted(inputs)}; pass 'text' and/or 'image', or a "
            f"dataset row with 'text_{text_format}' (choose the column with text_format=) and/or 'mention_image'."
        )
    text = None if text_key is None else inputs[text_key]
    if text_key is not None and not isinstance(text, str):
        raise ValueError(f"The mention's {text_key!r} must be a string, got {type(text).__name__}.")
    return LinkingSide(
        texts=None if text_key is None else [text],
        images=None if image_key is None else _load_images([inputs[image_key]], "the mention"),
    )


def _candidate_items(inputs: Any, candidates: Sequence | None) -> list[dict[str, Any]]:
    """The candidates as dicts with some of ``name``, ``description``, ``image`` (and ``qid`` for dataset rows)."""
    if candidates is None and isinstance(inputs, Mapping):
        candidates = inputs.get("candidates")
    if candidates is not None:
        items = []
        for candidate in candidates:
            if isinstance(candidate, str):
                items.append({"name": candidate})
            elif isinstance(candidate, Mapping):
                items.append(dict(candidate))
            else:  # an image alone
                items.append({"image": candidate})
        return items
    columns = ("candidate_names", "candidate_descriptions", "candidate_images", "candidate_qids")
    keys = ("name", "description", "image", "qid")
    given = {
        key: inputs[column]
        for column, key in zip(columns, keys, strict=True)
        if isinstance(inputs, Mapping) and column in inputs
    }
    if not {"name", "image"} & set(given):
        raise ValueError(
            "No candidates: pass candidates=[...] (names, {'name', 'description', 'image'} dicts or images), or a "
            "mapping with 'candidates' or the dataset columns 'candidate_names'/'candidate_images'."
        )
    counts = {key: len(values) for key, values in given.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"The candidate columns have different lengths {counts}; give one value per candidate.")
    return [dict(zip(given, values, strict=True)) for values in zip(*given.values(), strict=True)]


def _candidate_side(items: list[dict[str, Any]]) -> LinkingSide:
    if not items:
        raise ValueError("Got no candidate to rank; pass at least one.")
    with_text = any("name" in item or "description" in item for item in items)
    with_image = any("image" in item for item in items)
    texts = [entity_text(item.get("name"), item.get("description")) for item in items] if with_text else None
    images = _load_images([item.get("image") for item in items], "a candidate") if with_image else None
    return LinkingSide(texts=texts, images=images)


class CLIPNDLinkingPipeline(Pipeline):
    r"""
    Multi-modal entity linking pipeline: embeds a mention and its candidates with CLIP-ND and returns the candidates
    ranked by cosine similarity (the M3EL paper's Eq. 1), best first, as dicts with ``score``, ``index`` (position
    among the candidates given) and what was given of ``name``, ``description`` and ``qid``.

    Call it with a mention (a string, an image, a mapping with ``text`` and/or ``image``, or a dataset row) and
    ``candidates`` (a list of names, images or ``{"name", "description", "image"}`` dicts; a row brings its own),
    or with a list, generator or `datasets.Dataset` of such mappings. Parameters:

        candidates (`list`, *optional*): The candidates of every mention of this call.
        text_format (`str`, *optional*, defaults to `"M-S1"`): Which ``text_<format>`` column of a row to read.
        mention_modalities, candidate_modalities (`str` or `tuple`, *optional*): Use only ``"text"`` or
            ``"image"`` of each side (all given modalities by default).
        top_k (`int`, *optional*): Return only the best ``top_k`` candidates.
        batch_size (`int`, *optional*): Mentions embedded together (with all their candidates).
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = True

    def __call__(self, inputs, **kwargs):
        """Rank the candidates of one mention, or of each mention of a list, generator or `datasets.Dataset`."""
        if hasattr(inputs, "column_names") and hasattr(inputs, "__iter__"):
            # A `datasets.Dataset` is no torch Dataset: stream its rows (decoded images included) as a generator.
            inputs = (row for row in inputs)
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self, candidates=None, text_format=None, mention_modalities=None, candidate_modalities=None, top_k=None
    ):
        preprocess = {"text_format": text_format or DEFAULT_TEXT_FORMAT}
        if candidates is not None:
            preprocess["candidates"] = candidates
        preprocess["mention_modalities"] = mention_modalities
        preprocess["candidate_modalities"] = candidate_modalities
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k={top_k!r} is not a positive integer.")
        return preprocess, {}, {"top_k": top_k}

    def preprocess(
        self,
        inputs,
        candidates=None,
        text_format=DEFAULT_TEXT_FORMAT,
        mention_modalities=None,
        candidate_modalities=None,
    ) -> dict[str, LinkingExample]:
        items = _candidate_items(inputs, candidates)
        info = [{key: item[key] for key in ("name", "description", "qid") if key in item} for item in items]
        example = LinkingExample(
            mention=_pick(_mention_side(inputs, text_format), mention_modalities, "mention"),
            candidates=_pick(_candidate_side(items), candidate_modalities, "candidate"),
            candidate_info=info,
        )
        return {"example": example}

    def _embed(self, sides: list[LinkingSide]) -> list[torch.Tensor]:
        """Embed sides in as few model calls as possible: one per combination of modalities."""
        embeds: list[torch.Tensor | None] = [None] * len(sides)
        for modalities in {side.modalities for side in sides}:
            group = [index for index, side in enumerate(sides) if side.modalities == modalities]
            inputs = {}
            if "text" in modalities:
                texts = [text for index in group for text in sides[index].texts]
                inputs.update(tokenize_texts(self.tokenizer, texts).to(self.device))
            if "image" in modalities:
                images = prepare_images(
                    self.image_processor, [image for index in group for image in sides[index].images]
                )
                inputs["pixel_values"] = images["pixel_values"].to(self.device, self.dtype)
                inputs["image_mask"] = images["image_mask"].to(self.device)
            features = self.model.get_features(**inputs)
            sizes = [len(sides[index].texts if "text" in modalities else sides[index].images) for index in group]
            for index, rows in zip(group, features.split(sizes), strict=True):
                embeds[index] = rows
        return embeds

    def _forward(self, model_inputs: dict) -> dict[str, Any]:
        # With batch_size > 1, `example` is a list (the pipeline's collation) and the outputs are lists that the
        # pipeline's iterator unbatches; with batch_size 1 it is one example and so are the outputs.
        batched = isinstance(model_inputs["example"], list)
        examples = model_inputs["example"] if batched else [model_inputs["example"]]
        mentions = self._embed([example.mention for example in examples])
        candidates = self._embed([example.candidates for example in examples])
        pairs = zip(mentions, candidates, strict=True)
        scores = [(mention @ entities.T).reshape(-1).float() for mention, entities in pairs]
        return {"scores": scores, "example": examples} if batched else {"scores": scores[0], "example": examples[0]}

    def postprocess(self, model_outputs: dict, top_k: int | None = None) -> list[dict[str, Any]]:
        scores = model_outputs["scores"].reshape(-1).tolist()
        info = model_outputs["example"].candidate_info
        # NaN scores (an image-only score with a missing image) rank last: a missing image never wins.
        order = sorted(range(len(scores)), key=lambda index: (scores[index] != scores[index], -scores[index]))
        ranked = [{"score": scores[index], "index": index, **info[index]} for index in order]
        return ranked[:top_k] if top_k is not None else ranked


def custom_pipelines_entry() -> dict[str, dict]:
    """The ``custom_pipelines`` entry of config.json that lets `transformers.pipeline` load this pipeline."""
    module = CLIPNDLinkingPipeline.__module__.split(".")[-1]
    return {
        PIPELINE_TASK: {
            "impl": f"{module}.{CLIPNDLinkingPipeline.__name__}",
            "pt": ("AutoModel",),
            "type": "multimodal",
        }
    }


def register_pipeline() -> None:
    """Register the task with transformers' `PIPELINE_REGISTRY` (for models already in memory), once."""
    from transformers.pipelines import PIPELINE_REGISTRY

    if PIPELINE_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            PIPELINE_TASK, pipeline_class=CLIPNDLinkingPipeline, pt_model=AutoModel, type="multimodal"
        )


__all__ = ["PIPELINE_TASK", "CLIPNDLinkingPipeline", "custom_pipelines_entry", "entity_text", "register_pipeline"]
