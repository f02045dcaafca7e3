"""Counting a gold's rank against a whole knowledge base, exactly, in bounded memory.

The gold's rank is counted, never sorted: per mention, the entities scored strictly higher than its gold
(``s > g + tolerance``) and the *other* entities scored equal (``g - tolerance <= s <= g + tolerance``, both bounds
rounded once to float32: pessimistic ties), an entity without a score (NaN) counting as -inf. `count_above_gold`
walks the KB in chunks of ``batch x chunk`` scores, so memory is bounded whatever the KB size, and makes one fused
pass per tile: a matrix product and two comparisons against the gold's bounds, the gold's own column taken out
afterwards; NaN entities and mentions are counted from per-row flags instead of per score. With FAISS installed
(``pip install m3el[faiss]``) the ``auto`` backend first lists each mention's top-k entities (`KBRankingSettings`):
when the k-th listed scores below the gold's tie bound, every entity at or above the gold is listed and the counts
are read off the list; the other mentions are counted exactly. Score adjustments, infinite embeddings and vectors
large enough to overflow take the exact path (`count_exactly`), one elementwise step at a time. `ranks_from_counts`
turns the counts into ranks for the ``m3el_accuracy`` core. The KB side's embeddings (Te, Ie or ITe, as the task
says) are put together once per entity modality from the unique-input tables, and prepared once (`KBKeys`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

TIE_TOLERANCE = 1e-6
"""Scores this close to the gold's are ties. The gold's own score comes from a different matrix product than a
duplicate entity's (same text or image), and float32 rounding may then differ in the last bits; a tolerance keeps
such duplicates tied, as the pessimistic rule wants."""

BACKENDS = ("auto", "torch", "faiss")
"""``auto``: FAISS when it is installed, else torch; ``faiss`` without FAISS installed is an error."""


@dataclass
class KBRankingSettings:
    """How `KBScorer` walks the knowledge base.

    Args:
        chunk_size (`int`, *optional*, defaults to 16384): KB entities per matrix product (on a GPU, at most what
            half its free memory holds).
        tie_tolerance (`float`, *optional*, defaults to `TIE_TOLERANCE`): score difference still counted as a tie.
        backend (`str`, *optional*, defaults to ``"auto"``): one of `BACKENDS`; every backend gives the same counts.
        top_k (`int`, *optional*, defaults to 20): entities FAISS lists per mention before the exact count of the
            mentions whose gold's rank the list cannot decide.
    """

    chunk_size: int = 16384
    tie_tolerance: float = TIE_TOLERANCE
    backend: str = "auto"
    top_k: int = 20

    def __post_init__(self):
        if self.chunk_size < 1:
            raise ValueError(f"kb chunk_size must be at least 1, got {self.chunk_size}.")
        if not self.tie_tolerance >= 0:
            raise ValueError(f"kb tie_tolerance must be 0 or more, got {self.tie_tolerance}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"Unknown kb ranking backend {self.backend!r}; choose from {', '.join(BACKENDS)}.")
        if self.top_k < 1:
            raise ValueError(f"kb ranking top_k must be at least 1, got {self.top_k}.")

    def resolved_backend(self) -> str:
        """``torch`` or ``faiss``: the backend this run uses."""
        installed = importlib.util.find_spec("faiss") is not None
        if self.backend == "faiss" and not installed:
            raise ValueError("kb ranking backend 'faiss' needs FAISS: pip install 'm3el[faiss]' (or faiss-cpu), or "
                             "pass backend 'torch'.")  # fmt: skip
        if self.backend == "auto":
            return "faiss" if installed else "torch"
        return self.backend


_SAFE_MAGNITUDE = float(torch.finfo(torch.float32).max) / 4
"""Below this bound on ``|score|`` no product or sum of finite float32 vectors overflows to inf or NaN."""


_UNIT_SLACK = 1e-3
"""How far above 1 the product of two vector norms may be and still count as unit vectors (rounding, bf16 models)."""


def kb_scores(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Scores ``(batch, num_keys)`` of ``queries (batch, q, d)`` against shared ``keys (num_keys, k, d)``.

    As `baselines.base.similarity`: the maximum over every pair of vectors; one matrix product for single vectors.
    """
    if queries.shape[1] == 1 and keys.shape[1] == 1:
        return queries[:, 0] @ keys[:, 0].T
    return torch.einsum("bqd,ckd->bcqk", queries, keys).flatten(2).amax(dim=2)


def kb_scores_pairwise(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Score ``(batch,)`` of query i ``(batch, q, d)`` against its own key i ``(batch, k, d)``."""
    return torch.einsum("bqd,bkd->bqk", queries, keys).flatten(1).amax(dim=1)


class KBKeys:
    """The KB side of `count_above_gold`, prepared once for every mention batch: which entities have no score (a NaN
    in any of their vectors), whether the fused pass is exact for them (no inf, no overflow), their FAISS index.

    Args:
        keys (`torch.Tensor`): ``(num_keys, k, d)`` entity vectors.
        settings (`KBRankingSettings`): the backend and, for FAISS, nothing else to decide.
        device (`torch.device`, *optional*): where the fused pass runs; defaults to CUDA when available, else CPU.
    """

    def __init__(self, keys: torch.Tensor, settings: KBRankingSettings, device: torch.device | None = None):
        self.keys = keys
        self.broken = torch.isnan(keys).flatten(1).any(dim=1)
        self.num_broken = int(self.broken.sum())
        scored = keys[~self.broken]
        self.fusable = bool(torch.isfinite(scored).all())
        self.magnitude = float(scored.abs().amax()) if scored.numel() and self.fusable else 0.0
        self.norm = float(scored.norm(dim=-1).amax()) if scored.numel() and self.fusable else 0.0
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.on_device = keys if self.device == keys.device else keys.to(self.device)
        self.index, self.index_rows = None, None
        if settings.resolved_backend() == "faiss" and self.fusable and keys.shape[1] == 1 and len(scored):
            import faiss  # an optional dependency (m3el[faiss])

            self.index = faiss.IndexFlatIP(keys.shape[2])
            self.index.add(np.ascontiguousarray(scored[:, 0].numpy(), dtype=np.float32))
            self.index_rows = torch.nonzero(~self.broken).flatten()

    def __len__(self) -> int:
        return len(self.keys)

    def fuses(self, queries: torch.Tensor) -> bool:
        """Whether the fused pass counts exactly as the rule says: no inf anywhere, no score that can overflow."""
        finite = queries[~torch.isnan(queries).flatten(1).any(dim=1)]
        if not self.fusable or not bool(torch.isfinite(finite).all()):
            return False
        bound = (float(finite.abs().amax()) if finite.numel() else 0.0) * self.magnitude * queries.shape[-1]
        return bound < _SAFE_MAGNITUDE

    def chunk_size(self, batch: int, queries: torch.Tensor, settings: KBRankingSettings) -> int:
        """Entities per tile: the settings', and on a GPU no more than half its free memory holds (scores, the
        two comparison masks and the products of multi-vector sides)."""
        if self.device.type != "cuda":
            return settings.chunk_size
        free, _ = torch.cuda.mem_get_info(self.device)
        per_entity = batch * queries.shape[1] * self.keys.shape[1] * queries.element_size() * 4
        return max(1, min(settings.chunk_size, int(free // 2 // max(per_entity, 1))))


def count_above_gold(
    queries: torch.Tensor,
    keys: torch.Tensor | KBKeys,
    gold: torch.Tensor,
    settings: KBRankingSettings,
    adjust: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    stats: dict[str, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per query, the keys scored strictly higher than key ``gold[i]``, the *other* keys scored equal, and the NaN
    scores (a key or query without embedding), walking ``keys`` in chunks; a NaN score counts as -inf.

    ``gold[i] = -1`` (no gold) compares against -inf; the caller discards those counts. ``adjust(scores, rows)``
    changes raw scores before they are compared, given the key rows they were computed against: ``(batch, 1)`` for
    the gold's, ``(chunk,)`` for a chunk's; it takes the exact path. Pass `KBKeys` to prepare the keys once for
    many batches. ``stats``, when given, receives ``decided_by_top_k``: the queries FAISS's list decided.
    """
    table = keys if isinstance(keys, KBKeys) else KBKeys(keys, settings, device=keys.device)
    if adjust is not None or not table.fuses(queries):
        return count_exactly(queries, table.keys, gold, settings, adjust)
    tolerance = settings.tie_tolerance
    has_gold = gold >= 0
    safe = torch.where(has_gold, gold, 0)
    gold_scores = kb_scores_pairwise(queries, table.keys[safe]).nan_to_num(nan=float("-inf"))
    gold_scores = torch.where(has_gold, gold_scores, torch.tensor(float("-inf")))
    low, high = gold_scores - tolerance, gold_scores + tolerance
    n_at_least, n_higher = torch.zeros(len(queries), dtype=torch.long), torch.zeros(len(queries), dtype=torch.long)
    exact = torch.ones(len(queries), dtype=torch.bool)
    if table.index is not None and queries.shape[1] == 1 and _cosine_scores(queries, table):
        exact = _count_from_top_k(queries, table, safe, low, high, settings, (n_at_least, n_higher))
    if stats is not None:
        stats["decided_by_top_k"] = stats.get("decided_by_top_k", 0) + int((~exact).sum())
    if exact.any():
        rows = torch.nonzero(exact).flatten()
        at_least, higher = _count_fused(queries[rows], table, safe[rows], has_gold[rows], low[rows], high[rows],
                                        settings)  # fmt: skip
        n_at_least[rows], n_higher[rows] = at_least, higher
    # The entities without a score are -inf: below every finite gold, tied with a gold of -inf (itself left out).
    query_broken = torch.isnan(queries).flatten(1).any(dim=1)
    n_missing = torch.where(query_broken, len(table), table.num_broken)
    gold_unscored = has_gold & (query_broken | table.broken[safe])
    unscored_ties = torch.where(torch.isneginf(gold_scores), n_missing - gold_unscored.long(), 0)
    return n_higher, n_at_least - n_higher + unscored_ties, n_missing


def _cosine_scores(queries: torch.Tensor, table: KBKeys) -> bool:
    """Whether every score is a cosine at most (unit vectors, as the adapters give): FAISS's float32 rounding
    (~1e-7) then stays well below the tie tolerance. Larger scores are counted by the fused pass."""
    scored = queries[~torch.isnan(queries).flatten(1).any(dim=1)]
    return not scored.numel() or float(scored.norm(dim=-1).amax()) * table.norm <= 1 + _UNIT_SLACK


def _count_fused(
    queries: torch.Tensor,
    table: KBKeys,
    safe: torch.Tensor,
    has_gold: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    settings: KBRankingSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, the keys scored at least ``low`` and above ``high``, the gold itself left out; one matrix product
    and two comparisons per tile, on the table's device."""
    device = table.device
    queries, safe, has_gold = queries.to(device), safe.to(device), has_gold.to(device)
    low, high = low.to(device)[:, None], high.to(device)[:, None]
    n_at_least = torch.zeros(len(queries), dtype=torch.long, device=device)
    n_higher = torch.zeros_like(n_at_least)
    rows = torch.arange(len(queries), device=device)
    chunk = table.chunk_size(len(queries), queries, settings)
    for start in range(0, len(table), chunk):
        scores = kb_scores(queries, table.on_device[start : start + chunk])
        n_at_least += (scores >= low).sum(dim=1)
        n_higher += (scores > high).sum(dim=1)
        inside = has_gold & (safe >= start) & (safe < start + scores.shape[1])
        own = scores[rows[inside], safe[inside] - start]  # the gold's own column: neither higher nor equal
        n_at_least[inside] -= (own >= low[inside, 0]).long()
        n_higher[inside] -= (own > high[inside, 0]).long()
    return n_at_least.cpu(), n_higher.cpu()


def _count_from_top_k(
    queries: torch.Tensor,
    table: KBKeys,
    safe: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    settings: KBRankingSettings,
    counts: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Fill ``counts`` (at least ``low``, above ``high``) from FAISS's top-k list where it decides them: when the
    k-th listed entity scores below ``low``, every entity at or above it is listed. Returns the queries left to
    count exactly (a mention or gold without score, or a list that ends at or above ``low``)."""
    decidable = torch.isfinite(low) & ~torch.isnan(queries).flatten(1).any(dim=1)
    rows = torch.nonzero(decidable).flatten()
    if not len(rows):
        return ~decidable
    k = min(settings.top_k, len(table.index_rows))
    scores, listed = table.index.search(np.ascontiguousarray(queries[rows, 0].numpy(), dtype=np.float32), k)
    scores, listed = torch.from_numpy(scores), table.index_rows[torch.from_numpy(listed)]
    low, high = low[rows, None], high[rows, None]
    # A tolerance's margin: an entity FAISS scores just below the list's end is still below the gold's bound.
    complete = (scores[:, -1] < low[:, 0] - settings.tie_tolerance) | (k == len(table.index_rows))
    others = listed != safe[rows, None]
    n_at_least, n_higher = counts
    decided = rows[complete]
    n_at_least[decided] = ((scores >= low) & others)[complete].sum(dim=1)
    n_higher[decided] = ((scores > high) & others)[complete].sum(dim=1)
    exact = torch.ones(len(queries), dtype=torch.bool)
    exact[decided] = False
    return exact


def count_exactly(
    queries: torch.Tensor,
    keys: torch.Tensor,
    gold: torch.Tensor,
    settings: KBRankingSettings,
    adjust: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`count_above_gold` one elementwise step at a time: for adjusted scores, infinite vectors, or scores that may
    overflow, where the fused pass's per-row shortcuts would not hold."""
    rows = torch.arange(len(queries))
    has_gold = gold >= 0
    safe = torch.where(has_gold, gold, 0)
    gold_scores = kb_scores_pairwise(queries, keys[safe])
    if adjust is not None:
        gold_scores = adjust(gold_scores[:, None], safe[:, None])[:, 0]
    gold_scores = gold_scores.nan_to_num(nan=float("-inf"))
    gold_scores = torch.where(has_gold, gold_scores, torch.tensor(float("-inf")))[:, None]
    low, high = gold_scores - settings.tie_tolerance, gold_scores + settings.tie_tolerance
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
        n_higher += (scores > high).sum(dim=1)
        n_equal += ((scores == gold_scores) | ((scores >= low) & (scores <= high))).sum(dim=1)
    return n_higher, n_equal, n_missing
