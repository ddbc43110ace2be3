"""Plain gradient descent (seed eq. 1) on a stack of runs, each with its own lr and stopping.

Per step and per run, exactly as ``implicit_reg.optim.gd`` does for one run: evaluate the loss at
the current factors; a non-finite loss stops the run as ``diverged``, a loss below ``loss_tol``
as ``converged``, reaching ``max_steps`` as ``max_steps``; otherwise take the step. Stopping costs
no host sync: a run whose loss says stop gets lr 0 for this step, so its factors, and with them
its loss and the decision, stay as they are at every later step; its step counter stops too.
So every run stops at the same step and in the same state as its unbatched twin.

Only every ``check_every`` steps does the host look at the runs: it ends the loop once all have
stopped, and puts each diverged run back to its factors at the last check before it diverged
(a state of finite loss; the exact last finite state when ``check_every=1``) and keeps it there,
so a diverged run is frozen at finite values and never feeds NaN into anything after.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from implicit_reg.schedule import LogSchedule

STATUSES = ("max_steps", "converged", "diverged")


class Stepper(Protocol):
    def loss(self) -> Tensor: ...
    def update(self, lr: Tensor) -> None: ...
    def end_to_end(self) -> Tensor: ...
    def factors(self) -> list[Tensor]: ...
    def snapshot(self) -> list[Tensor]: ...
    def restore(self, snapshot: list[Tensor], runs: Tensor) -> None: ...


@dataclass
class BatchState:
    """Where the runs stand after a step's loss: ``steps`` taken by each run (its stop step once
    it has stopped), which are still ``going``, which have ``diverged``."""

    steps: Tensor
    going: Tensor
    diverged: Tensor
    converged: Tensor

    def status_names(self) -> list[str]:
        code = self.converged.long() + 2 * self.diverged.long()
        return [STATUSES[int(c)] for c in code.tolist()]


@dataclass
class BatchOutcome:
    state: BatchState
    steps: int
    """The largest stop step over the runs."""
    run_steps: int
    """Gradient steps summed over the runs."""


def batched_gradient_descent(
    stepper: Stepper,
    lr: Tensor,
    *,
    max_steps: int,
    loss_tol: float,
    check_every: int,
    schedule: LogSchedule,
    on_log: Callable[[int, Tensor, BatchState], None],
) -> BatchOutcome:
    """Train every run of ``stepper`` (lr ``(runs,)``); ``on_log(step, W, state)`` sees the
    end-to-end matrices ``(runs, rows, cols)`` at each scheduled step."""
    steps = torch.zeros_like(lr, dtype=torch.long)
    frozen = torch.zeros_like(lr, dtype=torch.bool)  # diverged, put back to a finite state
    frozen_steps = torch.zeros_like(steps)
    live_lr = lr.clone()  # 0 for frozen runs
    snapshot = stepper.snapshot()
    for step in range(max_steps + 1):
        loss = stepper.loss()
        going = (loss >= loss_tol) & (loss < math.inf)  # False for NaN, ∞ and converged
        if schedule.due(step) or step == max_steps:
            on_log(step, stepper.end_to_end(), _state(loss, loss_tol, steps, frozen, frozen_steps))
        if step == max_steps:
            break
        if step % check_every == 0:
            diverged = ~torch.isfinite(loss) & ~frozen
            frozen_steps = torch.where(diverged, steps, frozen_steps)
            frozen |= diverged
            live_lr.masked_fill_(frozen, 0.0)
            stepper.restore(snapshot, frozen)
            snapshot = stepper.snapshot()
            if not bool((going & ~frozen).any()):
                break
        stepper.update(live_lr * going)
        steps.add_(going)
    loss = stepper.loss()
    diverged = ~torch.isfinite(loss) & ~frozen
    frozen_steps = torch.where(diverged, steps, frozen_steps)
    frozen |= diverged
    stepper.restore(snapshot, frozen)
    stepper.loss()  # leave end_to_end() at the final factors
    state = _state(loss, loss_tol, steps, frozen, frozen_steps)
    state.going.zero_()  # the runs still going reached max_steps
    return BatchOutcome(state=state, steps=int(state.steps.max()), run_steps=int(state.steps.sum()))


def _state(
    loss: Tensor, loss_tol: float, steps: Tensor, frozen: Tensor, frozen_steps: Tensor
) -> BatchState:
    diverged = frozen | ~torch.isfinite(loss)
    return BatchState(
        steps=torch.where(frozen, frozen_steps, steps),
        going=~diverged & (loss >= loss_tol),
        diverged=diverged,
        converged=~diverged & (loss < loss_tol),
    )
