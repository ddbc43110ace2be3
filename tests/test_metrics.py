"""Metrics against their definitions (seed §5) on matrices whose spectra are known."""

import math

import pytest
import torch

from implicit_reg import metrics


@pytest.mark.parametrize("d", [1, 2, 5])
def test_effective_rank_of_identity_is_d(d: int) -> None:
    assert metrics.effective_rank(torch.eye(d, dtype=torch.float64)).item() == pytest.approx(d)


def test_effective_rank_of_spiked_identity_is_close_to_one() -> None:
    W = torch.eye(2, dtype=torch.float64)
    W[0, 0] += 1e3
    rho = torch.tensor([1001.0, 1.0], dtype=torch.float64) / 1002
    expected = math.exp(-(rho * rho.log()).sum().item())
    erank = metrics.effective_rank(W).item()
    assert erank == pytest.approx(expected, rel=1e-12)
    assert 1 < erank < 1.01


def test_effective_rank_is_one_for_rank_one_and_zero_for_zero() -> None:
    u = torch.randn(4, 1, dtype=torch.float64)
    assert metrics.effective_rank(u @ u.T).item() == pytest.approx(1.0, abs=1e-6)
    assert metrics.effective_rank(torch.zeros(3, 3)).item() == 0.0


def test_infimal_distance_of_2x2_is_second_singular_value() -> None:
    torch.manual_seed(0)
    for W in torch.randn(20, 2, 2, dtype=torch.float64):
        s = torch.linalg.svdvals(W)
        assert metrics.infimal_distance(W, 1).item() == pytest.approx(s[1].item(), rel=1e-12)
        assert metrics.infimal_distance(W, 0).item() == pytest.approx(W.norm().item(), rel=1e-12)
        assert metrics.infimal_distance(W, 2).item() == 0.0


def test_infimal_distance_is_distance_to_truncated_svd() -> None:
    torch.manual_seed(1)
    W = torch.randn(5, 4, dtype=torch.float64)
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    best_rank2 = U[:, :2] @ torch.diag(s[:2]) @ Vh[:2]
    assert metrics.infimal_distance(W, 2).item() == pytest.approx((W - best_rank2).norm().item())


def test_norm_ordering_on_random_matrices() -> None:
    torch.manual_seed(2)
    W = torch.randn(100, 3, 4, dtype=torch.float64)
    nuclear, fro, spectral = metrics.nuclear(W), metrics.frobenius(W), metrics.spectral(W)
    assert nuclear.shape == fro.shape == spectral.shape == (100,)
    assert (nuclear >= fro - 1e-12).all()
    assert (fro >= spectral - 1e-12).all()
    assert torch.allclose(spectral, torch.linalg.matrix_norm(W, ord=2))
    assert torch.allclose(nuclear, torch.linalg.matrix_norm(W, ord="nuc"))


def test_schatten_norms_interpolate_the_named_ones() -> None:
    torch.manual_seed(3)
    W = torch.randn(4, 4, dtype=torch.float64)
    assert metrics.schatten(W, 1).item() == pytest.approx(metrics.nuclear(W).item())
    assert metrics.schatten(W, 2).item() == pytest.approx(metrics.frobenius(W).item())
    assert metrics.schatten(W, 0.5).item() >= metrics.nuclear(W).item()  # a quasi-norm, p < 1
    with pytest.raises(ValueError, match="p must be > 0"):
        metrics.schatten(W, 0)
