"""The progress line of a run or a batch, on stderr.

A run stopped by ``train.loss_tol`` counts decades of loss, from its first logged loss down to
the tolerance: that total is fixed at the first loss and never changes. Any other run, and a
batch, counts steps toward ``train.max_steps`` (a flow run: flow time toward ``train.max_time``).

It says what it knows and no more:

- **Plateau.** While the loss has fallen by less than :data:`FLAT_DECADES` for
  :data:`PLATEAU_S` seconds (the initial plateau of a small init, Razin & Cohen 2020, § 4;
  Arora et al. 2019, § 3), the line says ``plateau``, the loss, the step rate and how long the
  loss has been flat, and shows no time to go: decades of loss on a plateau do not predict it.
- **Time to go** only from a rate measured over the last :data:`WINDOW_S` seconds of progress;
  for a batch with a loss tolerance it is an upper bound (runs stop early), marked ``≤``.
- **Width.** On a terminal the line is redrawn in place at most every :data:`REDRAW_S` seconds
  and cut to the terminal's width by dropping its least important fields, never mid-value; the
  bar goes first. Piped (not a terminal), one full line every :data:`PIPE_EVERY_S` seconds.
- **End.** :meth:`Progress.reached` sets the step the run truly stopped at (also when stopped by
  a signal), and :meth:`Progress.close` draws that last state."""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

FLAT_DECADES = 0.01
"""A fall of the loss smaller than this (in decades, 2.3 %) does not end a plateau."""
PLATEAU_S = 5.0
"""Seconds of flat loss before the line says ``plateau``."""
WINDOW_S = 30.0
"""Rates (steps/s, decades/s) are measured over this many seconds of the latest updates."""
REDRAW_S = 0.5
"""A terminal's line is redrawn at most this often."""
PIPE_EVERY_S = 5.0
"""Piped output: one line this often."""
BAR_MIN, BAR_MAX = 10, 30
"""Width of the bar on a terminal, when there is room for it."""


class Progress:
    """The progress of one run (``single``) or of a batch, drawn on ``stream``."""

    def __init__(
        self,
        max_steps: int,
        loss_tol: float,
        enabled: bool,
        *,
        single: bool,
        initial: int = 0,
        max_time: float | None = None,
        flow: bool = False,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.by_loss = single and loss_tol > 0
        self.loss_tol = loss_tol
        self.enabled = enabled
        self.single = single
        self.flow = flow
        # steps mode: steps toward max_steps; a flow run: flow time toward max_time (or none)
        self.total: float | None = (max_time if flow else float(max_steps)) or None
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock = clock
        self.started = clock()
        self.step = initial
        self.first: float | None = None  # log10 of the first finite loss
        self.log_loss: float | None = None  # log10 of the latest loss
        self.loss: float | None = None
        self.flow_time = 0.0
        self.fields: dict[str, str] = {}
        self.counts: dict[str, int] | None = None
        self.flat_mark: tuple[float, float, int] | None = None  # (log10 loss, time, step)
        self.window: deque[tuple[float, int, float]] = deque()  # (time, step, done)
        self.drawn_at = -math.inf
        self.drawn_width = 0
        self.closed = False

    # --- state -----------------------------------------------------------------------------

    def update(
        self, step: int, scalars: dict[str, float], counts: dict[str, int] | None = None
    ) -> None:
        """A logged point: the step, its scalars (``loss/train`` and the headline tags) and, for
        a batch, how many runs are going, converged and diverged."""
        now = self.clock()
        self.step = step
        self.loss = scalars.get("loss/train")
        self.flow_time = scalars.get("time/flow", self.flow_time)
        self.fields = headline(scalars)
        self.counts = counts
        if self.loss is not None and math.isfinite(self.loss) and self.loss > 0:
            self.log_loss = math.log10(self.loss)
            if self.first is None:
                self.first = self.log_loss
            mark = self.flat_mark
            if mark is None or self.log_loss < mark[0] - FLAT_DECADES:
                self.flat_mark = (self.log_loss, now, step)
        self.window.append((now, step, self.done()))
        while len(self.window) > 2 and now - self.window[1][0] >= WINDOW_S:
            self.window.popleft()
        self.draw(now)

    def reached(self, step: int) -> None:
        """The step the run stopped at, which can be after the last logged one."""
        self.step = step

    def close(self) -> None:
        """Draw the last state (at :meth:`reached`'s step) and end the line."""
        if self.closed:
            return
        self.closed = True
        if self.enabled:
            self.draw(self.clock(), force=True)
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()

    # --- what is known ---------------------------------------------------------------------

    def done(self) -> float:
        """Decades of loss done (a run stopped by its loss), else steps or flow time done."""
        if self.by_loss:
            if self.first is None or self.log_loss is None:
                return 0.0
            return min(max(self.first - self.log_loss, 0.0), self.decades())
        return self.flow_time if self.flow else float(self.step)

    def decades(self) -> float:
        """The fixed total of a run stopped by its loss: first loss down to the tolerance."""
        assert self.first is not None
        return max(self.first - math.log10(self.loss_tol), 0.0)

    def flat_for(self, now: float) -> tuple[float, int]:
        """Seconds and steps since the loss last fell by :data:`FLAT_DECADES`."""
        if self.flat_mark is None:
            return 0.0, 0
        return now - self.flat_mark[1], self.step - self.flat_mark[2]

    def plateau(self, now: float) -> bool:
        return self.flat_mark is not None and self.flat_for(now)[0] >= PLATEAU_S

    def rates(self) -> tuple[float | None, float | None]:
        """Steps per second and progress (:meth:`done`) per second over the window."""
        if len(self.window) < 2:
            return None, None
        (t0, s0, d0), (t1, s1, d1) = self.window[0], self.window[-1]
        if t1 - t0 <= 0:
            return None, None
        return (s1 - s0) / (t1 - t0), (d1 - d0) / (t1 - t0)

    def eta(self, now: float) -> float | None:
        """Seconds to go, or None where the rate says nothing (a plateau, no progress)."""
        total = self.decades() if self.by_loss and self.first is not None else self.total
        if total is None or (self.by_loss and self.first is None) or self.plateau(now):
            return None
        rate = self.rates()[1]
        if rate is None or rate <= 0:
            return None
        return max(total - self.done(), 0.0) / rate

    # --- drawing ---------------------------------------------------------------------------

    def line(self, now: float, width: int | None) -> str:
        """The line for ``now``, cut to ``width`` columns (None: all of it)."""
        steps_per_s = self.rates()[0]
        position = f"t {self.flow_time:.4g}" if self.flow else f"step {self.step:,}"
        if self.by_loss and self.first is not None:
            amount = f"{self.done():.2f}/{self.decades():.2f} decades"
        elif self.total is not None:
            amount = f"{100 * min(self.done() / self.total, 1):.0f}%"
        else:
            amount = ""
        loss = f"loss {self.loss:.3e}" if self.loss is not None else ""
        elapsed = f"{clock_time(now - self.started)} elapsed"
        rate = f"{steps_per_s:,.0f} steps/s" if steps_per_s is not None and not self.flow else ""
        if self.plateau(now):
            seconds, steps = self.flat_for(now)
            head = f"plateau: loss flat for {clock_time(seconds)}"
            if not self.flow:
                head += f" ({steps:,} steps)"
            fields = [head, loss, position, rate, elapsed]
        else:
            eta = self.eta(now)
            bound = "≤ " if not self.single and self.loss_tol > 0 else ""
            left = f"{bound}{clock_time(eta)} left" if eta is not None else ""
            fields = [amount, position, loss, left, rate, elapsed]
        if self.counts is not None:
            fields.append(" ".join(f"{k} {v:,}" for k, v in self.counts.items()))
        else:
            fields += [f"{k} {v}" for k, v in self.fields.items() if k != "loss"]
        fields = [f for f in fields if f]
        if width is None:
            return " | ".join(fields)
        # the bar only where the first four fields fit beside it; then as many fields as fit
        with_bar = fit(fields, width - BAR_MIN - 1)
        if amount and not self.plateau(now) and with_bar.count(" | ") >= min(len(fields), 4) - 1:
            total = self.decades() if self.by_loss else self.total or 1.0
            fraction = min(max(self.done() / total, 0.0), 1.0) if total > 0 else 1.0
            return f"{bar(fraction, min(width - len(with_bar) - 1, BAR_MAX))} {with_bar}"
        return fit(fields, width)

    def draw(self, now: float, force: bool = False) -> None:
        if not self.enabled:
            return
        every = REDRAW_S if self.tty else PIPE_EVERY_S
        if not force and now - self.drawn_at < every:
            return
        self.drawn_at = now
        if self.tty:
            width = shutil.get_terminal_size((80, 24)).columns - 1
            text = self.line(now, width)
            pad = " " * max(self.drawn_width - len(text), 0)
            self.stream.write(f"\r{text}{pad}")
            self.drawn_width = len(text)
        else:
            self.stream.write(self.line(now, None) + "\n")
        self.stream.flush()


def fit(fields: list[str], width: int) -> str:
    """The fields joined by `` | ``, the last ones left out until the line fits ``width``
    (the first field alone is cut)."""
    while len(fields) > 1 and len(" | ".join(fields)) > width:
        fields = fields[:-1]
    return " | ".join(fields)[:width]


def bar(fraction: float, width: int) -> str:
    """``[#####·····]`` of ``width`` columns in all."""
    inner = width - 2
    filled = round(fraction * inner)
    return "[" + "#" * filled + "·" * (inner - filled) + "]"


def clock_time(seconds: float) -> str:
    """``1:05``, ``1:02:03``, ``3d 04h``: short and exact to the second below a day."""
    seconds = max(round(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def headline(scalars: dict[str, float]) -> dict[str, str]:
    """The few numbers worth watching while a run goes: the loss, the first unobserved entry
    (|W11| on the 2×2 problem) or ‖β‖, and the effective rank."""
    out = {}
    if "loss/train" in scalars:
        out["loss"] = f"{scalars['loss/train']:.3e}"
    entry = next((t for t in scalars if t.startswith("entries/")), None)
    if entry is not None:
        out[f"|W{entry.removeprefix('entries/').replace('_', '')}|"] = f"{abs(scalars[entry]):.4g}"
    elif "norm/l2" in scalars:
        out["‖β‖"] = f"{scalars['norm/l2']:.4g}"
    if "rank/effective" in scalars:
        out["erank"] = f"{scalars['rank/effective']:.4f}"
    return out
