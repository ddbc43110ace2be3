"""Seed Figure 3: along the same runs, the effective rank falls to 1 and the distance to the
infimal rank (1) falls to 0, below Theorem 1's c√ℓ curves (eqs. 12–13)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from implicit_reg import theory
from implicit_reg.figures import norms, style
from implicit_reg.record.runs import Run

NAME = "ranks_minimized"
supports = norms.supports


def draw(runs: list[Run]) -> Figure:
    fig, (erank_ax, distance_ax) = style.new(2)
    losses = np.concatenate([r.series("loss/train") for r in runs])
    grid = np.logspace(np.log10(max(losses.min(), 1e-12)), np.log10(0.05), 200)
    for run in sorted(runs, key=lambda r: r.cfg.model.depth):
        ls = "-" if run.cfg.optim.name == "gd" else "--"
        loss = run.series("loss/train")
        erank_ax.plot(
            loss, run.series("rank/effective"), ls, color=style.colour(run), label=style.label(run)
        )
        distance_ax.plot(loss, run.series("rank/infimal_distance"), ls, color=style.colour(run))
    erank_ax.plot(
        grid,
        style.curve(theory.effective_rank_upper_bound, grid),
        **style.BOUND_STYLE,
        label="Theorem 1: 1 + O(√ℓ log 1/ℓ)",
    )
    distance_ax.plot(
        grid,
        style.curve(theory.infimal_distance_upper_bound, grid),
        **style.BOUND_STYLE,
        label="Theorem 1: ≈ 2√(2ℓ)",
    )
    erank_ax.set_ylabel("effective rank erank(W)")
    erank_ax.set_title("effective rank → 1")
    distance_ax.set_yscale("log")
    distance_ax.set_ylabel("D(W, M₁) = σ₂ (log scale)")
    distance_ax.set_title("distance to infimal rank → 0")
    for ax in (erank_ax, distance_ax):
        style.loss_axis(ax)
        ax.legend(loc="upper right" if ax is erank_ax else "lower left")
    fig.suptitle("Ranks are minimized: 2×2 completion, det W(0) > 0")
    fig.tight_layout()
    return fig
