"""When to log: every ``every`` steps plus ``per_decade`` log-spaced steps per decade, so that
a 10⁷-step run still has a readable curve at its start."""

from __future__ import annotations


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
