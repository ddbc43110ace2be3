"""One job of a Hydra multirun: a job that fails leaves a ``metrics.json`` saying so, and the
sweep goes on (a single run still raises, so the command exits non-zero)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from implicit_reg import artifacts, hparams
from implicit_reg.config import ConfigError
from implicit_reg.run import run

log = logging.getLogger(__name__)


def run_job(cfg: DictConfig, out_dir: Path, *, multirun: bool) -> dict[str, Any]:
    """``run(cfg, out_dir)``; in a multirun, an exception is logged and recorded instead."""
    if not multirun:
        return run(cfg, out_dir)
    started = time.perf_counter()
    try:
        return run(cfg, out_dir)
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
