"""Shared helpers: configs composed with Hydra's compose API, and the 2×2 problem of eq. (9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from implicit_reg.problems import MatrixCompletion
from implicit_reg.problems.matrix_completion import parse_entries

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def make_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        return compose("train", overrides=["train.progress=false", "device=cpu", *overrides])


@pytest.fixture
def completion_2x2() -> MatrixCompletion:
    target, mask = parse_entries([[None, 1.0], [1.0, 0.0]])
    return MatrixCompletion(target, mask, infimal_rank=1)
