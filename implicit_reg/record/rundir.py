"""Run and sweep folders that no two runs share, even when started in the same microsecond.

A Hydra callback (``configs/hydra/default.yaml``) creates the folder with an exclusive ``mkdir``
before Hydra uses it, and takes ``<name>-1``, ``<name>-2``, … if another run got there first.
Only a name built with ``${now:…}`` is claimed this way; a fixed name
(``hydra.run.dir=<folder>``) is used as it is, which is how a run resumes in its own folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write


def claim(path: str) -> str:
    """Create ``path`` with an exclusive ``mkdir`` (atomic: of two callers exactly one succeeds)
    and return it; if it exists, create and return the first free ``path-1``, ``path-2``, …"""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = base, 0
    while True:
        try:
            candidate.mkdir()
            return str(candidate)
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def _claim_dir(config: DictConfig, mode: str) -> None:
    """Replace ``hydra.<mode>.dir`` by a claimed folder if it is named with a timestamp."""
    node = config.hydra[mode]
    if "${now:" not in str(OmegaConf.to_container(node, resolve=False)["dir"]):
        return
    path = claim(str(node.dir))
    quoted = "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
    with read_write(config.hydra):
        node.dir = path
        # A sweep composes each job's config again from the overrides: pass the folder on.
        config.hydra.overrides.hydra.append(f"hydra.{mode}.dir={quoted}")


class ClaimOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _claim_dir(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _claim_dir(config, "sweep")
