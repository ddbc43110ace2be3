"""A solved baseline as a run: ``optim=nuclear_norm`` solves once and writes the run-folder
contract of a gradient-descent run whose final state is at step 0 (README § "What each run
writes"), so that it sits beside trained runs in sweeps, summaries and figures."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from implicit_reg import scalars
from implicit_reg.baselines import nuclear_norm
from implicit_reg.interrupt import StopRequest
from implicit_reg.problems import build_problem
from implicit_reg.record import artifacts, hparams, outputs, run_folder
from implicit_reg.record.logger import TensorBoardLogger
from implicit_reg.record.run_summary import baseline_summary

log = logging.getLogger(__name__)


def solved_run(cfg: DictConfig, out_dir: Path, folder: run_folder.Folder) -> dict[str, Any]:
    """``optim=nuclear_norm``: one cvxpy solve of min ‖W‖_* subject to the problem's
    observations, on the CPU in float64, written like a GD run whose final state is at step 0
    (README § "Nuclear-norm baseline")."""
    device = torch.device("cpu")
    if cfg.device == "cuda":
        log.info("optim=nuclear_norm solves on the CPU (cvxpy), not on cuda")
    problem = build_problem(cfg.problem, device, torch.float64, cfg.train.max_tracked)
    started = time.perf_counter()
    solution = nuclear_norm.solve(
        *problem.linear_measurements(),
        solver=cfg.optim.solver,
        tol=cfg.optim.tol,
        max_iters=cfg.optim.max_iters,
    )
    # nothing is written before the solve ends; from here on SIGINT/SIGTERM only ask to stop
    # (a second one stops at once) until metrics.json, the record of completion, is written last
    with StopRequest() as stop:
        logger = TensorBoardLogger(out_dir, 1)
        W = None if solution.W is None else solution.W.unsqueeze(0)
        if W is not None:
            logger.log(
                0,
                final_scalars(problem, W, cfg.train.max_tracked),
                torch.ones(1, dtype=torch.bool),
                {},
            )
        if solution.status != "converged":
            log.warning(
                "optim=nuclear_norm: the solver did not certify optimality: %s (try "
                "optim.max_iters, optim.tol or optim.solver)",
                solution.record["solver_message"],
            )
        result = {
            **logger.last,
            "status": solution.status,
            "steps": 0,
            "flow_time": 0.0,  # lr × steps, as for gradient descent: no step taken
            "gradient_evaluations": 0,
            "wall_time_s": time.perf_counter() - started,
            "device": str(device),
            "seed": int(cfg.seed),
            **solution.record,
        }
        hparams.record(logger.writer, hparams.of(cfg, solution.status), result)
        logger.close()
        if W is not None:
            artifacts.save_torch(out_dir / "final.pt", outputs.final_state([W], W, problem))
        if stop.name is not None:  # a signal while writing is recorded too
            result["signal"] = stop.name
        folder.write_metrics(cfg, result)
    log.info("\n%s", baseline_summary(result, out_dir))
    return result


def final_scalars(problem: Any, W: Tensor, max_tracked: int) -> dict[str, Tensor]:
    """The tags of a solved W ``(1, rows, cols)`` (``time/flow`` = lr × 0 steps = 0)."""
    return scalars.compute_runs(problem, W, torch.zeros(1, dtype=W.dtype), None, max_tracked)
