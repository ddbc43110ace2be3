"""∇ℓ(W) of a problem's loss in closed form where the problem has one (``Problem.gradient``:
completion, seed eq. 7; least squares, eq. 4), else by autograd (``torch.func``, so the result
stays differentiable for the flow's Jacobian)."""

from __future__ import annotations

import torch
from torch import Tensor

from implicit_reg.problems import Problem


def loss_gradient(problem: Problem, W: Tensor) -> Tensor:
    """∇ℓ(W) for the loss summed over any leading run dimensions."""
    gradient = getattr(problem, "gradient", None)
    if gradient is not None:
        return gradient(W)
    return torch.func.grad(lambda V: problem.loss(V).sum())(W)
