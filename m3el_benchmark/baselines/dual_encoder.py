"""Dual encoders with a text tower and an image tower in one space: CLIP, CLIP-ND, ALIGN, OWL-ViT and SigLIP.

They share one adapter: ``get_text_features``/``get_image_features`` (a tensor for CLIP-ND, an output object whose
``pooler_output`` is the projected embedding in transformers 5), normalised. They differ only in how texts are
tokenized, which the subclasses declare. (I+T) is the normalised mean of the two embeddings, except for CLIP-ND,
whose image weight is its ``config.fusion_image_weight``. CLIP-ND also reads its texts as it was trained: mention
texts of the ``-M`` formats fitted by ``m3el_dataset.text_formats.fit_mention_texts`` (the sentence of a text that
does not fit is shortened so that the mention at its end is kept) and tokenized by
``modeling_clip_nd.tokenize_texts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch

from m3el_dataset.text_formats import fit_mention_texts, sentence_before_mention

from .base import EmbeddingAdapter, ModelInfo, normalise, pooled


class DualEncoderAdapter(EmbeddingAdapter):
    """A model with ``get_text_features`` and ``get_image_features`` returning one vector per input."""

    family = "dual-encoder"

    @torch.inference_mode()
    def encode_texts(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return normalise(pooled(self.model.get_text_features(**self._to_device(batch))))

    @torch.inference_mode()
    def encode_images(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        batch = self._to_device(batch)
        return normalise(pooled(self.model.get_image_features(pixel_values=batch["pixel_values"])))


class CLIPAdapter(DualEncoderAdapter):
    """OpenAI CLIP (``openai/clip-vit-base-patch32``): 77-token texts, EOS pooling."""

    family = "clip"


class CLIPNDAdapter(DualEncoderAdapter):
    """CLIP-ND: CLIP's towers trained on M3EL; its feature methods already return normalised tensors.

    It embeds as ``CLIPNDModel`` does: (I+T) weighs the image by ``config.fusion_image_weight`` (recorded in
    ``info.fusion``), and texts are prepared as in training (`mention_texts`, `collate_texts`).
    """

    family = "clip-nd"

    def __init__(self, model: torch.nn.Module, processor, info: ModelInfo):
        super().__init__(model, processor, info)
        self.info = replace(info, fusion=f"weighted mean (w={self.image_weight:g})")

    @property
    def image_weight(self) -> float:
        return float(self.model.config.fusion_image_weight)

    def mention_texts(
        self, text_format: str, texts: Sequence[str], parts: Sequence[Mapping[str, str]]
    ) -> list[str] | None:
        """Texts of the ``-M`` formats, those too long with their sentence shortened first so that the mention is
        kept (as in training, ``keep_mention=True``); ``None`` for formats that start with the mention."""
        if sentence_before_mention(text_format) is None:
            return None
        return fit_mention_texts(self.processor, text_format, texts, parts, self.text_context)

    def collate_texts(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        from modeling_clip_nd import tokenize_texts

        encoded = tokenize_texts(self.processor, texts, max_length=self.text_context)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


class ALIGNAdapter(DualEncoderAdapter):
    """ALIGN (``kakaobrain/align-base``): BERT text tower read at 64 tokens, as its processor does."""

    family = "align"
    max_text_tokens = 64


class OwlViTAdapter(DualEncoderAdapter):
    """OWL-ViT (``google/owlvit-base-patch32``): its CLIP backbone, whose texts are 16 tokens long."""

    family = "owlvit"
    text_padding = "max_length"


class SiglipAdapter(DualEncoderAdapter):
    """SigLIP (``google/siglip-base-patch16-224``): texts padded to 64 tokens, as it was trained."""

    family = "siglip"
    text_padding = "max_length"
