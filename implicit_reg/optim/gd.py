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
    start_step: int = 0,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[int], None] = lambda step: None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Run until the loss falls below ``loss_tol``, turns NaN/Inf, or ``max_steps`` steps.

    ``on_log(step, flow_time, W)`` sees the end-to-end matrix at every scheduled step and at the
    last finite one; a status it returns (``unstable``) ends the run. A step of size η advances
    gradient-flow time by η. The model holds the factors after ``start_step`` steps (0, or a
    checkpoint's step); ``on_checkpoint(step)`` is called every ``checkpoint_every`` steps, and
    ``stop_requested()`` before every step ends the run with status ``interrupted``. A NaN/Inf in
    any factor makes W, and so the loss, non-finite (∞·0 = NaN; both losses sum over all entries
    of W), so the loss check covers the factors.
    """
    params = list(model.parameters())
    status, last = "max_steps", None  # last: (step, W, logged) of the last finite step
    for step in range(start_step, max_steps + 1):
        if stop_requested():
            status = "interrupted"
            break
        W = model()
        loss = problem.loss(W).sum()
        value = loss.item()
        if not math.isfinite(value):
            status = "diverged"
            if last is not None and not last[2]:
                on_log(last[0], lr * last[0], last[1].detach())
            break
        done = value < loss_tol or step == max_steps
        logged = done or schedule.due(step)
        if logged and (stop := on_log(step, lr * step, W.detach())):
            status = stop
            break
        if done:
            status = "converged" if value < loss_tol else "max_steps"
            break
        if checkpoint_every and step % checkpoint_every == 0 and step > start_step:
            on_checkpoint(step)
        # At depth 1, W is the factor itself, which the update overwrites: keep a copy.
        last = (step, W.detach().clone() if W is params[0] else W, logged)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)
    return Outcome(status=status, steps=step, flow_time=lr * step, gradient_evaluations=step)
