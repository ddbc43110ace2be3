"""Opt-in fast path (``batch.fused=true``): hand-written gradients of the deep factorization,
with the runs as the last, contiguous dimension and every matrix product written as an
elementwise multiply-and-sum, which is several times faster than autograd over batched ``@`` on
tiny matrices. ``tests/test_batched.py`` holds it equal to autograd.

For W = W_L ⋯ W_1 (seed eq. 8) and G = ∂ℓ/∂W, the chain rule gives
∂ℓ/∂W_j = (W_L ⋯ W_{j+1})ᵀ G (W_{j−1} ⋯ W_1)ᵀ, computed by one backward sweep.
"""

from __future__ import annotations

import torch
from torch import Tensor

from implicit_reg.problems import LeastSquares, MatrixCompletion, Problem


def matmul(A: Tensor, B: Tensor) -> Tensor:
    """A B for runs-last stacks: ``(m, k, R) × (k, n, R) → (m, n, R)`` (R may be 1 on A)."""
    return (A.unsqueeze(2) * B.unsqueeze(0)).sum(1)


def transpose(A: Tensor) -> Tensor:
    return A.transpose(0, 1)


def loss_and_gradient(problem: Problem, W: Tensor) -> tuple[Tensor, Tensor]:
    """ℓ(W) per run and ∂ℓ/∂W for a runs-last W ``(rows, cols, R)``."""
    if isinstance(problem, MatrixCompletion):
        # ℓ = ½ Σ_Ω (W − b)² (seed eq. 7): ∂ℓ/∂W = P_Ω(W − b); the 0/1 mask makes this exact.
        G = (W - problem.target.unsqueeze(-1)) * problem.weight.unsqueeze(-1)
        return 0.5 * G.square().sum((0, 1)), G
    if isinstance(problem, LeastSquares):
        # ℓ = ‖Xβ − y‖² (seed eq. 3): ∂ℓ/∂β = 2Xᵀ(Xβ − y).
        residual = matmul(problem.X.unsqueeze(-1), W) - problem.y.view(-1, 1, 1)
        return residual.square().sum((0, 1)), 2 * matmul(problem.X.T.unsqueeze(-1), residual)
    raise TypeError(f"batch.fused: no hand-written gradient for {type(problem).__name__}")


class FusedStepper:
    """The same interface as ``AutogradStepper``, factors held as ``(d_j, d_{j−1}, runs)``."""

    def __init__(self, runs: list[list[Tensor]], problem: Problem) -> None:
        self.factors_ = [torch.stack([run[j] for run in runs], -1) for j in range(len(runs[0]))]
        self.problem = problem
        self._grads: list[Tensor] = []
        self._W: Tensor | None = None

    def to(self, device: torch.device, dtype: torch.dtype) -> FusedStepper:
        self.factors_ = [f.to(device, dtype).contiguous() for f in self.factors_]
        return self

    def loss(self) -> Tensor:
        prefix = [self.factors_[0]]  # prefix[j] = W_{j+1} ⋯ W_1
        for factor in self.factors_[1:]:
            prefix.append(matmul(factor, prefix[-1]))
        loss, back = loss_and_gradient(self.problem, prefix[-1])
        grads = [back] * len(self.factors_)
        for j in range(len(self.factors_) - 1, 0, -1):
            grads[j] = matmul(back, transpose(prefix[j - 1]))
            back = matmul(transpose(self.factors_[j]), back)
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
