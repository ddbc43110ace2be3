"""The Hydra callback that summarizes a multirun when it ends (``configs/hydra/default.yaml``),
then exits with status 1, in one line, if a run of the sweep folder did not finish (``failed``,
``crashed``, ``corrupt``, ``missing``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from implicit_reg.summarize import SummaryError, summarize

log = logging.getLogger(__name__)

NOT_DONE = ("failed", "crashed", "corrupt", "missing")


class SummarizeSweep(Callback):
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
        log.info("sweep summary\n%s", text)
        problem = unfinished(folder, rows)
        if problem:
            sys.exit(problem)


def unfinished(folder: Path, rows: list[dict[str, Any]]) -> str | None:
    """One line naming the runs of the sweep in ``folder`` that did not finish, or None if
    there are none."""
    statuses = [str(row["status"]) for row in rows if row["status"] in NOT_DONE]
    if not statuses:
        return None
    counts = ", ".join(f"{s} {statuses.count(s)}" for s in NOT_DONE if s in statuses)
    return f"sweep {folder}: {len(statuses)} of {len(rows)} runs did not finish ({counts})"
