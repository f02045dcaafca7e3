"""Dual encoders with a text tower and an image tower in one space: CLIP, CLIP-ND, ALIGN, OWL-ViT and SigLIP.

They share one adapter: ``get_text_features``/``get_image_features`` (a tensor for CLIP-ND, an output object whose
``pooler_output`` is the projected embedding in transformers 5), normalised. They differ only in how texts are
tokenized, which the subclasses declare. (I+T) is the normalised mean of the two embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .base import EmbeddingAdapter, normalise, pooled


class DualEncoderAdapter(EmbeddingAdapter):
    """A model with ``get_text_features`` and ``get_image_features`` returning one vector per input.

    Class attributes:
        text_padding (`str`): ``"longest"``, or ``"max_length"`` for models trained on padded texts (SigLIP).
        max_text_tokens (`int`, *optional*): text context; defaults to the text config's position embeddings.
    """

    family = "dual-encoder"
    text_padding: str = "longest"
    max_text_tokens: int | None = None

    @property
    def text_context(self) -> int:
        if self.max_text_tokens is not None:
            return self.max_text_tokens
        return self.model.config.text_config.max_position_embeddings

    def collate_texts(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            list(texts),
            padding=self.text_padding,
            truncation=True,
            max_length=self.text_context,
            return_tensors="pt",
        )
        return {key: value for key, value in encoded.items() if key in ("input_ids", "attention_mask")}

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
    """CLIP-ND: CLIP's towers trained on M3EL; its feature methods already return normalised tensors."""

    family = "clip-nd"


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
