"""POT's entropic fused Gromov-Wasserstein solver, run on a batch of documents of one size at once.

`ot.gromov.entropic_fused_gromov_wasserstein` (POT 0.9, ``loss_fun="square_loss"``, ``solver="PGD"``, symmetric
costs, uniform weights, no warm start) spends its time in Python: on a document of 2 to 8 mentions each of its
~2,000 Sinkhorn iterations is a few microseconds of arithmetic and tens of microseconds of dispatch. This module
runs the same iterations on ``B`` documents of equal shape as batched tensor operations: the same initial plan
``p qᵀ``, the same projected-gradient outer loop (the GW gradient ``2 (constC - C1 T (2 C2)ᵀ)`` mixed with the
cross-modal cost, the plan's change checked every 10th outer iteration against ``tol``), and inside it the same
Sinkhorn-Knopp iterations (marginal error checked every 10th iteration against ``stop_threshold``, a numerical
breakdown reverting to the previous scalings). Each document stops exactly when POT would stop on it alone, so
the plans agree with POT's to rounding (``tests/test_gan21.py`` checks them and the figures against POT).
"""

from __future__ import annotations

import torch

SINKHORN_MAX_ITER = 1000
SINKHORN_STOP_THRESHOLD = 1e-9
"""POT's defaults for the inner Sinkhorn (``ot.sinkhorn``'s ``numItermax`` and ``stopThr``), which Gan21 keeps."""


def _take(rows: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Each of ``tensors`` at the batch positions ``rows`` (`index_select`: on CPU far faster than a mask index)."""
    return [tensor.index_select(0, rows) for tensor in tensors]


def _sinkhorn(costs: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Entropic plans ``(B, n, m)`` of ``costs (B, n, m)`` with uniform marginals, POT's ``sinkhorn_knopp`` per
    document: scalings start at ``1/n`` and ``1/m``; a document stops when its column marginal error, checked every
    10th iteration, falls below the threshold, or (keeping its previous scalings) when a scaling is no longer finite.
    A stopped document leaves the batch, so that each iteration only computes the running ones.
    """
    batch, n, m = costs.shape
    p, q = 1.0 / n, costs.new_full((m,), 1.0 / m)
    kernel = torch.exp(costs / -epsilon)
    final_u, final_v = costs.new_full((batch, n), 1.0 / n), costs.new_full((batch, m), 1.0 / m)
    index = torch.arange(batch, device=costs.device)
    u, v = final_u.clone(), final_v.clone()
    transposed, scaled = kernel.transpose(1, 2).contiguous(), (1.0 / p) * kernel  # POT's K.T and Kp = (1 / a) * K
    for iteration in range(SINKHORN_MAX_ITER):
        new_v = q / (transposed @ u[:, :, None])[:, :, 0]  # a zero of K.T u makes v infinite: caught below
        new_u = 1.0 / (scaled @ new_v[:, :, None])[:, :, 0]
        finite = torch.isfinite(torch.cat((new_u, new_v), dim=1)).all(dim=1)
        if not finite.all():  # POT: back to the previous scalings, and stop
            broken, kept = (~finite).nonzero()[:, 0], finite.nonzero()[:, 0]
            final_u.index_copy_(0, index[broken], u.index_select(0, broken))
            final_v.index_copy_(0, index[broken], v.index_select(0, broken))
            index, transposed, scaled, new_u, new_v = _take(kept, index, transposed, scaled, new_u, new_v)
        u, v = new_u, new_v
        if iteration % 10 == 0 and len(index):
            marginal = v * (transposed @ u[:, :, None])[:, :, 0]  # einsum("i,ij,j->j", u, K, v)
            done = torch.linalg.vector_norm(marginal - q, dim=1) < SINKHORN_STOP_THRESHOLD
            if done.any():
                finished, kept = done.nonzero()[:, 0], (~done).nonzero()[:, 0]
                final_u.index_copy_(0, index.index_select(0, finished), u.index_select(0, finished))
                final_v.index_copy_(0, index.index_select(0, finished), v.index_select(0, finished))
                index, transposed, scaled, u, v = _take(kept, index, transposed, scaled, u, v)
        if not len(index):
            break
    final_u.index_copy_(0, index, u)
    final_v.index_copy_(0, index, v)
    return final_u[:, :, None] * kernel * final_v[:, None, :]


def fused_gw_batch(
    cross: torch.Tensor, left: torch.Tensor, right: torch.Tensor, alpha: float, epsilon: float, max_iter: int,
    tol: float,
) -> torch.Tensor:  # fmt: skip
    """Plans ``(B, n, m)`` of the entropic fused GW problems with cross-modal costs ``cross (B, n, m)`` and
    structure costs ``left (B, n, n)``, ``right (B, m, m)`` (symmetric), uniform weights, as POT computes them."""
    batch, n, m = cross.shape
    p, q = cross.new_full((n, 1), 1.0 / n), cross.new_full((1, m), 1.0 / m)
    constant = (left**2 @ p) + (q @ (right**2).transpose(1, 2))  # init_matrix, square loss: (B, n, 1) + (B, 1, m)
    doubled_t = (2 * right).transpose(1, 2).contiguous()  # h2(C2)ᵀ = 2 C2ᵀ
    plan = (p @ q).expand(batch, n, m).contiguous()
    active = torch.arange(batch, device=cross.device)
    iteration = 0
    while len(active) and iteration < max_iter:
        constant_a, left_a, plan_a, doubled_a, cross_a = _take(active, constant, left, plan, doubled_t, cross)
        gradient = 2 * (constant_a - left_a @ plan_a @ doubled_a)
        new = _sinkhorn(alpha * gradient + (1 - alpha) * cross_a, epsilon)
        plan.index_copy_(0, active, new)
        if iteration % 10 == 0:
            active = active.index_select(0, (torch.linalg.matrix_norm(new - plan_a) > tol).nonzero()[:, 0])
        iteration += 1
    return plan
