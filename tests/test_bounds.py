"""Theorem 1's explicit 2×2 bounds hold on the det > 0 branch and have the theorem's order."""

import torch

from implicit_reg import metrics, theory


def branch_points(n: int = 2000) -> torch.Tensor:
    """Random 2×2 matrices near the zero-loss set S with det > 0 and ℓ < 1/2."""
    g = torch.Generator().manual_seed(0)
    W = torch.empty(n, 2, 2, dtype=torch.float64)
    scale = 10 ** (-4 * torch.rand(n, generator=g, dtype=torch.float64))
    W[:, 0, 1] = 1 + scale * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * 0.25
    W[:, 1, 0] = 1 + scale * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * 0.25
    W[:, 1, 1] = scale * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * 0.25
    W[:, 0, 0] = torch.sign(W[:, 1, 1]) * 10 ** (
        6 * torch.rand(n, generator=g, dtype=torch.float64)
    )
    return W[torch.linalg.det(W) > 0]


def loss(W: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((W[:, 0, 1] - 1) ** 2 + (W[:, 1, 0] - 1) ** 2 + W[:, 1, 1] ** 2)


def test_bounds_hold_on_the_det_positive_branch() -> None:
    W = branch_points()
    ell = loss(W)
    assert len(W) > 500 and (ell < 1 / 8).all()
    assert (W[:, 0, 0].abs() >= theory.w11_lower_bound(ell) * (1 - 1e-12)).all()
    for norm in (metrics.frobenius, metrics.nuclear, metrics.spectral):
        assert (norm(W) >= theory.norm_lower_bound(ell) * (1 - 1e-12)).all()
    distance = metrics.infimal_distance(W, 1)
    assert (distance <= theory.infimal_distance_upper_bound(ell) * (1 + 1e-9)).all()
    erank = metrics.effective_rank(W)
    assert (erank <= theory.effective_rank_upper_bound(ell) * (1 + 1e-12)).all()


def test_bounds_have_the_theorems_order() -> None:
    ell = torch.logspace(-12, -6, 7, dtype=torch.float64)
    scaled = theory.norm_lower_bound(ell) * ell.sqrt()
    assert torch.allclose(scaled, torch.full_like(ell, 0.5**0.5), rtol=1e-2)
    ratio = theory.infimal_distance_upper_bound(ell) / ell.sqrt()
    assert torch.allclose(ratio, torch.full_like(ell, 8**0.5), rtol=1e-2)  # c₂ → 2√2 as ℓ → 0
    assert (theory.effective_rank_upper_bound(ell).diff() > 0).all()
    assert theory.effective_rank_upper_bound(ell[:1]) - 1 < 1e-4


def test_bound_fails_off_the_branch() -> None:
    """Without det > 0 the eq. (20) bound is not implied: W = [[0, 1], [1, 0]] has ℓ = 0."""
    W = torch.tensor([[0.0, 1.0], [1.0, 1e-3]], dtype=torch.float64)
    assert torch.linalg.det(W) < 0
    assert abs(W[0, 0].item()) < theory.w11_lower_bound(loss(W[None]))[0].item()
