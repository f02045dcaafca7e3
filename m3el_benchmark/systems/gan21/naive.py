"""The "naive" baseline of Gan et al. (2021, §2.4, Table 3): each modality linked alone.

Textual mentions are linked by the base adapter as they are (its Tm-* figures). A visual mention is linked among
the entities that the textual linking chose in the same document: each textual mention's top-1 entity (by Tm-Te
in the step's text format, among its candidates or over the whole KB). Every other entity gets the lowest score
(`EXCLUDED`), so a gold the textual stage did not choose is tied with the excluded entities and ranked
(pessimistically) after all of them: wrong at Top-1 (the paper's micro-F1). Top-k for k at least the number of
candidates is then not meaningful, and the results say so (``describe``).
"""

from __future__ import annotations

import numpy as np
import torch

from ...evaluation.kb_ranking import kb_scores
from ...evaluation.scoring import EntityColumns, Setting
from .rescoring import DocumentStep, mention_side

EXCLUDED = torch.finfo(torch.float32).min
"""The score of an entity outside the textual predictions: below every real score, tied with the other excluded
ones, above the entities without a score (-inf: a missing image). Finite, because both protocols' rank counting
turn a NaN into -inf and an existing -inf into this very value (`torch.nan_to_num`)."""


class Gan21NaiveStep(DocumentStep):
    """Visual candidates restricted to the document's textual top-1 predictions; textual scores unchanged."""

    name = "Gan21-Naive"

    def __init__(self, config=None):
        super().__init__(config)
        self.allowed: list[set[str]] = []  # per document

    def fit(self, scorer) -> None:
        """Predict every textual mention's top-1 entity and collect each document's predictions."""
        super().fit(scorer)
        sides, mentions = mention_side(scorer), scorer.mentions
        every = torch.arange(len(mentions))
        texts = sides.mention_vectors(Setting("Tm-Te", self.config.text_format), every)
        predicted = self._top1(scorer, texts)
        self.allowed = [set() for _ in range(len(self.documents))]
        for row, qid in enumerate(predicted):
            if qid:
                self.allowed[self.documents.index[row]].add(qid)
        self.report["naive_note"] = "Top-k beyond the document's textual predictions is not meaningful"

    @staticmethod
    def _top1(scorer, texts: torch.Tensor) -> list[str]:
        """Each mention's top-1 entity by its text (``""`` without text or score)."""
        has_text = ~torch.isnan(texts).flatten(1).any(dim=1)
        if hasattr(scorer, "kb"):  # the kb protocol: argmax over the whole KB, chunk by chunk
            entities, best = scorer.entities_in(True, False), torch.full((len(texts),), float("-inf"))
            where = torch.full((len(texts),), -1, dtype=torch.long)
            chunk = scorer.settings.chunk_size
            for start in range(0, len(entities), chunk):
                scores = kb_scores(texts, entities[start : start + chunk]).nan_to_num(nan=float("-inf"))
                value, index = scores.max(dim=1)
                better = value > best
                best, where = torch.where(better, value, best), torch.where(better, index + start, where)
            found = zip(where.tolist(), has_text.tolist(), strict=True)
            return [scorer.kb.qids[i] if i >= 0 and ok else "" for i, ok in found]
        columns = scorer.candidate_columns(torch.arange(len(texts)))
        scores = columns.score(texts, True, False).nan_to_num(nan=float("-inf"))
        scores = scores.masked_fill(~scorer.valid, float("-inf"))
        best = scores.argmax(dim=1).tolist()
        finite = torch.isfinite(scores.max(dim=1).values) & has_text
        found = enumerate(zip(best, finite.tolist(), strict=True))
        return [columns.qids[row, j] if ok else "" for row, (j, ok) in found]

    def describe(self) -> dict:
        """What the results record: the step, its text format and the documents (no weights, no coupling)."""
        described = super().describe()
        note = (f"{self.name} links each visual mention among its document's textual top-1 predictions (Tm-Te, "
                f"{self.config.text_format}); its textual figures are the plain model's; Top-k beyond "
                "those predictions is not meaningful")  # fmt: skip
        weights = ("lambda_t", "lambda_v", "rule", "coupling")
        return {**{key: value for key, value in described.items() if key not in weights}, "note": note}

    def adjust(
        self, setting: Setting, batch: torch.Tensor, scores: torch.Tensor, entities: EntityColumns
    ) -> torch.Tensor:
        """Image mentions: -inf for every entity outside the document's textual predictions."""
        if setting.task.mention_text:
            return scores
        qids = entities.qids
        excluded = np.zeros(scores.shape, dtype=bool)
        for i, row in enumerate(batch.tolist()):
            allowed = self.allowed[self.documents.index[row]]
            row_qids = qids[i] if qids.ndim == 2 else qids
            excluded[i] = [qid not in allowed for qid in row_qids]
        return scores.masked_fill(torch.from_numpy(excluded) & ~torch.isnan(scores), EXCLUDED)
