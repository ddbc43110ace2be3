"""Plain gradient descent, x ← x − η∇f(x) (seed eq. 1): no momentum, no weight decay."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from implicit_reg.factorization import DeepFactorization
from implicit_reg.optim.outcome import Outcome
from implicit_reg.problems import Problem
from implicit_reg.schedule import LogSchedule


def gradient_descent(
    model: DeepFactorization,
    problem: Problem,
    *,
    lr: float,
    max_steps: int,
    loss_tol: float,
    schedule: LogSchedule,
    on_log: Callable[[int, float, Tensor], str | None],
) -> Outcome:
    """Run until the loss falls below ``loss_tol``, turns NaN/Inf, or ``max_steps`` steps.

    ``on_log(step, flow_time, W)`` sees the end-to-end matrix at every scheduled step and at the
    last finite one; a status it returns (``unstable``) ends the run. A step of size η advances
    gradient-flow time by η.
    """
    params = list(model.parameters())
    status = "max_steps"
    for step in range(max_steps + 1):
        W = model()
        loss = problem.loss(W).sum()
        value = loss.item()
        if not math.isfinite(value):
            status = "diverged"
            break
        done = value < loss_tol or step == max_steps
        if (done or schedule.due(step)) and (stop := on_log(step, lr * step, W.detach())):
            status = stop
            break
        if done:
            status = "converged" if value < loss_tol else "max_steps"
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)
    return Outcome(status=status, steps=step, flow_time=lr * step, gradient_evaluations=step)
