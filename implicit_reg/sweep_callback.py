"""The Hydra callback that summarizes a multirun when it ends (``configs/hydra/default.yaml``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from implicit_reg.summarize import summarize

log = logging.getLogger(__name__)


class SummarizeSweep(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        try:
            _, text = summarize(folder)
        except Exception:  # the runs are done and saved; a summary can be made again later
            log.exception("no summary: run `python -m implicit_reg.summarize %s`", folder)
            return
        log.info("sweep summary\n%s", text)
