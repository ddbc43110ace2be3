"""Plain gradient descent x ← x − η∇f(x) (seed eq. 1) on a stack of K runs: one loop for one run
or ten million, each run with its own lr and its own stop.

Per step and per run: evaluate the loss at the current factors; a loss below ``loss_tol`` stops
the run (``converged``), a non-finite one too (``diverged``: a NaN/Inf factor makes W, hence the
loss, non-finite), and so does its step budget (``max_steps``); otherwise take the step. Stopping
needs no host sync: a run that should stop gets lr 0, so its factors, its loss and the decision
stay as they are, and its step counter stops.

The host looks every ``check_every`` steps (and at every checkpoint): it ends the loop once no
run goes on, sees SIGINT/SIGTERM, stops as ``stalled`` each run none of whose factor entries
moved since the last check (its gradient vanished at a non-minimum), and puts each run that
diverged since the last check back to its last finite state (the check's snapshot, replayed
to the step before its loss turned non-finite), where it stays. No host check changes a number
of a run that goes on: a batch ends with the same factors for any ``check_every``, and a
resumed run as one never stopped.

An update rule (``dynamics/optimizers.py``: momentum, Adam, GroupRMSprop) takes the step in place
of ``Stepper.step`` under the same stopping, logging and checks; its state is in the checks'
snapshot, so a diverged run is put back with the state it had at its last finite step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from implicit_reg.dynamics.optimizers import UpdateRule
from implicit_reg.dynamics.outcome import Outcome
from implicit_reg.dynamics.steppers import MatmulStepper, Stepper
from implicit_reg.factorization import DeepFactorization
from implicit_reg.problems import Problem
from implicit_reg.record.schedule import LogSchedule

STATUSES = ("running", "converged", "max_steps", "diverged", "unstable", "stalled")
RUNNING, CONVERGED, MAX_STEPS, DIVERGED, UNSTABLE, STALLED = range(len(STATUSES))

OnLog = Callable[[int, Tensor, Tensor], "Tensor | None"]
"""``on_log(step, W, loss)`` at a scheduled step (W ``(K, rows, cols)``, loss ``(K,)``); may
return the runs (bool ``(K,)``) to stop there as ``unstable``."""


@dataclass
class Runs:
    """Where every run stands: ``steps`` it has taken (its stop step once stopped), and its
    ``status`` code (``STATUSES``; ``running`` until it stops or the loop ends)."""

    steps: Tensor
    status: Tensor

    @classmethod
    def start(cls, runs: int, device: torch.device) -> Runs:
        return cls(
            torch.zeros(runs, dtype=torch.long, device=device),
            torch.zeros(runs, dtype=torch.int8, device=device),
        )

    def names(self) -> list[str]:
        return [STATUSES[c] for c in self.status.tolist()]

    def last_finite_step(self, k: int = 0) -> int:
        """Run k's final logged step: its stop step, or the step before for a diverged run
        (its factors were put back to that last finite state)."""
        return int(self.steps[k]) - int(self.status[k] == DIVERGED)


def descend(
    stepper: Stepper,
    lr: Tensor,
    runs: Runs,
    *,
    max_steps: Tensor,
    loss_tol: float,
    schedule: LogSchedule,
    on_log: OnLog,
    check_every: int,
    start_step: int = 0,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[int], None] = lambda step: None,
    stop_requested: Callable[[], bool] = lambda: False,
    rule: UpdateRule | None = None,
) -> tuple[int, bool]:
    """Train until every run has stopped or reached its ``max_steps`` ``(K,)``; ``runs`` is
    updated in place (and holds a checkpoint's state when resuming at ``start_step``). Steps
    are ``rule.step`` if a rule is given, else plain GD (``stepper.step``). Returns the last step
    reached and whether SIGINT/SIGTERM stopped the loop."""
    last_step = int(max_steps.max())
    budgets_differ = bool((max_steps != last_step).any())
    tol = torch.where(runs.status == RUNNING, loss_tol, math.inf).to(lr.dtype)
    # One run on the CPU: reading its loss costs less than masking on the device (no GPU to
    # sync), and its step count is kept in Python (written to ``runs`` before anyone reads it).
    host = len(lr) == 1 and lr.device.type == "cpu" and not budgets_differ
    rate, count = float(lr[0]), int(runs.steps[0])
    move = stepper.step if rule is None else rule.step
    snapshot = None  # (factors, steps, rule state) at the last check
    step, interrupted = start_step, False
    for step in range(start_step, last_step + 1):
        loss = stepper.loss()
        if step == start_step or step % check_every == 0 or _due(step, checkpoint_every):
            if host:
                runs.steps.fill_(count)
            if snapshot is not None and _restore_diverged(stepper, rule, lr, runs, loss, snapshot):
                loss = stepper.loss()
            tol.masked_fill_(runs.status != RUNNING, math.inf)
            if stop_requested():
                interrupted = True
                break
            going = (loss >= tol).logical_and_(loss < math.inf)
            now = stepper.factors()
            if snapshot is not None:  # not one factor entry moved since the last check
                stalled = going & (runs.steps < max_steps) & _unchanged(now, snapshot[0])
                if bool(stalled.any()):
                    runs.status.masked_fill_(stalled, STALLED)
                    tol.masked_fill_(stalled, math.inf)
                    going &= ~stalled
            if not bool((going & (runs.steps < max_steps)).any()):
                break
            if _due(step, checkpoint_every) and step > start_step:
                on_checkpoint(step)
            snapshot = (now, runs.steps.clone(), None if rule is None else rule.state())
            limit = float(tol[0])
        if host:
            going = limit <= loss.item() < math.inf
        else:
            going = (loss >= tol).logical_and_(loss < math.inf)
            if budgets_differ:
                going.logical_and_(runs.steps < max_steps)
        if schedule.due(step):
            if host:
                runs.steps.fill_(count)
            if (unstable := on_log(step, stepper.end_to_end(), loss)) is not None:
                runs.status.masked_fill_(unstable & going, UNSTABLE)
                tol.masked_fill_(unstable, math.inf)
                limit = float(tol[0])
                going = going and not bool(unstable) if host else going & ~unstable
        if step == last_step:
            break
        if not host:
            move(lr * going)
            runs.steps.add_(going)
        elif going:
            move(rate)
            count += 1
    if host:
        runs.steps.fill_(count)
    loss = stepper.loss()
    if snapshot is not None and _restore_diverged(stepper, rule, lr, runs, loss, snapshot):
        loss = stepper.loss()
    if not interrupted:
        running = runs.status == RUNNING
        runs.status.masked_fill_(running & (loss < loss_tol), CONVERGED)
        runs.status.masked_fill_(running & (loss >= loss_tol), MAX_STEPS)
    return step, interrupted


def gradient_descent(
    model: DeepFactorization,
    problem: Problem,
    *,
    lr: float,
    max_steps: int,
    loss_tol: float,
    schedule: LogSchedule,
    on_log: Callable[[int, float, Tensor], str | None],
    check_every: int = 100,
) -> Outcome:
    """One run of ``model`` (2-D factors) through ``descend``, as a batch of one; the final
    factors are written back into ``model``. ``on_log(step, flow_time, W)`` sees W at each
    scheduled step while the run goes and at its final (last finite) step; a status it returns
    (``unstable``) stops the run."""
    stepper = MatmulStepper([f.detach().unsqueeze(0) for f in model.factors], problem)
    runs = Runs.start(1, stepper.params[0].device)
    logged = -1

    def log(step: int, W: Tensor, loss: Tensor) -> Tensor | None:
        nonlocal logged
        if int(runs.steps[0]) != step or not math.isfinite(float(loss[0])):
            return None
        logged = step
        stop = on_log(step, lr * step, W[0])
        return torch.tensor([stop is not None]) if stop is not None else None

    budget = torch.tensor([max_steps])
    rate = torch.tensor([lr], dtype=stepper.params[0].dtype)
    descend(stepper, rate, runs, max_steps=budget, loss_tol=loss_tol, schedule=schedule,
            on_log=log, check_every=check_every)  # fmt: skip
    final = runs.last_finite_step()
    if final != logged:
        on_log(final, lr * final, stepper.end_to_end()[0])
    with torch.no_grad():
        for param, factor in zip(model.factors, stepper.factors(), strict=True):
            param.copy_(factor[0])
    steps = int(runs.steps[0])
    return Outcome(runs.names()[0], steps, lr * steps, steps)


def _unchanged(now: list[Tensor], before: list[Tensor]) -> Tensor:
    """The runs ``(K,)`` whose every factor entry equals ``before``: η∇ℓ fell below the rounding
    of the factors (a non-minimum where the gradient vanishes, such as W = 0), so the run cannot
    progress. A slow plateau still moves the factors and is not flagged."""
    same = [(a == b).flatten(1).all(1) for a, b in zip(now, before, strict=True)]
    return torch.stack(same).all(0)


def _due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def _restore_diverged(
    stepper: Stepper,
    rule: UpdateRule | None,
    lr: Tensor,
    runs: Runs,
    loss: Tensor,
    snapshot: tuple[list[Tensor], Tensor, dict | None],
) -> bool:
    """Put the runs whose ``loss`` is non-finite (and not yet marked) back to their last finite
    state: the snapshot (factors and the rule's state), then the steps from it up to the one
    before their loss turned non-finite, replayed (the other runs get lr 0, which leaves them
    and their rule state as they are). Marks them ``diverged``; returns whether there were any."""
    diverged = ~torch.isfinite(loss) & (runs.status == RUNNING)
    if not bool(diverged.any()):
        return False
    factors, steps, state = snapshot
    stepper.load(factors, diverged)
    if rule is not None:
        rule.load(state, diverged)
    move = stepper.step if rule is None else rule.step
    todo = torch.where(diverged, runs.steps - steps - 1, 0)
    for i in range(int(todo.max())):
        stepper.loss()
        move(lr * (todo > i))
    runs.status.masked_fill_(diverged, DIVERGED)
    return True
