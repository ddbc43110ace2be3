"""One training process from a composed config: a batch of runs (a single run is a batch of one).
Build the problem, the runs' factors and the stepper once, train them with the one gradient
descent loop (or, for one run, the gradient flow), log, and write the outputs (README § "What
each run writes"; a batch: § "Batched runs")."""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from implicit_reg import batch, scalars
from implicit_reg.config import limits
from implicit_reg.config.device import (
    cpu_threads,
    resolve_device,
    resolve_dtype,
    training_threads,
)
from implicit_reg.config.validate import mse_per_loss, problem_shape, validate, with_loss_tol
from implicit_reg.det_sign import DetSignMonitor
from implicit_reg.dynamics import descend
from implicit_reg.dynamics.gd import (
    CONVERGED,
    DIVERGED,
    MAX_STEPS,
    RUNNING,
    STALLED,
    UNSTABLE,
    Runs,
)
from implicit_reg.dynamics.optimizers import make_rule, stability_limit
from implicit_reg.dynamics.steppers import make_stepper
from implicit_reg.factorization import DeepFactorization, factor_shapes, product
from implicit_reg.init import sample_batch
from implicit_reg.interrupt import StopRequest
from implicit_reg.problems import build_problem
from implicit_reg.record import artifacts, checkpoint, history, hparams, outputs, run_folder
from implicit_reg.record.history import SingularValueHistory
from implicit_reg.record.logger import TensorBoardLogger
from implicit_reg.record.progress import Progress
from implicit_reg.record.run_summary import summary
from implicit_reg.record.schedule import LogSchedule
from implicit_reg.stability import StabilityGuard
from implicit_reg.stability import due as guard_due

log = logging.getLogger(__name__)

LOG_SAMPLE = history.MAX_RUNS
"""A batch of more runs logs its quantiles during training over this many of them, evenly
spaced (the final quantiles in metrics.json are over all runs); up to it, every run's singular
values can be recorded (``record/history.py``)."""


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train every run of ``cfg`` into ``out_dir``; return what ``metrics.json`` holds."""
    validate(cfg)
    limits.check(cfg)
    cfg = with_loss_tol(cfg)
    rows, cols = problem_shape(cfg.problem)
    threads = training_threads(cfg.batch.threads, rows, cols, cfg.model.width or min(rows, cols))
    if cfg.batch.threads == "auto":
        log.info("batch.threads=auto: training on %d CPU thread(s)", threads)
    with cpu_threads(threads), run_folder.hold(out_dir, cfg) as folder:
        return _train(cfg, out_dir, folder)  # one run a folder, locked while it goes


def _train(cfg: DictConfig, out_dir: Path, folder: run_folder.Folder) -> dict[str, Any]:
    if cfg.optim.name == "nuclear_norm":  # one convex program: no factors, init or steps
        from implicit_reg.baselines.solved_run import solved_run  # cvxpy: the optional extra

        return solved_run(cfg, out_dir, folder)
    grid = batch.grid(cfg)
    single = len(grid) == 1
    rows, cols = problem_shape(cfg.problem)
    shapes = factor_shapes(rows, cols, cfg.model.depth, cfg.model.width or min(rows, cols))
    device = resolve_device(cfg.device, len(grid) * sum(r * c for r, c in shapes))
    dtype = resolve_dtype(cfg.dtype)
    if cfg.device == "auto":
        log.info("device=auto: %s for %d run(s) of %d×%d at depth %d", device, len(grid), rows,
                 cols, cfg.model.depth)  # fmt: skip
    problem = build_problem(cfg.problem, device, dtype, cfg.train.max_tracked)
    with cpu_threads(None):  # long vectorized ops over all runs: every core helps (same bits)
        start = sample_batch(
            cfg.init.kind, grid.init_scales.to(device), cfg.init.det, shapes, grid.seeds.to(device)
        )
    start = [f.to(dtype) for f in start]
    W0 = product(start) if cfg.model.depth == 1 else None  # depth 1: W has its own flow
    lr = grid.lrs.to(device, dtype)
    if cfg.optim.name == "flow":  # one run, adaptive: no checkpoints, no resume
        return _flow(cfg, out_dir, problem, start, W0, device, folder)
    stepper = make_stepper(start, problem, fused=cfg.batch.fused)
    rule = make_rule(cfg.optim, stepper, mse_per_loss(cfg.problem))  # None: plain GD
    runs = Runs.start(len(grid), device)
    resumed = checkpoint.resume(out_dir, cfg)  # same folder: go on from its checkpoint
    if resumed is not None:  # a run that stopped by its loss or budget is looked at again
        stepper.load([f.to(device, dtype) for f in resumed.factors])
        if rule is not None:
            rule.load(resumed.optimizer)
        status = resumed.status.to(device)
        status.masked_fill_((status == CONVERGED) | (status == MAX_STEPS), RUNNING)
        runs = Runs(resumed.steps.to(device), status)
    start_step = resumed.step if resumed else 0
    max_steps = step_budget(cfg, lr)
    log.debug("%d run(s), %s on %s, starting at step %d", len(grid), cfg.dtype, device, start_step)

    logger = TensorBoardLogger(
        out_dir, len(grid), cfg.batch.tracked_runs, start_step, resumed.last if resumed else None
    )
    progress = Progress(
        int(max_steps.max()), cfg.train.loss_tol, cfg.train.progress, single=single,
        initial=start_step,
    )  # fmt: skip
    det_sign = DetSignMonitor()
    guard = None
    if cfg.train.sharpness_iters > 0:
        guard = StabilityGuard(
            problem, lr, cfg.train.sharpness_iters, cfg.train.on_unstable,
            stability_limit(cfg.optim),
        )  # fmt: skip
        if resumed is not None and resumed.guard is not None:
            guard.load(resumed.guard)
    logged = -1  # a single run's last logged step
    history = None  # each run's top singular values at the logged steps (singular_values.npz)
    align = records_alignment(cfg)
    if cfg.train.singular_value_history > 0:
        history = SingularValueHistory.resume(out_dir, cfg.train.singular_value_history, start_step)

    rows = logger.rows(len(grid), LOG_SAMPLE, device)  # a large batch logs a sample of its runs

    def record(step: int, W: Tensor, loss: Tensor, flow_time: Tensor) -> Tensor | None:
        nonlocal logged
        diverged = (runs.status == DIVERGED) | ~torch.isfinite(loss)
        counts = _counts(runs, loss, cfg.train.loss_tol, diverged) if not single else {}
        stability, unstable = {}, None
        if guard is not None and (
            guard_due(step, cfg.train.sharpness_iters, cfg.train.log_every)
            if single
            else step % cfg.batch.check_every == 0
        ):
            preconditioner = rule.preconditioner() if rule is not None else None
            stability, unstable = guard.check(step, stepper.factors(), preconditioner)
        start = W0
        if rows is not None:
            W, flow_time, diverged = W[rows], flow_time[rows], diverged[rows]
            start = None if W0 is None else W0[rows]
            stability = {tag: value[rows] for tag, value in stability.items()}
        values = scalars.compute_runs(problem, W, flow_time, start, cfg.train.max_tracked, align)
        if history is not None:  # rows is None: config.validate caps such a batch's size
            history.append(step, values)
        floats = logger.log(step, {**values, **stability}, ~diverged, counts, rows)
        if single and "det/sign" in floats:
            det_sign.update(step, float(flow_time[0]), floats["det/sign"])
        progress.update(
            step, floats, None if single else {k[6:]: int(v) for k, v in counts.items()}
        )
        log.debug("step %d: %s", step, floats)
        logged = step
        return unstable

    def on_log(step: int, W: Tensor, loss: Tensor) -> Tensor | None:
        if single and (int(runs.steps[0]) != step or not math.isfinite(float(loss[0]))):
            return None  # stopped before this step: its final state is logged at the end
        return record(step, W, loss, lr * runs.steps)

    started = time.perf_counter() - (resumed.wall_time_s if resumed else 0.0)

    def save_checkpoint(step: int) -> None:
        logger.flush()  # the curves up to `step` are on disk before the checkpoint is
        state = checkpoint.Checkpoint(
            step,
            stepper.factors(),
            runs.steps.clone(),
            runs.status.clone(),
            logger.last,
            time.perf_counter() - started,
            checkpoint.identity(cfg),
            guard.state() if guard is not None else None,
            rule.state() if rule is not None else None,
            history.before(step) if history is not None else None,
        )
        if history is not None:  # first: the history always reaches the checkpoint's step
            history.write(out_dir)
        checkpoint.write(out_dir, state)
        log.debug("checkpoint at step %d", step)

    # SIGINT/SIGTERM stop the loop; the handler stays on while the outputs are written, so a
    # first signal then changes nothing and a second one stops before metrics.json is written
    with StopRequest() as stop:
        try:
            with torch.autograd.set_detect_anomaly(cfg.train.detect_anomaly):
                step, interrupted = descend(
                    stepper,
                    lr,
                    runs,
                    max_steps=max_steps,
                    loss_tol=cfg.train.loss_tol,
                    schedule=LogSchedule(
                        int(max_steps.max()), cfg.train.log_every, cfg.train.log_per_decade
                    ),
                    on_log=on_log,
                    check_every=cfg.batch.check_every,
                    start_step=start_step,
                    checkpoint_every=cfg.train.checkpoint_every,
                    on_checkpoint=save_checkpoint,
                    stop_requested=stop,
                    rule=rule,
                )
                progress.reached(step)  # the true step, also after a signal
                save_checkpoint(step)  # resume an interrupted run, or extend a finished one
                W, loss = stepper.end_to_end(), problem.loss(stepper.end_to_end())
                # a single run's final state, at its stop step (diverged: the step before)
                if single and not interrupted:
                    final_step = runs.last_finite_step()
                    if final_step != logged:
                        record(final_step, W, loss, lr * final_step)
                        if history is not None:
                            history.write(out_dir)
            wall_time = time.perf_counter() - started
            if stalled := int((runs.status == STALLED).sum()):
                log.warning(
                    "%s stalled: no factor entry moved in batch.check_every=%d steps, so the "
                    "gradient vanished below the factors' rounding at a non-minimum (a saddle "
                    "such as W = 0: try a larger init.scale)",
                    "the run" if single else f"{stalled} of {len(grid)} runs",
                    cfg.batch.check_every,
                )
            if guard is not None and (crossed := guard.warning()) is not None:
                log.warning("%s", crossed)
        except BaseException:
            logger.close()
            raise
        finally:
            progress.close()

        # the results first (TensorBoard, final.pt, runs.csv, the history), metrics.json last
        if single:
            result = outputs.single_run(
                cfg, out_dir, logger, runs, lr, stepper.factors(), W, problem, wall_time, device,
                interrupted, {**det_sign.record(), **(guard.record() if guard is not None else {})},
            )  # fmt: skip
            result.update({"signal": stop.name} if stop.name is not None else {})
            folder.write_metrics(cfg, result)
            log.info("\n%s", summary(result, out_dir, problem.shape))
            return result
        values = scalars.compute_runs(problem, W, lr * runs.steps, W0, cfg.train.max_tracked, align)
        final_step = int(runs.steps.max())
        if history is not None and not interrupted and history.steps[-1:] != [final_step]:
            history.append(final_step, values)  # each run's final state, as runs.csv has it
            history.write(out_dir)
        result = outputs.batch(
            cfg, out_dir, logger, grid, runs, lr, stepper.factors(), W, values, problem,
            wall_time, device, interrupted, guard.per_run() if guard is not None else {},
        )  # fmt: skip
        result.update({"signal": stop.name} if stop.name is not None else {})
        folder.write_metrics(cfg, result)
    log.info("%s", outputs.batch_line(result, out_dir))
    return result


def records_alignment(cfg: DictConfig) -> bool:
    """Whether the logs carry |Uᵀ∇ℓ(W)V| (``implicit_reg.alignment``): with the singular value
    history (Fig. 3 of Arora et al. 2019 plots both), for a matrix problem."""
    return cfg.train.singular_value_history > 0 and cfg.problem.kind != "least_squares"


def step_budget(cfg: DictConfig, lr: Tensor) -> Tensor:
    """Each run's step limit ``(K,)``: ``train.max_steps``, and the steps that fit in
    ``train.max_time`` (``steps_within``) if it is set."""
    budget = torch.full_like(lr, cfg.train.max_steps, dtype=torch.long)
    if cfg.train.max_time is not None:
        budget = torch.minimum(budget, steps_within(cfg.train.max_time, lr))
    return budget


def _counts(runs: Runs, loss: Tensor, loss_tol: float, diverged: Tensor) -> dict[str, float]:
    converged = ~diverged & (loss < loss_tol)
    unstable = runs.status == UNSTABLE
    going = (runs.status == RUNNING) & ~diverged & ~converged
    return {
        "batch/going": float(going.sum()),
        "batch/converged": float(converged.sum()),
        "batch/diverged": float(diverged.sum()),
        "batch/unstable": float(unstable.sum()),
        "batch/stalled": float((runs.status == STALLED).sum()),
    }


def _flow(
    cfg: DictConfig,
    out_dir: Path,
    problem: Any,
    start: list[Tensor],
    W0: Tensor | None,
    device: torch.device,
    folder: run_folder.Folder,
) -> dict[str, Any]:
    """``optim=flow``: one run integrated by a stiff solver, logged and written like GD's."""
    from implicit_reg.dynamics.flow import flow_from_config  # SciPy: only here

    model = DeepFactorization([f[0] for f in start])
    logger = TensorBoardLogger(out_dir, 1)
    # decades of loss toward train.loss_tol; else flow time toward train.max_time
    progress = Progress(
        cfg.train.max_steps, cfg.train.loss_tol, cfg.train.progress, single=True,
        max_time=cfg.train.max_time, flow=True,
    )  # fmt: skip
    det_sign = DetSignMonitor()
    history = None
    if cfg.train.singular_value_history > 0:
        history = SingularValueHistory(cfg.train.singular_value_history)

    def on_log(step: int, flow_time: float, W: Tensor, exact: dict[str, Tensor] | None = None):
        times = torch.tensor([flow_time], dtype=W.dtype, device=W.device)
        values = scalars.compute_runs(
            problem, W.unsqueeze(0), times, W0, cfg.train.max_tracked, records_alignment(cfg)
        )
        values.update({k: v.reshape(1) for k, v in (exact or {}).items()})
        if history is not None:
            history.append(step, values)
        floats = logger.log(step, values, torch.ones(1, dtype=torch.bool), {})
        if "det/sign" in floats:
            det_sign.update(step, flow_time, floats["det/sign"])
        progress.update(step, floats)
        return None

    started = time.perf_counter()
    with StopRequest() as stop:  # on until metrics.json is written (see ``_train``)
        try:
            outcome = flow_from_config(cfg, model, problem, on_log, stop)
        except BaseException:
            logger.close()
            raise
        finally:
            progress.close()
        factors = [f.detach().unsqueeze(0) for f in model.factors]
        result = {
            **logger.last,
            "status": outcome.status,
            "steps": outcome.steps,
            "flow_time": outcome.flow_time,
            "gradient_evaluations": outcome.gradient_evaluations,
            "wall_time_s": time.perf_counter() - started,
            "device": str(device),
            "seed": int(cfg.seed),
            **outcome.record,
            **det_sign.record(),
        }
        hparams.record(logger.writer, hparams.of(cfg, outcome.status), result)
        logger.close()
        # the results first, metrics.json (the record that they are complete) last
        if history is not None:
            history.write(out_dir)
        if outcome.status != "interrupted":
            W = product(factors)
            artifacts.save_torch(out_dir / "final.pt", outputs.final_state(factors, W, problem))
        if stop.name is not None:  # a signal while writing is recorded too
            result["signal"] = stop.name
        folder.write_metrics(cfg, result)
    log.info("\n%s", summary(result, out_dir, problem.shape))
    return result


STEPS_MAX = float(2**62)
"""More steps than any run takes, exact in float64 and int64 (``steps_within``'s cap)."""


def steps_within(max_time: float, lr: Tensor) -> Tensor:
    """The gradient descent steps that fit in flow time ``max_time``, per run: the largest n
    with n·lr ≤ max_time, up to rounding. A quotient within 4 ulps (relative 4·2⁻⁵²) of an
    integer counts as that integer, so 0.3 / 0.1 = 2.9999999999999996 gives 3 steps (flow time
    0.3), not 2; a step that overshoots max_time by more than that rounding is not taken. A
    count past ``STEPS_MAX`` is ``STEPS_MAX`` (``train.max_steps`` is the limit then)."""
    quotient = max_time / lr.double()
    nearest = quotient.round()
    close = (quotient - nearest).abs() <= 4 * sys.float_info.epsilon * nearest.abs()
    steps = torch.where(close, nearest, quotient.floor())
    return steps.clamp(max=STEPS_MAX).long()  # max_time=1e300: no limit, not an overflow
