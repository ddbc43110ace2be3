"""The baseline batched step: autograd on the stacked factors ``(runs, d_j, d_{j−1})``.

The loss of the stack is the sum of the runs' losses, so its gradient with respect to run k's
factors is run k's own gradient: runs never mix, and a non-finite run cannot reach the others.
"""

from __future__ import annotations

import torch
from torch import Tensor

from implicit_reg.factorization import DeepFactorization
from implicit_reg.problems import Problem


class AutogradStepper:
    """Holds the runs' factors; ``loss()`` evaluates f at the current factors and its gradient,
    ``update(lr)`` takes the step x ← x − lr_k ∇f_k(x) (seed eq. 1) with one lr per run."""

    def __init__(self, runs: list[list[Tensor]], problem: Problem) -> None:
        self.model = DeepFactorization.stack(runs)
        self.params = list(self.model.parameters())
        self.problem = problem
        self._grads: tuple[Tensor, ...] = ()
        self._W: Tensor | None = None

    def to(self, device: torch.device, dtype: torch.dtype) -> AutogradStepper:
        self.model.to(device, dtype)
        self.params = list(self.model.parameters())
        return self

    def loss(self) -> Tensor:
        W = self.model()
        loss = self.problem.loss(W)
        self._grads = torch.autograd.grad(loss.sum(), self.params)
        self._W = W.detach()
        return loss.detach()

    def update(self, lr: Tensor) -> None:
        # p + (−1)·g·lr in one fused multiply-add, the rounding of the unbatched loop's
        # p.add_(g, alpha=−lr); p − (lr·g) would round twice and drift in the last bits.
        with torch.no_grad():
            for p, g in zip(self.params, self._grads, strict=True):
                p.addcmul_(g, lr.view(-1, 1, 1), value=-1.0)

    def end_to_end(self) -> Tensor:
        """W at the factors of the last ``loss()`` call, ``(runs, rows, cols)``."""
        assert self._W is not None, "call loss() first"
        return self._W

    def factors(self) -> list[Tensor]:
        return [p.detach() for p in self.params]

    def snapshot(self) -> list[Tensor]:
        return [p.detach().clone() for p in self.params]

    def restore(self, snapshot: list[Tensor], runs: Tensor) -> None:
        """Put the runs where ``runs`` is True back to ``snapshot``."""
        with torch.no_grad():
            for p, s in zip(self.params, snapshot, strict=True):
                p.copy_(torch.where(runs.view(-1, 1, 1), s, p))
