"""Helpers of the robustness tests: compose a config, run train.py in a subprocess, read a run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import implicit_reg  # noqa: F401  (registers the config schema)

REPO = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location("train_script", REPO / "train.py")
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)
train_script.main.__wrapped__.__module__ = "__main__"  # Hydra: configs/ beside train.py


def config(*overrides: str) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "configs")):
        return compose("train", overrides=list(overrides))


def train(*overrides: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    """``python train.py overrides…`` from the repository root, quiet, on the CPU."""
    flags = [o for o in overrides if o.startswith("-")]  # argparse wants -m before overrides
    rest = [o for o in overrides if not o.startswith("-")]
    cmd = [sys.executable, str(REPO / "train.py"), *flags, "device=cpu", "train.progress=false"]
    cmd += rest
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if wait:
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
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
