"""Least squares (seed eq. 3): f(β) = ‖y − Xβ‖², β ∈ ℝ^d held as a d×1 matrix.

Gradient flow from β₀ has the closed form of seed eq. (6); from β₀ = 0 it converges to the
minimum-L2-norm solution pinv(X) y (seed Section 3).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from implicit_reg import theory


class LeastSquares:
    infimal_rank = 1  # {β : Xβ = y} with y ≠ 0 holds no zero matrix; every d×1 matrix has rank ≤ 1
    ground_truth = None  # y is noise: no planted β

    def __init__(
        self, X: Tensor, y: Tensor, name: str = "least_squares", max_tracked: int = 16
    ) -> None:
        self.name = name
        self.max_tracked = max_tracked
        self.X = X
        self.y = y
        self.shape = (int(X.shape[1]), 1)
        self.min_norm = theory.min_norm_solution(X, y)

    def loss(self, W: Tensor) -> Tensor:
        residual = self.X @ W - self.y.unsqueeze(-1)
        return residual.square().sum((-2, -1))

    def gradient(self, W: Tensor) -> Tensor:
        """∇ℓ(β) = −2Xᵀ(y − Xβ) (seed eq. 4), per leading run index."""
        return 2 * self.X.mT @ (self.X @ W - self.y.unsqueeze(-1))

    def numpy_closed_form(
        self,
    ) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], float]]:
        """(∇ℓ, ℓ) on one float64 ``ndarray`` W, for the flow's NumPy right-hand side."""
        X, y = self.X.cpu().numpy(), self.y.cpu().numpy()[:, None]
        XtX2, Xty2 = 2 * X.T.dot(X), 2 * X.T.dot(y)

        def loss(W: np.ndarray) -> float:
            residual = X.dot(W) - y
            return float(np.vdot(residual, residual))

        return lambda W: XtX2.dot(W) - Xty2, loss

    def scalars(self, W: Tensor, flow_time: float, W0: Tensor | None) -> dict[str, Tensor]:
        beta = W[..., 0]
        out = {f"beta/{i + 1}": beta[..., i] for i in range(min(beta.shape[-1], self.max_tracked))}
        out |= {
            "norm/l2": beta.norm(dim=-1),
            "dist/min_norm": (beta - self.min_norm).norm(dim=-1),
        }
        if W0 is not None:
            flow = theory.least_squares_flow(self.X, self.y, flow_time, W0[..., 0])
            out["dist/flow_closed_form"] = (beta - flow).norm(dim=-1)
        return out

    def data(self) -> dict[str, Tensor]:
        return {"X": self.X.cpu(), "y": self.y.cpu()}


def random_data(n: int, d: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """X with i.i.d. N(0, 1/d) entries (so XXᵀ has O(1) eigenvalues) and y ~ N(0, I_n)."""
    X = torch.randn(n, d, generator=generator, dtype=torch.float64) / d**0.5
    y = torch.randn(n, generator=generator, dtype=torch.float64)
    return X, y
