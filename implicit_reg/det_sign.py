"""The det-sign monitor: when did sign(det W) first differ from its start? Theorem 1 assumes
det W(0) > 0 and Lemma 5 keeps it so along the flow; a change shows the run left that branch
(gradient descent at depth 2 does, by its finite steps: README § "Why balanced init by
default"). ``metrics.json`` and the run's summary report it."""

from __future__ import annotations


class DetSignMonitor:
    """Fed the logged ``det/sign`` of each logged point; records the first logged step and flow
    time whose sign differs from the first one (the change happened after the previous logged
    point, so the log schedule sets the resolution)."""

    def __init__(self) -> None:
        self.initial: float | None = None
        self.changed_at_step: int | None = None
        self.changed_at_time: float | None = None

    def update(self, step: int, flow_time: float, sign: float) -> None:
        if self.initial is None:
            self.initial = sign
        elif sign != self.initial and self.changed_at_step is None:
            self.changed_at_step, self.changed_at_time = step, flow_time

    def record(self) -> dict[str, int | float | None]:
        return {
            "det_sign_changed_at_step": self.changed_at_step,
            "det_sign_changed_at_time": self.changed_at_time,
        }
