"""FLAVA (``facebook/flava-full``): unimodal encoders plus its own multimodal encoder for (I+T).

Text and image embeddings are the projected [CLS] states of ``get_text_features``/``get_image_features`` (whose
``pooler_output`` holds every token's projection in transformers 5). An (I+T) embedding is the [CLS] state of the
multimodal encoder over the pair, so FLAVA encodes each unique (text, image) pair once more.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .base import FUSION_MULTIMODAL_ENCODER, EmbeddingAdapter, ModelInfo, normalise, pooled


class FlavaAdapter(EmbeddingAdapter):
    """`FlavaModel` with fusion by its multimodal encoder; texts read at 77 tokens as in FLAVA's examples."""

    family = "flava"
    fusion = FUSION_MULTIMODAL_ENCODER
    max_text_tokens = 77

    def __init__(self, model: torch.nn.Module, processor, info: ModelInfo):
        super().__init__(model, processor, info)
        config = model.config
        if config.multimodal_config.hidden_size != config.projection_dim:
            raise ValueError(
                f"FLAVA model {info.source} has multimodal hidden size {config.multimodal_config.hidden_size} but "
                f"projection size {config.projection_dim}; (I+T) embeddings must be comparable with text and image "
                "embeddings, so both sizes must be equal (they are in facebook/flava-full)."
            )

    @torch.inference_mode()
    def encode_texts(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return normalise(pooled(self.model.get_text_features(**self._to_device(batch)))[:, 0])

    @torch.inference_mode()
    def encode_images(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return normalise(pooled(self.model.get_image_features(**self._to_device(batch)))[:, 0])

    @torch.inference_mode()
    def encode_pairs(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        outputs = self.model(**self._to_device(batch), return_dict=True)
        return normalise(outputs.multimodal_embeddings[:, 0])
