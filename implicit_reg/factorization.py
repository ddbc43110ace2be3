"""Deep matrix factorization W = W_L ⋯ W_1 (seed eq. 8), for one run or a stack of runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn


def factor_shapes(rows: int, cols: int, depth: int, width: int) -> list[tuple[int, int]]:
    """Shapes of W_1 … W_L: W_j ∈ ℝ^{d_j × d_{j−1}}, d_0 = cols, d_L = rows, hidden d_j = width."""
    dims = [cols] + [width] * (depth - 1) + [rows]
    return [(dims[j + 1], dims[j]) for j in range(depth)]


def product(factors: Sequence[Tensor]) -> Tensor:
    """W_L ⋯ W_1 for factors given as [W_1, …, W_L] (any shared leading batch dimensions)."""
    W = factors[0]
    for factor in factors[1:]:
        W = factor @ W
    return W


def chain_rule(
    factors: Sequence[Tensor], gradient: Callable[[Tensor], Tensor]
) -> tuple[Tensor, list[Tensor]]:
    """W = W_L ⋯ W_1 and ∂ℓ/∂W_j = (W_L ⋯ W_{j+1})ᵀ ∇ℓ(W) (W_{j−1} ⋯ W_1)ᵀ (seed Theorem 2) for
    ``gradient`` = ∇ℓ, by one sweep down from j = L (any shared leading run dimensions)."""
    below, W = [], factors[0]  # below[j−1] = W_{j−1} ⋯ W_1 for j ≥ 2
    for factor in factors[1:]:
        below.append(W)
        W = factor @ W
    above = gradient(W)  # (W_L ⋯ W_{j+1})ᵀ ∇ℓ(W), from j = L down
    grads = []
    for j in range(len(factors) - 1, 0, -1):
        grads.append(above @ below[j - 1].mT)
        above = factors[j].mT @ above
    grads.append(above)
    return W, grads[::-1]


class DeepFactorization(nn.Module):
    """L factors W_1 … W_L as parameters of shape ``(*runs, d_j, d_{j−1})``; ``forward`` gives the
    end-to-end matrix ``(*runs, rows, cols)``. A single run has no leading dimension (plain 2-D
    matrix products are the fastest per step); a stack of runs has one."""

    def __init__(self, factors: Sequence[Tensor]) -> None:
        super().__init__()
        self.factors = nn.ParameterList([nn.Parameter(f.clone()) for f in factors])

    @classmethod
    def stack(cls, runs: Sequence[Sequence[Tensor]]) -> DeepFactorization:
        """Runs ``runs[k] = [W_1, …, W_L]`` stacked along a new leading dimension."""
        return cls([torch.stack([run[j] for run in runs]) for j in range(len(runs[0]))])

    @property
    def depth(self) -> int:
        return len(self.factors)

    def forward(self) -> Tensor:
        return product(list(self.factors))
