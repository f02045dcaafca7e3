"""Counting a gold's rank against a whole knowledge base, exactly, in bounded memory.

The gold's rank is counted, never sorted: per mention, the entities scored strictly higher than its gold
(``s > g + tolerance``) and the *other* entities scored equal (``|s - g| <= tolerance``, `tie_bounds`:
pessimistic ties), an entity without a score (NaN) counting as -inf. The KB is walked in tiles of ``mentions x
chunk`` scores, so memory is bounded whatever its size, with one fused pass per tile: a matrix product, then one
comparison against the gold's lower tie bound (`count_at_least_gold`, all a pessimistic rank needs) or two
(`count_above_gold`, which keeps higher and equal apart), summed as int32; the gold's own column is taken out
afterwards, and NaN entities and mentions are counted from per-row flags instead of per score. Score adjustments,
infinite embeddings and vectors large enough to overflow take the exact path (`count_exactly`), one elementwise
step at a time. The ``faiss`` backend (`BACKENDS`) lists each mention's top-k entities first: when the k-th listed
scores below the gold's tie bound, every entity at or above the gold is listed and the counts are read off the
list; the other mentions are counted as above. On a GPU the tiles run there, sized from its free memory. The KB
side is prepared once for every mention batch (`KBKeys`); `ranks_from_counts` turns counts into ranks.
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

BACKENDS = ("torch", "faiss")
"""``torch``: the fused count for every mention. ``faiss`` (``pip install m3el[faiss]``): FAISS's top-k first, the
fused count for the mentions it leaves undecided. Both give the same counts; on CPU the fused count alone was the
faster (`benchmark/perf/perf_kb.py`: an exact MR needs every score of an undecided mention anyway, and FAISS's
search of a mention batch costs about as much as the whole count), so it is the default."""


@dataclass
class KBRankingSettings:
    """How `KBScorer` walks the knowledge base.

    Args:
        chunk_size (`int`, *optional*, defaults to 16384): KB entities per matrix product (on a GPU, at most what
            half its free memory holds).
        tie_tolerance (`float`, *optional*, defaults to `TIE_TOLERANCE`): score difference still counted as a tie.
        backend (`str`, *optional*, defaults to ``"torch"``): one of `BACKENDS`; every backend gives the same counts.
        top_k (`int`, *optional*, defaults to 20): entities FAISS lists per mention before the exact count of the
            mentions whose gold's rank the list cannot decide.
        mention_batch (`int`, *optional*, defaults to 1024): mentions per tile; a matrix product of 1024 rows runs
            about twice as fast per score as one of 256 on CPU (`benchmark/perf/perf_kb.py`).
    """

    chunk_size: int = 16384
    tie_tolerance: float = TIE_TOLERANCE
    backend: str = "torch"
    top_k: int = 20
    mention_batch: int = 1024

    def __post_init__(self):
        if self.chunk_size < 1:
            raise ValueError(f"kb chunk_size must be at least 1, got {self.chunk_size}.")
        if not self.tie_tolerance >= 0:
            raise ValueError(f"kb tie_tolerance must be 0 or more, got {self.tie_tolerance}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"Unknown kb ranking backend {self.backend!r}; choose from {', '.join(BACKENDS)}.")
        if self.backend == "faiss" and importlib.util.find_spec("faiss") is None:
            raise ValueError("kb ranking backend 'faiss' needs FAISS: pip install 'm3el[faiss]' (or faiss-cpu), or "
                             "pass backend 'torch'.")  # fmt: skip
        if self.top_k < 1:
            raise ValueError(f"kb ranking top_k must be at least 1, got {self.top_k}.")
        if self.mention_batch < 1:
            raise ValueError(f"kb ranking mention_batch must be at least 1, got {self.mention_batch}.")


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


@dataclass
class QueryProfile:
    """What `count_above_gold` needs to know of a batch of queries (or of the keys) before choosing its path."""

    broken: torch.Tensor  # (batch,) a NaN in some vector: every score NaN
    finite: bool  # no inf in the other queries
    magnitude: float  # their largest |value|
    norm: float  # their largest vector norm
    dim: int

    @classmethod
    def of(cls, queries: torch.Tensor) -> QueryProfile:
        low, high = queries.aminmax() if queries.numel() else (torch.tensor(0.0), torch.tensor(0.0))
        if bool(torch.isfinite(low) & torch.isfinite(high)):  # the usual case: every value finite, one pass
            broken, scored = torch.zeros(len(queries), dtype=torch.bool), queries
            return cls(broken, True, max(-float(low), float(high)), _largest_norm(scored), queries.shape[-1])
        broken = torch.isnan(queries).flatten(1).any(dim=1)
        scored = queries[~broken]
        finite = bool(torch.isfinite(scored).all())
        magnitude = float(scored.abs().amax()) if finite and scored.numel() else 0.0
        return cls(broken, finite, magnitude, _largest_norm(scored) if finite else 0.0, queries.shape[-1])


def _largest_norm(vectors: torch.Tensor) -> float:
    """The largest norm of ``vectors``' last dimension (0 for none)."""
    return float(torch.linalg.vector_norm(vectors, dim=-1).amax()) if vectors.numel() else 0.0


def tie_bounds(gold_scores: torch.Tensor, tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(low, high)`` of each gold score g: a score s > high is higher than the gold's, low <= s <= high ties it.

    ``high`` is ``g + tolerance`` rounded as the rule always computed it; ``low`` is the smallest float at or above
    the exact ``g - tolerance``, so that ``s >= low`` is exactly ``|s - g| <= tolerance`` on that side (what
    ``(s - g).abs() <= tolerance`` computes, ``s - g`` being exact so near g) rather than off by a rounding.
    """
    step = torch.tensor(tolerance, dtype=gold_scores.dtype)
    high = gold_scores + step
    wanted = gold_scores.double() - step.double()
    low = wanted.to(gold_scores.dtype)
    low = torch.where(low.double() < wanted, torch.nextafter(low, torch.tensor(float("inf"), dtype=low.dtype)), low)
    return low, high


class KBKeys:
    """The KB side of `count_above_gold`, prepared once for every mention batch: which entities have no score (a NaN
    in any of their vectors), whether the fused pass is exact for them (no inf, no overflow), their FAISS index.

    Args:
        keys (`torch.Tensor`): ``(num_keys, k, d)`` entity vectors.
        settings (`KBRankingSettings`): its ``backend`` decides whether a FAISS index is built.
        device (`torch.device`, *optional*): where the fused pass runs; defaults to CUDA when available, else CPU.
    """

    def __init__(self, keys: torch.Tensor, settings: KBRankingSettings, device: torch.device | None = None):
        self.keys = keys
        profile = QueryProfile.of(keys)  # the same questions of the other side
        self.broken, self.num_broken = profile.broken, int(profile.broken.sum())
        self.fusable, self.magnitude, self.norm = profile.finite, profile.magnitude, profile.norm
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.on_device = keys if self.device == keys.device else keys.to(self.device)
        self.index, self.index_rows = None, None
        single = keys.shape[1] == 1 and self.num_broken < len(keys)
        if settings.backend == "faiss" and self.fusable and single:
            import faiss  # an optional dependency (m3el[faiss])

            self.index_rows = torch.nonzero(~self.broken).flatten()
            self.index = faiss.IndexFlatIP(keys.shape[2])
            self.index.add(np.ascontiguousarray(keys[self.index_rows, 0].numpy(), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.keys)

    def fuses(self, queries: QueryProfile) -> bool:
        """Whether the fused pass counts exactly as the rule says: no inf anywhere, no score that can overflow."""
        bound = queries.magnitude * self.magnitude * queries.dim
        return self.fusable and queries.finite and bound < _SAFE_MAGNITUDE

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
    n_higher, n_at_least, n_missing = _counts(queries, keys, gold, settings, adjust, stats, split=True)
    return n_higher, n_at_least - n_higher, n_missing


def count_at_least_gold(
    queries: torch.Tensor,
    keys: torch.Tensor | KBKeys,
    gold: torch.Tensor,
    settings: KBRankingSettings,
    adjust: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    stats: dict[str, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count_above_gold`'s higher plus equal counts as one (the gold's pessimistic rank minus 1), and the NaN
    scores: one comparison per tile instead of two, for callers that do not need ties apart."""
    _, n_at_least, n_missing = _counts(queries, keys, gold, settings, adjust, stats, split=False)
    return n_at_least, n_missing


def _counts(
    queries: torch.Tensor,
    keys: torch.Tensor | KBKeys,
    gold: torch.Tensor,
    settings: KBRankingSettings,
    adjust: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    stats: dict[str, int] | None,
    split: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(n_higher, n_at_least, n_missing)``; ``n_higher`` is zeros unless ``split``."""
    table = keys if isinstance(keys, KBKeys) else KBKeys(keys, settings, device=keys.device)
    profile = QueryProfile.of(queries)
    if adjust is not None or not table.fuses(profile):
        n_higher, n_equal, n_missing = count_exactly(queries, table.keys, gold, settings, adjust)
        return n_higher, n_higher + n_equal, n_missing
    has_gold = gold >= 0
    safe = torch.where(has_gold, gold, 0)
    gold_scores = kb_scores_pairwise(queries, table.keys[safe]).nan_to_num(nan=float("-inf"))
    gold_scores = torch.where(has_gold, gold_scores, torch.tensor(float("-inf")))
    bounds = tie_bounds(gold_scores, settings.tie_tolerance)
    counts = torch.zeros(len(queries), dtype=torch.long), torch.zeros(len(queries), dtype=torch.long)
    exact = torch.ones(len(queries), dtype=torch.bool)
    # FAISS only for cosine scores (unit vectors, as the adapters give): its float32 rounding (~1e-7) then stays
    # well below the tie tolerance; larger scores are counted by the fused pass.
    if table.index is not None and queries.shape[1] == 1 and profile.norm * table.norm <= 1 + _UNIT_SLACK:
        exact = _count_from_top_k(queries, profile, table, safe, bounds, settings, counts)
    if stats is not None:
        stats["decided_by_top_k"] = stats.get("decided_by_top_k", 0) + int((~exact).sum())
    if exact.any():
        rows = torch.nonzero(exact).flatten()
        row_bounds = (bounds[0][rows], bounds[1][rows] if split else None)
        fused = _count_fused(queries[rows], table, safe[rows], has_gold[rows], row_bounds, settings)
        for count, found in zip(counts, fused, strict=True):
            count[rows] = found
    # The entities without a score are -inf: below every finite gold, tied with a gold of -inf (itself left out).
    n_missing = torch.where(profile.broken, len(table), table.num_broken)
    gold_unscored = has_gold & (profile.broken | table.broken[safe])
    unscored_ties = torch.where(torch.isneginf(gold_scores), n_missing - gold_unscored.long(), 0)
    return counts[1], counts[0] + unscored_ties, n_missing


def _count_fused(
    queries: torch.Tensor,
    table: KBKeys,
    safe: torch.Tensor,
    has_gold: torch.Tensor,
    bounds: tuple[torch.Tensor, torch.Tensor | None],
    settings: KBRankingSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, the keys scored at least ``low`` and (unless ``high`` is None) above ``high``, the gold itself
    left out: one matrix product and one comparison per bound per tile, on the table's device."""
    device = table.device
    queries, safe, has_gold = queries.to(device), safe.to(device), has_gold.to(device)
    bounds = [None if bound is None else bound.to(device)[:, None] for bound in bounds]
    counts = [torch.zeros(len(queries), dtype=torch.long, device=device) for _ in bounds]
    rows = torch.arange(len(queries), device=device)
    chunk = table.chunk_size(len(queries), queries, settings)
    for start in range(0, len(table), chunk):
        scores = kb_scores(queries, table.on_device[start : start + chunk])
        inside = has_gold & (safe >= start) & (safe < start + scores.shape[1])
        own = scores[rows[inside], safe[inside] - start]  # the gold's own column: neither higher nor equal
        for count, bound, above in zip(counts, bounds, (torch.ge, torch.gt), strict=True):
            if bound is not None:  # an int32 sum of a mask is many times faster than the default int64 one
                count += above(scores, bound).sum(dim=1, dtype=torch.int32)
                count[inside] -= above(own, bound[inside, 0]).long()
    return counts[0].cpu(), counts[1].cpu()


def _count_from_top_k(
    queries: torch.Tensor,
    profile: QueryProfile,
    table: KBKeys,
    safe: torch.Tensor,
    bounds: tuple[torch.Tensor, torch.Tensor],
    settings: KBRankingSettings,
    counts: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Fill ``counts`` (at least ``low``, above ``high``) from FAISS's top-k list where it decides them: when the
    k-th listed entity scores below ``low`` (by a tolerance's margin), every entity at or above it is listed.
    Returns the queries left to count exactly (a mention or gold without score, or a list that ends near ``low``)."""
    low, high = bounds
    decidable = torch.isfinite(low) & ~profile.broken
    rows = torch.nonzero(decidable).flatten()
    if not len(rows):
        return ~decidable
    k = min(settings.top_k, len(table.index_rows))
    scores, listed = table.index.search(np.ascontiguousarray(queries[rows, 0].numpy(), dtype=np.float32), k)
    scores, listed = torch.from_numpy(scores), table.index_rows[torch.from_numpy(listed)]
    low, high = low[rows, None], high[rows, None]
    complete = (scores[:, -1] < low[:, 0] - settings.tie_tolerance) | (k == len(table.index_rows))
    others = listed != safe[rows, None]
    decided = rows[complete]
    counts[0][decided] = ((scores >= low) & others)[complete].sum(dim=1)
    counts[1][decided] = ((scores > high) & others)[complete].sum(dim=1)
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
    low, high = tie_bounds(gold_scores, settings.tie_tolerance)
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
