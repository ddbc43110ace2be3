"""The ``batch`` config node: which runs a batched run holds, validated before any work starts.

The grid is seeds × init scales × learning rates, in that order (the last varies fastest):
run k of ``batch.seeds=K`` has init seed ``seed + k``, so it starts exactly where the unbatched
run with ``seed=seed+k`` starts.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from implicit_reg.config import ConfigError, check_number


@dataclass(frozen=True)
class RunSpec:
    seed: int
    init_scale: float
    lr: float


def _positive_list(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if value is None:
        return
    items = list(value) if isinstance(value, (list, ListConfig)) else None
    ok = bool(items) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in items
    )
    if not ok:
        shown = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
        raise ConfigError(key, shown, "null or a non-empty list of finite numbers > 0")


def validate_batch(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` on the first bad ``batch.*`` value (no-op without a batch node)."""
    if cfg.get("batch") is None:
        return
    check_number(cfg, "batch.seeds", minimum=1, strict=False, integer=True)
    _positive_list(cfg, "batch.init_scales")
    _positive_list(cfg, "batch.lrs")
    check_number(cfg, "batch.tracked_runs", minimum=0, strict=False, integer=True)
    check_number(cfg, "batch.check_every", minimum=1, strict=False, integer=True)
    if cfg.batch.get("threads") is not None:
        check_number(cfg, "batch.threads", minimum=1, strict=False, integer=True)
    if not isinstance(cfg.batch.fused, bool):
        raise ConfigError("batch.fused", cfg.batch.fused, "true | false")
    if cfg.optim.name != "gd" and len(grid(cfg)) > 1:
        raise ConfigError("optim.name", cfg.optim.name, "gd for a batch of several runs")
    if cfg.batch.init_scales is not None and cfg.init.kind == "zero":
        raise ConfigError(
            "batch.init_scales",
            OmegaConf.to_container(cfg.batch.init_scales),
            "null when init.kind=zero (a zero init has no scale)",
        )


def grid(cfg: DictConfig) -> list[RunSpec]:
    """Every run of the batch, seeds × init scales × lrs."""
    batch = cfg.get("batch")
    seeds = range(cfg.seed, cfg.seed + (batch.seeds if batch is not None else 1))
    scales = _values(batch, "init_scales", cfg.init.scale)
    lrs = _values(batch, "lrs", cfg.optim.lr)
    return [
        RunSpec(int(s), float(c), float(r)) for s, c, r in itertools.product(seeds, scales, lrs)
    ]


def grid_size(cfg: DictConfig) -> int:
    """How many runs the config asks for; validates the ``batch`` node first."""
    validate_batch(cfg)
    return len(grid(cfg))


def _values(batch: DictConfig | None, key: str, default: float) -> list[float]:
    if batch is None or batch.get(key) is None:
        return [default]
    return list(batch[key])
