"""Shared helpers: configs composed through Hydra's compose API, runs into a temporary folder,
and the 2×2 problem of seed eq. (9)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from implicit_reg.problems import MatrixCompletion
from implicit_reg.problems.matrix_completion import parse_entries
from implicit_reg.run import run

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def make_config(*overrides: str) -> DictConfig:
    """The train config with those overrides (no progress bar, on the CPU)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        return compose("train", overrides=["train.progress=false", "device=cpu", *overrides])


@pytest.fixture
def make_cfg() -> Callable[..., DictConfig]:
    return make_config


@pytest.fixture
def train_run(tmp_path: Path) -> Callable[..., tuple[dict[str, Any], Path]]:
    """``train_run(*overrides)``: run in-process into a fresh folder laid out as Hydra lays it
    out (``.hydra/config.yaml`` beside the outputs); returns (metrics, folder)."""
    count = 0

    def go(*overrides: str) -> tuple[dict[str, Any], Path]:
        nonlocal count
        count += 1
        out = tmp_path / f"run{count}"
        cfg = make_config(*overrides)
        (out / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, out / ".hydra" / "config.yaml", resolve=True)
        return run(cfg, out), out

    return go


@pytest.fixture
def completion_2x2() -> MatrixCompletion:
    target, mask = parse_entries([[None, 1.0], [1.0, 0.0]])
    return MatrixCompletion(target, mask, infimal_rank=1)
