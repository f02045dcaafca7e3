"""Scoring each mention's candidates in every task and text format, from the embeddings of unique inputs.

The nine tasks only differ in which embeddings they compare: a mention is its text (Tm, in a text format), its
image (Im) or both (ITm); a candidate is its text (Te), its image (Ie) or both (ITe). Scores are
`baselines.base.similarity` of the two sides, so no encoder runs here.

Missing images (the rule the benchmark README documents):

* A candidate whose image is missing or undecodable has a NaN embedding in tasks that need its image (Ie, ITe):
  its score is -inf, so it ranks last, below the gold on a tie only if the gold is missing too (ties are
  pessimistic). Such scores are counted (``missing_candidate_scores``).
* A mention whose own image is missing in a task that needs it (Im, ITm) has no score at all: its gold is ranked
  past every candidate (rank = number of candidates + 1), so it counts as wrong at every k, and it is counted
  (``missing_mentions``).

A document-level system (``m3el_benchmark.systems``) may change a setting's scores before they are ranked: a
`ScoreAdjustment` receives the raw scores of a batch (NaN where an embedding is missing) and the `EntityColumns`
they were computed against, under either protocol, and returns scores of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from m3el_dataset.constants import TaskSpec, parse_task

from ..baselines.base import fuse_mean, similarity
from ..m3el_accuracy.ranking_metrics import NO_GOLD, gold_ranks
from ..run_logging import progress_bar
from .data import MentionTable, pair_key
from .encoding import IMAGE, PAIR, TEXT, EmbeddingTable

if TYPE_CHECKING:
    from .mistakes import MistakeSample

NO_FORMAT = "-"
"""Text format of tasks whose mention has no text (Im-*): they are scored once."""


@dataclass(frozen=True)
class Setting:
    """One scored configuration: a task (its name is parsed once, here) and the mention text format (`NO_FORMAT`
    for image-only mentions)."""

    task: TaskSpec
    text_format: str

    def __post_init__(self):
        object.__setattr__(self, "task", parse_task(self.task))


def uses_pair_encoder(task: TaskSpec) -> bool:
    """Whether a model fusing by its own multimodal encoder (FLAVA-MM) uses it in ``task``: only when both sides are
    (I+T) (ITm-ITe), so that its vectors are compared with each other, never with a text or image vector of another
    space; elsewhere its (I+T) side is the normalised mean like every model's."""
    return task.mention_text and task.mention_image and task.entity_text and task.entity_image


@dataclass(frozen=True)
class EntityColumns:
    """The entities a batch of mentions was scored against: ``qids`` ``(batch, columns)`` per mention (candidates,
    ``""`` past a mention's last one) or ``(columns,)`` shared by the batch (a KB chunk), and ``score(queries,
    entity_text, entity_image)``, the scores ``(batch, columns)`` of other mention vectors against the same
    entities in the entity modality asked for (NaN where an embedding is missing)."""

    qids: np.ndarray
    score: Callable[[torch.Tensor, bool, bool], torch.Tensor]


class ScoreAdjustment(Protocol):
    """A step between scoring and ranking (an adapter's ``joint_step``): new scores from the raw ones."""

    def adjust(
        self, setting: Setting, batch: torch.Tensor, scores: torch.Tensor, entities: EntityColumns
    ) -> torch.Tensor: ...


def settings_for(tasks: Sequence[str | TaskSpec], text_formats: Sequence[str]) -> list[Setting]:
    """Every (task, format) to score; a task whose mention has no text is scored once, with `NO_FORMAT`."""
    settings = []
    for task in map(parse_task, tasks):
        formats = text_formats if task.mention_text else [NO_FORMAT]
        settings.extend(Setting(task, text_format) for text_format in formats)
    return settings


def row_indices(keys: Sequence[str | None], table: EmbeddingTable | None) -> torch.Tensor:
    """Rows of ``keys`` in ``table``; -1 (the NaN row that `CandidateScorer` appends) for ``None`` and missing keys."""
    index = table.index if table is not None else {}
    return torch.tensor([index.get(key, -1) if key is not None else -1 for key in keys], dtype=torch.long)


def _with_nan_row(table: EmbeddingTable | None, shape: tuple[int, ...]) -> torch.Tensor:
    vectors = table.embeddings if table is not None else torch.zeros((0, *shape))
    return torch.cat([vectors, torch.full((1, *vectors.shape[1:]), float("nan"))])


def pair_keys(texts: Sequence[str], images: Sequence[str | None]) -> list[str | None]:
    """The `pair_key` of each (text, image), ``None`` where the image is missing."""
    pairs = zip(texts, images, strict=True)
    return [pair_key(text, image) if image is not None else None for text, image in pairs]


class CandidateScorer:
    """Scores for a `MentionTable` from a model's `EmbeddingTable` of each kind (``pair`` only for FLAVA-MM).

    ``image_weight`` is the image's weight in an (I+T) side fused from the unimodal embeddings (`fuse_mean`);
    ``adjustment`` changes the scores before ranking (`ScoreAdjustment`).
    """

    def __init__(
        self,
        mentions: MentionTable,
        tables: dict[str, EmbeddingTable],
        text_formats: Sequence[str],
        image_weight: float = 0.5,
        adjustment: ScoreAdjustment | None = None,
    ):
        self.mentions, self.image_weight, self.adjustment = mentions, image_weight, adjustment
        shape = tables[TEXT].embeddings.shape[1:] if TEXT in tables else (1, 1)
        self.vectors = {kind: _with_nan_row(tables.get(kind), shape) for kind in (TEXT, IMAGE, PAIR)}
        self.pair_fusion = PAIR in tables
        width = max(len(keys) for keys in mentions.candidate_texts)
        self.valid = torch.zeros((len(mentions), width), dtype=torch.bool)
        for row, keys in enumerate(mentions.candidate_texts):
            self.valid[row, : len(keys)] = True

        texts = mentions.mention_texts
        self.rows = {
            "mention_text": {name: row_indices(texts[name], tables.get(TEXT)) for name in text_formats},
            "mention_image": row_indices(mentions.mention_images, tables.get(IMAGE)),
            "candidate_text": self._grid(mentions.candidate_texts, tables.get(TEXT), width),
            "candidate_image": self._grid(mentions.candidate_images, tables.get(IMAGE), width),
        }
        if self.pair_fusion:
            self.rows["mention_pair"] = {
                name: row_indices(pair_keys(mentions.mention_texts[name], mentions.mention_images), tables[PAIR])
                for name in text_formats
            }
            pairs = [pair_keys(texts, images) for texts, images in
                     zip(mentions.candidate_texts, mentions.candidate_images, strict=True)]  # fmt: skip
            self.rows["candidate_pair"] = self._grid(pairs, tables[PAIR], width)

    @staticmethod
    def _grid(rows, table: EmbeddingTable | None, width: int) -> torch.Tensor:
        flat = [key for row in rows for key in [*row, *[None] * (width - len(row))]]
        return row_indices(flat, table).view(len(rows), width)

    def side_vectors(self, text_rows, image_rows, pair_rows, wants_text: bool, wants_image: bool) -> torch.Tensor:
        """Embeddings of one side, ``(..., num_vectors, dim)``, from its row indices (`row_indices`) in each table;
        an (I+T) side is the pair encoder's where ``pair_rows`` are given, else fused by `fuse_mean`."""
        if wants_text and wants_image:
            if pair_rows is not None:
                return self.vectors[PAIR][pair_rows]
            return fuse_mean(self.vectors[TEXT][text_rows], self.vectors[IMAGE][image_rows], self.image_weight)
        return self.vectors[TEXT][text_rows] if wants_text else self.vectors[IMAGE][image_rows]

    def uses_pairs(self, setting: Setting) -> bool:
        """Whether ``setting`` compares pair-encoder vectors (`uses_pair_encoder`, for a model that has them)."""
        return self.pair_fusion and uses_pair_encoder(setting.task)

    def mention_vectors(self, setting: Setting, batch: torch.Tensor) -> torch.Tensor:
        """``(len(batch), num_vectors, dim)``: the mentions ``batch`` in the task's mention modality and format."""
        spec, name, rows = setting.task, setting.text_format, self.rows
        return self.side_vectors(
            rows["mention_text"][name][batch] if spec.mention_text else None,
            rows["mention_image"][batch],
            rows["mention_pair"][name][batch] if self.uses_pairs(setting) else None,
            spec.mention_text,
            spec.mention_image,
        )

    def ranks(self, setting: Setting, batch: torch.Tensor) -> torch.Tensor:
        """``(len(batch), 3)``: gold rank, missing candidate scores and mention-missing flag of each mention."""
        return self.scored(setting, batch)[0]

    def scored(self, setting: Setting, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`ranks`, and the scores ``(len(batch), candidates)`` they were ranked by (NaN where one is missing)."""
        spec, rows = setting.task, self.rows
        mention = self.mention_vectors(setting, batch)
        candidates = self.side_vectors(
            rows["candidate_text"][batch],
            rows["candidate_image"][batch],
            rows["candidate_pair"][batch] if self.uses_pairs(setting) else None,
            spec.entity_text,
            spec.entity_image,
        )
        scores = similarity(mention, candidates)
        if self.adjustment is not None:
            scores = self.adjustment.adjust(setting, batch, scores, self.candidate_columns(batch))
        valid = self.valid[batch]
        missing_scores = (torch.isnan(scores) & valid).sum(dim=1)
        mention_missing = torch.isnan(mention).flatten(1).all(dim=1)
        raw, scores = scores, scores.nan_to_num(nan=float("-inf"))
        gold = torch.from_numpy(self.mentions.gold[batch.numpy()])
        ranks = torch.from_numpy(gold_ranks(scores, gold, mask=valid))
        past_last = valid.sum(dim=1) + 1
        ranks = torch.where(mention_missing & (gold != NO_GOLD), past_last, ranks)
        return torch.stack([ranks, missing_scores, mention_missing.long()], dim=1), raw

    def candidate_columns(self, batch: torch.Tensor) -> EntityColumns:
        """The candidates of the mentions ``batch`` as `EntityColumns`."""
        rows, width = self.rows, self.valid.shape[1]
        known = self.mentions.candidate_qids or [[] for _ in range(len(self.mentions))]
        qids = [[*known[row], *[""] * width][:width] for row in batch.tolist()]

        def score(queries: torch.Tensor, entity_text: bool, entity_image: bool) -> torch.Tensor:
            pair_rows = rows["candidate_pair"][batch] if self.pair_fusion else None
            keys = self.side_vectors(rows["candidate_text"][batch], rows["candidate_image"][batch], pair_rows,
                                     entity_text, entity_image)  # fmt: skip
            return similarity(queries, keys)

        return EntityColumns(np.asarray(qids, dtype=object).reshape(len(qids), width), score)


def _ranked(
    scorer: CandidateScorer, setting: Setting, column: int, batch: torch.Tensor, mistakes: MistakeSample | None
) -> torch.Tensor:
    if mistakes is None:
        return scorer.ranks(setting, batch)
    figures, scores = scorer.scored(setting, batch)
    mistakes.offer(column, batch, figures[:, 0], scores)
    return figures


def rank_mentions(
    scorer: CandidateScorer,
    settings: Sequence[Setting],
    accelerator: Accelerator,
    batch_size: int,
    desc: str,
    mistakes: MistakeSample | None = None,
) -> np.ndarray:
    """``(num_mentions, len(settings), 3)`` from `CandidateScorer.ranks`, mentions sharded across processes.

    ``mistakes`` (candidates protocol) keeps a seeded sample of the mistakes with their scores, for the report."""
    loader = accelerator.prepare(DataLoader(torch.arange(len(scorer.mentions)), batch_size=batch_size))
    indices, results = [], []
    for batch in progress_bar(loader, desc=desc, unit="batch", disable=not accelerator.is_local_main_process):
        batch = batch.cpu()
        figures = torch.stack([_ranked(scorer, s, column, batch, mistakes) for column, s in enumerate(settings)], 1)
        indices.append(accelerator.gather_for_metrics(batch.to(accelerator.device)).cpu())
        results.append(accelerator.gather_for_metrics(figures.to(accelerator.device)).cpu())
    if mistakes is not None:
        mistakes.gather()
    order = torch.cat(indices).numpy()
    merged = np.empty((len(scorer.mentions), len(settings), 3), dtype=np.int64)
    merged[order] = torch.cat(results).numpy()
    return merged
