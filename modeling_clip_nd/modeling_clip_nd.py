# Copyright 2025 The M3EL authors. Licensed under the Apache License, Version 2.0.
"""PyTorch CLIP-ND model: CLIP's towers, with the mention/entity embeddings, scores and loss of the M3EL paper.

CLIP-ND has exactly CLIP's parameters and cost; what makes it CLIP-ND is its training. `CLIPNDModel` therefore
subclasses `CLIPModel` (same module tree, same weight names) and only adds the mention-entity API.

This file travels to the Hub with the model: it imports only torch, transformers and its siblings (the
configuration, the loss and output in ``loss_clip_nd.py``, and the ``multimodal-entity-linking`` pipeline in
``pipeline_clip_nd.py``, imported so that ``save_pretrained`` copies it).

Missing images (empty image cells of the dataset) follow one rule everywhere: a missing image is a row of
``pixel_values`` that is entirely NaN, or that ``image_mask`` marks ``False``. It is never encoded, and its image
embedding is a row of NaN, so no blank image is ever passed off as a real one. The (I+T) embedding of such an
example follows ``config.missing_image_fallback``; the loss leaves NaN rows out.
"""

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import CLIPModel, PreTrainedConfig
from transformers.utils import logging

from .configuration_clip_nd import CLIPNDConfig
from .loss_clip_nd import CLIPNDOutput, clip_nd_contrastive_loss
from .pipeline_clip_nd import custom_pipelines_entry

logger = logging.get_logger(__name__)

DEFAULT_CLIP_CHECKPOINT = "openai/clip-vit-base-patch32"
"""The CLIP checkpoint that CLIP-ND starts from in the paper."""

FEATURE_INPUT_NAMES = ("input_ids", "attention_mask", "position_ids", "pixel_values", "image_mask")
"""Keys a mapping passed to `CLIPNDModel.get_features` or `CLIPNDModel.score` may hold."""

ZERO_SHOT_AUTO_CLASS = "AutoModelForZeroShotImageClassification"
"""CLIP-ND is also saved under this auto class, so the stock ``zero-shot-image-classification`` pipeline loads it."""

_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "proxies", "revision", "subfolder", "token")


class CLIPNDModel(CLIPModel):
    r"""
    CLIP-ND: CLIP (by default ViT-B/32) trained for multi-modal entity linking on M3EL.

    A mention is seen as text (Tm), image (Im) or both (ITm); a candidate entity as text (Te), image (Ie) or both
    (ITe). Every embedding is L2-normalised and lives in one space, so `score` handles all nine tasks with one
    cosine similarity (the paper's Eq. 1). Start from any CLIP checkpoint with `from_clip`.

    Example:

    ```python
    >>> from transformers import AutoModel, AutoProcessor

    >>> model = AutoModel.from_pretrained("<org>/clip_nd", trust_remote_code=True)
    >>> processor = AutoProcessor.from_pretrained("<org>/clip_nd", trust_remote_code=True)
    >>> mention = processor(text=["Paris is the capital of France"], return_tensors="pt")
    >>> candidates = processor(text=["Paris: capital of France", "Paris Hilton: American celebrity"],
    ...                        padding=True, return_tensors="pt")
    >>> scores = model.score(mention, candidates)  # shape (1, 2)
    ```"""

    config_class = CLIPNDConfig

    @classmethod
    def from_clip(cls, pretrained_model_name_or_path: str | Path = DEFAULT_CLIP_CHECKPOINT, **kwargs) -> "CLIPNDModel":
        """Load a CLIP checkpoint (Hub repo id or local folder) as a CLIP-ND model with identical weights.

        The CLIP config becomes a `CLIPNDConfig` with the paper's defaults; ``kwargs`` go to `from_pretrained`
        (``revision``, ``dtype``, ...). A CLIP-ND checkpoint is loaded as is.
        """
        hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
        config_dict, _ = PreTrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
        model_type = config_dict.get("model_type")
        if model_type == cls.config_class.model_type:
            return cls.from_pretrained(pretrained_model_name_or_path, **kwargs)
        if model_type != "clip":
            raise ValueError(
                f"{pretrained_model_name_or_path} holds a model of type {model_type!r}; from_clip converts CLIP "
                f"checkpoints (model_type 'clip'), e.g. {DEFAULT_CLIP_CHECKPOINT!r}."
            )
        config = cls.config_class.from_clip_config(config_dict)
        return cls.from_pretrained(pretrained_model_name_or_path, config=config, **kwargs)

    def get_input_embeddings(self) -> torch.nn.Module:
        """The text tower's token embeddings: what peft's `AutoPeftModel` and `resize_token_embeddings` ask for."""
        return self.text_model.embeddings.token_embedding

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.text_model.embeddings.token_embedding = value

    def get_logit_scale(self) -> torch.Tensor:
        """Return the inverse temperature ``exp(logit_scale)``, clamped at ``exp(config.logit_scale_max)``."""
        return self.logit_scale.clamp(max=self.config.logit_scale_max).exp()

    def _check_text_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        if not isinstance(input_ids, torch.Tensor) or input_ids.ndim != 2:
            raise ValueError(
                f"input_ids must be a 2-D tensor (batch, tokens), got {type(input_ids).__name__} of shape "
                f"{tuple(getattr(input_ids, 'shape', ()))}; tokenize with return_tensors='pt'."
            )
        if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
            raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}.")
        if input_ids.shape[0] == 0:
            raise ValueError("Got an empty batch of texts (input_ids of shape (0, ...)); pass at least one text.")
        max_tokens = self.config.text_config.max_position_embeddings
        if input_ids.shape[1] > max_tokens:
            raise ValueError(
                f"input_ids has {input_ids.shape[1]} tokens but CLIP-ND reads at most {max_tokens}; tokenize with "
                f"truncation=True, max_length={max_tokens} (processing_clip_nd.tokenize_texts warns when it cuts)."
            )
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids has shape "
                f"{tuple(input_ids.shape)}; pass both from the same tokenizer call."
            )

    def _check_pixel_values(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool) -> None:
        vision = self.config.vision_config
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4:
            raise ValueError(
                f"pixel_values must be a 4-D tensor (batch, channels, height, width), got "
                f"{type(pixel_values).__name__} of shape {tuple(getattr(pixel_values, 'shape', ()))}; use the "
                "CLIPProcessor saved with the model (or processing_clip_nd.prepare_images for missing images)."
            )
        if not pixel_values.dtype.is_floating_point:
            raise ValueError(
                f"pixel_values must be floating point (normalised by the CLIPProcessor), got dtype "
                f"{pixel_values.dtype}; raw uint8 images must go through the processor first."
            )
        if pixel_values.shape[0] == 0:
            raise ValueError("Got an empty batch of images (pixel_values of shape (0, ...)); pass at least one.")
        expected = (vision.num_channels, vision.image_size, vision.image_size)
        got = tuple(pixel_values.shape[1:])
        if got[0] != expected[0] or (got[1:] != expected[1:] and not interpolate_pos_encoding):
            raise ValueError(
                f"pixel_values has (channels, height, width) = {got} but this model takes {expected}; resize with "
                "the CLIPProcessor saved with the model, or pass interpolate_pos_encoding=True for other sizes."
            )

    @staticmethod
    def _image_mask(pixel_values: torch.Tensor, image_mask: torch.Tensor | None) -> torch.Tensor:
        """Return which rows of ``pixel_values`` hold a real image (see the module docstring)."""
        nan_pixels = torch.isnan(pixel_values).flatten(1)
        all_nan, any_nan = nan_pixels.all(dim=1), nan_pixels.any(dim=1)
        if image_mask is None:
            if (any_nan & ~all_nan).any():
                rows = (any_nan & ~all_nan).nonzero().flatten().tolist()
                raise ValueError(
                    f"pixel_values rows {rows} are partly NaN; a missing image must be entirely NaN (as "
                    "processing_clip_nd.prepare_images makes it) or be marked False in image_mask."
                )
            return ~all_nan
        if not isinstance(image_mask, torch.Tensor) or image_mask.dtype != torch.bool or image_mask.ndim != 1:
            raise ValueError(
                f"image_mask must be a 1-D boolean tensor (True for real images), got "
                f"{getattr(image_mask, 'dtype', type(image_mask).__name__)}."
            )
        if image_mask.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"image_mask has {image_mask.shape[0]} entries but pixel_values has {pixel_values.shape[0]} rows; "
                "give one entry per row."
            )
        image_mask = image_mask.to(pixel_values.device)
        if (image_mask & any_nan).any():
            rows = (image_mask & any_nan).nonzero().flatten().tolist()
            raise ValueError(f"pixel_values rows {rows} contain NaN but image_mask marks them as real images.")
        return image_mask

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Return L2-normalised text embeddings of shape `(batch, projection_dim)` (Tm or Te).

        Texts must be tokenized to at most `max_position_embeddings` (77) tokens: longer ``input_ids`` raise a
        ``ValueError`` instead of being cut silently (see `processing_clip_nd.tokenize_texts`).
        """
        self._check_text_inputs(input_ids, attention_mask)
        outputs = super().get_text_features(input_ids=input_ids, attention_mask=attention_mask,
                                            position_ids=position_ids, **kwargs)  # fmt: skip
        return F.normalize(outputs.pooler_output, dim=-1)

    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        image_mask: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        **kwargs,
    ) -> torch.Tensor:
        """Return L2-normalised image embeddings of shape `(batch, projection_dim)` (Im or Ie).

        Missing images (rows of ``pixel_values`` that are all NaN, or ``False`` in ``image_mask``) are skipped by
        the vision tower and get a NaN row, so that they can never be mistaken for a real image.
        """
        self._check_pixel_values(pixel_values, interpolate_pos_encoding)
        image_mask = self._image_mask(pixel_values, image_mask)
        dtype = self.visual_projection.weight.dtype
        embeds = pixel_values.new_full((pixel_values.shape[0], self.config.projection_dim), float("nan"), dtype=dtype)
        if not image_mask.any():
            logger.warning("Every image of this batch is missing; their image embeddings are NaN.")
            return embeds
        everything_present = bool(image_mask.all())
        pixels = pixel_values if everything_present else pixel_values[image_mask]
        present = self._encode_images(pixels, interpolate_pos_encoding, **kwargs)
        if everything_present:
            return present
        embeds[image_mask] = present
        return embeds

    def get_multimodal_features(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> torch.Tensor:
        """Return L2-normalised (I+T) embeddings ``normalize(w * image + (1 - w) * text)`` (ITm or ITe).

        ``w`` is `config.fusion_image_weight` (0.5: the normalised mean). An example whose image is missing gets
        its text embedding alone when `config.missing_image_fallback` is ``"text"`` (counted in one warning per
        batch), or a NaN row when it is ``"nan"``.
        """
        text = self.get_text_features(input_ids, attention_mask=attention_mask, position_ids=position_ids)
        image = self.get_image_features(pixel_values, image_mask=image_mask,
                                        interpolate_pos_encoding=interpolate_pos_encoding)  # fmt: skip
        if text.shape[0] != image.shape[0]:
            raise ValueError(
                f"Got {text.shape[0]} texts but {image.shape[0]} images; (I+T) embeddings need one image row per "
                "text (a missing image is a NaN row, see processing_clip_nd.prepare_images)."
            )
        missing = torch.isnan(image).any(dim=-1, keepdim=True)
        # Putting the text in place of a missing image makes the fused row exactly the text embedding, and keeps
        # NaN out of the graph so that it cannot reach the text tower's gradients.
        fused = self._fuse(text, torch.where(missing, text, image))
        if missing.any():
            count = int(missing.sum())
            if self.config.missing_image_fallback == "nan":
                return torch.where(missing, torch.full_like(fused, float("nan")), fused)
            logger.warning("%d of %d examples have no image: their (I+T) embedding is their text embedding alone.",
                           count, len(missing))  # fmt: skip
        return fused

    def _encode_images(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False, **kwargs):
        outputs = super().get_image_features(pixel_values=pixel_values,
                                             interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)  # fmt: skip
        return F.normalize(outputs.pooler_output, dim=-1)

    def _fuse(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        weight = self.config.fusion_image_weight
        return F.normalize(weight * image + (1.0 - weight) * text, dim=-1)

    def get_present_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`get_features` for a batch in which every image is present (no ``image_mask``, no NaN row), as a training
        collator builds it: shapes are checked, but the pixels are not scanned for missing images, so nothing waits
        for the device. An image that is missing must be left out by the caller (see the module docstring)."""
        if pixel_values is None:
            return self.get_text_features(input_ids, attention_mask=attention_mask)
        self._check_pixel_values(pixel_values, False)
        image = self._encode_images(pixel_values)
        if input_ids is None:
            return image
        text = self.get_text_features(input_ids, attention_mask=attention_mask)
        if text.shape[0] != image.shape[0]:
            raise ValueError(f"Got {text.shape[0]} texts but {image.shape[0]} images; pass one image per text.")
        return self._fuse(text, image)

    def get_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return L2-normalised embeddings of whatever is given: text, image, or both fused (I+T)."""
        if input_ids is None and pixel_values is None:
            raise ValueError("Pass input_ids (text), pixel_values (image) or both to embed a mention or an entity.")
        if pixel_values is None:
            if image_mask is not None:
                raise ValueError("image_mask was given without pixel_values; pass the images it describes.")
            return self.get_text_features(input_ids, attention_mask=attention_mask, position_ids=position_ids)
        if input_ids is None:
            return self.get_image_features(pixel_values, image_mask=image_mask)
        return self.get_multimodal_features(
            input_ids, pixel_values, attention_mask=attention_mask, image_mask=image_mask, position_ids=position_ids
        )

    def _as_embeddings(self, inputs: torch.Tensor | Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
        """Return normalised embeddings from precomputed embeddings or from a mapping of model inputs."""
        if isinstance(inputs, torch.Tensor):
            embeds = inputs.unsqueeze(0) if inputs.ndim == 1 else inputs
            if embeds.ndim != 2 or embeds.shape[-1] != self.config.projection_dim or embeds.shape[0] == 0:
                raise ValueError(
                    f"{name} embeddings must have shape (n >= 1, {self.config.projection_dim}), got "
                    f"{tuple(inputs.shape)}."
                )
            return F.normalize(embeds, dim=-1)
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(FEATURE_INPUT_NAMES))
            if unknown:
                raise ValueError(f"{name} has unexpected keys {unknown}; allowed keys are {FEATURE_INPUT_NAMES}.")
            return self.get_features(**inputs)
        raise ValueError(
            f"{name} must be a tensor of embeddings or a mapping of model inputs (e.g. a processor's output), got "
            f"{type(inputs).__name__}."
        )

    def score(
        self,
        mention: torch.Tensor | Mapping[str, torch.Tensor],
        candidates: torch.Tensor | Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        """Return the cosine similarities (the paper's Eq. 1) of shape `(num_mentions, num_candidates)`.

        Each side is either embeddings or a mapping of model inputs (e.g. a processor's output) holding text
        (``input_ids``), images (``pixel_values``, optional ``image_mask``) or both, so any of the nine tasks
        works. Scores involving a missing image are NaN: drop them or rank them last with
        ``scores.nan_to_num(nan=-float("inf"))``. Gradients flow; wrap evaluation in ``torch.inference_mode()``.
        """
        return self._as_embeddings(mention, "mention") @ self._as_embeddings(candidates, "candidates").T

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        entity_input_ids: torch.Tensor | None = None,
        entity_attention_mask: torch.Tensor | None = None,
        entity_pixel_values: torch.Tensor | None = None,
        entity_image_mask: torch.Tensor | None = None,
        return_loss: bool | None = None,
    ) -> CLIPNDOutput:
        r"""
        Embed mentions and their gold entities, score every mention against every entity, and optionally return
        the contrastive loss (`clip_nd_contrastive_loss`).

        Args:
            input_ids, attention_mask, pixel_values, image_mask:
                The mentions: text, image or both (see `get_features`).
            entity_input_ids, entity_attention_mask, entity_pixel_values, entity_image_mask:
                The entities, entity ``i`` being the gold entity of mention ``i`` (extra rows are hard negatives).
                If none is given, the mention text is matched with the image as in CLIP.
            return_loss (`bool`, *optional*):
                Whether to return the loss. Pairs with a missing image are left out of it.
        """
        entity_inputs = {"input_ids": entity_input_ids, "attention_mask": entity_attention_mask,
                         "pixel_values": entity_pixel_values, "image_mask": entity_image_mask}  # fmt: skip
        if all(value is None for value in entity_inputs.values()):
            if input_ids is None or pixel_values is None:
                raise ValueError(
                    "Pass entity inputs (entity_input_ids and/or entity_pixel_values), or both input_ids and "
                    "pixel_values to match texts with images as in CLIP."
                )
            mention_embeds = self.get_text_features(input_ids, attention_mask=attention_mask)
            entity_embeds = self.get_image_features(pixel_values, image_mask=image_mask)
        else:
            mention_embeds = self.get_features(
                input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values, image_mask=image_mask
            )
            entity_embeds = self.get_features(**entity_inputs)
        logit_scale = self.get_logit_scale()
        logits_per_mention = logit_scale * mention_embeds @ entity_embeds.T
        loss = clip_nd_contrastive_loss(mention_embeds, entity_embeds, logit_scale) if return_loss else None
        clip_mode = all(value is None for value in entity_inputs.values())
        return CLIPNDOutput(
            loss=loss,
            logits_per_mention=logits_per_mention,
            logits_per_entity=logits_per_mention.T,
            mention_embeds=mention_embeds,
            entity_embeds=entity_embeds,
            logit_scale=logit_scale,
            # CLIP's names, only where they mean what they mean in CLIP (texts matched with images).
            logits_per_text=logits_per_mention if clip_mode else None,
            logits_per_image=logits_per_mention.T if clip_mode else None,
        )

    def save_pretrained(self, save_directory: str | Path, *args, model_card: object | None = None, **kwargs):
        """Save as `PreTrainedModel.save_pretrained` does (safetensors, code files, ``auto_map``), plus a card.

        ``model_card`` (a `huggingface_hub.ModelCard` or its text, e.g. from
        ``m3el_benchmark.model_card.build_model_card``) is written to ``README.md`` first, so that ``push_to_hub=True``
        uploads it too.
        """
        if model_card is not None and kwargs.get("is_main_process", True):
            Path(save_directory).mkdir(parents=True, exist_ok=True)
            Path(save_directory, "README.md").write_text(str(model_card), encoding="utf-8")
        # The pipeline file is copied with the other code files (the relative import above); these two entries make
        # `pipeline("multimodal-entity-linking" or "zero-shot-image-classification", trust_remote_code=True)` load.
        self.config.custom_pipelines = custom_pipelines_entry()
        module = type(self).__module__.split(".")[-1]
        self.config.auto_map = {
            **(getattr(self.config, "auto_map", None) or {}),
            ZERO_SHOT_AUTO_CLASS: f"{module}.{type(self).__name__}",
        }
        return super().save_pretrained(save_directory, *args, **kwargs)


CLIPNDConfig.register_for_auto_class()
CLIPNDModel.register_for_auto_class("AutoModel")

# CLIPNDOutput and the loss live in loss_clip_nd.py; re-exported so that imports from this file keep working.
__all__ = ["CLIPNDModel", "CLIPNDOutput", "clip_nd_contrastive_loss"]
