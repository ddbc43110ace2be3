"""The stability guard's sharpness is λ_max, the largest algebraic eigenvalue of the
(preconditioned) Hessian in the factors: at a saddle, where a negative curvature has the largest
magnitude, a plain power iteration would return that negative number instead."""

from __future__ import annotations

import functools

import pytest
import torch

from implicit_reg.factorization import product
from implicit_reg.problems import MatrixCompletion
from implicit_reg.stability import sharpness

DEPTH = 3
PROBLEM = MatrixCompletion(
    torch.tensor([[1.0, 2.0], [2.0, 0.5]], dtype=torch.float64),
    torch.tensor([[True, True], [True, False]]),
    infimal_rank=1,
)


@functools.cache
def saddle_factors(runs: int) -> list[torch.Tensor]:
    """Depth-3 factors near the saddle W = 0 where a negative curvature dominates,
    |λ_min| > 1.2 λ_max > 0.05 (chosen by the full Hessian from random points of scale 0.2),
    repeated to ``runs`` runs in turn."""
    g = torch.Generator().manual_seed(0)
    pool = [0.2 * torch.randn(200, 2, 2, generator=g, dtype=torch.float64) for _ in range(DEPTH)]
    spectra = torch.stack([full_spectrum(pool, k, None) for k in range(200)])
    top, bottom = spectra[:, -1], spectra[:, 0]
    chosen = ((-bottom > 1.2 * top) & (top > 0.05)).nonzero().view(-1)
    assert len(chosen) >= 4
    picked = chosen[torch.arange(runs) % len(chosen)]
    return [f[picked] for f in pool]


def full_spectrum(factors: list[torch.Tensor], k: int, scale: torch.Tensor | None) -> torch.Tensor:
    """The eigenvalues (ascending) of run k's full Hessian in its 12 factor entries, by
    ``torch.autograd.functional.hessian`` and ``eigvalsh`` in float64 (as S H S, S = P^{−1/2},
    with a preconditioner)."""
    flat = torch.cat([f[k].flatten() for f in factors])

    def loss(x: torch.Tensor) -> torch.Tensor:
        Ws = [x[4 * j : 4 * j + 4].view(1, 2, 2) for j in range(DEPTH)]
        return PROBLEM.loss(product(Ws))[0]

    H = torch.autograd.functional.hessian(loss, flat)
    if scale is not None:
        s = torch.cat([p[k].flatten() for p in scale])
        H = s[:, None] * H * s[None, :]
    return torch.linalg.eigvalsh(H)


@pytest.mark.parametrize("preconditioned", [False, True])
@pytest.mark.parametrize("runs", [8, 64])  # batched ``@``, entry by entry
def test_sharpness_is_the_top_algebraic_eigenvalue_at_a_saddle(runs, preconditioned):
    """Against the full Hessian's λ_max, run by run, on runs of which several have
    |λ_min| > 1.2 λ_max > 0. Catches the eigenvalue of largest magnitude (the plain power
    iteration: negative there), a shift left in the result (λ_max + σ), one shift for all runs,
    and a preconditioner left out of either iteration."""
    factors = saddle_factors(runs)
    P = None
    if preconditioned:
        g = torch.Generator().manual_seed(5)
        P = [torch.rand(runs, 2, 2, generator=g, dtype=torch.float64) + 0.2 for _ in factors]
    value, _ = sharpness(PROBLEM, factors, 300, preconditioner=P)
    scale = None if P is None else [p.rsqrt() for p in P]
    spectra = torch.stack([full_spectrum(factors, k, scale) for k in range(runs)])
    top, bottom = spectra[:, -1], spectra[:, 0]
    assert int((-bottom > top).sum()) >= runs // 2  # the largest magnitude: negative
    torch.testing.assert_close(value, top, rtol=1e-3, atol=0.0)


def test_a_warm_start_keeps_the_top_eigenvalue_in_few_steps():
    """From the directions of a converged call, 4 steps give λ_max again (the guard's warm start
    at the next log); from the fixed start they do not. Catches directions not returned (or
    returned as the shifted iterate's opposite end) and the warm start ignored."""
    factors = saddle_factors(8)
    converged, directions = sharpness(PROBLEM, factors, 300)
    warm, _ = sharpness(PROBLEM, factors, 4, directions)
    cold, _ = sharpness(PROBLEM, factors, 4)
    torch.testing.assert_close(warm, converged, rtol=1e-4, atol=0.0)
    assert float(((cold - converged) / converged).abs().max()) > 1e-2
