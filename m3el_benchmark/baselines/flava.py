"""FLAVA (``facebook/flava-full``): unimodal encoders in one projected space, plus its own multimodal encoder.

Text and image embeddings are the projected [CLS] states of ``get_text_features``/``get_image_features`` (whose
``pooler_output`` holds every token's projection in transformers 5), in the space of FLAVA's contrastive loss.
By default an (I+T) side is fused like every other dual encoder's: the normalised mean of those two projected
embeddings, so ITm-Te compares it by cosine with projected text vectors, in one space.

The multimodal encoder's [CLS] state over a (text, image) pair lives in a space of its own (it is never projected
into the contrastive space), so it is only comparable with another such state. It is a named option
(``AdapterOptions(fusion="multimodal-encoder")``, the registry's ``FLAVA-MM``) used only where both sides of a
task are (I+T) (ITm-ITe); FLAVA then encodes each unique (text, image) pair of those sides once more.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .base import EmbeddingAdapter, normalise, pooled


class FlavaAdapter(EmbeddingAdapter):
    """`FlavaModel`: texts read at its 512 text positions (``text_config.max_position_embeddings``), (I+T) by the
    normalised mean, or by its multimodal encoder on ITm-ITe when the run names that fusion."""

    family = "flava"
    pair_encoder = True

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
