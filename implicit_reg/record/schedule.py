"""When to log: every ``every`` steps plus ``per_decade`` log-spaced steps per decade, so that
a 10⁷-step run still has a readable curve at its start. ``log_steps`` is the one definition of
the marked steps; ``LogSchedule`` asks it whether a step is marked (the GD loop, whose last step
is known), the flow walks it in order (its last step is not)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator


class LogSchedule:
    def __init__(self, max_steps: int, every: int, per_decade: int) -> None:
        self.every = every
        spaced = itertools.takewhile(lambda s: s <= max_steps, log_steps(None, per_decade))
        self.points = frozenset({*spaced, max_steps})

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step in self.points


def log_steps(every: int | None, per_decade: int) -> Iterator[int]:
    """The marked steps in increasing order and without end: 0, then the next multiple of
    ``every`` (None: no such multiples) or log-spaced step round(10^(k/per_decade)), whichever
    comes first (``math.inf`` for ever once neither is left)."""
    step, k = 0, 0
    while True:
        yield step
        following = math.inf if every is None else (step // every + 1) * every
        if per_decade > 0:
            while round(10 ** (k / per_decade)) <= step:
                k += 1
            following = min(following, round(10 ** (k / per_decade)))
        step = following
