"""The Gromov-Wasserstein coupling of a document's textual and visual mentions (Gan et al. 2021, Eqs. 9-10).

Each modality's mentions form a graph whose edge costs are cosine distances (``C1 = 1 - X Xᵀ``, ``C2 = 1 - Y Yᵀ``,
rows L2-normalised, uniform weights); POT's entropic (fused) GW solver finds the coupling ``T`` (n x m) that best
aligns the two graphs. "Fused" adds the cross-modal cost ``M = 1 - X Yᵀ``, meaningful because the benchmark's dual
encoders embed texts and images in one space; ``alpha = 1`` is the paper's pure GW. With one mention on either
side the coupling is the product of the weights, ``p qᵀ``, without calling the solver. `gw_value` is the
differentiable GW distance of the trained version's loss (Eq. 11).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .batched_gw import fused_gw_batch

logger = logging.getLogger(__name__)

SOLVERS = ("batched", "pot")


@dataclass
class CouplingConfig:
    """The GW solver's settings.

    Args:
        alpha (`float`, *optional*, defaults to 0.5): weight of the structure (GW) term against the cross-modal
            cost ``M``; 1.0 is pure Gromov-Wasserstein.
        epsilon (`float`, *optional*, defaults to 0.05): entropic regularisation (the paper's beta, unstated).
        max_iter (`int`, *optional*, defaults to 1000): outer iterations of the solver.
        tol (`float`, *optional*, defaults to 1e-6): its stopping tolerance (POT's 1e-9 is about 10x slower and
            changes no argmax in `benchmark/perf/perf_gan21.py`'s documents).
        solver (`str`, *optional*, defaults to ``"batched"``): ``"batched"`` runs POT's iterations on every document
            of one shape at once (`batched_gw`, same plans); ``"pot"`` calls POT once per document.
        batch_size (`int`, *optional*, defaults to 1024): documents per batch of the batched solver.
    """

    alpha: float = 0.5
    epsilon: float = 0.05
    max_iter: int = 1000
    tol: float = 1e-6
    solver: str = "batched"
    batch_size: int = 1024

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"GW solver {self.solver!r} is unknown; choose one of {', '.join(SOLVERS)}.")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"GW alpha must lie in [0, 1], got {self.alpha}.")
        if self.epsilon <= 0:
            raise ValueError(f"GW epsilon must be positive, got {self.epsilon}.")


def import_ot():
    """The POT module, or an ``ImportError`` saying how to install it."""
    try:
        import ot
    except ImportError as error:
        message = "Gan21-OT needs the POT library: `pip install pot` (or `pip install m3el[gan21]`)."
        raise ImportError(message) from error
    return ot


def cosine_costs(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` between the rows of ``left (n, d)`` and ``right (m, d)``."""
    return batched_cosine_costs(left, right)


def batched_cosine_costs(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` between the rows of ``left (..., n, d)`` and ``right (..., m, d)``."""
    left = torch.nn.functional.normalize(left, dim=-1)
    right = torch.nn.functional.normalize(right, dim=-1)
    return 1.0 - left @ right.transpose(-1, -2)


def product_coupling(n: int, m: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``p qᵀ`` for uniform ``p`` (n) and ``q`` (m): the only coupling when n = 1 or m = 1."""
    return torch.full((n, m), 1.0 / (n * m), dtype=dtype)


def _checked(plan: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``plan``, or on a solver failure (a NaN or empty plan) the product coupling, and whether it succeeded."""
    if not torch.isfinite(plan).all() or plan.sum() <= 0:
        return product_coupling(*plan.shape), False
    return plan, True


def gw_couplings(
    documents: Sequence[tuple[torch.Tensor, torch.Tensor]], config: CouplingConfig
) -> list[tuple[torch.Tensor, bool]]:
    """`gw_coupling` of each ``(texts, images)`` document; with the ``batched`` solver the documents of one shape
    are solved together (`batched_gw`), ``batch_size`` at a time."""
    if config.solver == "pot":
        return [gw_coupling(texts, images, config) for texts, images in documents]
    found: list[tuple[torch.Tensor, bool] | None] = [None] * len(documents)
    shapes: dict[tuple[int, int], list[int]] = {}
    for index, (texts, images) in enumerate(documents):
        n, m = len(texts), len(images)
        if n == 1 or m == 1:
            found[index] = product_coupling(n, m), True
        else:
            shapes.setdefault((n, m), []).append(index)
    for indices in shapes.values():
        for start in range(0, len(indices), config.batch_size):
            chunk = indices[start : start + config.batch_size]
            texts = torch.stack([documents[i][0] for i in chunk]).double()
            images = torch.stack([documents[i][1] for i in chunk]).double()
            plans = fused_gw_batch(batched_cosine_costs(texts, images), batched_cosine_costs(texts, texts),
                                   batched_cosine_costs(images, images), config.alpha, config.epsilon,
                                   config.max_iter, config.tol)  # fmt: skip
            for i, plan in zip(chunk, plans, strict=True):
                found[i] = _checked(plan)
    return found


def gw_coupling(texts: torch.Tensor, images: torch.Tensor, config: CouplingConfig) -> tuple[torch.Tensor, bool]:
    """The coupling ``(n, m)`` of textual mention vectors ``(n, d)`` and visual ones ``(m, d)``, float64, and whether
    the solver succeeded (on failure, a NaN plan, the product coupling is returned). POT's solver, one document;
    `gw_couplings` solves many."""
    n, m = len(texts), len(images)
    if n == 1 or m == 1:
        return product_coupling(n, m), True
    ot = import_ot()
    texts, images = texts.double(), images.double()
    p, q = torch.full((n,), 1.0 / n, dtype=torch.float64), torch.full((m,), 1.0 / m, dtype=torch.float64)
    costs = (cosine_costs(texts, texts), cosine_costs(images, images))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a failure is detected below and counted by the caller
        plan = ot.gromov.entropic_fused_gromov_wasserstein(
            cosine_costs(texts, images), *costs, p, q, epsilon=config.epsilon, alpha=config.alpha,
            max_iter=config.max_iter, tol=config.tol,
        )  # fmt: skip
    return _checked(plan)


def gw_value(texts: torch.Tensor, images: torch.Tensor, config: CouplingConfig) -> torch.Tensor:
    """The entropic fused GW distance of the two mention graphs, differentiable in both (Eq. 11's third term).

    A scalar 0 when a side has no mention; with one mention on a side it is the distance under ``p qᵀ``.
    """
    if len(texts) == 0 or len(images) == 0:
        return texts.new_zeros(())
    ot = import_ot()
    n, m = len(texts), len(images)
    p, q = texts.new_full((n,), 1.0 / n), texts.new_full((m,), 1.0 / m)
    costs = (cosine_costs(texts, texts), cosine_costs(images, images))
    return ot.gromov.entropic_fused_gromov_wasserstein2(
        cosine_costs(texts, images), *costs, p, q, epsilon=config.epsilon, alpha=config.alpha,
        max_iter=config.max_iter, tol=config.tol,
    )  # fmt: skip
