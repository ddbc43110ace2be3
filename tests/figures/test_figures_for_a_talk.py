"""Figures fit for a talk: one colour per run, the legend outside the data, math text instead
of literal underscores, and a caption drawn from the runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from implicit_reg.figures import norms, style, unobserved
from implicit_reg.figures.run_panel import run_panel
from implicit_reg.record.runs import find_runs


def texts(fig) -> list[str]:
    """Every piece of text on the figure (titles, labels, legends, captions)."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def no_bare_underscore(text: str) -> bool:
    """Outside $…$ math, an underscore is a literal one (e.g. ‖W‖_F)."""
    return all("_" not in part for part in text.split("$")[::2])


def test_same_depth_runs_differ_in_colour_and_the_legend_is_outside(
    train_run, tmp_path: Path
) -> None:
    """Depth 3 at init scales 0.1 and 0.3: two colours. Catches: a colour per depth (the two
    indistinguishable), a legend drawn over the curves, ‖W‖_F with a literal underscore."""
    for scale in (0.1, 0.3):
        train_run("init.scale=" + str(scale), "train.loss_tol=0.05", "train.log_every=200")
    runs = norms.supports(find_runs(tmp_path))
    fig = norms.draw(runs)
    ax = fig.axes[0]
    colours = {tuple(line.get_color()) for line in ax.get_lines() if line.get_label()[:2] == "L="}
    assert len(colours) == 2
    fig.canvas.draw()
    legend = fig.axes[-1].get_legend()
    box = legend.get_window_extent()
    assert all(box.x0 >= a.get_window_extent().x1 for a in fig.axes)  # right of every panel
    assert all(no_bare_underscore(t) for t in texts(fig)), texts(fig)
    assert any(r"\|W\|_F" in t for t in texts(fig))


def test_unobserved_caption_comes_from_the_runs(train_run, tmp_path: Path) -> None:
    """Catches: a fixed caption about other runs (seed 0, η = 3·10⁻³, SVD flow)."""
    train_run("model.depth=2", "optim.lr=0.02", "seed=4", "train.loss_tol=0.05")
    runs = unobserved.supports(find_runs(tmp_path))
    text = unobserved.caption(runs)
    assert "1 runs, depths 2" in text and "lr 0.02" in text and "seeds 4" in text
    assert "flow" not in text and "det W(0) < 0" not in text
    assert text in texts(unobserved.draw(runs))


def test_run_panel_draws_the_infimal_distance_on_a_log_axis_and_norms_apart() -> None:
    """Catches: D(W, M_r) → 0 on a linear axis (a flat 0), three norms in one style."""
    loss = np.logspace(0, -4, 30)
    scalars = {
        tag: (np.arange(30), values)
        for tag, values in {
            "loss/train": loss,
            "time/flow": np.linspace(0, 100, 30),
            "norm/fro": 1 / np.sqrt(loss),
            "norm/nuclear": 1 / np.sqrt(loss),
            "norm/spectral": 1 / np.sqrt(loss),
            "rank/effective": 1 + np.sqrt(loss),
            "rank/infimal_distance": np.sqrt(loss) * 1e-3,
            "entries/1_1": -1 / np.sqrt(loss),
        }.items()
    }
    fig = run_panel(scalars, "a run")
    log_axes = [a for a in fig.axes if any("M}_r" in t.get_text() for t in [a.yaxis.label])]
    assert len(log_axes) == 1 and log_axes[0].get_yscale() == "log"
    styles = {(line.get_linestyle(), line.get_linewidth()) for line in fig.axes[1].get_lines()}
    assert len(styles) == 3
    assert all(no_bare_underscore(t) for t in texts(fig)), texts(fig)
    style.plt.close(fig)
