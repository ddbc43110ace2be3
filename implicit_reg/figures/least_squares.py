"""Seed Figure 1: from β₀ = 0 gradient descent ends at the minimum-norm point of the line of
zero-loss solutions (d = 2, n = 1); from other starts it ends elsewhere on that line."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from implicit_reg.figures import style
from implicit_reg.record.runs import Run

NAME = "least_squares_min_norm"


def supports(runs: list[Run]) -> list[Run]:
    return [
        r
        for r in runs
        if r.has_path
        and r.cfg.problem.kind == "least_squares"
        and r.cfg.problem.d == 2
        and r.cfg.problem.n == 1
    ]


def draw(runs: list[Run]) -> Figure:
    X, y = runs[0].final["X"].numpy(), runs[0].final["y"].numpy()
    min_norm = np.linalg.pinv(X) @ y
    direction = np.array([-X[0, 1], X[0, 0]]) / np.linalg.norm(X[0])
    ends = np.array([r.final["beta"].numpy() for r in runs])
    reach = 1.3 * max(np.abs(ends).max(), np.linalg.norm(min_norm), 1.0)

    fig, (ax,) = style.new(1, width=6.0, height=5.6)
    t = np.linspace(-2 * reach, 2 * reach, 2)
    line = min_norm[None] + t[:, None] * direction[None]
    ax.plot(line[:, 0], line[:, 1], color="gray", lw=2, label="zero-loss solutions {β : Xβ = y}")
    circle = np.linalg.norm(min_norm) * np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    ax.plot(circle.real, circle.imag, color="tab:red", lw=0.8, ls="--", label="‖β‖ = ‖pinv(X) y‖")
    for run in runs:
        b1, b2 = run.series("beta/1"), run.series("beta/2")
        from_zero = run.cfg.init.kind == "zero"
        ax.plot(b1, b2, "-", color="tab:red" if from_zero else "tab:blue", lw=1.2, alpha=0.9)
        ax.plot(b1[0], b2[0], "o", color="black", ms=4)
        ax.plot(b1[-1], b2[-1], "s", color="tab:red" if from_zero else "tab:blue", ms=6)
    ax.plot(*min_norm, "*", color="tab:red", ms=16, label="minimum-norm solution pinv(X) y")
    ax.plot([], [], "-", color="tab:red", label="GD from β₀ = 0")
    ax.plot([], [], "-", color="tab:blue", label="GD from other starts (●)")
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_aspect("equal")
    ax.set_xlabel("β₁")
    ax.set_ylabel("β₂")
    ax.set_title("Least squares, d = 2, n = 1: GD from 0 picks the minimum norm")
    ax.legend(loc="lower left")
    return fig
