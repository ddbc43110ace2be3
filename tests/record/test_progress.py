"""The progress line: a fixed total, a plateau said as such with no time to go, a time to go
from the measured rate, one line every few seconds when piped, a line that fits 80 columns on
a terminal, and the true last step. Fed synthetic loss sequences on a fake clock."""

from __future__ import annotations

import io

import pytest

from implicit_reg.record.progress import PIPE_EVERY_S, PLATEAU_S, Progress, clock_time

SCALARS = {"loss/train": 1.0, "entries/1_1": 0.5, "rank/effective": 1.5}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def make(*args, stream=None, **kwargs) -> tuple[Progress, Clock, io.StringIO]:
    clock = Clock()
    stream = stream if stream is not None else io.StringIO()
    return Progress(*args, stream=stream, clock=clock, **kwargs), clock, stream


def test_decades_total_is_fixed_at_the_first_loss():
    """Catches: a placeholder total replaced after the start (1.00 → 3.00 decades)."""
    bar, clock, _ = make(10**6, 1e-3, True, single=True)
    bar.update(0, SCALARS)  # loss 1: three decades to go
    assert bar.decades() == pytest.approx(3.0)
    for step, loss in ((500, 1e-2), (700, 3.0), (900, 1e-4)):
        clock.now += 1
        bar.update(step, {**SCALARS, "loss/train": loss})
        assert bar.decades() == pytest.approx(3.0)  # a later loss never moves it
    assert bar.done() == pytest.approx(3.0)  # capped at the tolerance
    assert "3.00/3.00 decades" in bar.line(clock.now, None)


def test_a_plateau_is_said_with_how_long_and_no_time_to_go():
    """70 s at loss 1.000 (the README's depth-4 example): the line says plateau, the loss, the
    step rate and how long it has been flat; no time left. Catches: an ETA from a zero rate."""
    bar, clock, _ = make(10**6, 1e-4, True, single=True)
    for step in range(0, 70_001, 1000):  # 1,000 steps a second
        clock.now = step / 1000
        bar.update(step, {**SCALARS, "loss/train": 1.0 - 1e-10 * step})
    text = bar.line(clock.now, None)
    assert text.startswith("plateau: loss flat for 1:10 (70,000 steps)")
    assert "loss 1.000e+00" in text and "1,000 steps/s" in text
    assert "left" not in text and bar.eta(clock.now) is None


def test_time_to_go_comes_from_the_measured_rate_once_the_loss_falls():
    """0.1 decade a second, 3 decades in all: after 10 s, 20 s are left. Catches: a time to go
    from steps toward max_steps, or from the whole run's average over the plateau."""
    bar, clock, _ = make(10**6, 1e-3, True, single=True)
    for tick in range(11):
        clock.now = float(tick)
        bar.update(100 * tick, {**SCALARS, "loss/train": 10 ** (-0.1 * tick)})
    assert not bar.plateau(clock.now)
    assert bar.eta(clock.now) == pytest.approx(20.0)
    assert "0:20 left" in bar.line(clock.now, None)


def test_piped_output_is_one_line_every_few_seconds():
    """200 updates over 20 s, not a terminal: about one line per PIPE_EVERY_S seconds and no
    carriage returns. Catches: one line per update (tqdm's behaviour when piped)."""
    bar, clock, stream = make(10**6, 1e-3, True, single=True)
    for tick in range(200):
        clock.now = tick / 10
        bar.update(tick, {**SCALARS, "loss/train": 10 ** (-tick / 100)})
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert 20 / PIPE_EVERY_S <= len(lines) <= 20 / PIPE_EVERY_S + 2


def test_on_an_80_column_terminal_every_value_shown_is_whole(monkeypatch):
    """Each redraw fits 79 columns and ends at a field, and the loss is always shown.
    Catches: a bar that takes the width and cuts the values after the loss."""
    monkeypatch.setenv("COLUMNS", "80")
    bar, clock, stream = make(10**6, 1e-6, True, single=True, stream=Terminal())
    for tick in range(100):
        clock.now = tick / 2
        loss = 1.0 if tick < 30 else 10 ** (-(tick - 30) / 20)
        bar.update(1000 * tick, {**SCALARS, "loss/train": loss})
    bar.close()
    frames = [f.rstrip() for f in stream.getvalue().split("\r") if f.strip()]
    assert len(frames) > 10
    for frame in frames:
        assert len(frame) <= 79
        assert "loss " in frame
        assert not frame.endswith("|")  # whole fields only
    assert any(frame.startswith("[") for frame in frames)  # a bar where there is room
    assert stream.getvalue().endswith("\n")


def test_the_line_ends_at_the_true_step():
    """A run stopped by Ctrl-C after its last log (31,623) at 31,900 closes at 31,900."""
    bar, clock, stream = make(10**6, 0.0, True, single=True)
    bar.update(31_623, SCALARS)
    bar.reached(31_900)
    clock.now = 1.0
    bar.close()
    assert "step 31,900" in stream.getvalue().splitlines()[-1]


def test_a_batch_counts_steps_and_its_runs_with_an_upper_bound_on_time():
    """A batch with a loss tolerance: steps toward max_steps, runs going/converged/diverged, and
    a time left marked as an upper bound (runs stop early)."""
    bar, clock, _ = make(1000, 1e-3, True, single=False)
    for tick in range(4):
        clock.now = float(tick)
        counts = {"going": 5 - tick, "converged": tick, "diverged": 0}
        bar.update(100 * tick, {**SCALARS, "loss/train": 10.0**-tick}, counts)
    text = bar.line(clock.now, None)
    assert text.startswith("30% | step 300")
    assert "≤ 0:07 left" in text and "going 2 converged 3 diverged 0" in text


def test_disabled_writes_nothing():
    bar, _clock, stream = make(100, 1e-3, False, single=True)
    bar.update(0, SCALARS)
    bar.close()
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "0:05"), (65, "1:05"), (3723, "1:02:03"), (3 * 86400 + 4 * 3600, "3d 04h")],
)
def test_clock_time(seconds, text):
    assert clock_time(seconds) == text


def test_plateau_needs_its_seconds():
    """Below PLATEAU_S seconds of flat loss the line is not a plateau yet."""
    bar, clock, _ = make(10**6, 1e-3, True, single=True)
    bar.update(0, SCALARS)
    clock.now = PLATEAU_S / 2
    bar.update(10, SCALARS)
    assert not bar.plateau(clock.now)
    clock.now = PLATEAU_S
    assert bar.plateau(clock.now)
