"""∇ℓ(W) of a problem's loss in closed form, without autograd's per-call overhead (the gradient
flow's right-hand side calls it thousands of times on tiny matrices)."""

from __future__ import annotations

import torch
from torch import Tensor

from implicit_reg.problems import LeastSquares, MatrixCompletion, Problem


def loss_gradient(problem: Problem, W: Tensor) -> Tensor:
    """∇ℓ(W) for the loss summed over any leading run dimensions.

    Matrix completion (seed eq. 7): (W − b) on Ω, 0 elsewhere. Least squares (seed eq. 4):
    −2Xᵀ(y − XW). Any other problem: autograd (``torch.func``, so the result stays
    differentiable for the flow's Jacobian).
    """
    if isinstance(problem, MatrixCompletion):
        return (W - problem.target) * problem.weight
    if isinstance(problem, LeastSquares):
        return 2 * problem.X.mT @ (problem.X @ W - problem.y.unsqueeze(-1))
    return torch.func.grad(lambda V: problem.loss(V).sum())(W)
