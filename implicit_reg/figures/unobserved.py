"""Razin & Cohen (2020) Figure 1: the unobserved entry |W₁₁| against the loss on the 2×2 problem,
for each depth, coloured by time; gradient descent and the exact-sign flow side by side, with
det W(0) < 0 runs for contrast."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from implicit_reg import theory
from implicit_reg.figures import style
from implicit_reg.record.runs import Run

NAME = "unobserved_entry"


def caption(runs: list[Run]) -> str:
    """What the drawn runs are, from their configs: depths, optimizers and step sizes, inits
    and seeds, and how many start from det W(0) < 0 (grey dashed)."""

    def listed(values: set) -> str:
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(values))

    gd = [r for r in runs if r.cfg.optim.name == "gd"]
    parts = [f"{len(runs)} runs, depths {listed({int(r.cfg.model.depth) for r in runs})}"]
    if gd:
        parts.append(f"gradient descent at lr {listed({float(r.cfg.optim.lr) for r in gd})}")
    if len(gd) < len(runs):
        parts.append("gradient flow (solid: coloured by flow time)")
    inits = {f"{r.cfg.init.kind} {float(r.cfg.init.scale):g}" for r in runs}
    parts.append(
        f"init {', '.join(sorted(inits))}, seeds {listed({int(r.cfg.seed) for r in runs})}"
    )
    negative = sum(r.cfg.init.det == "negative" for r in runs)
    if negative:
        parts.append(f"{negative} from det W(0) < 0 (grey dashed: outside Theorem 1)")
    return "; ".join(parts) + ". Dotted: Theorem 1's |W₁₁| ≥ 1/√(2ℓ) − 2 + √(2ℓ)."


def supports(runs: list[Run]) -> list[Run]:
    return [
        r
        for r in runs
        if r.has_path and r.cfg.problem.name == "completion_2x2" and r.cfg.model.depth >= 2
    ]


def draw(runs: list[Run]) -> Figure:
    depths = sorted({int(r.cfg.model.depth) for r in runs})
    optimizers = [o for o in ("gd", "flow") if any(r.cfg.optim.name == o for r in runs)]
    times = np.concatenate([r.series("time/flow") for r in runs])
    norm = LogNorm(vmin=max(times[times > 0].min(), 1e-3), vmax=times.max())
    fig, grid = style.grid(len(optimizers), len(depths), width=4.6, height=4.0)
    height = fig.get_figheight() + 1.2  # room for the title and the caption
    fig.set_figheight(height)
    fig.subplots_adjust(bottom=1.0 / height, top=1 - 0.7 / height, wspace=0.3, hspace=0.45)
    for row, optimizer in enumerate(optimizers):
        for col, depth in enumerate(depths):
            ax = grid[row][col]
            mine = [r for r in runs if r.cfg.optim.name == optimizer and r.cfg.model.depth == depth]
            for run in mine:
                _curve(ax, run, norm)
            losses = np.concatenate([r.series("loss/train") for r in mine] or [np.ones(1)])
            ell = np.logspace(np.log10(np.clip(losses.min(), 1e-12, 1e-2)), np.log10(0.1), 100)
            ax.plot(
                ell,
                style.curve(theory.w11_lower_bound, ell),
                **style.BOUND_STYLE,
                label=r"$1/\sqrt{2\ell} - 2 + \sqrt{2\ell}$",
            )
            style.loss_axis(ax)
            ax.set_yscale("log")
            ax.set_ylim(1e-3, None)
            ax.set_title(
                f"depth {depth}, {'gradient descent' if optimizer == 'gd' else 'gradient flow'}"
            )
            ax.set_ylabel(r"$|W_{11}|$ (log scale)")
    grid[0][0].legend(loc="lower left", fontsize=8)  # the curves rise to the upper right
    mappable = grid[0][0].collections[0] if grid[0][0].collections else None
    if mappable is not None:
        fig.colorbar(mappable, ax=[a for r in grid for a in r], label="flow time t = lr × step")
    fig.suptitle("Unobserved entry of b = [[*, 1], [1, 0]]: |W₁₁| → ∞ as ℓ → 0 (det W > 0)")
    fig.text(0.02, 0.01, caption(runs), wrap=True, fontsize=9, va="bottom")
    return fig


def _curve(ax: Axes, run: Run, norm: LogNorm) -> None:
    loss, w11 = run.series("loss/train"), np.abs(run.series("entries/1_1"))
    if run.cfg.init.det == "negative":
        ax.plot(loss, w11, "--", color="gray", lw=1.2, label="det W(0) < 0")
        return
    points = np.column_stack([loss, np.maximum(w11, 1e-12)])
    segments = np.stack([points[:-1], points[1:]], axis=1)
    lines = LineCollection(segments, cmap="viridis", norm=norm, linewidths=2)
    lines.set_array(np.maximum(run.series("time/flow")[1:], norm.vmin))
    ax.add_collection(lines)
    ax.update_datalim(points)
    ax.autoscale_view()
