"""One run's curves in one figure: ``run.png`` of ``python -m implicit_reg.figures <run>``."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from implicit_reg.figures import style

NORMS = (
    ("norm/fro", r"$\|W\|_F$", {"color": "tab:blue", "linewidth": 4, "alpha": 0.5}),
    ("norm/nuclear", r"$\|W\|_*$", {"color": "tab:orange", "linestyle": "--", "linewidth": 2}),
    ("norm/spectral", r"$\|W\|_2$", {"color": "black", "linestyle": ":", "linewidth": 1.5}),
)


def run_panel(scalars: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """Loss against flow time, then norms, ranks and the tracked entry (or ‖β‖) against loss;
    ``scalars`` as ``events.read_scalars`` gives them."""
    h = {tag: values for tag, (_, values) in scalars.items()}
    loss, time = h["loss/train"], h["time/flow"]
    fig, (ax_loss, ax_norm, ax_rank, ax_entry) = style.new(4, width=3.8, height=3.3)
    keep = time > 0
    ax_loss.loglog(time[keep], loss[keep])
    ax_loss.set_xlabel("flow time t (log)")
    ax_loss.set_ylabel("loss (log)")
    for tag, text, look in NORMS:  # equal norms (rank 1) overlap: told apart by line and width
        ax_norm.plot(loss, h[tag], label=text, **look)
    ax_norm.set_yscale("log")
    ax_norm.set_ylabel("norm of W (log)")
    ax_norm.legend()
    ax_rank.plot(loss, h["rank/effective"], color="tab:blue")
    ax_rank.set_ylabel(r"effective rank $\mathrm{erank}(W)$", color="tab:blue")
    ax_distance = ax_rank.twinx()  # D(W, M_r) → 0: a log axis, or it reads as a flat 0
    ax_distance.plot(loss, np.maximum(h["rank/infimal_distance"], 1e-300), color="tab:red")
    ax_distance.set_yscale("log")
    ax_distance.set_ylabel(r"$D(W, \mathcal{M}_r)$ (log)", color="tab:red")
    ax_distance.grid(False)
    entry = next((t for t in h if t.startswith("entries/")), "norm/l2" if "norm/l2" in h else None)
    if entry is not None:
        ax_entry.plot(loss, np.abs(h[entry]))
        ax_entry.set_yscale("log")
        name = (
            r"\|\beta\|"
            if entry == "norm/l2"
            else f"|W_{{{entry.split('/')[1].replace('_', '')}}}|"
        )
        ax_entry.set_ylabel(f"${name}$ (log)")
    for ax in (ax_norm, ax_rank, ax_entry):
        style.loss_axis(ax)
    fig.suptitle(title)
    # fixed margins: tight_layout costs seconds on log axes spanning many decades
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.2, top=0.86, wspace=0.4)
    return fig
