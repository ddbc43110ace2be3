"""The paper's figures, drawn from a folder of runs: ``python -m implicit_reg.figures <folder>``.

Each figure module has ``NAME``, ``supports(runs)`` (the runs it can use) and ``draw(runs)``.
"""

from __future__ import annotations

from pathlib import Path

from implicit_reg.figures import least_squares, norms, ranks, style, unobserved
from implicit_reg.runs import find_runs

FIGURES = (least_squares, norms, ranks, unobserved)


def draw_all(folder: Path, out: Path | None = None) -> list[Path]:
    """Draw every figure the runs under ``folder`` support into ``out`` (default
    ``folder/figures``); returns the PNG paths."""
    runs = find_runs(folder)
    out = out or folder / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for figure in FIGURES:
        chosen = figure.supports(runs)
        if not chosen:
            continue
        fig = figure.draw(chosen)
        path = out / f"{figure.NAME}.png"
        fig.savefig(path, bbox_inches="tight")
        style.plt.close(fig)
        written.append(path)
    return written
