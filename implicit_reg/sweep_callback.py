"""The Hydra callbacks of a multirun (``configs/hydra/default.yaml``): after each job, how many
jobs of the sweep are done and the time so far (``SweepProgress``); at the start, the sweep
folder's lock; at the end, a summary, then exit status 1, in one line, if a run of the sweep
folder did not finish (``failed``, ``crashed``, ``corrupt``, ``incomplete``, ``missing``) or a
job kept a finished run made with other overrides (``implicit_reg/sweep_job.py``)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from implicit_reg.os_errors import one_line
from implicit_reg.record import artifacts, run_folder
from implicit_reg.record.progress import clock_time
from implicit_reg.summarize import SummaryError, job_folders, summarize, sweep_grid
from implicit_reg.sweep_job import recorded_overrides

log = logging.getLogger(__name__)

NOT_DONE = ("failed", "crashed", "corrupt", "incomplete", "missing")


class SweepProgress(Callback):
    """After each job of a multirun: ``sweep: 3 of 12 jobs done, 0:01:05 so far``. Counted on
    disk (job folders holding a ``metrics.json``), so it holds for any launcher, with jobs in
    other processes, and on a rerun that keeps the finished runs; the time is since this
    multirun started (its ``multirun.yaml``)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        log.info("%s", sweep_progress(Path(config.hydra.sweep.dir)))


def sweep_progress(folder: Path, now: float | None = None) -> str:
    """``sweep: <done> of <total> jobs done, <time> so far`` for the sweep in ``folder``
    (``of ?`` where the grid is unknown: a sweeper other than Hydra's basic one)."""
    done = sum(1 for _ in folder.glob("*/metrics.json"))
    grid = sweep_grid(folder)
    started = folder / "multirun.yaml"
    text = f"sweep: {done} of {len(grid) if grid is not None else '?'} jobs done"
    if started.exists():
        seconds = (time.time() if now is None else now) - started.stat().st_mtime
        text += f", {clock_time(seconds)} so far"
    return text


class SummarizeSweep(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before Hydra writes ``multirun.yaml``: refuse a sweep folder that another running
        sweep holds, or that cannot be written, in one line; hold its lock until the end."""
        folder = Path(config.hydra.sweep.dir)
        try:
            run_folder.lock(folder)
            artifacts.check_writable(folder)
        except Exception as error:  # Hydra would warn and write the folder anyway
            sys.exit(f"sweep {folder}: {one_line(error)}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns an exception raised here into a warning: SystemExit sets the exit status.
        folder = Path(config.hydra.sweep.dir)
        try:
            rows, text = summarize(folder)
        except SummaryError as error:
            sys.exit(f"sweep {folder}: no summary: {error}")
        except Exception:  # the runs are done and saved; a summary can be made again later
            log.exception("no summary")
            sys.exit(f"sweep {folder}: no summary: run `python -m implicit_reg.summarize {folder}`")
        run_folder.unlock(folder)
        log.info("sweep summary\n%s", text)
        problem = unfinished(folder, rows)
        if problem:
            sys.exit(problem)


def unfinished(folder: Path, rows: list[dict[str, Any]]) -> str | None:
    """One line naming the runs of the sweep in ``folder`` that did not finish and the jobs that
    kept a run of other overrides, or None if there are none."""
    statuses = [str(row["status"]) for row in rows if row["status"] in NOT_DONE]
    parts = []
    if statuses:
        counts = ", ".join(f"{s} {statuses.count(s)}" for s in NOT_DONE if s in statuses)
        parts.append(f"{len(statuses)} of {len(rows)} runs did not finish ({counts})")
    stale = kept_other_runs(folder)
    if stale:
        jobs = f"job{'s' * (len(stale) > 1)} {', '.join(stale)}"
        parts.append(
            f"{jobs} kept a finished run made with other overrides (see its train.log); "
            "use a new hydra.sweep.dir for a new grid"
        )
    return f"sweep {folder}: {'; '.join(parts)}" if parts else None


def kept_other_runs(folder: Path) -> list[str]:
    """The jobs of the latest multirun in ``folder`` whose folder holds a run recorded with
    other overrides than the job's (a finished run a rerun kept)."""
    grid = sweep_grid(folder) or []
    return [
        str(num)
        for num, (overrides, name) in enumerate(zip(grid, job_folders(grid), strict=True))
        if (folder / name / ".hydra" / "overrides.yaml").exists()
        and set(recorded_overrides(folder / name)) != set(overrides)
    ]
