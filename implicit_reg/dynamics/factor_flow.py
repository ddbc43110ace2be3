"""Gradient flow of the factors themselves, Ẇⱼ = −∂ℓ(W_L ⋯ W_1)/∂Wⱼ (seed Theorem 2), for any
init: the state is the factors' entries, flattened."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from implicit_reg.dynamics.loss_gradient import loss_gradient
from implicit_reg.factorization import chain_rule, product
from implicit_reg.problems import Problem


class FactorCoordinates:
    """The state vector (vec W_1, …, vec W_L) of one run and what the solver loop needs from it."""

    def __init__(self, problem: Problem, factors: Sequence[Tensor]) -> None:
        self.problem = problem
        self.shapes = [tuple(f.shape) for f in factors]
        self.y0 = torch.cat([f.detach().flatten() for f in factors])

    def unpack(self, y: Tensor) -> list[Tensor]:
        sizes = [r * c for r, c in self.shapes]
        return [p.view(s) for p, s in zip(y.split(sizes), self.shapes, strict=True)]

    def matrix(self, y: Tensor) -> Tensor:
        return product(self.unpack(y))

    def field(self, y: Tensor) -> Tensor:
        """ẏ = −∇ℓ(y) (seed eq. 2): Ẇⱼ = −(W_L ⋯ W_{j+1})ᵀ ∇ℓ(W) (W_{j−1} ⋯ W_1)ᵀ."""
        _, rates = chain_rule(self.unpack(y), lambda W: loss_gradient(self.problem, W))
        return -torch.cat([rate.flatten() for rate in rates])

    def factors(self, y: Tensor, shapes: list[tuple[int, int]]) -> list[Tensor]:
        return self.unpack(y)

    def exact(self, y: Tensor) -> dict[str, Tensor]:
        return {}  # everything is read off W's entries

    def check(self, y: np.ndarray, t: float) -> None:
        """Nothing to watch: the factors' flow has no coordinate singularity."""

    def record(self) -> dict[str, str]:
        return {"flow_coordinates": "factors"}
