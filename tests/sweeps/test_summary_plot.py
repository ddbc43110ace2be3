"""The sweep summary's plot: a default metric that answers the question, and signed values
kept on a symlog axis."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from implicit_reg.summarize import PLOT_METRICS, plot_metric


def test_reconstruction_error_is_the_first_default_metric() -> None:
    """Catches: entries/1_1 plotted for a 30×30 Arora sweep that has a reconstruction error."""
    assert PLOT_METRICS[0] == "error/reconstruction"


@pytest.mark.parametrize(
    ("values", "scale"),
    [([-5.0, 1e-3, 40.0], "symlog"), ([1e-3, 1.0, 40.0], "log"), ([1, 2, 3], "linear")],
)
def test_signed_values_get_a_symlog_axis(
    tmp_path: Path, monkeypatch, values: list[float], scale: str
) -> None:
    """Three depths, one negative final entry: symlog keeps it (a log axis drops it).
    Catches: log scale chosen from |values| for signed data."""
    rows = [
        {"run": str(i), "status": "converged", "model.depth": i + 1, "entries/1_1": v}
        for i, v in enumerate(values)
    ]
    seen = {}
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: seen.setdefault("ax", fig.axes[0]) and close(fig))
    assert plot_metric(tmp_path, rows, "entries/1_1", "model.depth", False) is not None
    assert seen["ax"].get_yscale() == scale
