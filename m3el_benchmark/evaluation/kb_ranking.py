"""Whole-knowledge-base ranking (the ``kb`` protocol): every mention against every entity of the ``kb`` config.

The gold's rank is counted, never sorted: for a batch of mentions and one chunk of KB entities at a time, the
scores are one matrix product, and each mention adds the entities scored strictly higher than its gold and those
scored equal (pessimistic ties, the gold itself left out). Memory is ``batch x chunk`` scores, whatever the KB
size; `ranks_from_counts` turns the counts into ranks for the ``m3el_accuracy`` core. The KB side's embeddings
(Te, Ie or ITe, as the task says) are put together once per entity modality from the unique-input tables.

The rules of the candidate protocol hold here too (see `scoring`): an entity without a usable image scores -inf
in an image task; a mention without its image, in a task that needs it, ranks past every entity (KB size + 1);
a mention whose gold is not in the KB (NIL, or a QID the KB lacks) has rank -1, wrong at every k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..m3el_accuracy.ranking_metrics import NO_GOLD, ranks_from_counts
from .data import KnowledgeBase, MentionTable
from .encoding import IMAGE, PAIR, TEXT, EmbeddingTable
from .scoring import CandidateScorer, EntityColumns, ScoreAdjustment, Setting, pair_keys, row_indices

TIE_TOLERANCE = 1e-6
"""Scores this close to the gold's are ties. The gold's own score comes from a different matrix product than a
duplicate entity's (same text or image), and float32 rounding may then differ in the last bits; a tolerance keeps
such duplicates tied, as the pessimistic rule wants."""


@dataclass
class KBRankingSettings:
    """How `KBScorer` walks the knowledge base.

    Args:
        chunk_size (`int`, *optional*, defaults to 16384): KB entities per matrix product.
        tie_tolerance (`float`, *optional*, defaults to `TIE_TOLERANCE`): score difference still counted as a tie.
    """

    chunk_size: int = 16384
    tie_tolerance: float = TIE_TOLERANCE

    def __post_init__(self):
        if self.chunk_size < 1:
            raise ValueError(f"kb chunk_size must be at least 1, got {self.chunk_size}.")


def kb_scores(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Scores ``(batch, num_keys)`` of ``queries (batch, q, d)`` against shared ``keys (num_keys, k, d)``.

    As `baselines.base.similarity`: the maximum over every pair of vectors; one matrix product for single vectors.
    """
    if queries.shape[1] == 1 and keys.shape[1] == 1:
        return queries[:, 0] @ keys[:, 0].T
    return torch.einsum("bqd,ckd->bcqk", queries, keys).flatten(2).amax(dim=2)


def count_above_gold(
    queries: torch.Tensor,
    keys: torch.Tensor,
    gold: torch.Tensor,
    settings: KBRankingSettings,
    adjust: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per query, the keys scored strictly higher than key ``gold[i]``, the *other* keys scored equal, and the NaN
    scores (a key or query without embedding), walking ``keys`` in chunks; a NaN score counts as -inf.

    ``gold[i] = -1`` (no gold) compares against -inf; the caller discards those counts. ``adjust(scores, rows)``
    changes raw scores before they are compared, given the key rows they were computed against: ``(batch, 1)`` for
    the gold's, ``(chunk,)`` for a chunk's.
    """
    rows = torch.arange(len(queries))
    has_gold = gold >= 0
    safe = torch.where(has_gold, gold, 0)
    gold_scores = kb_scores_pairwise(queries, keys[safe])
    if adjust is not None:
        gold_scores = adjust(gold_scores[:, None], safe[:, None])[:, 0]
    gold_scores = gold_scores.nan_to_num(nan=float("-inf"))
    gold_scores = torch.where(has_gold, gold_scores, torch.tensor(float("-inf")))[:, None]
    tolerance = settings.tie_tolerance
    n_higher = torch.zeros(len(queries), dtype=torch.long)
    n_equal, n_missing = torch.zeros_like(n_higher), torch.zeros_like(n_higher)
    for start in range(0, len(keys), settings.chunk_size):
        scores = kb_scores(queries, keys[start : start + settings.chunk_size])
        if adjust is not None:
            scores = adjust(scores, torch.arange(start, start + scores.shape[1]))
        missing = torch.isnan(scores)
        n_missing += missing.sum(dim=1)
        scores = scores.masked_fill(missing, float("-inf"))
        inside = has_gold & (safe >= start) & (safe < start + scores.shape[1])
        scores[rows[inside], safe[inside] - start] = float("nan")  # the gold itself: neither higher nor equal
        n_higher += (scores > gold_scores + tolerance).sum(dim=1)
        n_equal += ((scores == gold_scores) | ((scores - gold_scores).abs() <= tolerance)).sum(dim=1)
    return n_higher, n_equal, n_missing


def kb_scores_pairwise(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Score ``(batch,)`` of query i ``(batch, q, d)`` against its own key i ``(batch, k, d)``."""
    return torch.einsum("bqd,bkd->bqk", queries, keys).flatten(1).amax(dim=1)


class KBScorer:
    """Gold ranks of a `MentionTable`'s mentions against a `KnowledgeBase`, for `scoring.rank_mentions`.

    ``tables`` hold the embeddings of the mentions' and the KB entities' unique inputs (``pair`` only for FLAVA-MM).
    """

    def __init__(
        self,
        mentions: MentionTable,
        kb: KnowledgeBase,
        tables: dict[str, EmbeddingTable],
        text_formats: Sequence[str],
        settings: KBRankingSettings,
        image_weight: float = 0.5,
        adjustment: ScoreAdjustment | None = None,
    ):
        self.mentions, self.kb, self.settings, self.adjustment = mentions, kb, settings, adjustment
        self.sides = CandidateScorer(mentions, tables, text_formats, image_weight)  # the mention side, the vectors
        self.gold = torch.from_numpy(kb.rows_of(mentions.gold_qids))
        self.kb_rows = {
            TEXT: row_indices(kb.texts, tables.get(TEXT)),
            IMAGE: row_indices(kb.images, tables.get(IMAGE)),
            PAIR: row_indices(pair_keys(kb.texts, kb.images), tables.get(PAIR)) if PAIR in tables else None,
        }
        self._entities: dict[tuple[bool, bool, bool], torch.Tensor] = {}

    def entity_vectors(self, setting: Setting) -> torch.Tensor:
        """``(len(kb), num_vectors, dim)``: every KB entity in the task's entity modality, built once per modality."""
        return self.entities_in(setting.task.entity_text, setting.task.entity_image, self.sides.uses_pairs(setting))

    def entities_in(self, entity_text: bool, entity_image: bool, pairs: bool = False) -> torch.Tensor:
        """``(len(kb), num_vectors, dim)``: every KB entity in that entity modality (built once); ``pairs``: (I+T)
        from the model's own multimodal encoder (FLAVA-MM on ITm-ITe)."""
        modality = (entity_text, entity_image, pairs)
        if modality not in self._entities:
            rows = self.kb_rows
            pair_rows = rows[PAIR] if pairs else None
            self._entities[modality] = self.sides.side_vectors(rows[TEXT], rows[IMAGE], pair_rows, *modality[:2])
        return self._entities[modality]

    def ranks(self, setting: Setting, batch: torch.Tensor) -> torch.Tensor:
        """``(len(batch), 3)``: gold rank, missing entity scores and mention-missing flag of each mention."""
        mention = self.sides.mention_vectors(setting, batch)
        gold = self.gold[batch]
        adjust = None if self.adjustment is None else self._adjuster(setting, batch)
        keys = self.entity_vectors(setting)
        n_higher, n_equal, n_missing = count_above_gold(mention, keys, gold, self.settings, adjust)
        ranks = torch.from_numpy(ranks_from_counts(n_higher.numpy(), n_equal.numpy()))
        mention_missing = torch.isnan(mention).flatten(1).all(dim=1)
        ranks = torch.where(mention_missing, torch.tensor(len(self.kb) + 1), ranks)
        ranks = torch.where(gold == NO_GOLD, torch.tensor(NO_GOLD), ranks)
        return torch.stack([ranks, n_missing, mention_missing.long()], dim=1)

    def _adjuster(self, setting: Setting, batch: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """`count_above_gold`'s ``adjust``: the `ScoreAdjustment` over KB rows as `EntityColumns`."""
        qids = np.asarray(self.kb.qids, dtype=object)

        def adjust(scores: torch.Tensor, key_rows: torch.Tensor) -> torch.Tensor:
            def score(queries: torch.Tensor, entity_text: bool, entity_image: bool) -> torch.Tensor:
                entities = self.entities_in(entity_text, entity_image)
                if key_rows.ndim == 2:  # one key per query: the gold's
                    return kb_scores_pairwise(queries, entities[key_rows[:, 0]])[:, None]
                return kb_scores(queries, entities[key_rows])

            return self.adjustment.adjust(setting, batch, scores, EntityColumns(qids[key_rows.numpy()], score))

        return adjust
