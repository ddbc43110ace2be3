"""A run's hyperparameters and final metrics for TensorBoard's HParams tab, written into the
run's own event file (``SummaryWriter.add_hparams`` would open a new subfolder, so that
``tensorboard --logdir <sweep>`` would list every run twice)."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

KEYS = (
    "seed",
    "problem.name",
    "problem.seed",
    "problem.observed",
    "problem.measurements",
    "model.depth",
    "model.width",
    "init.kind",
    "init.scale",
    "init.det",
    "optim.name",
    "optim.lr",
    "train.max_steps",
    "train.loss_tol",
    "dtype",
)
_ABSENT = object()
METRIC_PREFIXES = ("loss/", "norm/", "rank/", "error/", "entries/", "dist/", "det/")


def of(cfg: DictConfig, status: str) -> dict[str, Any]:
    """The run's main config values (null as the string ``"None"``; a key its problem does not
    have is left out) and its final ``status``."""
    values: dict[str, Any] = {}
    for key in KEYS:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT:
            continue
        values[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return {**values, "status": status}


def record(writer: SummaryWriter, hparams: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write the HParams summaries; the metrics are the run's logged scalar tags, whose last
    values the HParams tab shows."""
    tags = {
        tag: value
        for tag, value in metrics.items()
        if tag.startswith(METRIC_PREFIXES) and isinstance(value, float) and math.isfinite(value)
    }
    for summary in hparams_summary(hparams, tags):
        writer.file_writer.add_summary(summary)
