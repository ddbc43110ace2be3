"""Limits a config must respect to run at all, checked before any folder exists: seeds that fit
int64, an initial product ``init.scale^model.depth`` that the dtype can hold, and the memory the
requested runs and the problem's data need (README § "Robustness").

The memory estimate was calibrated on the CPU by measuring the peak resident memory of
``train.py`` (``train.max_steps=20``): the default 2×2 depth-3 problem took 418 MiB for one run,
712 MiB for 10⁵ runs and 2378 MiB for 10⁶ (1.85 kB a run of 12 factor entries), and one run of
width 1000 and 3000 took 580 and 1315 MiB (96 bytes a factor entry: about twelve float64 copies
of the factors between the init, the stepper, its gradients, the host checks' snapshot, the
checkpoint and ``final.pt``). The update rules' state comes on top (``STATE_BYTES_PER_ENTRY``,
from a later measurement of 10⁶ runs × 20 steps, where plain GD took 2600 MiB: momentum added
86 MiB, Adam 488 MiB, and GroupRMSprop, whose state is one number a run, nothing measurable).
Matrix sensing adds its K measurement matrices: drawn in float64 on the host, then held in the
run's dtype on the device (``problems.matrix_sensing``); least squares its n×d X, with the SVD
of the minimum-norm solution (``data_bytes``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from implicit_reg import batch
from implicit_reg.config.device import DTYPES, resolve_device
from implicit_reg.config.validate import ConfigError, problem_shape
from implicit_reg.factorization import factor_shapes

SEED_MAX = 2**63 - 1
"""Seeds are int64 (the init's counter-based stream is keyed by them)."""
BYTES_PER_ENTRY = 96
"""Memory per factor entry of every run (measured; see the module docstring)."""
STATE_BYTES_PER_ENTRY = {"momentum": 16, "adam": 48}
"""An update rule's state per factor entry (``dynamics/optimizers.py``): its buffers (momentum: one,
Adam: two) and their copy in the host checks' snapshot; Adam's step adds two temporaries."""
BYTES_PER_RUN = 768
"""Memory per run besides its factors: steps, status, losses, quantile and ``runs.csv`` buffers."""
BASE_BYTES = 450 << 20
"""The process before any run: Python, torch, TensorBoard."""


def check(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` on the first limit a validated ``cfg`` breaks."""
    _seeds(cfg)
    _product_scale(cfg)
    rows, cols = problem_shape(cfg.problem)
    _memory(cfg, factor_shapes(rows, cols, cfg.model.depth, cfg.model.width or min(rows, cols)))


def _seeds(cfg: DictConfig) -> None:
    runs = batch.values(cfg)[0]
    if cfg.seed + runs - 1 > SEED_MAX:
        raise ConfigError(
            "seed", cfg.seed, f"an integer in [0, 2**63 − {runs}] with batch.seeds={runs}"
        )
    if cfg.problem.seed > SEED_MAX:
        raise ConfigError("problem.seed", cfg.problem.seed, "an integer in [0, 2**63 − 1]")


def _product_scale(cfg: DictConfig) -> None:
    """``init.scale^model.depth`` sets the size of W(0): below the dtype's smallest normal number
    it is 0 (every gradient vanishes), and above the square root of its largest the loss is
    infinite."""
    if cfg.init.kind == "zero":
        return
    info = torch.finfo(DTYPES[cfg.dtype])
    low, high = math.log10(info.tiny), math.log10(info.max) / 2
    key = "init.scale"
    for listed in ("batch.init_scales", "batch.end_to_end_scales"):
        if cfg.get("batch") is not None and OmegaConf.select(cfg, listed) is not None:
            key = listed
    depth = cfg.model.depth
    # the value as written: ε itself where the list gives the product's scale ε = scale^depth
    written = OmegaConf.select(cfg, key) if key == "batch.end_to_end_scales" else None
    for i, scale in enumerate(batch.values(cfg)[1]):
        exponent = depth * math.log10(scale)
        if not low <= exponent <= high:
            what = "underflows to 0" if exponent < low else "makes the loss overflow"
            raise ConfigError(
                key,
                scale if written is None else written[i],
                f"init.scale^model.depth in [1e{low:.0f}, 1e{high:.0f}] in {cfg.dtype} "
                f"(here {scale:g}^{depth} = 1e{exponent:.0f}, which {what})",
            )


def estimate_bytes(runs: int, shapes: list[tuple[int, int]], optim: str = "gd") -> int:
    """Memory the runs need while training with ``optim``, the process itself not included."""
    entries = sum(r * c for r, c in shapes)
    per_entry = BYTES_PER_ENTRY + STATE_BYTES_PER_ENTRY.get(optim, 0)
    return runs * (entries * per_entry + BYTES_PER_RUN)


def available_host_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def data_bytes(cfg: DictConfig) -> tuple[int, int]:
    """Bytes of a problem's data beyond the runs: (host, device).

    - Matrix sensing: its Aₖ, K·m·n numbers drawn in float64 on the host, then copied to the
      device in ``dtype`` (no copy for float64 on the CPU).
    - Least squares: X (n×d) and y (n) drawn in float64 on the host, where the minimum-norm
      solution's SVD (``theory.min_norm_solution``, ``theory.least_squares_flow``) holds a copy
      of X, its U (n×min(n, d)) and the pseudo-inverse (d×n), each at most n·d numbers; on the
      device X and y in ``dtype`` and each run's residual Xβ − y and its gradient's product.
    - Matrix completion: the target and mask, m×n numbers like one run's end-to-end matrix,
      which the runs' estimate covers."""
    p = cfg.problem
    size = DTYPES[cfg.dtype].itemsize
    if p.kind == "matrix_sensing":
        numbers = int(p.measurements) * int(p.rows) * int(p.cols)
        return 8 * numbers, size * numbers
    if p.kind == "least_squares":
        n, d = int(p.n), int(p.d)
        residuals = 2 * batch.size(cfg) * n
        return 8 * (4 * n * d + n), size * (n * d + n + residuals)
    return 0, 0


def _data_key(cfg: DictConfig) -> tuple[str, object, str]:
    """The key that sets the size of the problem's data, its value, and what the data are."""
    p = cfg.problem
    if p.kind == "least_squares":
        return "problem.n", p.n, f"X of {p.n:,}×{p.d:,} and its SVD"
    return (
        "problem.measurements",
        p.measurements,
        f"{p.measurements:,} measurement matrices of {p.rows}×{p.cols}",
    )


def _memory(cfg: DictConfig, shapes: list[tuple[int, int]]) -> None:
    runs, entries = batch.size(cfg), sum(r * c for r, c in shapes)
    need = estimate_bytes(runs, shapes, cfg.optim.name)
    device = resolve_device(cfg.device, runs * entries)
    host_data, device_data = data_bytes(cfg)
    if device.type != "cuda" and cfg.dtype != "float64":
        host_data += device_data  # the copy in dtype stays on the host
    # (where, available, the process itself, the problem's data)
    limits = [("host", available_host_bytes(), BASE_BYTES, host_data)]
    if device.type == "cuda":
        limits.append(("GPU", torch.cuda.mem_get_info()[0], 0, device_data))
    for where, have, base, data in limits:
        if have is None:
            continue
        if data and base + data > have:
            key, value, what = _data_key(cfg)
            raise ConfigError(
                key,
                value,
                f"what fits in {where} memory: {what} need about {data / 2**30:.1f} GiB, "
                f"{have / 2**30:.1f} GiB is available",
            )
        if base + data + need > have:
            key = "batch.seeds" if runs > 1 else "model.width"
            value = batch.values(cfg)[0] if runs > 1 else cfg.model.width
            raise ConfigError(
                key,
                value,
                f"what fits in {where} memory: {runs:,} run(s) of {entries:,} factor entries "
                f"need about {(base + data + need) / 2**30:.1f} GiB, "
                f"{have / 2**30:.1f} GiB is available",
            )
