"""Dual encoders with a text tower and an image tower in one space: CLIP, CLIP-ND, ALIGN, OWL-ViT and SigLIP.

They share one adapter: ``get_text_features``/``get_image_features`` (a tensor for CLIP-ND, an output object whose
``pooler_output`` is the projected embedding in transformers 5), normalised. They differ only in how texts are
padded, which the subclasses declare; each reads texts of its own length (`EmbeddingAdapter.native_text_length`).
(I+T) is the normalised mean of the two embeddings, except for CLIP-ND, whose image weight is its
``config.fusion_image_weight``. Texts are prepared alike for all of them, CLIP-ND included (`EmbeddingAdapter`), so
that an untrained CLIP-ND scores exactly as the CLIP it was made from.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .base import EmbeddingAdapter, normalise, pooled


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
    """OpenAI CLIP (``openai/clip-vit-base-patch32``): 77-token texts (``text_config.max_position_embeddings``)."""

    family = "clip"


class CLIPNDAdapter(DualEncoderAdapter):
    """CLIP-ND: CLIP's towers trained on M3EL; its feature methods already return normalised tensors.

    Its (I+T) side weighs the image by ``config.fusion_image_weight``, as ``CLIPNDModel.get_multimodal_features``
    does; everything else is CLIP's, texts included (77 tokens, cut at the end unless the run keeps mentions).
    """

    family = "clip-nd"

    @property
    def image_weight(self) -> float:
        return float(self.model.config.fusion_image_weight)


class ALIGNAdapter(DualEncoderAdapter):
    """ALIGN (``kakaobrain/align-base``): a BERT text tower of 512 positions, read at the 64 tokens its processor
    (``AlignProcessor.text_kwargs``) cuts at, the length ALIGN was trained on."""

    family = "align"


class OwlViTAdapter(DualEncoderAdapter):
    """OWL-ViT (``google/owlvit-base-patch32``): its CLIP backbone, whose texts are 16 tokens long
    (``text_config.max_position_embeddings``), padded to that length as its processor does."""

    family = "owlvit"
    text_padding = "max_length"


class SiglipAdapter(DualEncoderAdapter):
    """SigLIP (``google/siglip-base-patch16-224``): texts padded to its 64 tokens
    (``text_config.max_position_embeddings``), as it was trained."""

    family = "siglip"
    text_padding = "max_length"
