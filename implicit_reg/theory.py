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
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)  # not n×n: n may be large
    r = int((s > s.max() * max(X.shape) * torch.finfo(s.dtype).eps).sum())
    U, s, Vh = U[:, :r], s[:r], Vh[:r]
    decay = torch.exp(-2.0 * t * s.square())
    beta = Vh.T @ ((1 - decay) / s * (U.T @ y))
    if beta0 is not None:  # V e^{−2tΛ} Vᵀ β₀: the null-space part of β₀ does not move
        coords = beta0 @ Vh.T
        beta = beta + beta0 - (coords * (1 - decay)) @ Vh
    return beta


def psd_power(A: Tensor, alpha: float) -> Tensor:
    """[A]^α of a symmetric PSD matrix by its spectral decomposition; [A]^0 = I (seed eq. 14)."""
    if alpha == 0:
        return torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    eigenvalues, Q = torch.linalg.eigh(A)
    # Rounding makes the zero eigenvalues of a rank-deficient A (WWᵀ of a rectangular W) ±ε;
    # their small powers would not be small (ε^{1/3} ≈ 6e-6), so they are set to exactly 0.
    floor = eigenvalues.abs().amax(-1, keepdim=True) * A.shape[-1] * torch.finfo(A.dtype).eps
    eigenvalues = torch.where(eigenvalues > floor, eigenvalues, torch.zeros_like(eigenvalues))
    return (Q * eigenvalues.pow(alpha)) @ Q.mT


def end_to_end_rhs(W: Tensor, grad: Tensor, depth: int) -> Tensor:
    """Ẇ of seed eq. (14), the product's flow under balanced init:
    −Σ_{j=1}^{L} [WWᵀ]^{(j−1)/L} ∇ℓ(W) [WᵀW]^{(L−j)/L}."""
    left, right = W @ W.mT, W.mT @ W
    return -sum(
        psd_power(left, (j - 1) / depth) @ grad @ psd_power(right, (depth - j) / depth)
        for j in range(1, depth + 1)
    )


def singular_value_rhs(sigma: Tensor, U: Tensor, V: Tensor, grad: Tensor, depth: int) -> Tensor:
    """σ̇ⱼ of seed eq. (16): −L (σⱼ²)^{1−1/L} ⟨∇ℓ(W), uⱼvⱼᵀ⟩ for W = U diag(σ) Vᵀ (σ signed)."""
    projected = (U * (grad @ V)).sum(-2)  # ⟨∇ℓ, uⱼvⱼᵀ⟩ = uⱼᵀ ∇ℓ vⱼ
    return -depth * sigma.square().pow(1 - 1 / depth) * projected


# Theorem 1 for the 2×2 problem of seed eq. (9), with the constants of its proof (Section 7-8).
# Each curve holds at every point of a flow with det W(0) > 0 and loss ℓ < 1/8 (so 1/√(2ℓ) > 2);
# the effective-rank curve is informative only below EFFECTIVE_RANK_BOUND_MAX_LOSS (≈ 0.062).


def w11_lower_bound(loss: Tensor) -> Tensor:
    """|W₁₁| ≥ 1/√(2ℓ) − 2 + √(2ℓ) (seed eq. 20). It also bounds σ₁ (Lemma 6) and so the
    Frobenius, nuclear and spectral norms from below: eq. (11) with a = 1/√2, b = 2."""
    root = (2 * loss).sqrt()
    return 1 / root - 2 + root


def norm_lower_bound(loss: Tensor) -> Tensor:
    """‖W‖ ≥ 1/√(2ℓ) − 2 + √(2ℓ) for the Frobenius, nuclear and spectral norms: each is at least
    σ₁ ≥ |W₁₁| (seed eq. 11 with a = 1/√2, b = 2)."""
    return w11_lower_bound(loss)


def infimal_distance_upper_bound(loss: Tensor) -> Tensor:
    """D(W, M₁) = σ₂ ≤ √(2ℓ) + 1/|W₁₁| ≤ √(2ℓ) + 1/(eq. 20), eq. (13) made explicit: the rank-one
    ±uuᵀ with u = (|W₁₁|^{1/2}, ±|W₁₁|^{−1/2}) of seed Section 8 is that close to W."""
    return (2 * loss).sqrt() + 1 / w11_lower_bound(loss)


EFFECTIVE_RANK_BOUND_MAX_LOSS = 0.06202281754249790
"""ℓ* = s²/2 ≈ 0.0620, s ≈ 0.35220 the real root of 2s³ − 4s² + 4s − 1 = 0: the loss at which
ρ̄ = σ̄₂/(σ̲₁ + σ̄₂) of ``effective_rank_upper_bound`` reaches ½ (σ̄₂ = σ̲₁ with σ̲₁ = (1 − s)²/s
of eq. 20 and σ̄₂ = s + 1/σ̲₁, s = √(2ℓ)). Below ℓ* the curve exp H(ρ̄) increases with ℓ; from ℓ*
on it is 2, the largest effective rank of a 2×2 matrix (seed Section 8's argument needs ρ̄ ≤ ½:
exp H(ρ) grows with ρ only up to ½, so exp H(ρ̄) would turn down above ℓ*)."""


def effective_rank_upper_bound(loss: Tensor) -> Tensor:
    """erank W ≤ exp H(ρ, 1 − ρ), ρ = min(ρ̄, ½), ρ̄ = σ̄₂/(σ̲₁ + σ̄₂), with σ̲₁ from eq. (20) and
    σ̄₂ the bound on D(W, M₁) above: eq. (12) made explicit. ρ₂ = σ₂/(σ₁ + σ₂) ≤ min(ρ̄, ½) and
    exp H grows with ρ on [0, ½], so this holds for every ℓ < 1/8; it is 2 (no information) from
    ``EFFECTIVE_RANK_BOUND_MAX_LOSS`` on."""
    low, high = w11_lower_bound(loss), infimal_distance_upper_bound(loss)
    rho = (high / (low + high)).clamp(max=0.5)
    return torch.exp(-torch.xlogy(rho, rho) - torch.xlogy(1 - rho, 1 - rho))
