"""BLIP-2 (``Salesforce/blip2-itm-vit-g``) through `Blip2ForImageTextRetrieval`, contrastive branch only.

The ITM head is not used: it scores one (image, text) pair per forward pass, which would need a pass per
mention-candidate pair instead of one per unique input. As in the model's own contrastive scores, an image is
embedded as one vector per Q-Former query token and a text as its [CLS] vector; `similarity` takes the maximum
over the query tokens. (I+T) is the normalised mean of the text vector with each query vector.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .base import EmbeddingAdapter, normalise


class Blip2Adapter(EmbeddingAdapter):
    """`Blip2ForImageTextRetrieval` seen as a text encoder (Q-Former text branch) and a query-token image encoder."""

    family = "blip-2"
    text_tower_config = "qformer_config"
    """Texts go through the Q-Former: its 512 position embeddings (and the BERT tokenizer's 512) bound them. The 35
    tokens of BLIP-2's retrieval training, which this adapter used to cut at, lose the mention of most S-M texts; a
    run can still ask for them (``text_tokens: ["BLIP-2=35"]``)."""

    @property
    def dtype(self) -> torch.dtype:
        return self.model.vision_model.embeddings.patch_embedding.weight.dtype

    @torch.inference_mode()
    def encode_texts(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        batch = self._to_device(batch)
        model = self.model
        embeds = model.embeddings(input_ids=batch["input_ids"])
        states = model.qformer(
            query_embeds=embeds, query_length=0, attention_mask=batch["attention_mask"], return_dict=True
        ).last_hidden_state
        return normalise(model.text_projection(states[:, 0, :].to(model.text_projection.weight.dtype)))

    @torch.inference_mode()
    def encode_images(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        model = self.model
        pixels = self._to_device(batch)["pixel_values"]
        image_states = model.vision_model(pixel_values=pixels, return_dict=True).last_hidden_state
        image_states = image_states.to(model.query_tokens.dtype)
        image_mask = torch.ones(image_states.shape[:-1], dtype=torch.long, device=image_states.device)
        queries = model.qformer(
            query_embeds=model.query_tokens.expand(image_states.shape[0], -1, -1),
            encoder_hidden_states=image_states,
            encoder_attention_mask=image_mask,
            return_dict=True,
        ).last_hidden_state
        return normalise(model.vision_projection(queries.to(model.vision_projection.weight.dtype)))
