"""A Hydra callback that validates a run's config (its values, then ``implicit_reg.config.limits``)
before Hydra creates its folder or writes ``.hydra/`` there: a refused config leaves no folder
behind. ``run`` validates again (for the compose API); ``implicit_reg.record.run_folder`` checks the
folder itself.

Hydra turns an exception in a callback into a warning, so a refusal exits here (status 1, the
``ConfigError`` message on stderr)."""

from __future__ import annotations

import copy
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from implicit_reg.config import limits
from implicit_reg.config.validate import validate
from implicit_reg.os_errors import one_line


class RefuseBadConfig(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        job = copy.deepcopy(config)
        with read_write(job), open_dict(job):
            del job["hydra"]
        try:
            validate(job)
            limits.check(job)
        except Exception as error:  # any: Hydra would warn and write the folder anyway
            sys.exit(one_line(error))
