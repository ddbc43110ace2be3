"""When a run folder holds a finished run: its completion record, ``metrics.json``, is written
last, after every result it vouches for (README § "Robustness"), and lists them under
``results``. A ``metrics.json`` with a finishing status whose results are not all whole (a
``final.pt`` lost to a full disk or a kill, or truncated later) is *incomplete*: the folder
reads as unfinished, so the run can be run again or resumed there."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

METRICS = "metrics.json"
RESULTS = "results"
"""The ``metrics.json`` key listing the result files written before it."""
RESULT_FILES = ("final.pt", "runs.csv", "singular_values.npz")
"""The files a run may write as its results (``record/outputs.py``, ``record/history.py``)."""
UNFINISHED = ("interrupted", "failed")
"""``metrics.json`` statuses of a run that may be started again (resumed, or retried)."""


def present_results(folder: Path) -> list[str]:
    """The result files in ``folder`` now: what a ``metrics.json`` written now vouches for."""
    return [name for name in RESULT_FILES if (folder / name).is_file()]


def whole(path: Path) -> bool:
    """Whether a result file is present and whole. ``.pt`` (``torch.save``) and ``.npz`` are zip
    archives whose index sits at their end: an empty, truncated or garbage file has none. Reads
    the index only, not the tensors."""
    if not path.is_file():
        return False
    if path.suffix not in (".pt", ".npz"):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False


def missing_results(folder: Path, metrics: dict[str, Any]) -> list[str]:
    """The results that ``metrics.json`` of a finished run vouches for and that are missing or
    not whole. A record written before ``results`` was listed vouches for ``final.pt``, which
    every finished run but a failed nuclear-norm solve writes."""
    names = metrics.get(RESULTS)
    if names is None:
        names = [] if metrics.get("status") == "solver_failed" else ["final.pt"]
    if not isinstance(names, list):
        return [str(names)]
    return [str(n) for n in names if not (isinstance(n, str) and whole(folder / n))]


def finished(folder: Path, metrics: dict[str, Any] | None) -> bool:
    """Whether ``metrics`` (the folder's ``metrics.json``, parsed) records a finished run whose
    results are all whole."""
    if not isinstance(metrics, dict) or metrics.get("status", "failed") in UNFINISHED:
        return False
    return not missing_results(folder, metrics)
