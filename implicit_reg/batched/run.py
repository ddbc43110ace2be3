"""A batched run from a composed config: every run of the ``batch`` grid trained as one stacked
tensor, written as ``runs.csv`` (one row per run), ``metrics.json`` (quantiles over the runs and
status counts), ``final.pt`` (the stacked factors) and TensorBoard (README § "Sweeps")."""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from implicit_reg import artifacts
from implicit_reg.batched.autograd_stepper import AutogradStepper
from implicit_reg.batched.batch_logger import BatchLogger, per_run_scalars
from implicit_reg.batched.fused import FusedStepper
from implicit_reg.batched.gd import STATUSES, BatchState, batched_gradient_descent
from implicit_reg.batched.grid import RunSpec, grid, validate_batch
from implicit_reg.config import validate
from implicit_reg.device import resolve_device, resolve_dtype
from implicit_reg.factorization import factor_shapes
from implicit_reg.init import sample_factors
from implicit_reg.problems import build_problem
from implicit_reg.progress import Progress
from implicit_reg.schedule import LogSchedule

log = logging.getLogger(__name__)

RUN_COLUMNS = ("run", "seed", "init_scale", "lr", "status", "steps", "flow_time")


def run_batched(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train the batch into ``out_dir`` and return what ``metrics.json`` holds."""
    validate(cfg)
    validate_batch(cfg)
    specs = grid(cfg)
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    problem = build_problem(cfg.problem, device, dtype, cfg.train.max_tracked)
    rows, cols = problem.shape
    shapes = factor_shapes(rows, cols, cfg.model.depth, cfg.model.width or min(rows, cols))
    kind, det = cfg.init.kind, cfg.init.det
    starts: dict[tuple[int, float], list[Tensor]] = {}
    for spec in specs:  # run k starts exactly where the unbatched run with its seed starts
        key = (spec.seed, spec.init_scale)
        if key not in starts:
            starts[key] = sample_factors(kind, spec.init_scale, det, shapes, spec.seed)
    runs = [starts[(spec.seed, spec.init_scale)] for spec in specs]
    stepper_class = FusedStepper if cfg.batch.fused else AutogradStepper
    stepper = stepper_class(runs, problem).to(device, dtype)
    lr = torch.tensor([spec.lr for spec in specs], device=device, dtype=dtype)
    W0 = torch.stack([run[0] for run in runs]).to(device, dtype) if cfg.model.depth == 1 else None

    logger = BatchLogger(out_dir, specs, cfg.batch.tracked_runs)
    progress = Progress(cfg.train.max_steps, cfg.train.progress)

    def on_log(step: int, W: Tensor, state: BatchState) -> None:
        values = per_run_scalars(problem, W, lr * step, W0, cfg.train.max_tracked)
        progress.update(step, logger.log(step, values, state))

    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.batch.get("threads") or threads)
    started = time.perf_counter()
    try:
        outcome = batched_gradient_descent(
            stepper,
            lr,
            max_steps=cfg.train.max_steps,
            loss_tol=cfg.train.loss_tol,
            check_every=cfg.batch.check_every,
            schedule=LogSchedule(
                cfg.train.max_steps, cfg.train.log_every, cfg.train.log_per_decade
            ),
            on_log=on_log,
        )
    except BaseException:
        logger.abort()
        raise
    finally:
        progress.close()
        torch.set_num_threads(threads)
    wall_time = time.perf_counter() - started

    state = outcome.state
    values = per_run_scalars(
        problem, stepper.end_to_end(), lr * state.steps, W0, cfg.train.max_tracked
    )
    aggregate = logger.close(outcome.steps, values, state, cfg)
    names = state.status_names()
    result: dict[str, Any] = {
        **aggregate,
        "status": names[0] if len(set(names)) == 1 else "mixed",
        "runs": len(specs),
        **{f"runs/{status}": names.count(status) for status in STATUSES},
        "steps": outcome.steps,
        "flow_time": float((lr * state.steps).max()),
        "gradient_evaluations": outcome.run_steps,
        "run_steps_per_s": outcome.run_steps / wall_time,
        "wall_time_s": wall_time,
        "device": str(device),
        "seed": int(cfg.seed),
    }
    write_runs_csv(out_dir / "runs.csv", specs, names, state.steps.tolist(), lr, values)
    artifacts.write_json(out_dir / "metrics.json", result)
    artifacts.save_torch(
        out_dir / "final.pt",
        {
            "factors": [f.detach().cpu() for f in stepper.factors()],
            "W": stepper.end_to_end().cpu(),
            "seed": torch.tensor([s.seed for s in specs]),
            "init_scale": torch.tensor([s.init_scale for s in specs]),
            "lr": lr.cpu(),
            "status": names,
            "steps": state.steps.cpu(),
            **problem.data(),
        },
    )
    log.info(
        "%d runs in %.2f s (%.3g run-steps/s): %s → %s",
        len(specs),
        wall_time,
        result["run_steps_per_s"],
        ", ".join(f"{s} {names.count(s)}" for s in STATUSES),
        out_dir,
    )
    return result


def write_runs_csv(
    path: Path,
    specs: list[RunSpec],
    statuses: list[str],
    stops: list[int],
    lr: Tensor,
    values: dict[str, Tensor],
) -> None:
    """One row per run: its seed, init scale, lr, status, steps and final scalars."""
    tags = list(values)
    columns = torch.stack([values[t].double().cpu() for t in tags], -1).tolist()
    flow = (lr.double().cpu() * torch.tensor(stops, dtype=torch.float64)).tolist()

    def write(f: Any) -> None:
        writer = csv.writer(f)
        writer.writerow([*RUN_COLUMNS, *tags])
        for k, spec in enumerate(specs):
            finals = ["" if not math.isfinite(v) else repr(v) for v in columns[k]]
            writer.writerow(
                [k, spec.seed, spec.init_scale, spec.lr, statuses[k], stops[k], flow[k], *finals]
            )

    artifacts.atomic_write(path, write)
