"""Shared look of the figures: readable fonts, one colour per run, legends outside the data,
run labels."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from implicit_reg.record.runs import Run

plt.rcParams.update(
    {
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "legend.fontsize": 9,
        "figure.dpi": 110,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)
DEPTH_COLOURS = {1: "tab:gray", 2: "tab:blue", 3: "tab:orange", 4: "tab:green", 5: "tab:red"}
BOUND_STYLE = {"color": "black", "linestyle": ":", "linewidth": 1.5}


def colour(run: Run) -> str:
    return DEPTH_COLOURS.get(int(run.cfg.model.depth), "tab:purple")


def palette(runs: list[Run]) -> list[tuple[float, float, float, float]]:
    """One colour per run, in the order given: tab10's ten, or viridis spread over more."""
    cmap = plt.get_cmap("tab10" if len(runs) <= 10 else "viridis")
    n = max(len(runs) - 1, 1)
    return [cmap(i) if len(runs) <= 10 else cmap(i / n) for i in range(len(runs))]


def legend_outside(ax: plt.Axes) -> None:
    """The axes' legend to the right of it, clear of the curves (saved with bbox_inches=tight)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def label(run: Run) -> str:
    """Depth, init scale, optimizer and step size of a run, for legends."""
    cfg = run.cfg
    optimizer = cfg.optim.name
    step = f", lr {cfg.optim.lr:g}" if optimizer == "gd" else ""
    det = "" if cfg.init.det == "positive" else f", det {cfg.init.det}"
    return f"L={cfg.model.depth}, {cfg.init.kind} {cfg.init.scale:g}, {optimizer}{step}{det}"


def loss_axis(ax: plt.Axes) -> None:
    """Loss on a reversed log axis: training moves left to right."""
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("loss ℓ(W) (log scale, decreasing →)")


def new(ncols: int, width: float = 4.6, height: float = 3.8) -> tuple[Figure, list[plt.Axes]]:
    """A figure with one row of ``ncols`` panels."""
    fig, axes = grid(1, ncols, width, height)
    return fig, axes[0]


def grid(
    nrows: int, ncols: int, width: float = 4.6, height: float = 3.8
) -> tuple[Figure, list[list[plt.Axes]]]:
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, [list(row) for row in axes]


def curve(bound: Callable[[torch.Tensor], torch.Tensor], losses: np.ndarray) -> np.ndarray:
    """A ``theory`` bound evaluated on a grid of losses, for plotting."""
    return bound(torch.from_numpy(losses)).numpy()
