"""One run from a composed config: build the problem and the factorization, optimize, log, and
write the run's outputs (the contract in README § "What each run writes")."""

from __future__ import annotations

import logging
import math
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from implicit_reg import artifacts, checkpoint, hparams, scalars
from implicit_reg.batched import grid_size, run_batched
from implicit_reg.config import validate
from implicit_reg.det_sign import DetSignMonitor
from implicit_reg.device import resolve_device, resolve_dtype
from implicit_reg.events import read_scalars
from implicit_reg.factorization import DeepFactorization, factor_shapes
from implicit_reg.figures.run_panel import run_panel
from implicit_reg.init import sample_factors
from implicit_reg.interrupt import StopRequest
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
    if grid_size(cfg) > 1:  # batch.seeds / batch.init_scales / batch.lrs ask for several runs
        return run_batched(cfg, out_dir)
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    problem = build_problem(cfg.problem, device, dtype, cfg.train.max_tracked)
    rows, cols = problem.shape
    width = cfg.model.width or min(rows, cols)
    shapes = factor_shapes(rows, cols, cfg.model.depth, width)
    start = sample_factors(cfg.init.kind, cfg.init.scale, cfg.init.det, shapes, cfg.seed)
    model = DeepFactorization(start).to(device, dtype)
    W0 = model().detach().clone() if cfg.model.depth == 1 else None  # depth 1: W has its own flow
    resumed = checkpoint.resume(out_dir, cfg, model)  # same folder: go on from its checkpoint
    start_step = resumed.step if resumed else 0
    log.debug("config validated; %s on %s, starting at step %d", cfg.dtype, device, start_step)

    tensorboard = TensorBoardLogger(out_dir, start_step, resumed.last if resumed else None)
    progress = Progress(cfg.train.max_steps, cfg.train.progress, initial=start_step)

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
        values.update(exact or {})
        floats = scalars.to_floats(values)
        verdict = None  # a status that ends the run (train.on_unstable=stop)
        if guard is not None:
            stability, verdict = guard.check(step)
            floats.update(stability)
        if "det/sign" in floats:
            det_sign.update(step, flow_time, floats["det/sign"])
        tensorboard.log(step, floats)
        progress.update(step, floats)
        log.debug("step %d: %s", step, floats)
        return verdict

    started = time.perf_counter() - (resumed.wall_time_s if resumed else 0.0)

    def save_checkpoint(step: int) -> None:
        tensorboard.flush()  # the curves up to `step` are on disk before the checkpoint is
        state = checkpoint.Checkpoint(
            step,
            list(model.factors),
            tensorboard.last,
            time.perf_counter() - started,
            checkpoint.identity(cfg),
        )
        checkpoint.write(out_dir, state)
        log.debug("checkpoint at step %d", step)

    guards = ExitStack()  # SIGINT/SIGTERM stop the loop; anomaly detection on if asked
    stop = guards.enter_context(StopRequest())
    guards.enter_context(torch.autograd.set_detect_anomaly(cfg.train.detect_anomaly))
    try:
        if cfg.optim.name == "flow":  # short and adaptive: no checkpoints, no resume
            outcome = flow_from_config(cfg, model, problem, on_log, stop)
        else:
            max_steps = cfg.train.max_steps
            if cfg.train.max_time is not None:
                max_steps = min(max_steps, steps_within(cfg.train.max_time, cfg.optim.lr))
            outcome = gradient_descent(
                model,
                problem,
                lr=cfg.optim.lr,
                max_steps=max_steps,
                loss_tol=cfg.train.loss_tol,
                schedule=LogSchedule(max_steps, cfg.train.log_every, cfg.train.log_per_decade),
                on_log=on_log,
                start_step=start_step,
                checkpoint_every=cfg.train.checkpoint_every,
                on_checkpoint=save_checkpoint,
                stop_requested=stop,
            )
            save_checkpoint(outcome.steps)  # resume an interrupted run, or extend a finished one
        wall_time = time.perf_counter() - started
        title = f"{problem.name}, depth {cfg.model.depth}: {outcome.status}"
        tensorboard.flush()  # the writer queues events: the panel must read the last ones too
        tensorboard.add_figure(
            "figures/run", run_panel(read_scalars(out_dir), title), outcome.steps
        )
    except BaseException:
        tensorboard.close()
        raise
    finally:
        guards.close()
        progress.close()

    result: dict[str, Any] = {
        **tensorboard.last,
        "status": outcome.status,
        "steps": outcome.steps,
        "flow_time": outcome.flow_time,
        "gradient_evaluations": outcome.gradient_evaluations,
        "wall_time_s": wall_time,
        "device": str(device),
        "seed": int(cfg.seed),
        **outcome.record,
        **det_sign.record(),
        **(guard.record() if guard is not None else {}),
    }
    if stop.name is not None:
        result["signal"] = stop.name
    hparams.record(tensorboard.writer, hparams.of(cfg, outcome.status), result)
    tensorboard.close()
    artifacts.write_json(out_dir / "metrics.json", result)
    if outcome.status != "interrupted":
        artifacts.save_torch(out_dir / "final.pt", final_state(model, problem))
    log.info("\n%s", summary(result, out_dir))
    return result


def steps_within(max_time: float, lr: float) -> int:
    """The gradient descent steps that fit in flow time ``max_time``: the largest n with
    n·lr ≤ max_time, up to rounding. A quotient within 4 ulps (relative 4·2⁻⁵²) of an integer
    counts as that integer, so 0.3 / 0.1 = 2.9999999999999996 gives 3 steps (flow time 0.3), not
    2; a step that overshoots max_time by more than that rounding is not taken."""
    quotient = max_time / lr
    nearest = round(quotient)
    if math.isclose(quotient, nearest, rel_tol=4 * sys.float_info.epsilon):
        return nearest
    return math.floor(quotient)


def final_state(model: DeepFactorization, problem: Problem) -> dict[str, Any]:
    """What ``final.pt`` holds: the factors [W_1, …, W_L], the end-to-end matrix and the data."""
    with torch.no_grad():
        factors = [f.detach().cpu() for f in model.factors]
        W = model().detach().cpu()
    end_to_end = {"beta": W[:, 0]} if "X" in problem.data() else {"W": W}
    return {"factors": factors, **end_to_end, **problem.data()}


def summary(result: dict[str, Any], out_dir: Path) -> str:
    """The short table printed at the end of a run. A change of sign det W (``DetSignMonitor``)
    is shown at the first logged point that had it: the change happened after the logged point
    before it."""
    rows = [
        ("status", result["status"]),
        ("steps", f"{result['steps']:,}"),
        ("flow time", f"{result['flow_time']:.6g}"),
        *((key, f"{result[key]:.6g}") for key in SUMMARY_KEYS if key in result),
        *((k, f"{v:.6g}") for k, v in result.items() if k.startswith("entries/")),
    ]
    if (changed := result.get("det_sign_changed_at_step")) is not None:
        when = f"flow time {result['det_sign_changed_at_time']:.6g}"
        rows.append(("det sign changed", f"first logged at step {changed:,} ({when})"))
    rows += [
        ("wall time", f"{result['wall_time_s']:.2f} s on {result['device']}"),
        ("output", str(out_dir)),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)
