"""Whole-knowledge-base ranking (the ``kb`` protocol): every mention against every entity of the ``kb`` config.

The gold's rank is counted, never sorted (`kb_counting.count_at_least_gold`: one fused pass per mention-batch x
entity-chunk tile, or FAISS's top-k where it decides the rank, the same counts either way), in memory bounded by
one tile whatever the KB size; `ranks_from_counts` turns the counts into ranks for the ``m3el_accuracy`` core. The
KB side's embeddings (Te, Ie or ITe, as the task says) are put together once per entity modality from the
unique-input tables, and prepared for counting once (`kb_counting.KBKeys`).

The rules of the candidate protocol hold here too (see `scoring`): an entity without a usable image scores -inf
in an image task; a mention without its image, in a task that needs it, ranks past every entity (KB size + 1);
a mention whose gold is not in the KB (NIL, or a QID the KB lacks) has rank -1, wrong at every k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..m3el_accuracy.ranking_metrics import NO_GOLD, ranks_from_counts
from .data import KnowledgeBase, MentionTable
from .encoding import IMAGE, PAIR, TEXT, EmbeddingTable
from .kb_counting import (
    BACKENDS,
    TIE_TOLERANCE,
    KBKeys,
    KBRankingSettings,
    count_above_gold,
    count_at_least_gold,
    count_exactly,
    kb_scores,
    kb_scores_pairwise,
)
from .scoring import CandidateScorer, EntityColumns, ScoreAdjustment, Setting, pair_keys, row_indices

__all__ = [
    "BACKENDS",
    "TIE_TOLERANCE",
    "KBKeys",
    "KBRankingSettings",
    "KBScorer",
    "count_above_gold",
    "count_at_least_gold",
    "count_exactly",
    "kb_scores",
    "kb_scores_pairwise",
]


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
        self._keys: dict[tuple[bool, bool, bool], KBKeys] = {}

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
        modality = (setting.task.entity_text, setting.task.entity_image, self.sides.uses_pairs(setting))
        if modality not in self._keys:
            self._keys[modality] = KBKeys(self.entity_vectors(setting), self.settings)
        keys = self._keys[modality]
        n_at_least, n_missing = count_at_least_gold(mention, keys, gold, self.settings, adjust)
        ranks = torch.from_numpy(ranks_from_counts(n_at_least.numpy(), np.zeros_like(n_at_least.numpy())))
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
