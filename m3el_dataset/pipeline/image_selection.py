"""Which of an entity's images to keep: the first one that downloads, or the one CLIP finds most relevant.

The CLIP filter works with any CLIP-compatible checkpoint that ``AutoModel``/``AutoProcessor`` load and that has
``get_text_features``/``get_image_features`` (CLIP, SigLIP, the CLIP-ND model, …).
"""

from __future__ import annotations

import logging
from typing import Protocol

from PIL import Image

logger = logging.getLogger(__name__)


class ImageSelector(Protocol):
    """Returns the index of the image of ``images`` to keep for an entity described by ``text``."""

    name: str
    needs_all: bool
    """Whether every image of the entity must be downloaded first (else the first good one is kept)."""

    def select(self, text: str, images: list[Image.Image]) -> int: ...


class FirstImageSelector:
    """The default: keep the first image (Wikidata's preferred P18 value) that passes the checks."""

    name = "first"
    needs_all = False

    def select(self, text: str, images: list[Image.Image]) -> int:
        return 0


class ClipImageSelector:
    """Keep the image whose CLIP embedding is most similar to the entity text.

    Args:
        model_name_or_path (`str`): a CLIP-compatible model, loaded on first use.
        device (`str`, *optional*, defaults to `"cpu"`): where the model runs.
    """

    name = "clip"
    needs_all = True

    def __init__(self, model_name_or_path: str, device: str = "cpu") -> None:
        self.model_name_or_path = model_name_or_path
        self.device = device
        self._model = None
        self._processor = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoProcessor  # heavy: only when the filter is used

        self._processor = AutoProcessor.from_pretrained(self.model_name_or_path)
        self._model = AutoModel.from_pretrained(self.model_name_or_path).to(self.device).eval()

    def scores(self, text: str, images: list[Image.Image]):
        """Cosine similarity of ``text`` with each image, as a 1-D tensor."""
        import torch

        if self._model is None:
            self._load()
        inputs = self._processor(text=[text], images=[im.convert("RGB") for im in images], return_tensors="pt",
                                 padding=True, truncation=True).to(self.device)
        with torch.no_grad():
            text_emb = self._model.get_text_features(input_ids=inputs["input_ids"],
                                                    attention_mask=inputs.get("attention_mask"))
            image_emb = self._model.get_image_features(pixel_values=inputs["pixel_values"])
        text_emb = _as_tensor(text_emb)
        image_emb = _as_tensor(image_emb)
        text_emb = torch.nn.functional.normalize(text_emb, dim=-1)
        image_emb = torch.nn.functional.normalize(image_emb, dim=-1)
        return (image_emb @ text_emb.T).squeeze(-1)

    def select(self, text: str, images: list[Image.Image]) -> int:
        if len(images) <= 1:
            return 0
        return int(self.scores(text, images).argmax())


def _as_tensor(output):
    """Features as a tensor, whether the model returns one or a ``ModelOutput`` with ``pooler_output``."""
    return output if hasattr(output, "norm") else output.pooler_output


def build_image_selector(clip_model: str | None) -> ImageSelector:
    """`ClipImageSelector` when a model is configured, else `FirstImageSelector`."""
    return ClipImageSelector(clip_model) if clip_model else FirstImageSelector()
