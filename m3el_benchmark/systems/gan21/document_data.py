"""The trained Gan21's documents read from a converted dataset folder (spec A5, "Trained version").

`load_gan21_documents` groups the mentions of the chosen splits into documents (`documents.group_documents`) and
returns a `Gan21DocumentSet`, whose item ``d`` is document d as a `training.Gan21Document`:

* textual mentions: the rows with a mention text in ``text_format``; their frozen text features, and those of their
  candidates' entity texts, are a dual encoder's (any single-vector adapter, e.g. CLIP), encoded once through the
  benchmark's embedding cache (`evaluation.encoding.encode_unique`), so a later run reads them from disk;
* visual mentions: the distinct decodable mention images (by content key); each one's candidates are the candidate
  images of the first row that shows it, gold included. Images are decoded and resized to the visual encoder's
  resolution when a document is read (an LRU cache keeps the most recent ones, as uint8 tensors).

A candidate without a text feature or without a readable image is masked (scores -inf, no loss term); a gold that
is not among the candidates, or is masked, is -1 (no loss term for that mention). A document without a textual or
without a visual mention cannot give the joint loss: it is left out, and `Gan21DocumentSet.report` counts it.

    documents = load_gan21_documents("data/m3el", load_adapter(parse_model_spec("CLIP")), DocumentDataConfig())
    model = Gan21Model(Gan21HeadsConfig(text_feature_size=documents.feature_size))
    train_gan21(model, documents, Gan21TrainingArguments(output_dir="outputs/gan21"))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image

from m3el_dataset.images import decode_rgb

from ...baselines.base import EmbeddingAdapter
from ...evaluation.cache import EmbeddingCache, model_cache_key
from ...evaluation.data import MentionTable, load_mentions
from ...evaluation.encoding import TEXT, EmbeddingTable, EncodingSettings, encode_unique
from ...evaluation.evaluate import needed_inputs
from ...evaluation.scoring import Setting
from .documents import group_documents
from .training import Gan21Document

logger = logging.getLogger(__name__)


@dataclass
class DocumentDataConfig:
    """Which mentions form the training documents, and how their images are read.

    Args:
        splits (`tuple[str]`, *optional*, defaults to ``("train",)``): the dataset splits read.
        text_format (`str`, *optional*, defaults to ``"M-S1"``): the mention text format of the textual mentions.
        image_size (`int`, *optional*, defaults to 224): side of the square images given to the visual encoder
            (its `Gan21HeadsConfig.image_size`).
        image_cache_size (`int`, *optional*, defaults to 4096): decoded images kept in memory (uint8).
    """

    splits: tuple[str, ...] = ("train",)
    text_format: str = "M-S1"
    image_size: int = 224
    image_cache_size: int = 4096


@dataclass
class _Layout:
    """One document's rows: its textual mentions' rows, and the row showing each visual mention first."""

    text_rows: np.ndarray
    image_rows: np.ndarray


class Gan21DocumentSet(Sequence):
    """The documents of a `MentionTable` as `Gan21Document`s, built when read (see the module docstring)."""

    def __init__(self, mentions: MentionTable, texts: EmbeddingTable, config: DocumentDataConfig):
        self.mentions, self.texts, self.config = mentions, texts, config
        self._pixels = lru_cache(maxsize=config.image_cache_size)(self._decode)
        self.layouts: list[_Layout] = []
        self.report = {"documents": 0, "without_textual_mention": 0, "without_visual_mention": 0}
        mention_texts = mentions.mention_texts[config.text_format]
        for rows in group_documents(mentions).members():
            text_rows = [row for row in rows if self._feature(mention_texts[row]) is not None]
            first: dict[str, int] = {}
            for row in rows:
                key = mentions.mention_images[row]
                if key is not None and key not in first and self._pixels(key) is not None:
                    first[key] = int(row)
            self.report["documents"] += 1
            self.report["without_textual_mention"] += not text_rows
            self.report["without_visual_mention"] += not first
            if text_rows and first:
                self.layouts.append(_Layout(np.asarray(text_rows), np.asarray(list(first.values()))))
        self.report["used"] = len(self.layouts)
        logger.info("Gan21 training documents (%s): %s", "+".join(config.splits), self.report)
        if not self.layouts:
            raise ValueError(f"No document of splits {list(config.splits)} has both a mention text in "
                             f"{config.text_format} and a readable mention image; {self.report}.")  # fmt: skip

    @property
    def feature_size(self) -> int:
        """Width of the text features (`Gan21HeadsConfig.text_feature_size`)."""
        return int(self.texts.embeddings.shape[-1])

    def __len__(self) -> int:
        return len(self.layouts)

    def _feature(self, key: str | None) -> torch.Tensor | None:
        if key is None:
            return None
        vector = self.texts.embeddings[self.texts.index[key], 0]
        return vector if torch.isfinite(vector).all() else None

    def _decode(self, key: str) -> torch.Tensor | None:
        """Image ``key`` as a uint8 ``(3, size, size)`` tensor, or `None` when it is not a readable image."""
        image, _ = decode_rgb(self.mentions.inputs.images[key])
        if image is None:
            return None
        size = self.config.image_size
        array = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1)

    def _candidates(self, keys: Sequence[str | None], gold: int, lookup) -> tuple[list, torch.Tensor, int]:
        """The candidates' values (`None` where missing), which exist, and the gold (-1 if absent or missing)."""
        values = [None if key is None else lookup(key) for key in keys]
        present = torch.tensor([value is not None for value in values], dtype=torch.bool)
        return values, present, gold if 0 <= gold < len(values) and values[gold] is not None else -1

    def __getitem__(self, index: int) -> Gan21Document:
        if not 0 <= index < len(self):
            raise IndexError(f"document {index} of {len(self)}")
        layout, mentions = self.layouts[index], self.mentions
        texts = mentions.mention_texts[self.config.text_format]
        text_side = [self._candidates(mentions.candidate_texts[r], int(mentions.gold[r]), self._feature)
                     for r in layout.text_rows]  # fmt: skip
        image_side = [self._candidates(mentions.candidate_images[r], int(mentions.gold[r]), self._pixels)
                      for r in layout.image_rows]  # fmt: skip
        features, text_mask = _padded([values for values, _, _ in text_side], torch.zeros(self.feature_size))
        blank = torch.zeros(3, self.config.image_size, self.config.image_size, dtype=torch.uint8)
        pixels, image_mask = _padded([values for values, _, _ in image_side], blank)
        return Gan21Document(
            mention_features=torch.stack([self._feature(texts[row]) for row in layout.text_rows]),
            candidate_features=features,
            text_gold=torch.tensor([gold for _, _, gold in text_side]),
            images=torch.stack([self._pixels(mentions.mention_images[r]) for r in layout.image_rows]).float() / 255,
            candidate_images=pixels.float() / 255,
            image_gold=torch.tensor([gold for _, _, gold in image_side]),
            text_mask=text_mask,
            image_mask=image_mask,
        )


def _padded(rows: list[list[torch.Tensor | None]], blank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(len(rows), width, *blank.shape)`` of the rows' values padded with ``blank``, and which are real."""
    width = max(len(values) for values in rows)
    stacked = blank.expand(len(rows), width, *blank.shape).clone()
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, values in enumerate(rows):
        for j, value in enumerate(values):
            if value is not None:
                stacked[i, j], mask[i, j] = value, True
    return stacked, mask


def load_gan21_documents(
    path: str,
    adapter: EmbeddingAdapter,
    config: DocumentDataConfig | None = None,
    cache_root: str | Path | None = None,
    accelerator: Accelerator | None = None,
    encoding: EncodingSettings | None = None,
) -> Gan21DocumentSet:
    """The training documents of the converted dataset at ``path`` (a folder, or what `m3el_dataset.loading`
    resolves), with ``adapter``'s frozen text features, cached under ``cache_root`` (``None``: not cached)."""
    config = config or DocumentDataConfig()
    mentions = load_mentions(path, config.splits, topics=None, text_formats=[config.text_format])
    texts = needed_inputs(mentions, [Setting("Tm-Te", config.text_format)], pair_fusion=False)[TEXT]
    cache = EmbeddingCache(cache_root, model_cache_key(adapter.info, type(adapter).__name__))
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    table = encode_unique(adapter, TEXT, texts, cache, accelerator, encoding or EncodingSettings(num_workers=0))
    if table.embeddings.shape[1] != 1:
        raise ValueError(f"{adapter.info.name} gives {table.embeddings.shape[1]} vectors per text; the Gan21 text "
                         "scorer reads one feature per text: use a single-vector model such as CLIP.")  # fmt: skip
    return Gan21DocumentSet(mentions, table, config)
