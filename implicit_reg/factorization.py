"""Deep matrix factorization W = W_L ⋯ W_1 (seed eq. 8), for one run or a stack of runs."""

from __future__ import annotations

from collections.abc import Sequence

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
