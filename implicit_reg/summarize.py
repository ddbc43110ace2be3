"""Summary of any sweep: ``python -m implicit_reg.summarize <folder> [--metric TAG] [--by KEY]``.

Scans every run folder under ``<folder>`` (a folder with ``.hydra/``), partial and crashed
sweeps included, and writes ``<folder>/summary.csv``: one row per run with its overrides as
columns (the swept keys, from ``.hydra/overrides.yaml``), its ``status`` and its final metrics.
A folder with no ``metrics.json`` is ``crashed`` (or still running), one whose ``metrics.json``
cannot be read is ``corrupt``, one whose results are missing or not whole is ``incomplete``
(``record/completion.py``); a job of the multirun's grid with no folder at all is ``missing``.
A folder with no run, or a ``--metric``/``--by`` no run has, is refused with one line and exit
status 1 before any file is written. A batched run gives one row per run of its ``runs.csv``,
with ``seed``, ``init.scale`` and ``optim.lr`` as columns. Prints a compact table and plots a
metric against a swept key (``summary_<metric>_vs_<key>.png``). Its count line gives the runs
by status and ``unstable N``: the runs that crossed the stability bound (``unstable_at_step``
≥ 0, whatever their status, or stopped there). Runs at the end of every
multirun (``implicit_reg.sweep_callback``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from implicit_reg.os_errors import console_never_fails, one_line
from implicit_reg.record import artifacts
from implicit_reg.record.completion import UNFINISHED, missing_results
from implicit_reg.record.runs import not_a_folder, run_folders

STATUS_COLUMNS = ("run", "status", "steps", "error")
STABILITY = ("unstable_at_step", "max_lr_times_sharpness")
"""Each run's stability-guard record (``metrics.json`` of a run, columns of ``runs.csv``)."""
NOT_KEYS = {*STATUS_COLUMNS, "flow_time", "wall_time_s", *STABILITY}
TABLE_METRICS = ("loss/train",)
# the first a sweep's runs have is plotted: the reconstruction error of a planted W* (Arora et
# al. 2019), least squares' ‖β − pinv(X)y‖, the 2×2 problem's unobserved entry (Razin & Cohen 2020)
PLOT_METRICS = (
    "error/reconstruction",
    "dist/min_norm",
    "entries/1_1",
    "norm/nuclear",
    "loss/train",
)
BATCH_COLUMNS = {"seed": "seed", "init_scale": "init.scale", "lr": "optim.lr"}


class SummaryError(Exception):
    """A folder or option that cannot be summarized; the message is one line for the user."""


def summarize(
    folder: Path,
    metric: str | None = None,
    by: str | None = None,
    absolute: bool = False,
    plot: bool = True,
) -> tuple[list[dict[str, Any]], str]:
    """Write ``summary.csv`` (and the plot) for the sweep in ``folder``; return the rows and the
    printed table. Raises ``SummaryError``, before any file is written, for a folder that does
    not exist or holds no run and for a ``metric`` or ``by`` that no run has."""
    folder = Path(folder)
    problem = not_a_folder(folder)
    if problem:
        raise SummaryError(problem)
    rows = [row for run in run_folders(folder) for row in rows_of(run, folder)]
    rows += missing_jobs(folder, rows)
    if not rows:
        raise SummaryError(f"{folder} holds no runs: no run or sweep folder (.hydra/) under it")
    keys = swept_keys(rows)
    metrics = sorted({k for row in rows for k in row if k not in keys and k not in STATUS_COLUMNS})
    if metric is not None and metric not in metrics:
        raise SummaryError(f"--metric {metric}: no run has it; metrics: {_listing(metrics)}")
    varied = [k for k in keys if len(numbers(rows, k)) > 1]
    numeric = [k for k in keys if numbers(rows, k)]
    if by is not None and by not in numeric:
        raise SummaryError(f"--by {by}: not a numeric swept key; keys: {_listing(numeric)}")
    metric = metric or next((m for m in PLOT_METRICS if m in metrics), None)
    by = by or next((k for k in varied if k != "seed"), varied[0] if varied else None)
    columns = [STATUS_COLUMNS[0], *keys, *STATUS_COLUMNS[1:], *metrics]
    write_csv(folder / "summary.csv", columns, rows)
    varying = [k for k in keys if len({_cell(row.get(k)) for row in rows}) > 1]
    fixed = [f"{k}={_short(rows[0].get(k))}" for k in keys if k not in varying]
    lines = [table(rows, varying if len(rows) > 1 else keys, metric)]
    if fixed and len(rows) > 1:
        lines.append(f"same in every run: {', '.join(fixed)}")
    if plot and metric and by:
        path = plot_metric(folder, rows, metric, by, absolute)
        lines.append(f"plot: {path}" if path else f"plot: none, no run has a finite {metric}")
    lines.append(f"summary: {folder / 'summary.csv'}")
    return rows, "\n".join(lines)


def overrides_of(run: Path) -> dict[str, Any]:
    """``key → value`` from the run's ``.hydra/overrides.yaml`` (Hydra's own keys left out)."""
    path = run / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    out: dict[str, Any] = {}
    for item in yaml.safe_load(path.read_text()) or []:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if not key.startswith("hydra."):
            out[key] = _parse(value)
    return out


def rows_of(run: Path, folder: Path) -> list[dict[str, Any]]:
    """The run's row (a batched run: one per run of ``runs.csv``); a ``metrics.json`` or
    ``runs.csv`` that cannot be read gives one row with status ``corrupt`` and the reason."""
    name = str(run.relative_to(folder)) if run != folder else "."
    base = {"run": name, **overrides_of(run)}
    if not (run / "metrics.json").exists():
        return [{**base, "status": "crashed"}]
    try:
        metrics = json.loads((run / "metrics.json").read_text())
        if not isinstance(metrics, dict):
            raise ValueError(f"a JSON {type(metrics).__name__}, not an object")
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        return [{**base, "status": "corrupt", "error": f"metrics.json: {error}"}]
    missing = [] if metrics.get("status") in UNFINISHED else missing_results(run, metrics)
    if missing:  # its record outlived its results: a rerun runs it again
        return [
            {**base, "status": "incomplete", "error": f"{', '.join(missing)}: missing or not whole"}
        ]
    if (run / "runs.csv").exists():
        try:
            with open(run / "runs.csv") as f:
                return [_batch_row(base, row) for row in csv.DictReader(f)]
        except (ValueError, KeyError, TypeError) as error:
            return [{**base, "status": "corrupt", "error": f"runs.csv: {error!r}"}]
    finals = {k: _number(v) for k, v in metrics.items() if _is_metric(k, v)}
    return [
        {
            **base,
            "status": metrics.get("status", "unknown"),
            "steps": metrics.get("steps"),
            "error": metrics.get("error"),
            **finals,
        }
    ]


def missing_jobs(folder: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the jobs of the multirun's grid (``multirun.yaml``) that left no folder."""
    jobs = sweep_grid(folder)
    if jobs is None:
        return []
    seen = {row["run"].split("#")[0] for row in rows}
    names = job_folders(jobs)
    if not all(name in names or name.isdigit() for name in seen):  # not a sweep's job folders
        return []
    return [
        {"run": name, "status": "missing"}
        for j, name in enumerate(names)
        if name not in seen and str(j) not in seen  # str(j): a folder named by number only
    ]


def sweep_grid(folder: Path) -> list[list[str]] | None:
    """Each job's overrides, by job number, as Hydra's basic sweeper expands the multirun saved
    in ``folder/multirun.yaml`` (the latest one run there); None without that file, or for
    another sweeper (its grid is unknown)."""
    path = folder / "multirun.yaml"
    if not path.exists():
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        hydra = yaml.safe_load(path.read_text())["hydra"]
        if not str(hydra["sweeper"]["_target_"]).endswith(".BasicSweeper"):
            return None
        params = [f"{k}={v}" for k, v in (hydra["sweeper"].get("params") or {}).items()]
        overrides = OverridesParser.create().parse_overrides(params + hydra["overrides"]["task"])
        return BasicSweeper.split_arguments(overrides, None)[0]
    except Exception:  # an unreadable multirun.yaml: the grid is unknown
        return None


NAME_CHARS = 120
"""A job folder's name keeps at most this many characters of its overrides."""


def job_folders(grid: list[list[str]]) -> list[str]:
    """Each job's folder name in a sweep of ``grid`` (``sweep_grid``): its number, then the
    overrides whose value varies over the grid (``3_model.depth=2,optim.lr=0.05``), so that
    TensorBoard names its runs by what varied. The name depends on the grid alone: a rerun of
    the same grid maps job n to the same folder. ``/`` in a value becomes ``_``."""
    values: dict[str, set[str]] = {}
    for overrides in grid:
        for item in overrides:
            key, _, value = item.partition("=")
            values.setdefault(key, set()).add(value)
    varied = {key for key, seen in values.items() if len(seen) > 1 or len(grid) == 1}
    names = []
    for num, overrides in enumerate(grid):
        label = ",".join(o for o in overrides if o.partition("=")[0] in varied)
        label = label.replace("/", "_")[:NAME_CHARS]
        names.append(f"{num}_{label}" if label else str(num))
    return names


def swept_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Override keys in order of first appearance."""
    keys: list[str] = []
    for row in rows:
        for k in row:
            if k not in keys and k not in NOT_KEYS and "/" not in k:
                keys.append(k)
    return keys


def numbers(rows: list[dict[str, Any]], key: str) -> set[float]:
    """The numeric values (not booleans) of ``key`` over the rows."""
    return {
        row[key]
        for row in rows
        if isinstance(row.get(key), (int, float)) and not isinstance(row[key], bool)
    }


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    def write(f: Any) -> None:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})

    artifacts.atomic_write(path, write)


def table(rows: list[dict[str, Any]], keys: list[str], metric: str | None, limit: int = 40) -> str:
    """A compact text table: run, swept keys, status, steps, loss and the chosen metric."""
    columns = [STATUS_COLUMNS[0], *keys, "status", "steps", *TABLE_METRICS]
    if metric and metric not in columns:
        columns.append(metric)
    cells = [[_short(row.get(c)) for c in columns] for row in rows[:limit]]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    if len(rows) > limit:
        lines.append(f"… {len(rows) - limit} more rows in summary.csv")
    statuses = [str(row["status"]) for row in rows]
    counts = [f"{s} {statuses.count(s)}" for s in sorted(set(statuses)) if s != "unstable"]
    if "unstable" in statuses or any(k in row for row in rows for k in STABILITY):
        counts.append(f"unstable {sum(map(crossed_bound, rows))}")
    lines.append(f"{len(rows)} runs: {', '.join(counts)}")
    return "\n".join(lines)


def crossed_bound(row: dict[str, Any]) -> bool:
    """Whether the run crossed the stability bound lr × sharpness > 2 (or its optimizer's):
    stopped there (status ``unstable``) or went on with an ``unstable_at_step`` ≥ 0."""
    step = row.get("unstable_at_step")
    return row.get("status") == "unstable" or (_finite(step) and step >= 0)


def plot_metric(
    folder: Path, rows: list[dict[str, Any]], metric: str, by: str, absolute: bool
) -> Path | None:
    """Scatter of the final ``metric`` (|metric| with ``absolute``) against ``by``, one colour per
    status; log axes where the values are positive and span more than two decades. None, and no
    file, when no run has a finite ``metric`` and a numeric ``by``."""
    points: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if isinstance(r.get(by), (int, float)) and _finite(r.get(metric)):
            y = abs(r[metric]) if absolute else r[metric]
            points.setdefault(str(r["status"]), []).append((float(r[by]), y))
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for status in sorted(points):
        ax.scatter(*zip(*points[status], strict=True), label=status, s=18, alpha=0.7)
    for axis, values in (
        ("x", [float(v) for v in numbers(rows, by)]),
        ("y", [p[1] for status in points.values() for p in status]),
    ):
        sizes = [abs(v) for v in values if v != 0 and math.isfinite(v)]
        if not sizes or max(sizes) / min(sizes) <= 100:
            continue
        if min(values) > 0:
            getattr(ax, f"set_{axis}scale")("log")
        else:  # signed (or zero) values: a log axis would drop them
            getattr(ax, f"set_{axis}scale")("symlog", linthresh=min(sizes))
    ax.set_xlabel(by)
    ax.set_ylabel(f"|{metric}|" if absolute else metric)
    ax.set_title(f"final {metric} vs {by}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / f"summary_{re.sub(r'[^A-Za-z0-9_.-]+', '_', metric)}_vs_{by}.png"
    artifacts.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), mode="wb")
    plt.close(fig)
    return path


def _batch_row(base: dict[str, Any], row: dict[str, str]) -> dict[str, Any]:
    out = {**base, "run": f"{base['run']}#{row['run']}"}
    out.update({BATCH_COLUMNS[k]: _parse(row[k]) for k in BATCH_COLUMNS})
    out["status"], out["steps"] = row["status"], int(row["steps"])
    skip = {"run", "status", "steps", *BATCH_COLUMNS}
    out.update({k: float(v) if v else math.nan for k, v in row.items() if k not in skip})
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _listing(names: list[str], limit: int = 30) -> str:
    """``names`` joined by commas (at most ``limit`` of them), or ``none``."""
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"


def _is_metric(key: str, value: Any) -> bool:
    return ("/" in key or key in ("flow_time", "wall_time_s", *STABILITY)) and (
        value is None or isinstance(value, (int, float))
    )


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _parse(value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value if isinstance(value, (int, float, str)) or value is None else str(value)


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m implicit_reg.summarize", description=__doc__.split("\n")[0]
    )
    parser.add_argument("folder", type=Path, help="a sweep (or run) folder")
    parser.add_argument(
        "--metric",
        help="metric to plot (default: the first of " + ", ".join(PLOT_METRICS) + " the runs have)",
    )
    parser.add_argument(
        "--by", help="swept key on the x axis (default: the first numeric swept key)"
    )
    parser.add_argument("--abs", action="store_true", help="plot |metric|")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    try:
        _, text = summarize(args.folder, args.metric, args.by, args.abs, not args.no_plot)
    except SummaryError as error:
        sys.exit(f"summarize: {error}")
    except OSError as error:  # a read-only or full folder: summary.csv is whole or absent
        sys.exit(f"summarize: {one_line(error)}")
    print(text)


if __name__ == "__main__":
    console_never_fails()
    main()
