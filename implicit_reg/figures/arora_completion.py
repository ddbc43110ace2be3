"""Arora, Cohen, Hu & Luo (2019), Figure 2: reconstruction error, nuclear norm and effective rank
of the solution gradient descent finds, against the end-to-end init scale ε, for each depth and
each observation count; the nuclear-norm minimizer and the ground truth as reference lines.

Each point is the median over the seeds of a batched run (``runs.csv``), with the band from the
25th to the 75th percentile, over the runs that converged (fit the data to ``train.loss_tol``):
a run stopped by its step budget, diverged or stalled has not found a solution, and the legend
counts those left out. A run whose lr × sharpness crossed the stability bound
(``unstable_at_step`` ≥ 0: gradient descent left the flow the theory describes) is out of the
median and band too: a converged one is drawn on its own as a hollow marker, and the legend
counts every such run ("k unstable"). A job of ``optim=nuclear_norm`` gives
the minimizer's line; the ground truth's nuclear norm and effective rank are computed from
``final.pt``'s ``ground_truth``.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from implicit_reg import metrics
from implicit_reg.figures import style
from implicit_reg.record.runs import Run

NAME = "arora2019_completion"
PROBLEM = "matrix_completion"
COUNT_KEY = "observed"
COUNT_LABEL = "observed entries"
PANELS = (
    ("error/reconstruction", r"reconstruction error $\|W - W^*\|_F\,/\,\|W^*\|_F$"),
    ("norm/nuclear", r"nuclear norm $\|W\|_*$"),
    ("rank/effective", "effective rank erank(W)"),
)
"""(tag, axis label) of each column, all on log axes (depth 1's rank dwarfs the others)."""
NUCLEAR = {"color": "tab:red", "linestyle": "--", "linewidth": 1.6}
TRUTH = {"color": "black", "linestyle": ":", "linewidth": 1.6}
KEPT = ("converged",)
"""Statuses whose final W is plotted: a solution of the data."""
UNSTABLE_GID = "unstable"
"""The ``gid`` of the hollow markers of the converged runs that crossed the stability bound."""


def supports(runs: list[Run]) -> list[Run]:
    return supported(runs, PROBLEM)


def supported(runs: list[Run], problem: str) -> list[Run]:
    """Runs of ``problem`` with a random ground truth: gradient descent over end-to-end init
    scales (``batch.end_to_end_scales``, the x-axis) and the nuclear-norm minimizers beside
    them; none if there is no such gradient descent run."""
    mine = [
        r
        for r in runs
        if r.cfg.problem.get("kind") == problem and r.cfg.problem.get("target") is None
    ]
    descents = [
        r
        for r in mine
        if r.has_path  # any stepped optimizer (the paper's GroupRMSprop, GD, …)
        and OmegaConf.select(r.cfg, "batch.end_to_end_scales", default=None) is not None
    ]
    if not descents:
        return []
    return descents + [r for r in mine if not r.has_path]


def draw(runs: list[Run]) -> Figure:
    return draw_recovery(runs, COUNT_KEY, COUNT_LABEL, "Matrix completion")


def draw_recovery(runs: list[Run], count_key: str, count_label: str, title: str) -> Figure:
    """One row per observation count, one column per ``PANELS`` entry."""
    counts = sorted({int(r.cfg.problem[count_key]) for r in runs})
    fig, grid = style.grid(len(counts), len(PANELS), width=4.6, height=3.6)
    for row, count in zip(grid, counts, strict=True):
        mine = [r for r in runs if int(r.cfg.problem[count_key]) == count]
        descents = [r for r in mine if r.has_path]
        minimizers = [r for r in mine if not r.has_path]  # the solved baseline
        by_depth = defaultdict(list)
        for run in descents:
            by_depth[int(run.cfg.model.depth)].extend(final_rows(run))
        truth = ground_truth_values(mine[0])
        for ax, (tag, label) in zip(row, PANELS, strict=True):
            for depth in sorted(by_depth):
                rows = by_depth[depth]
                scales, lo, mid, hi = median_band(rows, tag)
                colour = style.DEPTH_COLOURS.get(depth, "tab:purple")
                ax.plot(scales, mid, "o-", color=colour, label=legend(depth, rows), ms=4)
                ax.fill_between(scales, lo, hi, color=colour, alpha=0.2, lw=0)
                marked = [r for r in rows if r["unstable"] and r["status"] in KEPT]
                if marked:
                    ax.plot(
                        [r["eps"] for r in marked],
                        [r.get(tag, math.nan) for r in marked],
                        "o", color=colour, mfc="none", ms=7, mew=1.4, gid=UNSTABLE_GID,
                    )  # fmt: skip
            for minimizer in minimizers:
                value = minimizer.metrics.get(tag)
                if value is not None:
                    status = minimizer.metrics.get("status", "?")
                    ax.axhline(value, **NUCLEAR, label=f"nuclear-norm minimizer ({status})")
            if tag in truth:
                ax.axhline(truth[tag], **TRUTH, label="ground truth")
            drawn = [ln for ln in ax.get_lines() if ln.get_transform() == ax.transData]
            if any(np.isfinite(ln.get_xydata()).all(1).any() for ln in drawn):  # points to show
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.set_xlabel("end-to-end init scale ε (W(0) = ε·G)")
            ax.set_ylabel(label)
            ax.set_title(f"{count:,} {count_label}")
        row[1].legend(loc="best", fontsize=8)  # the panel with every kind of line
    fig.suptitle(
        f"{title}: gradient descent on deep factorizations vs. the nuclear-norm minimizer "
        "(median and interquartile range over seeds)"
    )
    fig.tight_layout()
    return fig


def legend(depth: int, rows: list[dict[str, Any]]) -> str:
    """``depth d`` with the count of its runs that crossed the stability bound (hollow if they
    converged) and of those that did not converge (left out)."""
    unstable = sum(r["unstable"] for r in rows)
    unfinished = sum(r["status"] not in KEPT for r in rows)
    notes = [f"{unstable} unstable, hollow if converged"] if unstable else []
    notes += [f"{unfinished} not converged, left out"] if unfinished else []
    return f"depth {depth}" + (f" ({'; '.join(notes)})" if notes else "")


def final_rows(run: Run) -> list[dict[str, Any]]:
    """Each run's end-to-end init scale ``eps`` (init.scale^depth), status, whether it crossed
    the stability bound (``unstable``) and final scalars: the rows of a batch's ``runs.csv``,
    or a batch of one run's ``metrics.json``."""
    depth = int(run.cfg.model.depth)
    path = run.folder / "runs.csv"
    if path.exists():
        with path.open() as f:
            rows = list(csv.DictReader(f))
        out = []
        for row in rows:
            values = {k: float(v) if v != "" else math.nan for k, v in row.items() if "/" in k}
            eps = float(row["init_scale"]) ** depth
            unstable = row["status"] == "unstable" or int(row.get("unstable_at_step") or -1) >= 0
            out.append({"eps": eps, "status": row["status"], "unstable": unstable, **values})
        return out
    values = {k: float(v) for k, v in run.metrics.items() if "/" in k and v is not None}
    (eps,) = run.cfg.batch.end_to_end_scales  # a batch of one run
    status = run.metrics.get("status")
    unstable = status == "unstable" or run.metrics.get("unstable_at_step") is not None
    return [{"eps": float(eps), "status": status, "unstable": unstable, **values}]


def median_band(
    rows: list[dict[str, Any]], tag: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ε, 25th percentile, median, 75th percentile) of ``tag`` over the converged, stable runs
    at each end-to-end scale, in increasing ε (scales equal to 1e-9 in log10 are one scale)."""
    groups: dict[float, list[float]] = defaultdict(list)
    for row in rows:
        value = row.get(tag, math.nan)
        if row["status"] in KEPT and not row["unstable"] and math.isfinite(value):
            groups[round(math.log10(row["eps"]), 9)].append(value)
    keys = sorted(groups)
    stats = np.array([np.percentile(groups[k], [25, 50, 75]) for k in keys]).reshape(-1, 3)
    return 10.0 ** np.array(keys), stats[:, 0], stats[:, 1], stats[:, 2]


def ground_truth_singular_values(run: Run) -> torch.Tensor | None:
    """σ(W*) in float64 from ``final.pt``'s ``ground_truth``; None if the run does not hold it."""
    truth = run.final.get("ground_truth")
    if truth is None:
        return None
    return metrics.singular_values(torch.as_tensor(truth, dtype=torch.float64))


def ground_truth_values(run: Run) -> dict[str, float]:
    """The ground truth's nuclear norm and effective rank (its reconstruction error is 0), from
    ``final.pt``'s ``ground_truth``; empty if the run does not hold it."""
    s = ground_truth_singular_values(run)
    if s is None:
        return {}
    return {
        "norm/nuclear": float(s.sum()),
        "rank/effective": float(metrics.effective_rank_from_singular_values(s)),
    }
