"""Closed forms and predictions of the theory, shared by tests, logging and plots."""

from __future__ import annotations

import torch
from torch import Tensor


def min_norm_solution(X: Tensor, y: Tensor) -> Tensor:
    """pinv(X) y, the least-squares solution of least L2 norm (seed Section 3)."""
    return torch.linalg.pinv(X) @ y


def least_squares_flow(X: Tensor, y: Tensor, t: float, beta0: Tensor | None = None) -> Tensor:
    """β_t of the flow β̇ = −∇‖y − Xβ‖² = 2Xᵀ(y − Xβ) (seed eqs. 5–6).

    With X = UΣVᵀ and λᵢ = σᵢ²: β_t = V Σ_tᵀ Uᵀ y + V e^{−2tΛ} Vᵀ β₀, (Σ_t)ᵢᵢ = (1 − e^{−2tλᵢ})/σᵢ.
    ``beta0`` may carry leading batch dimensions.
    """
    U, s, Vh = torch.linalg.svd(X, full_matrices=True)
    r = int((s > s.max() * max(X.shape) * torch.finfo(s.dtype).eps).sum())
    s = s[:r]
    decay = torch.exp(-2.0 * t * s.square())
    beta = Vh[:r].T @ ((1 - decay) / s * (U[:, :r].T @ y))
    if beta0 is not None:
        coords = beta0 @ Vh.T  # β₀ in the V basis; null-space components do not move
        coords = torch.cat([coords[..., :r] * decay, coords[..., r:]], dim=-1)
        beta = beta + coords @ Vh
    return beta
