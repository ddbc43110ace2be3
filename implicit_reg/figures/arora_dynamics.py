"""Arora, Cohen, Hu & Luo (2019), Figure 3: the top singular values of the end-to-end matrix
over training, one panel per depth (and per problem and end-to-end init scale ε): at depth 1
they grow together, with depth they are learned one at a time, each after a longer plateau, so
the solution stays close to low rank along the way. Below them, where the runs recorded it, the
alignment of the gradient with W's singular vectors: the mean of the diagonal and of the
off-diagonal of |Uᵀ∇ℓ(W)V| (``implicit_reg.alignment``).

Drawn from ``singular_values.npz`` (``train.singular_value_history``): for each σᵢ (and each
alignment mean) the median over the runs of the folder (its seeds) at each logged step, with the
band from the 25th to the 75th percentile, against flow time t = lr × steps; the ground truth's
singular values as dotted lines where ``final.pt`` holds them (not for real data such as
MovieLens).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from matplotlib.figure import Figure

from implicit_reg.figures import arora_completion, style
from implicit_reg.record import history
from implicit_reg.record.runs import Run

NAME = "arora2019_dynamics"
PROBLEM = "matrix_completion"
"""The problem of the paper's random row: its panels are not named by problem."""


def supports(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.has_path and (r.folder / history.FILE).exists()]


ALIGNMENT = (
    (0, "diagonal", "tab:blue"),
    (2, "off-diagonal", "tab:red"),
)
"""(column of ``history.ALIGNMENT_COLUMNS``, legend, colour) of each alignment curve: the means."""


def draw(runs: list[Run]) -> Figure:
    panels: dict[tuple[str, float, int], list[Run]] = defaultdict(list)
    for run in runs:
        for eps in end_to_end_scales(run):
            panels[(str(run.cfg.problem.name), eps, int(run.cfg.model.depth))].append(run)
    groups = sorted({(p, e) for p, e, _ in panels})
    depths = sorted({d for _, _, d in panels})
    aligned = {(p, e) for (p, e, _), mine in panels.items() if any(_has_alignment(r) for r in mine)}
    starts, n = {}, 0  # the first row of each (problem, ε): σ, then the alignment if recorded
    for group in groups:
        starts[group], n = n, n + 1 + (group in aligned)
    fig, grid = style.grid(n, len(depths), width=4.6, height=3.8)
    for (problem, eps, depth), mine in sorted(panels.items()):
        row, column = starts[(problem, eps)], depths.index(depth)
        title = f"depth {depth}, ε = {eps:.0e}" + ("" if problem == PROBLEM else f", {problem}")
        _singular_values(grid[row][column], mine, eps, title)
        if (problem, eps) in aligned:
            _alignment(grid[row + 1][column], mine, eps, title)
    grid[0][0].legend(loc="lower right", fontsize=7, ncol=2)
    fig.suptitle(
        "Singular values of W during gradient descent, and |Uᵀ∇ℓ(W)V| "
        "(median and interquartile range over seeds)"
    )
    fig.tight_layout()
    return fig


def _singular_values(ax, runs: list[Run], eps: float, title: str) -> None:
    for run in runs:
        t, lo, mid, hi = singular_value_bands(run, eps)
        colours = style.plt.cm.viridis(np.linspace(0, 0.9, mid.shape[1]))
        for i in range(mid.shape[1]):
            ax.plot(t, mid[:, i], color=colours[i], lw=1.5, label=f"σ{i + 1}")
            ax.fill_between(t, lo[:, i], hi[:, i], color=colours[i], alpha=0.2, lw=0)
    s = arora_completion.ground_truth_singular_values(runs[0])
    if s is not None:  # its numerical rank in the precision it was stored in (float32 runs)
        stored = runs[0].final["ground_truth"]
        tol = float(s[0]) * max(stored.shape) * torch.finfo(stored.dtype).eps
        rank = int((s > tol).sum())
        for value in s[:rank].tolist():
            ax.axhline(value, **style.BOUND_STYLE)
        ax.plot([], [], **style.BOUND_STYLE, label="ground truth σᵢ")
    ax.set_yscale("log")
    ax.set_xlabel(time_label(runs))
    ax.set_ylabel("singular values of W (log scale)")
    ax.set_title(title)


def time_label(runs: list[Run]) -> str:
    """The x-axis: lr × steps is gradient flow's time for GD only; for an adaptive optimizer
    (the paper's GroupRMSprop) it is the step count scaled by lr."""
    if all(r.cfg.optim.name == "gd" for r in runs):
        return "flow time t = lr × steps"
    return f"lr × steps ({', '.join(sorted({r.cfg.optim.name for r in runs}))})"


def _alignment(ax, runs: list[Run], eps: float, title: str) -> None:
    for run in runs:
        if not _has_alignment(run):
            continue
        t, lo, mid, hi = alignment_bands(run, eps)
        for column, name, colour in ALIGNMENT:
            ax.plot(t, mid[:, column], color=colour, lw=1.5, label=f"{name} mean")
            ax.fill_between(t, lo[:, column], hi[:, column], color=colour, alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel(time_label(runs))
    ax.set_ylabel("|Uᵀ∇ℓ(W)V| entries (log scale)")
    ax.set_title(f"{title}: gradient in W's singular basis", fontsize=10)
    ax.legend(loc="best", fontsize=7)


def _has_alignment(run: Run) -> bool:
    return history.read(run.folder)["alignment"].shape[-1] == len(history.ALIGNMENT_COLUMNS)


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
    return _bands(run, eps, "values")


def alignment_bands(run: Run, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """As ``singular_value_bands``, of the four columns of ``history.ALIGNMENT_COLUMNS``."""
    return _bands(run, eps, "alignment")


def _bands(run: Run, eps: float, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    saved = history.read(run.folder)
    chosen = _eps(run) == eps
    if chosen.shape[0] != saved[key].shape[1]:  # a single run: one column
        chosen = np.ones(saved[key].shape[1], dtype=bool)
    values = saved[key][:, chosen, :]
    lo, mid, hi = np.percentile(values, [25, 50, 75], axis=1)
    return saved["flow_time"][:, chosen].max(axis=1), lo, mid, hi
