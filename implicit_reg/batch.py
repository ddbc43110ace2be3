"""The runs of one training process: the grid seeds × init scales × learning rates of the
``batch`` config node (the last varies fastest), held as tensors (no object per run).

Run k of ``batch.seeds=K`` has init seed ``seed + k``, so it starts exactly where the single run
with ``seed=seed+k`` starts. The default, ``batch.seeds=1`` with both lists null, is one run.

``batch.end_to_end_scales`` lists the scale ε of the product W(0) instead of the per-factor
``init.scale``: each run gets ``init.scale = ε^(1/L)``, so balanced init starts at W(0) = ε·G
(G standard Gaussian) and identity init at ε·I at every depth L, as in Arora et al. (2019),
whose init scale α has ‖W(0)‖_F ≈ α√n, i.e. ε = α/√n for an n×n Gaussian start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import Tensor


@dataclass
class Grid:
    seeds: Tensor
    """Init seed of each run, int64 ``(runs,)``."""
    init_scales: Tensor
    """``init.scale`` of each run, float64 ``(runs,)``."""
    lrs: Tensor
    """``optim.lr`` of each run, float64 ``(runs,)``."""

    def __len__(self) -> int:
        return len(self.seeds)


def values(cfg: DictConfig) -> tuple[int, list[float], list[float]]:
    """(number of seeds, init scales, lrs) the config asks for."""
    batch = cfg.get("batch")
    seeds = int(batch.seeds) if batch is not None else 1
    if batch is not None and batch.get("end_to_end_scales") is not None:
        scales = [float(e) ** (1.0 / cfg.model.depth) for e in batch.end_to_end_scales]
    else:
        scales = _listed(batch, "init_scales", cfg.init.scale)
    lrs = _listed(batch, "lrs", cfg.optim.lr)
    return seeds, scales, lrs


def size(cfg: DictConfig) -> int:
    """How many runs the config asks for."""
    seeds, scales, lrs = values(cfg)
    return seeds * len(scales) * len(lrs)


def grid(cfg: DictConfig) -> Grid:
    """Every run, seeds × init scales × lrs, on the CPU."""
    seeds, scales, lrs = values(cfg)
    per_seed = len(scales) * len(lrs)
    seed = cfg.seed + torch.arange(seeds, dtype=torch.int64).repeat_interleave(per_seed)
    scale = torch.tensor(scales, dtype=torch.float64).repeat_interleave(len(lrs)).repeat(seeds)
    lr = torch.tensor(lrs, dtype=torch.float64).repeat(seeds * len(scales))
    return Grid(seed, scale, lr)


def _listed(batch: DictConfig | None, key: str, default: float) -> list[float]:
    if batch is None or batch.get(key) is None:
        return [float(default)]
    return [float(v) for v in batch[key]]
