"""Metrics against their definitions (seed §5), checked by computations that do not go through
``torch.linalg.svdvals``: known spectra, closed forms and brute force."""

import math

import pytest
import torch

from implicit_reg import metrics


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_effective_rank_of_identity_is_d(d: int) -> None:
    """erank(I_d) = exp(log d) = d (ρ uniform).

    Catches: a wrong base, e.g. 2**H instead of e**H (erank(I₂) = 2^{log 2} = 1.62)."""
    # ρᵢ = 1/d exactly for d = 1, 2 and to one rounding for d = 5: 1e-12 relative is ample
    erank = metrics.effective_rank(torch.eye(d, dtype=torch.float64)).item()
    assert erank == pytest.approx(d, rel=1e-12)


def test_effective_rank_of_spiked_identity_is_close_to_one() -> None:
    """diag(1001, 1): erank = exp H(1001/1002, 1/1002), written out with math.log.

    Catches: a wrong base, or ρ normalised by ‖W‖_F instead of Σσᵢ."""
    W = torch.eye(2, dtype=torch.float64)
    W[0, 0] += 1e3
    rho = (1001 / 1002, 1 / 1002)
    expected = math.exp(-sum(p * math.log(p) for p in rho))
    erank = metrics.effective_rank(W).item()
    assert erank == pytest.approx(expected, rel=1e-12)  # both are a few roundings from exact
    assert 1 < erank < 1.01


def test_effective_rank_is_one_for_rank_one_and_zero_for_zero() -> None:
    """erank(uuᵀ) = erank(diag(3, 0)) = 1, erank(0) := 0 (seed §5 defines it for W ≠ 0).

    Catches: a missing zero guard (erank(0) = e⁰ = 1), or 0·log 0 taken as NaN (ρ log ρ
    instead of xlogy: diag(3, 0) has σ₂ = 0 exactly)."""
    u = torch.randn(4, 1, dtype=torch.float64, generator=generator(0))
    # σ₂…σ₄ of the rounded uuᵀ are ≲ 1e-15 σ₁: erank − 1 ≲ 3·1e-15·log(1e15) ≈ 1e-13
    assert metrics.effective_rank(u @ u.T).item() == pytest.approx(1.0, abs=1e-10)
    # exp(−1·log 1): exactly 1 in glibc and SLEEF, but only an ulp is promised; NaN still fails
    assert metrics.effective_rank(torch.diag(torch.tensor([3.0, 0.0]))).item() == pytest.approx(
        1.0, abs=1e-15
    )
    assert metrics.effective_rank(torch.zeros(3, 3)).item() == 0.0  # the guard's 0: exact


def second_singular_value_2x2(W: torch.Tensor) -> torch.Tensor:
    """σ₂ of a 2×2 matrix in closed form: σ₁ ± σ₂ = √(‖W‖_F² ± 2|det W|) (from σ₁² + σ₂² =
    ‖W‖_F², σ₁σ₂ = |det W|; Lemma 6), σ₂ = 2|det W|/((σ₁ + σ₂) + (σ₁ − σ₂)) without
    cancellation."""
    fro2 = W.square().sum((-2, -1))
    det = (W[..., 0, 0] * W[..., 1, 1] - W[..., 0, 1] * W[..., 1, 0]).abs()
    return 2 * det / ((fro2 + 2 * det).sqrt() + (fro2 - 2 * det).clamp_min(0).sqrt())


def test_infimal_distance_of_2x2_is_second_singular_value() -> None:
    """D(W, M₁) = σ₂ (Eckart–Young) for random 2×2 W, against the closed form of σ₂ and against
    a brute-force minimum over rank-one matrices: for a unit u_θ = (cos θ, sin θ) the nearest
    rank-one u_θ xᵀ is x = Wᵀu_θ, at squared distance ‖W‖_F² − ‖Wᵀu_θ‖², minimised over a grid
    of θ. Also D(W, M₀) = ‖W‖_F and D(W, M₂) = 0.

    Catches: the square root dropped (σ₂² for σ₂)."""
    theta = torch.linspace(0, math.pi, 200001, dtype=torch.float64)
    u = torch.stack([theta.cos(), theta.sin()], -1)  # u_θ and −u_θ give the same rank-one set
    for W in torch.randn(20, 2, 2, dtype=torch.float64, generator=generator(0)):
        distance = metrics.infimal_distance(W, 1)
        # both are within a few ε·‖W‖_F of σ₂ (the det's cancellation: ε‖W‖_F²/σ₁ ≤ √2 ε‖W‖_F),
        # so 1e-14·‖W‖_F ≈ 45 ε‖W‖_F
        assert abs(distance - second_singular_value_2x2(W)) <= 1e-14 * W.norm()
        brute = (W.square().sum() - (u @ W).square().sum(-1)).min().clamp_min(0).sqrt()
        # the grid step h = π/2e5 misses the best θ by ≤ h/2: squared distance ≥ σ₂² and
        # ≤ σ₂² + (σ₁² − σ₂²)(h/2)² ≤ σ₂² + 7e-11‖W‖_F²; and the sum has ~1e-16‖W‖_F² rounding
        assert distance**2 - 1e-14 * W.square().sum() <= brute**2
        assert brute**2 <= distance**2 + 1e-10 * W.square().sum()
        assert metrics.infimal_distance(W, 0).item() == pytest.approx(W.norm().item(), rel=1e-12)
        assert metrics.infimal_distance(W, 2).item() == 0.0  # no σ beyond the 2nd: an exact 0


def test_infimal_distance_is_distance_to_truncated_svd() -> None:
    """D(W, M₂) of a 5×4 W is ‖W − W₂‖_F for the truncated SVD W₂ (the Eckart–Young minimiser
    built explicitly), and √(λ₃ + λ₄) from the eigenvalues of WᵀW (symmetric eigensolver, not an
    SVD).

    Catches: √(Σ_{i>r} σᵢ²) replaced by Σ_{i>r} σᵢ or by Σ_{i>r} σᵢ²."""
    W = torch.randn(5, 4, dtype=torch.float64, generator=generator(1))
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    best_rank2 = U[:, :2] @ torch.diag(s[:2]) @ Vh[:2]
    distance = metrics.infimal_distance(W, 2).item()
    # each route is backward stable: a few ε·‖W‖ apart, ‖W‖ ≈ 4, distance ≈ 1
    assert distance == pytest.approx((W - best_rank2).norm().item(), rel=1e-12)
    eigenvalues = torch.linalg.eigvalsh(W.T @ W)  # ascending
    assert distance == pytest.approx(eigenvalues[:2].sum().sqrt().item(), rel=1e-10)


def test_norm_ordering_on_random_matrices() -> None:
    """‖W‖_* ≥ ‖W‖_F ≥ ‖W‖₂; ‖W‖₂² = λ_max(WᵀW) and ‖W‖_* = tr √(WᵀW), from the symmetric
    eigensolver.

    Catches: the nuclear norm as √(Σσᵢ²) or the spectral norm as σ_min."""
    W = torch.randn(100, 3, 4, dtype=torch.float64, generator=generator(2))
    nuclear, fro, spectral = metrics.nuclear(W), metrics.frobenius(W), metrics.spectral(W)
    assert nuclear.shape == fro.shape == spectral.shape == (100,)
    # rounding: each is a few ε·‖W‖ from exact, ‖W‖ ≲ 10, so 1e-12 absolute
    assert (nuclear >= fro - 1e-12).all()
    assert (fro >= spectral - 1e-12).all()
    eigenvalues = torch.linalg.eigvalsh(W @ W.mT)  # 3×3, all > 0 for Gaussian W
    assert torch.allclose(spectral, eigenvalues[..., -1].sqrt(), rtol=1e-10)
    assert torch.allclose(nuclear, eigenvalues.sqrt().sum(-1), rtol=1e-10)


def test_schatten_norms_interpolate_the_named_ones() -> None:
    """Schatten-1 is nuclear, Schatten-2 is Frobenius, p < 1 a quasi-norm above the nuclear.

    Catches: (Σσᵢᵖ)^p instead of (Σσᵢᵖ)^{1/p}."""
    W = torch.randn(4, 4, dtype=torch.float64, generator=generator(3))
    assert metrics.schatten(W, 1).item() == pytest.approx(metrics.nuclear(W).item(), rel=1e-12)
    assert metrics.schatten(W, 2).item() == pytest.approx(metrics.frobenius(W).item(), rel=1e-12)
    assert metrics.schatten(W, 0.5).item() >= metrics.nuclear(W).item()  # a quasi-norm, p < 1
    with pytest.raises(ValueError, match="p must be > 0"):
        metrics.schatten(W, 0)
