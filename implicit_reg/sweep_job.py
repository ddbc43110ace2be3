"""One job of a Hydra multirun: a job that fails leaves a ``metrics.json`` saying so, and the
sweep goes on (a single run still raises, so the command exits non-zero).

A job whose folder already holds a finished run (a sweep run again into its own folder, to
finish the jobs an interruption left) is kept as it is, byte for byte: it is not run again, and
Hydra does not rewrite its ``.hydra/`` record (``hydra.output_subdir`` resolves through
``record_subdir``, ``configs/hydra/default.yaml``). A job that ``run_folder`` refuses (its
folder holds an unfinished run of another config) writes nothing into that folder.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from implicit_reg.config.validate import ConfigError
from implicit_reg.record import artifacts, completion, hparams
from implicit_reg.record.run_folder import FolderRefused, in_use
from implicit_reg.run import run
from implicit_reg.summarize import job_folders, sweep_grid

log = logging.getLogger(__name__)


def finished_metrics(folder: Path) -> dict[str, Any] | None:
    """The ``metrics.json`` of the finished run ``folder`` holds, or None: no ``metrics.json``,
    one that cannot be read (summarize calls it ``corrupt``), a failed or interrupted run, or
    one whose results are not all whole (``record/completion.py``)."""
    try:
        metrics = json.loads((Path(folder) / completion.METRICS).read_text())
    except (OSError, ValueError):
        return None
    return metrics if completion.finished(Path(folder), metrics) else None


def record_subdir(output_dir: str, mode: Any) -> str | None:
    """``hydra.output_subdir`` of a job: ``.hydra``, or None (Hydra then writes no record) for a
    job of a multirun whose folder holds a finished run or is in use by another process (that
    job is then refused, ``run_job``). ``mode`` is ``hydra.mode``."""
    multirun = getattr(mode, "name", str(mode)).endswith("MULTIRUN")
    if not multirun:
        return ".hydra"
    folder = Path(output_dir)
    return None if finished_metrics(folder) is not None or in_use(folder) else ".hydra"


OmegaConf.register_new_resolver("record_subdir", record_subdir, replace=True)


def sweep_subdir(num: int) -> str:
    """``hydra.sweep.subdir`` of job ``num``: its number and the overrides that vary over the
    sweep's grid (``job_folders``), or its number alone where the grid is unknown (a sweeper
    other than Hydra's basic one)."""
    grid = sweep_grid(Path(HydraConfig.get().sweep.dir))
    if grid is None or not 0 <= int(num) < len(grid):
        return str(num)
    return job_folders(grid)[int(num)]


OmegaConf.register_new_resolver("sweep_subdir", sweep_subdir, replace=True)


def run_job(cfg: DictConfig, out_dir: Path, *, multirun: bool) -> dict[str, Any]:
    """``run(cfg, out_dir)``; in a multirun, a folder holding a finished run is kept (its
    metrics are returned), and an exception is logged and recorded instead of raised."""
    if not multirun:
        return run(cfg, out_dir)
    if finished_metrics(out_dir) is not None:
        return _kept(out_dir)
    started = time.perf_counter()
    try:
        return run(cfg, out_dir)
    except FolderRefused as error:  # another run's folder: leave every file of it as it is
        log.error("job refused: %s; the sweep goes on", error)
        return {"status": "refused", "error": str(error)}
    except Exception as error:
        if isinstance(error, ConfigError):
            log.error("job failed: %s; the sweep goes on", error)
        else:
            log.exception("job failed; the sweep goes on")
        result = {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "wall_time_s": time.perf_counter() - started,
            "seed": OmegaConf.select(cfg, "seed", default=None),
        }
        artifacts.write_json(out_dir / "metrics.json", result)
        with SummaryWriter(log_dir=str(out_dir)) as writer:
            hparams.record(writer, hparams.of(cfg, "failed"), {})
        return result


def _kept(out_dir: Path) -> dict[str, Any]:
    """Log that the finished run in ``out_dir`` is kept, naming the overrides in which this job
    differs from it; return its metrics."""
    metrics = finished_metrics(out_dir) or {}
    line = f"{out_dir} holds a finished run ({metrics.get('status')}): kept, not run again"
    asked = _job_overrides()
    recorded = recorded_overrides(out_dir)
    if asked is None or set(asked) == set(recorded):
        log.info(line)
    else:
        only_asked = ", ".join(o for o in asked if o not in recorded) or "nothing else"
        only_kept = ", ".join(o for o in recorded if o not in asked) or "nothing else"
        log.warning("%s; this job asks %s, the kept run has %s", line, only_asked, only_kept)
    return metrics


def _job_overrides() -> list[str] | None:
    """This job's overrides (None outside Hydra)."""
    if not HydraConfig.initialized():
        return None
    return [str(o) for o in HydraConfig.get().overrides.task]


def recorded_overrides(out_dir: Path) -> list[str]:
    """The overrides Hydra recorded for the run in ``out_dir``."""
    path = out_dir / ".hydra" / "overrides.yaml"
    try:
        return [str(o) for o in yaml.safe_load(path.read_text()) or []]
    except (OSError, yaml.YAMLError):
        return []
