"""Matrix metrics of the seed's Section 5: norms, effective rank, distance to the infimal rank.

Every function is pure and works on a matrix ``(d, d')`` or a batch ``(..., d, d')``; the
leading dimensions are kept. Singular values are in descending order.
"""

from __future__ import annotations

import torch
from torch import Tensor


def singular_values(W: Tensor) -> Tensor:
    """σ₁ ≥ σ₂ ≥ … ≥ σ_m, m = min(d, d')."""
    return torch.linalg.svdvals(W)


def frobenius(W: Tensor) -> Tensor:
    """‖W‖_F = √(Σ σᵢ²)."""
    return torch.linalg.matrix_norm(W, ord="fro")


def nuclear(W: Tensor) -> Tensor:
    """‖W‖_* = Σ σᵢ."""
    return singular_values(W).sum(-1)


def spectral(W: Tensor) -> Tensor:
    """‖W‖₂ = σ₁."""
    return singular_values(W)[..., 0]


def schatten(W: Tensor, p: float) -> Tensor:
    """Schatten-p (quasi-)norm (Σ σᵢᵖ)^{1/p}; a quasi-norm for 0 < p < 1 (seed eq. 21)."""
    if p <= 0:
        raise ValueError(f"schatten: p must be > 0, got {p}")
    return schatten_from_singular_values(singular_values(W), p)


def schatten_from_singular_values(s: Tensor, p: float) -> Tensor:
    return s.pow(p).sum(-1).pow(1.0 / p)


def effective_rank(W: Tensor) -> Tensor:
    """erank(W) = exp(H(ρ)), ρᵢ = σᵢ / Σⱼσⱼ (Roy & Vetterli; seed Section 5). erank(0) := 0."""
    return effective_rank_from_singular_values(singular_values(W))


def effective_rank_from_singular_values(s: Tensor) -> Tensor:
    total = s.sum(-1, keepdim=True)
    rho = s / total.clamp_min(torch.finfo(s.dtype).tiny)
    entropy = -torch.xlogy(rho, rho).sum(-1)  # xlogy gives 0·log 0 = 0
    return torch.where(total.squeeze(-1) > 0, entropy.exp(), torch.zeros_like(entropy))


def infimal_distance(W: Tensor, rank: int) -> Tensor:
    """D(W, M_r) = √(Σ_{i>r} σᵢ²), the Frobenius distance to matrices of rank ≤ r (Eckart–Young)."""
    return infimal_distance_from_singular_values(singular_values(W), rank)


def infimal_distance_from_singular_values(s: Tensor, rank: int) -> Tensor:
    return s[..., rank:].square().sum(-1).sqrt()


def reconstruction_error(W: Tensor, ground_truth: Tensor) -> Tensor:
    """‖W − W*‖_F / ‖W*‖_F, the relative error of Arora et al. 2019 (Fig. 2), per leading index."""
    return frobenius(W - ground_truth) / frobenius(ground_truth)
