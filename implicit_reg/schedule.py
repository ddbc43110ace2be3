"""When to log: every ``every`` steps plus ``per_decade`` log-spaced steps per decade, so that
a 10⁷-step run still has a readable curve at its start."""

from __future__ import annotations

import math
from collections.abc import Iterator


class LogSchedule:
    def __init__(self, max_steps: int, every: int, per_decade: int) -> None:
        self.every = every
        points: set[int] = {0, max_steps}
        if per_decade > 0:
            k = 0
            while (step := round(10 ** (k / per_decade))) <= max_steps:
                points.add(step)
                k += 1
        self.points = frozenset(points)

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step in self.points


def log_steps(every: int | None, per_decade: int) -> Iterator[int]:
    """The steps ``LogSchedule`` marks, in increasing order and without end: 0, then the next
    multiple of ``every`` (None: no such multiples) or log-spaced step, whichever comes first
    (for runs whose last step is not known in advance, such as a gradient flow stopped by its
    loss)."""
    step, k = 0, 0
    while True:
        yield step
        following = math.inf if every is None else (step // every + 1) * every
        if per_decade > 0:
            while round(10 ** (k / per_decade)) <= step:
                k += 1
            following = min(following, round(10 ** (k / per_decade)))
        step = following
