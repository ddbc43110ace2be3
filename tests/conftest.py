"""Shared fixtures: configs composed through Hydra's compose API, runs into a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from implicit_reg.run import run

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@pytest.fixture
def make_cfg() -> Callable[..., DictConfig]:
    """``make_cfg("model.depth=2", ...)``: the train config with those overrides."""

    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
            return compose("train", overrides=["train.progress=false", *overrides])

    return make


@pytest.fixture
def train_run(
    make_cfg: Callable[..., DictConfig], tmp_path: Path
) -> Callable[..., tuple[dict[str, Any], Path]]:
    """``train_run(*overrides)``: run in-process into a fresh folder laid out as Hydra lays it
    out (``.hydra/config.yaml`` beside the outputs); returns (metrics, folder)."""
    count = 0

    def go(*overrides: str) -> tuple[dict[str, Any], Path]:
        nonlocal count
        count += 1
        out = tmp_path / f"run{count}"
        cfg = make_cfg(*overrides)
        (out / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, out / ".hydra" / "config.yaml", resolve=True)
        return run(cfg, out), out

    return go
