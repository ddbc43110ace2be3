"""Arora, Cohen, Hu & Luo (2019), Figure 1: the reconstruction error ‖W − W*‖_F / ‖W*‖_F of
the solution gradient descent finds on a deep factorization, against the number of observed
entries of a random low-rank W*, one curve per depth, beside the nuclear-norm minimizer of the
same entries. With few entries depth recovers W* where shallower factorizations and the
minimizer do not; with many, every method does.

Each point is the median over a batched run's seeds (``runs.csv``) at one count, with the band
from the 25th to the 75th percentile, over the runs kept by ``arora_completion.KEPT`` (those that
fit the data) that stayed within the stability bound. A converged run that crossed it
(``unstable_at_step``: gradient descent left the flow the theory describes) is drawn on its own
as a hollow marker; the legend counts those and the runs left out. One panel per end-to-end
init scale ε, its legend below the data. The
minimizer (``optim=nuclear_norm``, one job per count) is drawn as its own dashed curve, with the
statuses of its solves.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from implicit_reg.figures import arora_completion, style
from implicit_reg.record.runs import Run

NAME = "arora2019_observations"
PROBLEM = "matrix_completion"
COUNT_KEY = "observed"
TAG = "error/reconstruction"
MIN_COUNTS = 3
"""Observation counts a sweep needs to be drawn as a curve over them."""


def supports(runs: list[Run]) -> list[Run]:
    """Runs of a random completion problem: factorizations trained over end-to-end init scales
    (any optimizer that follows a path) at ``MIN_COUNTS`` or more observation counts, and the
    nuclear-norm minimizers beside them; none otherwise (Figure 2's sweeps have two counts)."""
    mine = [
        r
        for r in runs
        if r.cfg.problem.get("kind") == PROBLEM and r.cfg.problem.get("target") is None
    ]
    descents = [
        r
        for r in mine
        if r.has_path
        and OmegaConf.select(r.cfg, "batch.end_to_end_scales", default=None) is not None
    ]
    if len({_count(r) for r in descents}) < MIN_COUNTS:
        return []
    return descents + [r for r in mine if not r.has_path]


def draw(runs: list[Run]) -> Figure:
    descents = [r for r in runs if r.has_path]
    minimizers = sorted((r for r in runs if not r.has_path), key=_count)
    rows: dict[tuple[float, int], list[dict[str, Any]]] = defaultdict(list)  # (ε, depth) → rows
    for run in descents:
        for row in arora_completion.final_rows(run):
            row["count"] = _count(run)
            rows[(_scale(row["eps"]), int(run.cfg.model.depth))].append(row)
    scales = sorted({eps for eps, _ in rows})
    fig, grid = style.grid(1, len(scales), width=5.4, height=5.0)
    for ax, eps in zip(grid[0], scales, strict=True):
        for depth in sorted(d for e, d in rows if e == eps):
            mine = rows[(eps, depth)]
            counts, lo, mid, hi = count_band(mine, TAG)
            colour = style.DEPTH_COLOURS.get(depth, "tab:purple")
            label = arora_completion.legend(depth, mine)
            ax.plot(counts, mid, "o-", color=colour, label=label, ms=4)
            ax.fill_between(counts, lo, hi, color=colour, alpha=0.2, lw=0)
            marked = [r for r in mine if r["unstable"] and r["status"] in arora_completion.KEPT]
            if marked:
                ax.plot(
                    [r["count"] for r in marked], [r.get(TAG, math.nan) for r in marked],
                    "o", color=colour, mfc="none", ms=7, mew=1.4, gid=arora_completion.UNSTABLE_GID,
                )  # fmt: skip
        if minimizers:
            values = [m.metrics.get(TAG) for m in minimizers]
            statuses = sorted({str(m.metrics.get("status", "?")) for m in minimizers})
            shown = [
                (_count(m), v) for m, v in zip(minimizers, values, strict=True) if v is not None
            ]
            ax.plot(
                [c for c, _ in shown], [v for _, v in shown], marker="s", ms=4,
                **arora_completion.NUCLEAR,
                label=f"nuclear-norm minimizer ({', '.join(statuses)})",
            )  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlabel("observed entries")
        ax.set_ylabel(r"reconstruction error $\|W - W^*\|_F\,/\,\|W^*\|_F$")
        ax.set_title(f"end-to-end init scale ε = {eps:.0e}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, frameon=False)
    fig.suptitle(
        "Matrix completion: error against the number of observed entries\n"
        "(median and interquartile range over seeds)"
    )
    fig.tight_layout()
    return fig


def count_band(
    rows: list[dict[str, Any]], tag: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(count, 25th percentile, median, 75th percentile) of ``tag`` over the kept, stable runs at
    each observation count, in increasing count; a count with no such run has no point."""
    groups: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        value = row.get(tag, math.nan)
        kept = row["status"] in arora_completion.KEPT and not row["unstable"]
        if kept and math.isfinite(value):
            groups[row["count"]].append(value)
    keys = sorted(groups)
    stats = np.array([np.percentile(groups[k], [25, 50, 75]) for k in keys]).reshape(-1, 3)
    return np.array(keys), stats[:, 0], stats[:, 1], stats[:, 2]


def _count(run: Run) -> int:
    return int(run.cfg.problem[COUNT_KEY])


def _scale(eps: float) -> float:
    """ε rounded to 1e-9 in log10, so that init.scale^depth from different depths is one ε."""
    return float(10.0 ** round(math.log10(eps), 9))
