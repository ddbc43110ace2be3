"""The test harness: configs composed through Hydra's compose API (``compose_cfg``), runs in
this process into a temporary folder (``train_run``), ``python train.py`` in a subprocess
(``train_cli``) or in this process (``train_here``), and readers of a run folder.

Tests that start subprocesses and take more than a few seconds are marked ``slow``;
``make test`` runs them too, ``pytest -m "not slow"`` leaves them out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from implicit_reg import app
from implicit_reg.problems import MatrixCompletion
from implicit_reg.problems.matrix_completion import parse_entries
from implicit_reg.run import run

ROOT = Path(__file__).resolve().parents[1]
REPO = ROOT
CONFIGS = ROOT / "configs"
QUIET = ("train.progress=false", "device=cpu")

train_script = app  # the Hydra app that train.py runs (``main``, and the ``run_job`` it calls)


def config(*overrides: str) -> DictConfig:
    """The train config with those overrides, as composed (no defaults added)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        return compose("train", overrides=list(overrides))


def make_config(*overrides: str) -> DictConfig:
    """The train config with those overrides (no progress bar, on the CPU)."""
    return config(*QUIET, *overrides)


def train(*overrides: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    """``python train.py overrides…`` from the repository root, quiet, on the CPU."""
    flags = [o for o in overrides if o.startswith("-")]  # argparse wants -m before overrides
    rest = [o for o in overrides if not o.startswith("-")]
    cmd = [sys.executable, str(ROOT / "train.py"), *flags, *QUIET, *rest]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if wait:
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def train_here(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """``python train.py args…`` in this process (no interpreter start-up)."""
    monkeypatch.setattr(sys, "argv", ["train.py", *args])
    train_script.main()


def metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())


def factors(run_dir: Path) -> list[torch.Tensor]:
    return torch.load(run_dir / "final.pt", weights_only=True)["factors"]


def bitwise_equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b, strict=True)
    )


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """``compose_cfg(*overrides)``: the quiet CPU config."""
    return make_config


@pytest.fixture
def train_cli() -> Callable[..., Any]:
    """``train_cli(*overrides, wait=True)``: ``python train.py`` in a subprocess."""
    return train


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
