"""Initialization of the factors: Gaussian, scaled identity, balanced, or zero.

``init.scale`` is the per-factor scale: the entry std of a Gaussian factor, the diagonal of an
identity factor, and for balanced init the factors of a product scale^L·G (G Gaussian) split
evenly (Arora et al. 2018, Theorem 1 / seed Theorem 2). ``init.det`` resamples until the product's
determinant has the requested sign (Theorem 1 assumes det W(0) > 0).
"""

from __future__ import annotations

import torch
from torch import Tensor

from implicit_reg.factorization import product

KINDS = ("gaussian", "identity", "balanced", "zero")
DET_SIGNS = ("any", "positive", "negative")
MAX_TRIES = 1000


def sample_factors(
    kind: str,
    scale: float,
    det: str,
    shapes: list[tuple[int, int]],
    seed: int,
) -> list[Tensor]:
    """One run's factors [W_1, …, W_L] in float64 on the CPU, drawn from ``seed`` alone, so the
    same seed gives the same start on every device."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(MAX_TRIES):
        factors = _draw(kind, scale, shapes, generator)
        if det == "any" or _det_sign(product(factors)) == (1 if det == "positive" else -1):
            return factors
    raise RuntimeError(f"init.det={det}: no draw of {kind} init had that sign in {MAX_TRIES} tries")


def _det_sign(W: Tensor) -> int:
    return int(torch.sign(torch.linalg.det(W)).item())


def _draw(
    kind: str, scale: float, shapes: list[tuple[int, int]], generator: torch.Generator
) -> list[Tensor]:
    if kind == "gaussian":
        return [scale * torch.randn(s, generator=generator, dtype=torch.float64) for s in shapes]
    if kind == "identity":
        return [scale * torch.eye(*s, dtype=torch.float64) for s in shapes]
    if kind == "zero":
        return [torch.zeros(s, dtype=torch.float64) for s in shapes]
    if kind == "balanced":
        return _balanced(scale, shapes, generator)
    raise ValueError(f"init.kind must be one of {KINDS}, got {kind!r}")


def _balanced(
    scale: float, shapes: list[tuple[int, int]], generator: torch.Generator
) -> list[Tensor]:
    """Factors with W_{j+1}ᵀW_{j+1} = W_j W_jᵀ whose product is scale^L·G, G Gaussian.

    With G = U S Vᵀ (k = min(rows, cols, width) leading singular triplets):
    W_1 = S^{1/L} Vᵀ, W_j = S^{1/L}, W_L = U S^{1/L}, zero-padded to the hidden width.
    """
    depth = len(shapes)
    rows, cols = shapes[-1][0], shapes[0][1]
    G = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
    if depth == 1:
        return [G * scale]
    U, s, Vh = torch.linalg.svd(G * scale**depth, full_matrices=False)
    k = min(len(s), shapes[0][0])
    root = s[:k].pow(1.0 / depth)
    factors = []
    for j, shape in enumerate(shapes):
        factor = torch.zeros(shape, dtype=torch.float64)
        if j == 0:
            factor[:k] = root[:, None] * Vh[:k]
        elif j == depth - 1:
            factor[:, :k] = U[:, :k] * root
        else:
            factor[:k, :k] = torch.diag(root)
        factors.append(factor)
    return factors
