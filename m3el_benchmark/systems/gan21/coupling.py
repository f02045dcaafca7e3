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
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)


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
    """

    alpha: float = 0.5
    epsilon: float = 0.05
    max_iter: int = 1000
    tol: float = 1e-6

    def __post_init__(self):
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
    left = torch.nn.functional.normalize(left, dim=-1)
    right = torch.nn.functional.normalize(right, dim=-1)
    return 1.0 - left @ right.T


def product_coupling(n: int, m: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``p qᵀ`` for uniform ``p`` (n) and ``q`` (m): the only coupling when n = 1 or m = 1."""
    return torch.full((n, m), 1.0 / (n * m), dtype=dtype)


def gw_coupling(texts: torch.Tensor, images: torch.Tensor, config: CouplingConfig) -> tuple[torch.Tensor, bool]:
    """The coupling ``(n, m)`` of textual mention vectors ``(n, d)`` and visual ones ``(m, d)``, float64, and whether
    the solver succeeded (on failure, a NaN plan, the product coupling is returned)."""
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
    if not torch.isfinite(plan).all() or plan.sum() <= 0:
        return product_coupling(n, m), False
    return plan, True


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
