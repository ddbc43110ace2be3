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
    ordered = sorted(runs, key=lambda r: (r.cfg.model.depth, r.cfg.init.scale, r.cfg.optim.name))
    for run, colour in zip(ordered, style.palette(ordered), strict=True):
        ls = "-" if run.cfg.optim.name == "gd" else "--"
        loss = run.series("loss/train")
        erank_ax.plot(loss, run.series("rank/effective"), ls, color=colour, label=style.label(run))
        distance_ax.plot(loss, run.series("rank/infimal_distance"), ls, color=colour)
    erank_ax.plot(
        grid,
        style.curve(theory.effective_rank_upper_bound, grid),
        **style.BOUND_STYLE,
        label=r"Theorem 1: $1 + O(\sqrt{\ell}\,\log 1/\ell)$",
    )
    distance_ax.plot(
        grid,
        style.curve(theory.infimal_distance_upper_bound, grid),
        **style.BOUND_STYLE,
        label=r"Theorem 1: $\approx 2\sqrt{2\ell}$",
    )
    erank_ax.set_ylabel(r"effective rank $\mathrm{erank}(W)$")
    erank_ax.set_title("effective rank → 1")
    distance_ax.set_yscale("log")
    distance_ax.set_ylabel(r"$D(W, \mathcal{M}_1) = \sigma_2$ (log scale)")
    distance_ax.set_title("distance to infimal rank → 0")
    for ax in (erank_ax, distance_ax):
        style.loss_axis(ax)
    handles = erank_ax.get_legend_handles_labels()[0] + distance_ax.get_legend_handles_labels()[0]
    distance_ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Ranks are minimized: 2×2 completion, det W(0) > 0")
    fig.tight_layout()
    return fig
