"""The stability guard of a single run is priced by its cost (``stability.due``): a check of
``iters`` Hessian-vector products costs about 3·iters gradient steps, so after the early,
log-spaced logs it runs once every 60·iters steps, on a logged step."""

from __future__ import annotations

import pytest

from implicit_reg.record.schedule import LogSchedule
from implicit_reg.stability import STEPS_PER_ITERATION, due


@pytest.mark.parametrize(("iters", "log_every", "steps"), [(20, 1000, 60_658), (20, 2000, 32_786),
                                                          (5, 10, 5_000)])  # fmt: skip
def test_a_single_runs_guard_costs_at_most_a_twentieth_of_its_steps(iters, log_every, steps):
    """Over the logged steps of a run (20 per decade and every ``log_every``), the checks cost
    ≤ 5 % of the steps plus the four early ones; each is on a logged step. Catches the guard at
    every log (62 checks in the first 3,000 steps: ×2.7 per step at 100×100)."""
    schedule = LogSchedule(steps, log_every, 20)
    logged = [s for s in range(steps + 1) if schedule.due(s)]
    checked = [s for s in logged if due(s, iters, log_every)]
    assert checked[:4] == [0, 1, 10, 100]
    later = [s for s in checked if s > 1000]
    assert 3 * iters * len(later) <= 0.05 * steps
    gap = -(-STEPS_PER_ITERATION * iters // log_every) * log_every
    assert len(later) >= (steps - 1000) // gap - 1  # and it does check, every gap steps


def test_the_checked_steps_depend_on_the_step_alone():
    """A resumed run checks where an uninterrupted one does: the same steps from any start."""
    assert [s for s in range(5000, 9001) if due(s, 20, 1000)] == [6000, 8000]
    assert due(100_000, 20, 1000) and not due(100_001, 20, 1000)
