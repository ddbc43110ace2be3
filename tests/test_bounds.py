"""Theorem 1's explicit 2×2 bounds hold on the det > 0 branch and have the theorem's order."""

import numpy as np
import torch

from implicit_reg import metrics, theory


def branch_points(n: int = 2000) -> torch.Tensor:
    """Random 2×2 matrices near the zero-loss set S with det > 0 and ℓ < 1/2."""
    g = torch.Generator().manual_seed(0)
    W = torch.empty(n, 2, 2, dtype=torch.float64)
    scale = 10 ** (-4 * torch.rand(n, generator=g, dtype=torch.float64))
    W[:, 0, 1] = 1 + scale * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * 0.4
    W[:, 1, 0] = 1 + scale * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * 0.4
    W[:, 1, 1] = scale * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * 0.4
    W[:, 0, 0] = torch.sign(W[:, 1, 1]) * 10 ** (
        6 * torch.rand(n, generator=g, dtype=torch.float64)
    )
    return W[torch.linalg.det(W) > 0]


def loss(W: torch.Tensor) -> np.ndarray:
    return (0.5 * ((W[:, 0, 1] - 1) ** 2 + (W[:, 1, 0] - 1) ** 2 + W[:, 1, 1] ** 2)).numpy()


def test_bounds_hold_on_the_det_positive_branch() -> None:
    W = branch_points()
    ell = loss(W)
    assert len(W) > 500 and (ell < 0.5).all()
    assert (np.abs(W[:, 0, 0].numpy()) >= theory.w11_lower_bound(ell) * (1 - 1e-12)).all()
    for norm in (metrics.frobenius, metrics.nuclear, metrics.spectral):
        assert (norm(W).numpy() >= theory.norm_lower_bound(ell) * (1 - 1e-12)).all()
    distance = metrics.infimal_distance(W, 1).numpy()
    assert (distance <= theory.infimal_distance_upper_bound(ell) * (1 + 1e-9)).all()
    erank = metrics.effective_rank(W).numpy()
    assert (erank <= theory.effective_rank_upper_bound(ell) * (1 + 1e-12)).all()


def test_bounds_have_the_theorems_order() -> None:
    ell = np.logspace(-12, -6, 7)
    assert np.allclose(theory.norm_lower_bound(ell) * np.sqrt(ell), 1 / np.sqrt(2), rtol=1e-2)
    ratio = theory.infimal_distance_upper_bound(ell) / np.sqrt(ell)
    assert np.allclose(ratio, 2 * np.sqrt(2), rtol=1e-2)  # c₂ = 2√2 as ℓ → 0
    assert (np.diff(theory.effective_rank_upper_bound(ell)) > 0).all()
    assert theory.effective_rank_upper_bound(1e-12) - 1 < 1e-4


def test_bound_fails_off_the_branch() -> None:
    """Without det > 0 the eq. (20) bound is not implied: W = [[0, 1], [1, 0]] has ℓ = 0."""
    W = torch.tensor([[0.0, 1.0], [1.0, 1e-3]], dtype=torch.float64)
    assert torch.linalg.det(W) < 0
    assert abs(W[0, 0].item()) < theory.w11_lower_bound(loss(W[None]))[0]
