"""Seed Figure 2: along the 2×2 completion with det W(0) > 0, the Frobenius, nuclear and spectral
norms grow without bound as the loss vanishes, above Theorem 1's a/√ℓ − b (eq. 11)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from implicit_reg import theory
from implicit_reg.figures import style
from implicit_reg.record.runs import Run

NAME = "norms_blow_up"
NORMS = (
    ("norm/fro", r"Frobenius $\|W\|_F$"),
    ("norm/nuclear", r"nuclear $\|W\|_*$"),
    ("norm/spectral", r"spectral $\|W\|_2$"),
)


def supports(runs: list[Run]) -> list[Run]:
    return [
        r
        for r in runs
        if r.has_path
        and r.cfg.problem.name == "completion_2x2"
        and r.cfg.model.depth >= 2
        and r.cfg.init.det == "positive"
    ]


def draw(runs: list[Run]) -> Figure:
    fig, axes = style.new(len(NORMS))
    losses = np.concatenate([r.series("loss/train") for r in runs])
    grid = np.logspace(np.log10(max(losses.min(), 1e-12)), np.log10(0.1), 200)
    ordered = sorted(runs, key=lambda r: (r.cfg.model.depth, r.cfg.init.scale, r.cfg.optim.name))
    colours = style.palette(ordered)
    for ax, (tag, title) in zip(axes, NORMS, strict=True):
        for run, colour in zip(ordered, colours, strict=True):
            ls = "-" if run.cfg.optim.name == "gd" else "--"
            ax.plot(
                run.series("loss/train"), run.series(tag), ls, color=colour, label=style.label(run)
            )
        ax.plot(
            grid,
            style.curve(theory.norm_lower_bound, grid),
            **style.BOUND_STYLE,
            label=r"Theorem 1: $1/\sqrt{2\ell} - 2 + \sqrt{2\ell}$",
        )
        style.loss_axis(ax)
        ax.set_yscale("log")
        ax.set_ylabel(f"{title} (log scale)")
        ax.set_title(title)
    style.legend_outside(axes[-1])
    fig.suptitle("Norms blow up: 2×2 completion b = [[*, 1], [1, 0]], det W(0) > 0")
    fig.tight_layout()
    return fig
