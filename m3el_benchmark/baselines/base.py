"""The interface every baseline adapter implements: normalised text, image and (I+T) embeddings of one model.

An adapter turns raw inputs into model inputs (``collate_*``, which run in DataLoader workers) and model inputs
into embeddings (``encode_*``). Every embedding has shape ``(batch, num_vectors, dim)``, L2-normalised on the last
axis: one vector for most models, one per query token for BLIP-2. Two embeddings are compared by the maximum dot
product over their vectors (`similarity`), which is the cosine similarity when each has one vector.

Every model fuses an (I+T) side the same way by default, ``fusion = "mean"``: the normalised weighted mean of its
text and image embeddings, computed from the cached unimodal embeddings without another encoder pass
(`fuse_mean`), so that a fused vector lives in the space of the text and image vectors it is compared with; the
image's weight is `EmbeddingAdapter.image_weight` (0.5, or CLIP-ND's ``config.fusion_image_weight``). A model with
its own multimodal encoder (FLAVA) may instead fuse by it (``fusion = "multimodal-encoder"``, a named option of the
run, see `AdapterOptions`); that encoder's vectors live in a space of their own, so the benchmark uses them only in
tasks whose two sides are both (I+T) (ITm-ITe) and fuses by the mean elsewhere.

Every model reads its texts the same way (`AdapterOptions`, one setting per run): cut at the end at the model's
own text length (`EmbeddingAdapter.native_text_length`, unless the run overrides it), counted in one warning per
batch (`truncate_texts`); with ``keep_mention`` the mention texts of the ``-M`` formats are first fitted so that the
mention survives the cut (`EmbeddingAdapter.mention_texts`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from m3el_dataset.text_formats import fit_mention_texts, sentence_before_mention

logger = logging.getLogger(__name__)

FUSION_MEAN = "mean"
FUSION_MULTIMODAL_ENCODER = "multimodal-encoder"
FUSIONS = (FUSION_MEAN, FUSION_MULTIMODAL_ENCODER)

NO_TOKENIZER_LIMIT = 1_000_000
"""A tokenizer's ``model_max_length`` at or above this is transformers' "no limit set" placeholder, not a length."""


@dataclass(frozen=True)
class AdapterOptions:
    """How a run asks a model to read its inputs.

    Args:
        keep_mention (`bool`, *optional*, defaults to `False`):
            Fit the mention texts of the ``-M`` formats so that the mention survives truncation
            (`m3el_dataset.text_formats.fit_mention_texts`): a run sets it for every model or for none.
            `False` cuts every text at the end, as the paper did.
        text_tokens (`int`, *optional*):
            Text length in tokens (special tokens included) instead of the model's own
            (`EmbeddingAdapter.native_text_length`); at most the text tower's position embeddings.
        fusion (`str`, *optional*):
            ``"mean"`` or ``"multimodal-encoder"``; `None` is the mean. Only an adapter with a pair encoder
            (FLAVA) accepts ``"multimodal-encoder"``.
    """

    keep_mention: bool = False
    text_tokens: int | None = None
    fusion: str | None = None


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
    text_tokens: int | None = None
    """Text length the model read, special tokens included (`EmbeddingAdapter.text_context`)."""
    text_tokens_source: str = ""
    """Where `text_tokens` comes from: a config field, the tokenizer, the processor, or the run's override."""


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
        options (`AdapterOptions`, *optional*): how the run asks every model to read its inputs; the adapter
            records the text length and fusion it uses in ``self.info``.
    """

    family: str = "base"
    pair_encoder: bool = False
    """Whether the model has its own multimodal encoder for (text, image) pairs (``encode_pairs``)."""
    text_padding: str = "longest"
    """``"longest"``, or ``"max_length"`` for models trained on padded texts (SigLIP, OWL-ViT)."""
    text_tower_config: str = "text_config"
    """The sub-config of the text tower, whose ``max_position_embeddings`` bounds a text (BLIP-2: the Q-Former's)."""
    supported_tasks: tuple[str, ...] | None = None
    supported_text_formats: tuple[str, ...] | None = None
    """The tasks and mention text formats a model can be scored on (`None`: all); run.py refuses the others."""

    def __init__(self, model: torch.nn.Module, processor: Any, info: ModelInfo, options: AdapterOptions | None = None):
        self.model = model
        self.processor = processor
        self.options = options or AdapterOptions()
        self.fusion = self._check_fusion(self.options.fusion or FUSION_MEAN, info)
        self.text_context, source = self._text_length(info)
        self.info = replace(info, fusion=self.fusion_description, text_tokens=self.text_context,
                            text_tokens_source=source)  # fmt: skip

    def _check_fusion(self, fusion: str, info: ModelInfo) -> str:
        if fusion not in FUSIONS:
            raise ValueError(f"Model {info.name!r}: unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}.")
        if fusion == FUSION_MULTIMODAL_ENCODER and not self.pair_encoder:
            raise ValueError(
                f"Model {info.name!r} ({info.model_type}) has no multimodal encoder of its own, so it cannot fuse "
                f"with {FUSION_MULTIMODAL_ENCODER!r}; drop the '#{FUSION_MULTIMODAL_ENCODER}' from its name."
            )
        return fusion

    @property
    def fusion_description(self) -> str:
        """How (I+T) sides are fused, as the results and the work table say it."""
        if self.fusion == FUSION_MULTIMODAL_ENCODER:
            return f"{FUSION_MULTIMODAL_ENCODER} (ITm-ITe; mean elsewhere)"
        weight = self.image_weight
        return FUSION_MEAN if weight == 0.5 else f"weighted mean (w={weight:g})"

    def native_text_length(self) -> tuple[int, str]:
        """The model's own text length in tokens (special tokens included), and where it comes from.

        The smallest of: the text tower's position embeddings (``config.<text_tower_config>.max_position_embeddings``:
        CLIP 77, FLAVA 512, BLIP-2's Q-Former 512, SigLIP 64, OWL-ViT 16), the tokenizer's ``model_max_length`` when
        it sets one, and the ``max_length`` its processor class applies by default (transformers'
        ``ProcessorMixin.text_kwargs``: ALIGN's processor pads and cuts at 64, the length ALIGN was trained on,
        though its BERT tower has 512 positions). On a tie the config is named.
        """
        limits = [(self.max_text_positions(), f"config.{self.text_tower_config}.max_position_embeddings")]
        model_max_length = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(model_max_length, int) and 0 < model_max_length < NO_TOKENIZER_LIMIT:
            limits.append((model_max_length, "tokenizer.model_max_length"))
        processor_defaults = getattr(type(self.processor), "text_kwargs", None)
        processor_length = processor_defaults.get("max_length") if isinstance(processor_defaults, dict) else None
        if isinstance(processor_length, int):
            limits.append((processor_length, f"{type(self.processor).__name__}.text_kwargs['max_length']"))
        return min(limits, key=lambda limit: limit[0])

    def max_text_positions(self) -> int:
        """The text tower's position embeddings: no text can be longer."""
        return int(getattr(self.model.config, self.text_tower_config).max_position_embeddings)

    def _text_length(self, info: ModelInfo) -> tuple[int, str]:
        override = self.options.text_tokens
        if override is None:
            return self.native_text_length()
        limit = self.max_text_positions()
        if not 3 <= override <= limit:
            raise ValueError(
                f"Model {info.name!r}: text length {override} is outside 3..{limit} (its text tower has {limit} "
                "positions); set its entry of text_tokens within that range, or remove it to use the model's own."
            )
        return override, "run config (text_tokens)"

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

    def collate_texts(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize a batch of texts (padded, truncated to `text_context` with one warning per batch)."""
        return truncate_texts(self.tokenizer, texts, self.text_context, self.text_padding, self.info.name)

    def mention_texts(
        self, text_format: str, texts: Sequence[str], parts: Sequence[Mapping[str, str]]
    ) -> list[str] | None:
        """The mention texts of ``text_format`` as this model reads them, given the dataset's ``texts`` and each
        mention's parts (``M``, ``S``, ``S1``, ``D``).

        With ``options.keep_mention``, the texts of the ``-M`` formats that do not fit `text_context` have their
        sentence shortened first so that the mention is kept (`fit_mention_texts`, the same rule for every model);
        ``None`` otherwise: the dataset's texts as they are, cut at the end by `collate_texts`.
        """
        if not self.options.keep_mention or sentence_before_mention(text_format) is None:
            return None
        return fit_mention_texts(self.tokenizer, text_format, texts, parts, self.text_context)

    def collate_images(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """Process a batch of decoded RGB images into ``pixel_values``."""
        return {"pixel_values": self.image_processor(images=list(images), return_tensors="pt")["pixel_values"]}

    def collate_pairs(self, texts: Sequence[str], images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """Model inputs of (text, image) pairs; only for adapters with a pair encoder."""
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
