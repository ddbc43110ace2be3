"""A Hydra callback that validates a run's config before Hydra creates its folder or writes
``.hydra/`` there: a refused config leaves no folder behind, and a refused resume never
overwrites the record of the run it names. ``run`` validates again (for the compose API).

Hydra turns an exception in a callback into a warning, so a refusal exits here (status 1, the
``ConfigError`` message on stderr)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from implicit_reg import checkpoint
from implicit_reg.config import ConfigError, validate


class RefuseBadConfig(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        job = copy.deepcopy(config)
        with read_write(job), open_dict(job):
            del job["hydra"]
        try:
            validate(job)
            run_dir = Path(str(config.hydra.run.dir))
            ckpt = checkpoint.read(run_dir)
            if ckpt is not None:
                checkpoint.check(ckpt, job, run_dir / checkpoint.FILE)
        except ConfigError as error:
            sys.exit(f"{type(error).__name__}: {error}")
