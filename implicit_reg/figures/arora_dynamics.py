"""Arora, Cohen, Hu & Luo (2019), Figure 3: the top singular values of the end-to-end matrix
over training, one panel per depth (and per end-to-end init scale ε): at depth 1 they grow
together, with depth they are learned one at a time, each after a longer plateau, so the
solution stays close to low rank along the way.

Drawn from ``singular_values.npz`` (``train.singular_value_history``): for each σᵢ the median
over the runs of the folder (its seeds) at each logged step, with the band from the 25th to the
75th percentile, against flow time t = lr × steps; the ground truth's singular values as dotted
lines where ``final.pt`` holds them.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from implicit_reg.figures import arora_completion, style
from implicit_reg.record import history
from implicit_reg.record.runs import Run

NAME = "arora2019_dynamics"


def supports(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.cfg.optim.name == "gd" and (r.folder / history.FILE).exists()]


def draw(runs: list[Run]) -> Figure:
    panels: dict[tuple[int, float], list[Run]] = defaultdict(list)
    for run in runs:
        for eps in end_to_end_scales(run):
            panels[(int(run.cfg.model.depth), eps)].append(run)
    depths = sorted({d for d, _ in panels})
    scales = sorted({e for _, e in panels})
    fig, grid = style.grid(len(scales), len(depths), width=4.6, height=3.8)
    for (depth, eps), mine in sorted(panels.items()):
        ax = grid[scales.index(eps)][depths.index(depth)]
        for run in mine:
            t, lo, mid, hi = singular_value_bands(run, eps)
            colours = style.plt.cm.viridis(np.linspace(0, 0.9, mid.shape[1]))
            for i in range(mid.shape[1]):
                ax.plot(t, mid[:, i], color=colours[i], lw=1.5, label=f"σ{i + 1}")
                ax.fill_between(t, lo[:, i], hi[:, i], color=colours[i], alpha=0.2, lw=0)
        s = arora_completion.ground_truth_singular_values(mine[0])
        if s is not None:
            rank = int((s > s[0] * 1e-10).sum())
            for value in s[:rank].tolist():
                ax.axhline(value, **style.BOUND_STYLE)
            ax.plot([], [], **style.BOUND_STYLE, label="ground truth σᵢ")
        ax.set_yscale("log")
        ax.set_xlabel("flow time t = lr × steps")
        ax.set_ylabel("singular values of W (log scale)")
        ax.set_title(f"depth {depth}, ε = {eps:.0e}")
    grid[0][0].legend(loc="lower right", fontsize=7, ncol=2)
    fig.suptitle(
        "Singular values of W during gradient descent (median and interquartile range over seeds)"
    )
    fig.tight_layout()
    return fig


def end_to_end_scales(run: Run) -> list[float]:
    """The end-to-end init scales ε = init.scale^depth of a run folder's runs (rounded to 1e-9
    in log10, so that ε^(1/L) raised back to L is ε)."""
    return sorted({float(e) for e in _eps(run)})


def _eps(run: Run) -> np.ndarray:
    depth = int(run.cfg.model.depth)
    scales = run.final.get("init_scale")
    scales = np.atleast_1d(
        np.asarray(scales, dtype=np.float64) if scales is not None else float(run.cfg.init.scale)
    )
    return 10.0 ** np.round(depth * np.log10(scales), 9)


def singular_value_bands(
    run: Run, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(flow time ``(T,)``, 25th percentile, median, 75th percentile ``(T, k)``) of σ₁ … σ_k
    over the runs of ``run`` at end-to-end scale ``eps``, at each logged step. The time axis is
    the largest of those runs' flow times at the step (a stopped run keeps its final values)."""
    saved = history.read(run.folder)
    chosen = _eps(run) == eps
    if chosen.shape[0] != saved["values"].shape[1]:  # a single run: one column
        chosen = np.ones(saved["values"].shape[1], dtype=bool)
    values = saved["values"][:, chosen, :]
    lo, mid, hi = np.percentile(values, [25, 50, 75], axis=1)
    return saved["flow_time"][:, chosen].max(axis=1), lo, mid, hi
