"""TensorBoard logging of one run or of a batch; keeps the last values for metrics.json.

A single run writes every scalar under its tag (README § "What each run writes"). A batch
writes, per logged step, the 10/50/90% quantiles over its non-diverged runs (``<tag>/q10``,
``<tag>/median``, ``<tag>/q90``) and ``batch/<status>`` counts, plus the ordinary tags of a few
runs spread over the grid, each in its own folder ``runs/<k>`` (k = its row of ``runs.csv``).
A resumed run passes its checkpoint's step as ``purge_step``: TensorBoard then drops whatever the
stopped run logged from that step on, so the curves continue without duplicated steps.

The loss spans many decades, so each writer also logs ``loss/train_log10``, log10 of the loss (a
batch: log10 of each quantile, ``loss/train_log10/median`` …): TensorBoard's charts have a linear
y-axis unless toggled by hand. At its first log each writer writes a Custom Scalars layout
(:func:`layout`): loss first, then the error, ranks, norms and singular values; for a batch,
each quantity's median with its q10–q90 band as one margin chart. These extra tags stay out of
``metrics.json``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

QUANTILES = {"q10": 0.1, "median": 0.5, "q90": 0.9}
LOSS, LOG10 = "loss/train", "loss/train_log10"

# Custom Scalars charts, in order: (category, title, tags); a chart is written only if its tags
# were logged. A run's chart draws every tag that one of its regular expressions matches.
CHARTS: tuple[tuple[str, str, str], ...] = (
    ("loss", "log10 of the loss", LOG10),
    ("loss", "loss", LOSS),
    ("error", "‖W − W*‖_F / ‖W*‖_F (Arora et al. 2019)", "error/reconstruction"),
    ("error", "‖β − pinv(X)y‖ and ‖β − β_t‖ (closed-form flow)", "dist/.*"),
    ("rank", "effective rank", "rank/effective"),
    (
        "rank",
        "D(W, M_r): distance to the infimal rank (Razin & Cohen 2020)",
        "rank/infimal_distance",
    ),
    ("norms", "‖W‖_F, ‖W‖_*, ‖W‖₂", "norm/(fro|nuclear|spectral)"),
    ("norms", "‖β‖", "norm/l2"),
    ("singular values", "σ_i(W)", "singular_values/.*"),
    ("stability", "lr × sharpness (stable below 2)", "stability/lr_times_sharpness"),
    ("runs", "runs going, converged, diverged", "batch/.*"),
)


class TensorBoardLogger:
    def __init__(
        self,
        out_dir: Path,
        runs: int,
        tracked: int = 0,
        purge_step: int = 0,
        last: dict[str, float] | None = None,
    ) -> None:
        self.writer = SummaryWriter(log_dir=str(out_dir), purge_step=purge_step)
        self.single = runs == 1
        picks = [] if self.single else torch.linspace(0, runs - 1, min(tracked, runs))
        digits = len(str(runs - 1))
        self.tracked = {
            k: SummaryWriter(
                log_dir=str(out_dir / "runs" / f"{k:0{digits}d}"), purge_step=purge_step
            )
            for k in sorted({round(float(p)) for p in picks})
        }
        self.last: dict[str, float] = dict(last or {})
        self.laid_out: set[SummaryWriter] = set()  # writers whose layout is written

    def rows(self, runs: int, sample: int, device: torch.device) -> Tensor | None:
        """The runs a batch logs during training: all (None) up to ``sample`` runs, else
        ``sample`` runs evenly spaced over the batch plus the tracked ones (sorted)."""
        if runs <= sample:
            return None
        spaced = torch.linspace(0, runs - 1, sample, device=device).round().long()
        tracked = torch.tensor(list(self.tracked), dtype=torch.long, device=device)
        return torch.unique(torch.cat([spaced, tracked]))

    def log(
        self,
        step: int,
        values: dict[str, Tensor],
        include: Tensor,
        counts: dict[str, float],
        rows: Tensor | None = None,
    ) -> dict[str, float]:
        """Log one step of per-run ``values`` (of the runs ``rows``, or of all); quantiles over
        those in ``include``. Returns the run's floats (a batch: the medians, by plain tag)."""
        if self.single:
            self.last = to_floats({tag: v[0] for tag, v in values.items()})
            self._write(self.writer, step, self.last)
            return self.last
        self.last = {**quantiles(values, include), **counts}
        self._write(self.writer, step, self.last, batch=True)
        tracked = torch.tensor(list(self.tracked), dtype=torch.long, device=include.device)
        if rows is not None:  # where the tracked runs sit among the logged rows
            tracked = torch.searchsorted(rows, tracked)
        if len(tracked):
            picked = to_floats({tag: v[tracked] for tag, v in values.items()})
            live = include[tracked].tolist()
            for i, writer in enumerate(self.tracked.values()):
                if live[i]:
                    self._write(writer, step, {t: v[i] for t, v in picked.items()})
        return {tag: self.last[f"{tag}/median"] for tag in values}

    def _write(
        self, writer: SummaryWriter, step: int, values: dict[str, float], batch: bool = False
    ) -> None:
        """``values`` (:func:`write_scalars`); a writer's first call also writes its layout."""
        written = write_scalars(writer, step, values)
        if writer not in self.laid_out:
            self.laid_out.add(writer)
            writer.add_custom_scalars(layout(written, batch))

    def writers(self) -> list[SummaryWriter]:
        return [self.writer, *self.tracked.values()]

    def flush(self) -> None:
        for writer in self.writers():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers():
            writer.flush()
            writer.close()


def log10(value: float) -> float:
    """log10 of a loss; NaN for a loss ≤ 0 or not finite (TensorBoard skips NaN points)."""
    return math.log10(value) if math.isfinite(value) and value > 0 else math.nan


def layout(tags: list[str], batch: bool) -> dict[str, dict[str, list]]:
    """The Custom Scalars layout of :data:`CHARTS` for the logged ``tags``: a run's charts are
    ``Multiline`` over the tags they match; a batch's are one ``Margin`` chart per matched
    quantity (its median, q10 and q90), and its counts one ``Multiline``."""
    out: dict[str, dict[str, list]] = {}
    for category, title, pattern in CHARTS:
        if batch and not pattern.startswith("batch/"):
            matched = [t[: -len("/median")] for t in tags if t.endswith("/median")]
            for quantity in sorted(t for t in matched if re.fullmatch(pattern, t)):
                band = [f"{quantity}/median", f"{quantity}/q10", f"{quantity}/q90"]
                name = f"{title}: {quantity}, median and q10–q90 over runs"
                out.setdefault(category, {})[name] = ["Margin", band]
        elif any(re.fullmatch(pattern, t) for t in tags):
            out.setdefault(category, {})[title] = ["Multiline", [f"^{pattern}$"]]
    return out


def to_floats(values: dict[str, Tensor]) -> dict[str, float] | dict[str, list[float]]:
    """Scalars (0-d, or ``(n,)`` each) as Python floats, in one device-to-host copy."""
    tags = list(values)
    stacked = torch.stack([values[t] for t in tags]).double().cpu().tolist()
    return dict(zip(tags, stacked, strict=True))


def quantiles(values: dict[str, Tensor], include: Tensor) -> dict[str, float]:
    """``<tag>/<q>`` over the runs where ``include`` is True and the value is not NaN (NaN where
    there is none), linearly interpolated as ``torch.quantile``; by selection, which on 10⁶ runs
    costs a fraction of a sort. Without NaNs every tag has the same runs: all tags are copied to
    the host at once and selected there (NumPy's ``partition`` at the order statistics needed;
    ``torch.kthvalue`` tag by tag costs ×4 at 10⁴ runs)."""
    everyone = bool(include.all())
    rows = torch.stack([v.double() for v in values.values()]) if values else None
    rows = rows if rows is None or everyone else rows[:, include]
    if rows is not None and rows.shape[1] > 0:
        host = rows.cpu().numpy()
        if not np.isnan(host).any():
            return _quantiles_of_rows(list(values), host)
    out = {}
    for tag, value in values.items():
        x = value if everyone else value[include]
        nan = torch.isnan(x)
        x = x[~nan] if bool(nan.any()) else x
        for name, q in QUANTILES.items():
            out[f"{tag}/{name}"] = _quantile(x, q)
    return out


def _quantiles_of_rows(tags: list[str], x: np.ndarray) -> dict[str, float]:
    """``_quantile`` of each row of ``x`` ``(tags, n)``, n ≥ 1, all rows at once."""
    n = x.shape[1]
    ranks = sorted({k for q in QUANTILES.values() for k in _ranks(q, n)})
    picked = np.partition(x, ranks, axis=1)[:, ranks].tolist()
    out = {}
    for tag, row in zip(tags, picked, strict=True):
        at = dict(zip(ranks, row, strict=True))
        for name, q in QUANTILES.items():
            low, *high = (at[k] for k in _ranks(q, n))
            fraction = q * (n - 1) - int(q * (n - 1))
            out[f"{tag}/{name}"] = low + (high[0] - low) * fraction if high else low
    return out


def _ranks(q: float, n: int) -> list[int]:
    """The order statistics (0-based) that the q-quantile of n numbers interpolates between."""
    position = q * (n - 1)
    below = int(position)
    return [below] if position == below else [below, below + 1]


def _quantile(x: Tensor, q: float) -> float:
    if len(x) == 0:
        return float("nan")
    position = q * (len(x) - 1)
    below = int(position)
    low = float(torch.kthvalue(x, below + 1).values)
    if position == below:
        return low
    high = float(torch.kthvalue(x, below + 2).values)
    return low + (high - low) * (position - below)


def write_scalars(writer: SummaryWriter, step: int, values: dict[str, float]) -> list[str]:
    """All of a step's scalars as one event (one ``add_scalar`` call each costs ~100 µs), with
    log10 of the loss (``loss/train_log10``, and of each quantile ``loss/train_log10/<q>``);
    returns the tags written."""
    extra = {
        tag.replace(LOSS, LOG10, 1): log10(value)
        for tag, value in values.items()
        if tag == LOSS or tag.startswith(f"{LOSS}/")
    }
    both = {**values, **extra}
    summary = Summary(value=[Summary.Value(tag=t, simple_value=v) for t, v in both.items()])
    writer.file_writer.add_summary(summary, step)
    return list(both)
