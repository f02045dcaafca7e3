"""A seeded, bounded sample of each setting's mistakes, kept while the mentions are scored, for the report's gallery.

`MistakeSample` is offered every batch's gold ranks and raw scores by `scoring.rank_mentions` and keeps, per setting,
the ``size`` mistakes (gold not ranked first) of the lowest seeded priority: a random order of the mentions drawn
once from the run's seed, the same for every model, so that models are shown on largely the same mentions and a
re-run shows the same ones. It never re-scores anything. Under the ``wrong`` nil policy a mention whose gold is not
among its candidates is a mistake too; under ``exclude`` it is left out, as it is of the figures.

`build_gallery` turns the sample into `GalleryEntry` records for the report: the mention's text (as the model read
it) and image, each candidate's name, description, image and score, the gold marked. Images are small JPEG
thumbnails (at most `THUMBNAIL_PIXELS` on a side), so a report stays light whatever the dataset's images weigh.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from accelerate.utils import gather_object

from m3el_dataset.images import decode_rgb

from ..m3el_accuracy.ranking_metrics import NO_GOLD
from .data import MentionTable
from .scoring import Setting

GALLERY_SIZE = 5
"""Mistakes kept per model and setting."""
THUMBNAIL_PIXELS = 96
THUMBNAIL_QUALITY = 70


@dataclass
class MistakeSample:
    """Up to ``size`` mistakes per setting (column of `rank_mentions`), chosen by the seeded ``priorities``.

    ``kept[column]`` maps a mention's row to its gold rank and its raw scores (NaN where an embedding is missing).
    """

    priorities: np.ndarray
    num_settings: int
    include_absent: bool
    size: int = GALLERY_SIZE
    kept: list[dict[int, tuple[int, list[float]]]] = field(default_factory=list)

    def __post_init__(self):
        self.kept = self.kept or [{} for _ in range(self.num_settings)]

    @classmethod
    def for_mentions(cls, num_mentions: int, num_settings: int, seed: int, include_absent: bool) -> MistakeSample:
        """An empty sample whose priorities are a random order of ``num_mentions`` drawn from ``seed``."""
        priorities = np.random.default_rng(seed).permutation(num_mentions)
        return cls(priorities, num_settings, include_absent)

    def offer(self, column: int, batch: torch.Tensor, ranks: torch.Tensor, scores: torch.Tensor) -> None:
        """Consider the mentions ``batch`` (rows) with their gold ``ranks`` and ``scores`` in setting ``column``."""
        wrong = (ranks != 1) & ((ranks != NO_GOLD) | self.include_absent)
        kept = self.kept[column]
        for position in torch.nonzero(wrong).flatten().tolist():
            row = int(batch[position])
            kept[row] = (int(ranks[position]), scores[position].float().tolist())
        self._prune(column)

    def _prune(self, column: int) -> None:
        kept = self.kept[column]
        if len(kept) > self.size:
            chosen = sorted(kept, key=lambda row: self.priorities[row])[: self.size]
            self.kept[column] = {row: kept[row] for row in chosen}

    def gather(self) -> None:
        """Merge the samples of every process (each scored a shard of the mentions); every process gets the result."""
        local = [(column, row, rank, scores) for column, kept in enumerate(self.kept)
                 for row, (rank, scores) in kept.items()]  # fmt: skip
        for column, row, rank, scores in gather_object(local):
            self.kept[column][row] = (rank, scores)
        for column in range(self.num_settings):
            self._prune(column)

    def mistakes(self, column: int) -> list[tuple[int, int, list[float]]]:
        """``(row, gold rank, scores)`` of the kept mistakes of setting ``column``, in priority order."""
        kept = self.kept[column]
        return [(row, *kept[row]) for row in sorted(kept, key=lambda row: self.priorities[row])]


@dataclass
class GalleryCandidate:
    """One candidate as the gallery shows it: ``score`` is ``None`` where it has none (an embedding is missing)."""

    qid: str
    name: str
    description: str
    score: float | None
    gold: bool
    thumbnail: str | None  # a ``data:image/jpeg;base64,…`` URI, ``None`` without a readable image
    image_note: str = ""


@dataclass
class GalleryEntry:
    """One mistake of one model in one setting: the mention, its candidates in score order, and the gold's rank
    (``NO_GOLD`` when the gold is not among the candidates; past the last when the mention could not be scored)."""

    model: str
    dataset: str
    task: str
    text_format: str
    mention_id: str
    topic: str
    mention_text: str
    thumbnail: str | None
    gold_rank: int
    candidates: list[GalleryCandidate]
    image_note: str = ""

    @property
    def gold_present(self) -> bool:
        return self.gold_rank != NO_GOLD


def thumbnail_uri(data: bytes | None) -> tuple[str | None, str]:
    """A small JPEG ``data:`` URI of image bytes and ``""``, or ``None`` and why there is none."""
    if data is None:
        return None, "no image"
    image, problem = decode_rgb(data)
    if image is None:
        return None, f"image not shown: {problem}"
    image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    stream = io.BytesIO()
    image.save(stream, format="JPEG", quality=THUMBNAIL_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(stream.getvalue()).decode("ascii"), ""


class _Thumbnails:
    """Each image key thumbnailed once."""

    def __init__(self, mentions: MentionTable):
        self.images, self.done = mentions.inputs.images, {}

    def __call__(self, key: str | None) -> tuple[str | None, str]:
        if key not in self.done:
            self.done[key] = thumbnail_uri(self.images.get(key) if key is not None else None)
        return self.done[key]


def _mention_text(mentions: MentionTable, setting: Setting, row: int) -> str:
    """The text the model read in ``setting``; for an image-only mention, the mention's own words (``M``)."""
    if setting.task.mention_text:
        key = mentions.mention_texts[setting.text_format][row]
        return mentions.inputs.texts.get(key, "") if key is not None else ""
    parts = mentions.mention_parts[row] if mentions.mention_parts else {}
    return parts.get("M") or ""


def _candidates(mentions: MentionTable, row: int, scores: list[float], thumbnails: _Thumbnails) -> list:
    texts, images = mentions.candidate_texts[row], mentions.candidate_images[row]
    qids = mentions.candidate_qids[row] if mentions.candidate_qids else [""] * len(texts)
    names = mentions.candidate_names[row] if mentions.candidate_names else []
    descriptions = mentions.candidate_descriptions[row] if mentions.candidate_descriptions else []
    gold = int(mentions.gold[row])
    candidates = []
    for index in range(len(texts)):
        if index < len(names):
            name, description = names[index], descriptions[index] if index < len(descriptions) else ""
        else:  # a dataset without the name column: its entity text, as encoded
            name, description = mentions.inputs.texts.get(texts[index] or "", ""), ""
        score = scores[index] if index < len(scores) and math.isfinite(scores[index]) else None
        thumbnail, note = thumbnails(images[index])
        candidates.append(GalleryCandidate(qids[index], name, description, score, index == gold, thumbnail, note))
    # Score order, the gold after candidates of an equal score (ties are pessimistic), unscored ones last.
    return sorted(candidates, key=lambda c: (c.score is None, -(c.score or 0.0), c.gold))


def build_gallery(
    sample: MistakeSample, settings: Sequence[Setting], mentions: MentionTable, model: str, dataset: str
) -> list[GalleryEntry]:
    """The `GalleryEntry` of each kept mistake, setting by setting, mentions in priority order."""
    thumbnails, entries = _Thumbnails(mentions), []
    for column, setting in enumerate(settings):
        for row, rank, scores in sample.mistakes(column):
            thumbnail, note = thumbnails(mentions.mention_images[row])
            entries.append(GalleryEntry(
                model, dataset, setting.task.name, setting.text_format, mentions.ids[row], mentions.topics[row],
                _mention_text(mentions, setting, row), thumbnail, rank,
                _candidates(mentions, row, scores, thumbnails), note,
            ))  # fmt: skip
    return entries
