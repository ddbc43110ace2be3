"""Opt-in fast path (``batch.fused=true``): hand-written gradients of the deep factorization,
with the runs as the last, contiguous dimension and every matrix product written as an
elementwise multiply-and-sum, which is several times faster than autograd over batched ``@`` on
tiny matrices. ``tests/test_batched.py`` holds it equal to autograd.

For W = W_L ⋯ W_1 (seed eq. 8) and G = ∂ℓ/∂W, the chain rule gives
∂ℓ/∂W_j = (W_L ⋯ W_{j+1})ᵀ G (W_{j−1} ⋯ W_1)ᵀ, computed by one backward sweep.

On small stacks each tensor op costs more in dispatch than in arithmetic, so the views of the
factors that the products need are made once (the factors are updated in place) and the
products are arranged so that no transpose is needed per step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from implicit_reg.problems import LeastSquares, MatrixCompletion, Problem

LossAndGradient = Callable[[Tensor], tuple[Tensor, Tensor]]


def product(left: Tensor, B: Tensor) -> Tensor:
    """A B for runs-last stacks, A ``(m, k, R)`` given as ``left = A.unsqueeze(2)``."""
    return (left * B.unsqueeze(0)).sum(1)


def times_transpose(A: Tensor, right: Tensor) -> Tensor:
    """A Bᵀ for runs-last stacks, B ``(n, k, R)`` given as ``right = B.unsqueeze(0)``."""
    return (A.unsqueeze(1) * right).sum(2)


def loss_and_gradient(problem: Problem) -> LossAndGradient:
    """``W ↦ (ℓ(W) per run, ∂ℓ/∂W)`` for a runs-last W ``(rows, cols, R)``."""
    if isinstance(problem, MatrixCompletion):
        target, weight = problem.target.unsqueeze(-1), problem.weight.unsqueeze(-1)

        def completion(W: Tensor) -> tuple[Tensor, Tensor]:
            # ℓ = ½ Σ_Ω (W − b)² (seed eq. 7): ∂ℓ/∂W = P_Ω(W − b), exact with the 0/1 mask.
            G = (W - target) * weight
            return 0.5 * G.square().sum((0, 1)), G

        return completion
    if isinstance(problem, LeastSquares):
        X, Xt, y = (
            problem.X[..., None, None],
            problem.X.T[..., None, None],
            problem.y[:, None, None],
        )

        def least_squares(W: Tensor) -> tuple[Tensor, Tensor]:
            # ℓ = ‖Xβ − y‖² (seed eq. 3): ∂ℓ/∂β = 2Xᵀ(Xβ − y).
            residual = product(X, W) - y
            return residual.square().sum((0, 1)), 2 * product(Xt, residual)

        return least_squares
    raise TypeError(f"batch.fused: no hand-written gradient for {type(problem).__name__}")


class FusedStepper:
    """The same interface as ``AutogradStepper``, factors held as ``(d_j, d_{j−1}, runs)``."""

    def __init__(self, runs: list[list[Tensor]], problem: Problem) -> None:
        self.problem = problem
        self._prepare([torch.stack([run[j] for run in runs], -1) for j in range(len(runs[0]))])
        self._grads: list[Tensor] = []
        self._W: Tensor | None = None

    def _prepare(self, factors: list[Tensor]) -> None:
        self.factors_ = [f.contiguous() for f in factors]
        self._left = [f.unsqueeze(2) for f in self.factors_]  # W_j as the left of a product
        self._left_T = [f.transpose(0, 1).unsqueeze(2) for f in self.factors_]  # W_jᵀ likewise
        self._right_0 = self.factors_[0].unsqueeze(0)  # W_1 as the right of A W_1ᵀ
        self._loss = loss_and_gradient(self.problem)

    def to(self, device: torch.device, dtype: torch.dtype) -> FusedStepper:
        self._prepare([f.to(device, dtype) for f in self.factors_])
        return self

    def loss(self) -> Tensor:
        prefix = [self.factors_[0]]  # prefix[j] = W_{j+1} ⋯ W_1
        for left in self._left[1:]:
            prefix.append(product(left, prefix[-1]))
        loss, back = self._loss(prefix[-1])  # back = ∂ℓ/∂(W_{j+1} ⋯ W_1), from j = L−1 down
        grads = [back] * len(self.factors_)
        for j in range(len(self.factors_) - 1, 0, -1):
            right = self._right_0 if j == 1 else prefix[j - 1].unsqueeze(0)
            grads[j] = times_transpose(back, right)
            back = product(self._left_T[j], back)
        grads[0] = back
        self._grads, self._W = grads, prefix[-1]
        return loss

    def update(self, lr: Tensor) -> None:
        for f, g in zip(self.factors_, self._grads, strict=True):
            f.addcmul_(g, lr, value=-1.0)

    def end_to_end(self) -> Tensor:
        assert self._W is not None, "call loss() first"
        return self._W.permute(2, 0, 1)

    def factors(self) -> list[Tensor]:
        return [f.permute(2, 0, 1) for f in self.factors_]

    def snapshot(self) -> list[Tensor]:
        return [f.clone() for f in self.factors_]

    def restore(self, snapshot: list[Tensor], runs: Tensor) -> None:
        for f, s in zip(self.factors_, snapshot, strict=True):
            f.copy_(torch.where(runs, s, f))
