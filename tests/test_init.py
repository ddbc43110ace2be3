"""Initialization: balancedness (Theorem 2's assumption), determinant sign, reproducibility."""

import itertools

import pytest
import torch

from implicit_reg.factorization import factor_shapes, product
from implicit_reg.init import sample_factors


@pytest.mark.parametrize(
    ("rows", "cols", "depth", "width"), [(2, 2, 3, 2), (3, 5, 4, 3), (4, 3, 2, 6)]
)
def test_balanced_init_is_balanced(rows: int, cols: int, depth: int, width: int) -> None:
    factors = sample_factors("balanced", 0.1, "any", factor_shapes(rows, cols, depth, width), 0)
    assert [tuple(f.shape) for f in factors] == factor_shapes(rows, cols, depth, width)
    for lower, upper in itertools.pairwise(factors):
        # W_{j+1}ᵀ W_{j+1} = W_j W_jᵀ (seed Theorem 2)
        assert torch.allclose(upper.T @ upper, lower @ lower.T, atol=1e-15)


def test_balanced_product_is_scaled_gaussian() -> None:
    shapes = factor_shapes(3, 3, 3, 3)
    W = product(sample_factors("balanced", 0.1, "any", shapes, 4))
    G = torch.randn(3, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert torch.allclose(W, 0.1**3 * G, rtol=1e-10)


@pytest.mark.parametrize("kind", ["gaussian", "balanced"])
@pytest.mark.parametrize("sign", ["positive", "negative"])
def test_det_sign_is_resampled_until_it_matches(kind: str, sign: str) -> None:
    for seed in range(10):
        det = torch.linalg.det(
            product(sample_factors(kind, 0.5, sign, factor_shapes(2, 2, 3, 2), seed))
        )
        assert (det > 0) if sign == "positive" else (det < 0)


def test_identity_and_zero_inits() -> None:
    identity = sample_factors("identity", 0.5, "any", factor_shapes(2, 3, 2, 4), 0)
    assert torch.equal(product(identity), 0.25 * torch.eye(2, 3, dtype=torch.float64))
    zero = sample_factors("zero", 1.0, "any", factor_shapes(5, 1, 1, 1), 0)
    assert torch.count_nonzero(zero[0]) == 0


def test_same_seed_same_start_different_seed_different_start() -> None:
    shapes = factor_shapes(2, 2, 3, 2)
    a, b, c = (sample_factors("gaussian", 1e-2, "positive", shapes, s) for s in (7, 7, 8))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
