"""Person crops for DWE+: boxes from a Hub detector (OWL-ViT zero-shot or a DETR-style COCO detector).

DWE cut persons out with PixelLib's PointRend masks, which have no Hub equivalent; we crop the boxes of
``google/owlvit-base-patch32`` ("a photo of a person") or ``facebook/detr-resnet-50`` (COCO "person") whose score
is at least the threshold (0.5), best first, at most ``max_crops`` per image (``../shared/seed-systems.md`` B2.1).
An image without person gets no crop; the features then hold DWE's single zero vector.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from PIL import Image

logger = logging.getLogger(__name__)

PERSON_QUERY = "a photo of a person"
"""OWL-ViT's text query for persons."""

ZERO_SHOT_TYPES = ("owlvit", "owlv2")


class PersonDetector:
    """Person boxes of images, from a loaded detector and its processor.

    Args:
        model: an ``OwlViTForObjectDetection``/``Owlv2ForObjectDetection`` or an ``AutoModelForObjectDetection``
            model whose ``id2label`` has ``"person"``.
        processor: its processor.
        threshold (`float`): minimal score of a kept box.
        max_crops (`int`): boxes kept per image, best first.
    """

    def __init__(self, model: torch.nn.Module, processor, threshold: float = 0.5, max_crops: int = 8):
        self.model, self.processor, self.threshold, self.max_crops = model.eval(), processor, threshold, max_crops
        self.zero_shot = model.config.model_type in ZERO_SHOT_TYPES
        if not self.zero_shot:
            labels = {str(label).lower(): int(index) for index, label in model.config.id2label.items()}
            if "person" not in labels:
                raise ValueError(
                    f"Detector {model.config.name_or_path!r} has no 'person' label (labels: "
                    f"{sorted(labels)[:10]}...); use a COCO detector such as facebook/detr-resnet-50 or OWL-ViT."
                )
            self.person = labels["person"]

    @classmethod
    def from_pretrained(cls, source: str, threshold: float, max_crops: int, **hub_kwargs) -> PersonDetector:
        """Load ``source`` (OWL-ViT by ``model_type``, else ``AutoModelForObjectDetection``) with its processor."""
        import transformers

        config = transformers.AutoConfig.from_pretrained(source, **hub_kwargs)
        if config.model_type in ZERO_SHOT_TYPES:
            model_class = transformers.AutoModelForZeroShotObjectDetection
        else:
            model_class = transformers.AutoModelForObjectDetection
        model = model_class.from_pretrained(source, **hub_kwargs)
        return cls(model, transformers.AutoProcessor.from_pretrained(source, **hub_kwargs), threshold, max_crops)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _scores_and_boxes(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Person score ``(n, queries)`` and normalised (cx, cy, w, h) boxes ``(n, queries, 4)``."""
        if self.zero_shot:
            inputs = self.processor(text=[[PERSON_QUERY]] * len(images), images=list(images), truncation=True,
                                    return_tensors="pt")
            outputs = self.model(**inputs.to(self.device))
            return outputs.logits[..., 0].sigmoid(), outputs.pred_boxes
        inputs = self.processor(images=list(images), return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        return outputs.logits.softmax(-1)[..., self.person], outputs.pred_boxes

    @torch.inference_mode()
    def detect(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        """For each image, ``(k, 5)`` rows: pixel box ``x0, y0, x1, y1`` and score, best first, ``k <= max_crops``."""
        if not images:
            return []
        scores, boxes = self._scores_and_boxes(images)
        found = []
        for image, score, box in zip(images, scores.float().cpu(), boxes.float().cpu(), strict=True):
            keep = (score >= self.threshold).nonzero().flatten()
            keep = keep[score[keep].argsort(descending=True)][: self.max_crops]
            cx, cy, w, h = box[keep].unbind(-1)
            size = torch.tensor([image.width, image.height, image.width, image.height], dtype=torch.float32)
            corners = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1) * size
            corners = torch.minimum(corners.clamp(min=0), size)
            found.append(torch.cat([corners, score[keep, None]], dim=-1))
        return found


def crop_boxes(image: Image.Image, boxes: torch.Tensor) -> list[Image.Image]:
    """The crops of ``image`` at ``boxes`` (rows from `PersonDetector.detect`); boxes under one pixel are skipped."""
    crops = []
    for x0, y0, x1, y1 in boxes[:, :4].round().int().tolist():
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            crops.append(image.crop((x0, y0, x1, y1)))
    return crops
