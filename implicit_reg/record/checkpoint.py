"""Checkpoints: ``checkpoint.pt`` in the run folder holds what a run (or a batch of runs) needs to
go on exactly as if it had never stopped: the step, the stacked factors ``(runs, d_j, d_{j−1})``,
each run's steps and status, the last logged scalars and the wall time so far.

Gradient descent keeps no other state (no random numbers after the init), so the factors after
``step`` steps determine the rest of its trajectory; the other update rules' state (momentum
buffers, Adam's moments, step counts: ``dynamics/optimizers.py``) is saved beside them. A resumed
run ends with the same factors, bit for bit on the CPU, as one that was never stopped. Written
atomically (``artifacts.save_torch``), so a run killed while saving keeps its previous checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from implicit_reg.config.validate import ConfigError
from implicit_reg.record import artifacts

FILE = "checkpoint.pt"
SAME_RUN_KEYS = (
    "problem", "model", "init", "optim", "flow", "seed", "dtype",
    "batch.seeds", "batch.init_scales", "batch.end_to_end_scales", "batch.lrs", "batch.fused",
)  # fmt: skip
"""Config keys that fix the trajectory: a checkpoint only resumes a run that agrees on them
(``train.*`` may differ, e.g. a larger ``train.max_steps`` extends a finished run)."""


@dataclass
class Checkpoint:
    step: int
    """Gradient steps taken: the factors are those after this many steps."""
    factors: list[Tensor]
    """W_1, …, W_L of every run, ``(runs, d_j, d_{j−1})``."""
    steps: Tensor
    """Steps each run has taken (its stop step once stopped)."""
    status: Tensor
    """Each run's status code (``dynamics.gd.STATUSES``)."""
    last: dict[str, float]
    """The last logged scalars, what ``metrics.json`` reports if nothing is logged after."""
    wall_time_s: float
    config: dict[str, Any]
    """The ``SAME_RUN_KEYS`` of the run's config, flattened to dotted keys."""
    guard: dict[str, Any] | None = None
    """The stability guard's state (its power-iteration directions and records), if it runs."""
    optimizer: dict[str, Any] | None = None
    """The update rule's state (``UpdateRule.state``), for every optimizer but ``gd``."""
    history: int | None = None
    """How many ``singular_values.npz`` records precede ``step`` (None: no history kept), so
    that a resume notices a history that does not go with this checkpoint."""


def identity(cfg: DictConfig) -> dict[str, Any]:
    """The ``SAME_RUN_KEYS`` of ``cfg`` as ``{"optim.lr": 0.01, …}``."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}", child)
        else:
            flat[prefix] = value

    for key in SAME_RUN_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
        walk(key, value)
    return flat


def write(out_dir: Path, ckpt: Checkpoint) -> None:
    state = {
        "step": ckpt.step,
        "factors": [f.detach().cpu().clone() for f in ckpt.factors],
        "steps": ckpt.steps.cpu(),
        "status": ckpt.status.cpu(),
        "last": dict(ckpt.last),
        "wall_time_s": ckpt.wall_time_s,
        "config": ckpt.config,
        "guard": ckpt.guard,
        "optimizer": None if ckpt.optimizer is None else _cpu(ckpt.optimizer),
        "history": ckpt.history,
    }
    artifacts.save_torch(out_dir / FILE, state)


def _cpu(value: Any) -> Any:
    """The tensors in nested dicts and lists on the CPU (``UpdateRule.state`` holds copies
    already: no second one)."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cpu(v) for v in value]
    return value


def read(out_dir: Path) -> Checkpoint | None:
    path = out_dir / FILE
    if not path.exists():
        return None
    return Checkpoint(**torch.load(path, map_location="cpu", weights_only=True))


def check(ckpt: Checkpoint, cfg: DictConfig, path: Path) -> None:
    """Refuse (``ConfigError``, naming the first key that differs) to resume ``ckpt`` with a
    config that would not continue the run that wrote it."""
    current = identity(cfg)
    for key in sorted(set(current) | set(ckpt.config)):
        if current.get(key) != ckpt.config.get(key):
            raise ConfigError(
                key,
                current.get(key),
                f"{ckpt.config.get(key)!r}, as in the checkpoint of {path} (a run resumes with "
                "the config it started with; use a new folder for a new run)",
            )
    if ckpt.step > cfg.train.max_steps:
        raise ConfigError(
            "train.max_steps", cfg.train.max_steps, f"≥ {ckpt.step}, the step of {path}"
        )


def resume(out_dir: Path, cfg: DictConfig) -> Checkpoint | None:
    """The folder's checkpoint if there is one and ``check`` allows going on from it."""
    ckpt = read(out_dir)
    if ckpt is not None:
        check(ckpt, cfg, out_dir / FILE)
    return ckpt
