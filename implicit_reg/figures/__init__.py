"""The paper's figures, drawn from a folder of runs: ``python -m implicit_reg.figures <folder>``.

Each figure module has ``NAME``, ``supports(runs)`` (the runs it can use) and ``draw(runs)``.
A folder that is one run also gets ``run.png``, the panel of its own curves (training draws
nothing: the panel is drawn here, from the run's event file).
"""

from __future__ import annotations

from pathlib import Path

from implicit_reg.figures import (
    arora_completion,
    arora_dynamics,
    arora_observations,
    arora_sensing,
    least_squares,
    norms,
    ranks,
    style,
    unobserved,
)
from implicit_reg.figures.run_panel import run_panel
from implicit_reg.record import artifacts
from implicit_reg.record.runs import Run, find_runs

FIGURES = (
    least_squares,
    norms,
    ranks,
    unobserved,
    arora_completion,
    arora_sensing,
    arora_dynamics,
    arora_observations,
)


RUN_PANEL = "run"
"""The name of a single run's panel of its own curves (``run.png``)."""


def draw_all(
    folder: Path,
    out: Path | None = None,
    only: set[str] | None = None,
    runs: list[Run] | None = None,
) -> list[Path]:
    """Draw every figure the runs under ``folder`` (or ``runs``) support (those named in
    ``only``, if given) into ``out`` (default ``folder/figures``); returns the PNG paths. Every
    figure is drawn before the first is written, so a run that cannot be read (``UnreadableRun``)
    stops it with nothing written."""
    runs = find_runs(folder) if runs is None else runs
    out = out or folder / "figures"
    drawn = []
    for figure in FIGURES:
        chosen = figure.supports(runs) if only is None or figure.NAME in only else []
        if not chosen:
            continue
        drawn.append((out / f"{figure.NAME}.png", figure.draw(chosen)))
    if (only is None or RUN_PANEL in only) and has_run_panel(folder, runs):
        run = runs[0]
        title = f"{run.cfg.problem.name}, depth {run.cfg.model.depth}: {run.metrics['status']}"
        drawn.append((out / "run.png", run_panel(run.scalars, title)))
    out.mkdir(parents=True, exist_ok=True)
    for path, fig in drawn:
        artifacts.atomic_write(
            path, lambda f, fig=fig: fig.savefig(f, format="png", bbox_inches="tight"), mode="wb"
        )
        style.plt.close(fig)
    return [path for path, _ in drawn]


def has_run_panel(folder: Path, runs: list[Run]) -> bool:
    """Whether ``folder`` is one run with curves: it gets ``run.png``."""
    return len(runs) == 1 and runs[0].folder == folder and "loss/train" in runs[0].scalars
