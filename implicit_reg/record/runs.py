"""Finding and reading finished runs: a run folder holds ``.hydra/config.yaml`` and the files of
the output contract (README § "What each run writes"). ``final.pt`` is read with
``weights_only=True``: tensors, lists, dicts and numbers only, so a crafted file in a shared
folder cannot make its reader run code; a file that cannot be read so is ``UnreadableRun``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from implicit_reg import baselines
from implicit_reg.record import completion
from implicit_reg.record.events import read_scalars


class UnreadableRun(Exception):
    """A run's file that cannot be read (one line naming it); nothing of it was used."""


@dataclass
class Run:
    folder: Path

    @cached_property
    def cfg(self) -> DictConfig:
        path = self.folder / ".hydra" / "config.yaml"
        try:
            cfg = OmegaConf.load(path)
        except Exception as error:  # YAML's and OmegaConf's errors have no common base
            raise UnreadableRun(f"{path} cannot be read ({type(error).__name__})") from None
        if not isinstance(cfg, DictConfig):
            raise UnreadableRun(f"{path} is not a config")
        return cfg

    @cached_property
    def metrics(self) -> dict[str, Any]:
        path = self.folder / "metrics.json"
        if not path.exists():
            return {}
        try:
            metrics = json.loads(path.read_text())
        except ValueError as error:
            raise UnreadableRun(f"{path} cannot be read ({type(error).__name__})") from None
        if not isinstance(metrics, dict):
            raise UnreadableRun(f"{path} is not a JSON object")
        return metrics

    @cached_property
    def scalars(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return read_scalars(self.folder)

    @property
    def has_path(self) -> bool:
        """Whether the run followed a path (gradient descent, another optimizer, the flow), not
        a solved baseline (``optim=nuclear_norm``), which has an end point only."""
        return self.cfg.optim.name not in baselines.NAMES

    @cached_property
    def final(self) -> dict[str, Any]:
        path = self.folder / "final.pt"
        try:
            final = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a crafted pickle, a truncated or foreign file
            raise UnreadableRun(
                f"{path} cannot be read as tensors only ({type(error).__name__}): it was not "
                "written by a run, or is damaged; nothing in it was run"
            ) from None
        if not isinstance(final, dict):
            raise UnreadableRun(f"{path} holds no dict of tensors")
        return final

    def series(self, tag: str) -> np.ndarray:
        """The logged values of ``tag`` in step order."""
        return self.scalars[tag][1]


def not_a_folder(path: Path) -> str | None:
    """Why ``path`` cannot be read as a run or sweep folder (one line), or None if it can."""
    if path.is_dir():
        return None
    if path.exists():
        return f"{path} is a file, not a folder"
    return f"folder {path} does not exist"


def run_folders(root: Path) -> list[Path]:
    """Every folder under ``root`` (``root`` included) that holds a run, finished or not: Hydra
    wrote its ``.hydra/`` there before the run started (a stray ``metrics.json`` is no run), in
    natural order (job 2 before job 10)."""
    found = {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    return sorted(
        found, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]
    )


def find_runs(root: Path, skipped: list[str] | None = None) -> list[Run]:
    """The finished runs under ``root``: those with their config, a finished ``metrics.json``
    and a whole ``final.pt`` (``record/completion.py``). A folder with a ``final.pt`` that is
    left out for a file that cannot be read is named in ``skipped``, if given (one line each)."""
    runs = []
    for folder in run_folders(root):
        if not (folder / "final.pt").exists():
            continue
        run = Run(folder)
        try:
            run.cfg  # noqa: B018 (read now: an unreadable config leaves the run out)
            metrics = run.metrics
        except UnreadableRun as error:
            if skipped is not None:
                skipped.append(str(error))
            continue
        if not completion.whole(folder / "final.pt"):
            if skipped is not None:
                skipped.append(f"{folder / 'final.pt'} is empty, truncated or not a torch file")
            continue
        if metrics and not completion.finished(folder, metrics):
            continue
        runs.append(run)
    return runs
