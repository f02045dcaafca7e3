"""DWE+ as a benchmark model: a saved DWE+ folder (config, head weights, the CLIP and detector it sits on) loads
through the baseline registry (``--models "DWE+=outputs/dwe_plus"``) and is scored like any other model.

DWE+ is a text-matching bi-encoder of task ITm-Te (``../shared/seed-systems.md`` B1): a mention is its name,
``"{M} [SEP] {S}"``, its image and the image's person crops, fused by the head into one vector g; an entity is the
frozen CLIP feature of its text. So the adapter's (I+T) mention side is a pair encoder (like FLAVA's, every unique
(text, image) pair encoded once and cached by the benchmark), and its texts are CLIP's. It reads the M-S parts
only: the text format column of its records is M-S, and other tasks and formats are refused (`supported_tasks`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from ...baselines.base import FUSION_MULTIMODAL_ENCODER, AdapterOptions, EmbeddingAdapter, ModelInfo, normalise
from .detection import PersonDetector
from .features import DWEPlusFeatureExtractor, dwe_text
from .modeling import DWEPlusHead

logger = logging.getLogger(__name__)

DWE_TASK = "ITm-Te"
DWE_TEXT_FORMAT = "M-S"
"""The host format with DWE's parts (mention and whole sentence); DWE+ joins them with " [SEP] " instead of ": "."""


class DWEPlusModel(torch.nn.Module):
    """A trained DWE+ head with its frozen encoders (a `DWEPlusFeatureExtractor`), loaded from a saved folder."""

    def __init__(self, head: DWEPlusHead, extractor: DWEPlusFeatureExtractor):
        super().__init__()
        self.head, self.extractor = head.eval(), extractor
        self.clip_model, self.detector_model = extractor.clip.model, extractor.detector.model  # moved with .to()
        self.config = head.config
        self.processor = extractor.clip.processor  # the CLIP's: DWE+ reads its inputs through the CLIP it sits on

    @classmethod
    def from_pretrained(
        cls, folder: str | os.PathLike, dtype: torch.dtype = torch.float32, revision: str | None = None,
        cache_dir: str | None = None, local_files_only: bool = False,
    ) -> DWEPlusModel:  # fmt: skip
        """Load the head of ``folder`` and the CLIP and detector its config names (the CLIP at the recorded
        revision; a different one is refused, since the head was trained on that CLIP's features)."""
        from ...baselines.registry import ModelRequest, load_adapter

        if not Path(folder).is_dir():
            raise FileNotFoundError(f"DWE+ model {folder} is not a local folder; DWE+ loads from a saved folder.")
        head = DWEPlusHead.from_pretrained(folder)
        config = head.config
        recorded = config.clip_revision
        hub_revision = recorded if recorded and not recorded.startswith("local-") else None
        clip = load_adapter(ModelRequest("CLIP", config.clip_model, hub_revision), "cpu", dtype, cache_dir)
        if recorded and clip.info.revision != recorded:
            raise ValueError(
                f"DWE+ model {folder} was trained on CLIP {config.clip_model} at revision {recorded}, but that "
                f"source now holds revision {clip.info.revision}; point clip_model in {folder}/config.json to the "
                "CLIP it was trained on, or retrain the head."
            )
        detector = PersonDetector.from_pretrained(
            config.detector, config.detector_threshold, config.max_crops, cache_dir=cache_dir,
            local_files_only=local_files_only,
        )  # fmt: skip
        return cls(head, DWEPlusFeatureExtractor(clip, detector))

    @torch.inference_mode()
    def embed_mentions(self, texts: Sequence[str], images: Sequence[Image.Image]) -> torch.Tensor:
        """g of mentions given as `features.dwe_text` strings and decoded images, ``(n, dim)``."""
        features = self.extractor.mention_features(texts, images)
        device = next(self.head.parameters()).device
        inputs = [features.mention, features.text, features.image, features.crops, features.crop_mask]
        return self.head(*(tensor.to(device) for tensor in inputs)).mention_embeds


class DWEPlusAdapter(EmbeddingAdapter):
    """`DWEPlusModel` as a benchmark adapter: texts through its CLIP, (text, image) mentions through the head."""

    family = "dwe+"
    fusion = FUSION_MULTIMODAL_ENCODER
    supported_tasks = (DWE_TASK,)
    supported_text_formats = (DWE_TEXT_FORMAT,)

    def __init__(self, model: DWEPlusModel, processor, info: ModelInfo, options: AdapterOptions | None = None):
        super().__init__(model, processor, info, options)
        self.clip = model.extractor.clip
        self.info = replace(self.info, fusion=f"DWE+ head ({model.config.fusion})")

    def mention_texts(
        self, text_format: str, texts: Sequence[str], parts: Sequence[Mapping[str, str]]
    ) -> list[str] | None:
        """``"{M} [SEP] {S}"`` of each mention, DWE's t (its m is the part before the separator)."""
        missing = [row for row, part in enumerate(parts) if not part.get("M")]
        if missing:
            raise ValueError(f"DWE+ needs each mention's name; {len(missing)} mentions have none (row {missing[0]}).")
        return [dwe_text(part["M"], part.get("S") or "") for part in parts]

    def native_text_length(self) -> tuple[int, str]:
        """The CLIP's: DWE+ reads its texts through the CLIP it sits on."""
        length, source = self.model.extractor.clip.native_text_length()
        return length, f"its CLIP's {source}"

    def max_text_positions(self) -> int:
        return self.model.extractor.clip.max_text_positions()

    def collate_texts(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.clip.collate_texts(texts)

    def collate_images(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        return self.clip.collate_images(images)

    def collate_pairs(self, texts: Sequence[str], images: Sequence[Image.Image]) -> dict:
        """The raw pairs: the head needs the decoded images for the detector and the crops."""
        return {"rows": torch.arange(len(texts)), "texts": list(texts), "images": list(images)}

    def encode_texts(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.clip.encode_texts(batch)

    def encode_images(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.clip.encode_images(batch)

    def encode_pairs(self, batch: Mapping[str, object]) -> torch.Tensor:
        return normalise(self.model.embed_mentions(batch["texts"], batch["images"]))
