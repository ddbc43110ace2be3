"""One run from a composed config: build the problem and the factorization, optimize, log, and
write the run's outputs (the contract in README § "What each run writes")."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from implicit_reg import artifacts, scalars
from implicit_reg.config import validate
from implicit_reg.det_sign import DetSignMonitor
from implicit_reg.device import resolve_device, resolve_dtype
from implicit_reg.factorization import DeepFactorization, factor_shapes
from implicit_reg.init import sample_factors
from implicit_reg.logger import TensorBoardLogger
from implicit_reg.optim import flow_from_config, gradient_descent
from implicit_reg.problems import Problem, build_problem
from implicit_reg.progress import Progress
from implicit_reg.schedule import LogSchedule
from implicit_reg.stability import StabilityGuard

log = logging.getLogger(__name__)

SUMMARY_KEYS = (
    "loss/train",
    "norm/fro",
    "norm/nuclear",
    "norm/spectral",
    "rank/effective",
    "rank/infimal_distance",
)


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train one run into ``out_dir`` and return what ``metrics.json`` holds."""
    validate(cfg)
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    problem = build_problem(cfg.problem, device, dtype, cfg.train.max_tracked)
    rows, cols = problem.shape
    width = cfg.model.width or min(rows, cols)
    shapes = factor_shapes(rows, cols, cfg.model.depth, width)
    start = sample_factors(cfg.init.kind, cfg.init.scale, cfg.init.det, shapes, cfg.seed)
    model = DeepFactorization(start).to(device, dtype)
    W0 = model().detach() if cfg.model.depth == 1 else None  # depth 1: W follows its own flow

    tensorboard = TensorBoardLogger(out_dir)
    progress = Progress(cfg.train.max_steps, cfg.train.progress)

    det_sign = DetSignMonitor()
    guard = None
    if cfg.optim.name == "gd" and cfg.train.sharpness_iters > 0:
        guard = StabilityGuard(
            model, problem, cfg.optim.lr, cfg.train.sharpness_iters, cfg.train.on_unstable
        )

    def on_log(
        step: int, flow_time: float, W: Tensor, exact: dict[str, Tensor] | None = None
    ) -> str | None:
        values = scalars.compute(
            problem, W, flow_time=flow_time, W0=W0, max_tracked=cfg.train.max_tracked
        )
        values.update({k: v for k, v in (exact or {}).items() if k in values})
        floats = scalars.to_floats(values)
        stop = None
        if guard is not None:
            stability, stop = guard.check(step)
            floats.update(stability)
        if "det/sign" in floats:
            det_sign.update(step, flow_time, floats["det/sign"])
        tensorboard.log(step, floats)
        progress.update(step, floats)
        return stop

    started = time.perf_counter()
    try:
        if cfg.optim.name == "flow":
            outcome = flow_from_config(cfg, model, problem, on_log)
        else:
            max_steps = cfg.train.max_steps
            if cfg.train.max_time is not None:
                max_steps = min(max_steps, int(cfg.train.max_time / cfg.optim.lr))
            outcome = gradient_descent(
                model,
                problem,
                lr=cfg.optim.lr,
                max_steps=max_steps,
                loss_tol=cfg.train.loss_tol,
                schedule=LogSchedule(max_steps, cfg.train.log_every, cfg.train.log_per_decade),
                on_log=on_log,
            )
    finally:
        progress.close()
        tensorboard.close()

    result: dict[str, Any] = {
        **tensorboard.last,
        "status": outcome.status,
        "steps": outcome.steps,
        "flow_time": outcome.flow_time,
        "gradient_evaluations": outcome.gradient_evaluations,
        "wall_time_s": time.perf_counter() - started,
        "device": str(device),
        "seed": int(cfg.seed),
        **outcome.record,
        **det_sign.record(),
        **(guard.record() if guard is not None else {}),
    }
    artifacts.write_json(out_dir / "metrics.json", result)
    artifacts.save_torch(out_dir / "final.pt", final_state(model, problem))
    log.info("\n%s", summary(result, out_dir))
    return result


def final_state(model: DeepFactorization, problem: Problem) -> dict[str, Any]:
    """What ``final.pt`` holds: the factors [W_1, …, W_L], the end-to-end matrix and the data."""
    with torch.no_grad():
        factors = [f.detach().cpu() for f in model.factors]
        W = model().cpu()
    end_to_end = {"beta": W[:, 0]} if "X" in problem.data() else {"W": W}
    return {"factors": factors, **end_to_end, **problem.data()}


def summary(result: dict[str, Any], out_dir: Path) -> str:
    """The short table printed at the end of a run."""
    rows = [
        ("status", result["status"]),
        ("steps", f"{result['steps']:,}"),
        ("flow time", f"{result['flow_time']:.6g}"),
        *((key, f"{result[key]:.6g}") for key in SUMMARY_KEYS if key in result),
        *((k, f"{v:.6g}") for k, v in result.items() if k.startswith("entries/")),
        ("wall time", f"{result['wall_time_s']:.2f} s on {result['device']}"),
        ("output", str(out_dir)),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)
