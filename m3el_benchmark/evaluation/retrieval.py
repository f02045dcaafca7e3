"""The ``retrieved`` protocol (DWE/DWE+'s published setting): each mention against the top-100 fuzzy name matches.

Per mention, the `RETRIEVED_LIMIT` entities of the ``kb`` config whose names best match the mention's name under
rapidfuzz's ``WRatio`` with ``default_process`` (what fuzzywuzzy's ``process.extract`` does by default, as DWE's
code calls it) are the list. The gold is ranked by its own score whether or not it was retrieved (it cannot be
"missed"): rank = 1 + the listed entities other than the gold scored above it (equal too, with our pessimistic
ties; DWE counts only those strictly above, optimistic ties). Each entity is listed on its own: DWE's name-to-QID
dict collapsed homonymous entities into one (``../shared/seed-systems.md`` B2.6). Any model can be scored so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from accelerate import Accelerator

from ..baselines.base import similarity
from ..m3el_accuracy.ranking_metrics import NO_GOLD
from .data import KnowledgeBase, MentionTable
from .encoding import EmbeddingTable
from .kb_ranking import KBRankingSettings, KBScorer
from .scoring import Setting, rank_mentions

RETRIEVED_LIMIT = 100
"""λ, the listed entities per mention [DWE+ paper §5.1.3]."""

TIES = ("pessimistic", "optimistic")


def retrieve_by_name(
    mention_names: Sequence[str], entity_names: Sequence[str], limit: int = RETRIEVED_LIMIT
) -> list[list[int]]:
    """For each mention name, the rows of the ``limit`` best-matching entity names (WRatio, default processing),
    best first; each distinct name is searched once."""
    from rapidfuzz import fuzz, process, utils

    found: dict[str, list[int]] = {}
    for name in set(mention_names):
        matches = process.extract(name, entity_names, scorer=fuzz.WRatio, processor=utils.default_process,
                                  limit=limit)  # fmt: skip
        found[name] = [index for _, _, index in matches]
    return [found[name] for name in mention_names]


class RetrievedScorer:
    """Gold ranks among each mention's retrieved entities, for `scoring.rank_mentions`.

    Args:
        retrieved (`list[list[int]]`): each mention's KB rows (`retrieve_by_name`).
        ties (`str`): ``"pessimistic"`` (ours: an entity scored equal to the gold ranks above it) or
            ``"optimistic"`` (DWE's ``metric_topk.py``: only those strictly above).
    """

    def __init__(
        self,
        mentions: MentionTable,
        kb: KnowledgeBase,
        tables: dict[str, EmbeddingTable],
        text_formats: Sequence[str],
        retrieved: list[list[int]],
        ties: str = "pessimistic",
        settings: KBRankingSettings | None = None,
        image_weight: float = 0.5,
    ):
        if ties not in TIES:
            raise ValueError(f"Unknown tie rule {ties!r}; choose one of {', '.join(TIES)}.")
        self.kb_scorer = KBScorer(mentions, kb, tables, text_formats, settings or KBRankingSettings(), image_weight)
        self.mentions, self.ties, self.tolerance = mentions, ties, self.kb_scorer.settings.tie_tolerance
        width = max(1, max(len(rows) for rows in retrieved))
        self.rows = torch.zeros((len(retrieved), width), dtype=torch.long)
        self.valid = torch.zeros((len(retrieved), width), dtype=torch.bool)
        for row, found in enumerate(retrieved):
            self.rows[row, : len(found)], self.valid[row, : len(found)] = torch.tensor(found, dtype=torch.long), True

    def ranks(self, setting: Setting, batch: torch.Tensor) -> torch.Tensor:
        """``(len(batch), 3)``: gold rank, missing entity scores among the listed, mention-missing flag."""
        mention = self.kb_scorer.sides.mention_vectors(setting, batch)
        entities = self.kb_scorer.entity_vectors(setting)
        gold = self.kb_scorer.gold[batch]
        rows, valid = self.rows[batch], self.valid[batch]
        scores = similarity(mention, entities[rows])
        gold_score = similarity(mention, entities[gold.clamp(min=0)][:, None])[:, 0]
        missing = (torch.isnan(scores) & valid).sum(dim=1)
        scores = scores.nan_to_num(nan=float("-inf"))
        others = valid & (rows != gold[:, None])
        if self.ties == "pessimistic":
            above = scores >= (gold_score - self.tolerance)[:, None]
        else:
            above = scores > gold_score[:, None]
        above = torch.where(torch.isnan(gold_score)[:, None], valid, above)  # an unscorable gold ranks last
        ranks = 1 + (above & others).sum(dim=1)
        mention_missing = torch.isnan(mention).flatten(1).all(dim=1)
        ranks = torch.where(mention_missing, valid.sum(dim=1) + 1, ranks)
        ranks = torch.where(gold == NO_GOLD, torch.tensor(NO_GOLD), ranks)
        return torch.stack([ranks, missing, mention_missing.long()], dim=1)


def with_optimistic_ties(records: list[dict], optimistic: list[dict]) -> list[dict]:
    """``records`` (our ties) with DWE's optimistic-tie figures beside them as ``optimistic_<metric>``."""
    merged = []
    for ours, theirs in zip(records, optimistic, strict=True):
        extra = {f"optimistic_{key}": value for key, value in theirs.items()
                 if key.startswith("top_") or key in ("accuracy", "mrr", "mean_rank")}  # fmt: skip
        merged.append({**ours, **extra})
    return merged


def retrieved_figures(
    mentions: MentionTable, kb: KnowledgeBase, tables: dict[str, EmbeddingTable], settings: Sequence[Setting],
    text_formats: Sequence[str], accelerator: Accelerator, batch_size: int, kb_settings: KBRankingSettings | None,
    image_weight: float, desc: str,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """`scoring.rank_mentions` figures of every setting under the retrieved protocol: ours, then DWE's ties."""
    names = [parts.get("M") or "" for parts in mentions.mention_parts]
    if not any(names) or not any(kb.names):
        raise ValueError("The retrieved protocol matches mention names against KB entity names; this dataset has "
                         "no mention names or no entity names; use the kb protocol.")  # fmt: skip
    retrieved = retrieve_by_name(names, kb.names)
    return tuple(
        rank_mentions(RetrievedScorer(mentions, kb, tables, text_formats, retrieved, ties, kb_settings, image_weight),
                      settings, accelerator, batch_size, f"{desc}, {ties} ties")
        for ties in TIES
    )  # fmt: skip
