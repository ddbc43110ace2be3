"""Finding and reading finished runs: a run folder holds ``.hydra/config.yaml`` and the files of
the output contract (README § "What each run writes")."""

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
from implicit_reg.record.events import read_scalars


@dataclass
class Run:
    folder: Path

    @cached_property
    def cfg(self) -> DictConfig:
        return OmegaConf.load(self.folder / ".hydra" / "config.yaml")

    @cached_property
    def metrics(self) -> dict[str, Any]:
        path = self.folder / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}

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
        return torch.load(self.folder / "final.pt")

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


def find_runs(root: Path) -> list[Run]:
    """The finished runs under ``root``: those with their config and ``final.pt``."""
    return [
        Run(folder)
        for folder in run_folders(root)
        if (folder / ".hydra" / "config.yaml").exists() and (folder / "final.pt").exists()
    ]
