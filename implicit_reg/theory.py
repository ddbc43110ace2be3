"""Closed forms and predictions of the theory, shared by tests, logging and plots."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
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


# Theorem 1 on the 2×2 problem of seed eq. (9), made explicit. Each bound holds at any W with
# det W > 0 and ℓ(W) < 1/2; ``loss`` is a float or an array of losses ℓ.


def w11_lower_bound(loss: ArrayLike) -> np.ndarray:
    """|W₁₁| ≥ (1 − √(2ℓ))²/√(2ℓ) = 1/√(2ℓ) − 2 + √(2ℓ) (seed eq. 20)."""
    root = np.sqrt(2 * np.asarray(loss, dtype=np.float64))
    return (1 - root) ** 2 / root


def norm_lower_bound(loss: ArrayLike) -> np.ndarray:
    """‖W‖ ≥ 1/√(2ℓ) − 2 + √(2ℓ) for the Frobenius, nuclear and spectral norms (seed eq. 11 with
    a = 1/√2, b = 2): each of them is at least σ₁ ≥ |W₁₁|."""
    return w11_lower_bound(loss)


def infimal_distance_upper_bound(loss: ArrayLike) -> np.ndarray:
    """D(W, M₁) = σ₂ = det W/σ₁ ≤ |W₂₂| + |W₁₂W₂₁|/|W₁₁| ≤ √(2ℓ) + (1 + √(2ℓ))²/(eq. 20 bound),
    i.e. c√ℓ + O(ℓ) (seed eq. 13), by eqs. (18)–(20)."""
    root = np.sqrt(2 * np.asarray(loss, dtype=np.float64))
    return root + (1 + root) ** 2 / w11_lower_bound(loss)


def effective_rank_upper_bound(loss: ArrayLike) -> np.ndarray:
    """erank W = exp H(1 − ε, ε) with ε = σ₂/(σ₁ + σ₂) ≤ σ₂/|W₁₁|; H grows on [0, ½], so
    erank ≤ exp H(ε̄) with ε̄ = (D bound)/(eq. 20 bound): 1 + O(√ℓ log 1/ℓ) (seed eq. 12)."""
    eps = np.minimum(infimal_distance_upper_bound(loss) / w11_lower_bound(loss), 0.5)
    return np.exp(-(1 - eps) * np.log1p(-eps) - eps * np.log(eps))
