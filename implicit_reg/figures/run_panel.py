"""One run's curves in one figure: ``run.png`` of ``python -m implicit_reg.figures <run>``."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from implicit_reg.figures import style


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
    for tag in ("norm/fro", "norm/nuclear", "norm/spectral"):
        ax_norm.plot(loss, h[tag], label=tag.removeprefix("norm/"))
    ax_norm.set_yscale("log")
    ax_norm.set_ylabel("norm of W (log)")
    ax_norm.legend()
    ax_rank.plot(loss, h["rank/effective"], label="effective rank")
    ax_rank.plot(loss, h["rank/infimal_distance"], label="D(W, M_r)")
    ax_rank.legend()
    entry = next((t for t in h if t.startswith("entries/")), "norm/l2" if "norm/l2" in h else None)
    if entry is not None:
        ax_entry.plot(loss, np.abs(h[entry]))
        ax_entry.set_yscale("log")
        ax_entry.set_ylabel(f"|{entry}| (log)")
    for ax in (ax_norm, ax_rank, ax_entry):
        style.loss_axis(ax)
    fig.suptitle(title)
    # fixed margins: tight_layout costs seconds on log axes spanning many decades
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.2, top=0.86, wspace=0.4)
    return fig
