"""The Hydra callback that summarizes a multirun when it ends (``configs/hydra/default.yaml``),
then exits with status 1, in one line, if a run of the sweep folder did not finish (``failed``,
``crashed``, ``corrupt``, ``incomplete``, ``missing``) or a job kept a finished run made with
other overrides (``implicit_reg/sweep_job.py``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from implicit_reg.os_errors import one_line
from implicit_reg.record import artifacts, run_folder
from implicit_reg.summarize import SummaryError, summarize, sweep_grid
from implicit_reg.sweep_job import recorded_overrides

log = logging.getLogger(__name__)

NOT_DONE = ("failed", "crashed", "corrupt", "incomplete", "missing")


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
        for num, overrides in enumerate(grid)
        if (folder / str(num) / ".hydra" / "overrides.yaml").exists()
        and set(recorded_overrides(folder / str(num))) != set(overrides)
    ]
