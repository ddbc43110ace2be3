"""What a finished (or interrupted) training process writes besides TensorBoard: for one run,
``metrics.json`` and ``final.pt`` (README § "What each run writes"); for a batch, also
``runs.csv``, one row per run, written in chunks (README § "Batched runs")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from implicit_reg.batch import Grid
from implicit_reg.dynamics.gd import DIVERGED, STATUSES, Runs
from implicit_reg.problems import Problem
from implicit_reg.record import artifacts, hparams
from implicit_reg.record.logger import TensorBoardLogger, quantiles, write_scalars

RUN_COLUMNS = ("run", "seed", "init_scale", "lr", "status", "steps", "flow_time")
STABILITY_COLUMNS = ("unstable_at_step", "max_lr_times_sharpness")
"""``runs.csv``'s columns from the stability guard, after ``RUN_COLUMNS``, when it runs."""
CSV_CHUNK = 65536


def final_state(factors: list[Tensor], W: Tensor, problem: Problem) -> dict[str, Any]:
    """What a single run's ``final.pt`` holds: the factors [W_1, …, W_L], the end-to-end matrix
    (or β), the data and the ground truth where known (run 0 of the stacked ``factors`` and
    ``W``)."""
    W = W[0].detach().cpu()
    end_to_end = {"beta": W[:, 0]} if "X" in problem.data() else {"W": W}
    return {"factors": [f[0].detach().cpu() for f in factors], **end_to_end, **saved_data(problem)}


def saved_data(problem: Problem) -> dict[str, Tensor]:
    """The problem's data for ``final.pt``, with ``ground_truth`` W* where it is known."""
    data = problem.data()
    if problem.ground_truth is not None:
        data["ground_truth"] = problem.ground_truth.cpu()
    return data


def single_run(
    cfg: DictConfig,
    out_dir: Path,
    logger: TensorBoardLogger,
    runs: Runs,
    lr: Tensor,
    factors: list[Tensor],
    W: Tensor,
    problem: Problem,
    wall_time: float,
    device: torch.device,
    interrupted: bool,
    record: dict[str, Any],
) -> dict[str, Any]:
    """Close the logger (with the HParams), write ``final.pt``; return ``metrics.json``'s dict."""
    steps = int(runs.steps[0])
    status = "interrupted" if interrupted else runs.names()[0]
    result: dict[str, Any] = {
        **logger.last,
        "status": status,
        "steps": steps,
        "flow_time": float(lr[0]) * steps,
        "gradient_evaluations": steps,
        "wall_time_s": wall_time,
        "device": str(device),
        "seed": int(cfg.seed),
        **record,
    }
    hparams.record(logger.writer, hparams.of(cfg, status), result)
    logger.close()
    if not interrupted:
        artifacts.save_torch(out_dir / "final.pt", final_state(factors, W, problem))
    return result


def batch(
    cfg: DictConfig,
    out_dir: Path,
    logger: TensorBoardLogger,
    grid: Grid,
    runs: Runs,
    lr: Tensor,
    factors: list[Tensor],
    W: Tensor,
    values: dict[str, Tensor],
    problem: Problem,
    wall_time: float,
    device: torch.device,
    interrupted: bool,
    stability: dict[str, Tensor],
) -> dict[str, Any]:
    """Log the final quantiles and the tracked runs' final values and HParams, write
    ``runs.csv`` and ``final.pt``; return ``metrics.json``'s dict. ``stability`` holds each
    run's ``unstable_at_step`` (−1: never) and ``max_lr_times_sharpness`` from the stability
    guard (``StabilityGuard.per_run``; empty when it is off): columns of ``runs.csv``, and in
    ``metrics.json`` the count ``unstable_runs`` of runs that crossed the bound (whatever their
    status) and the quantiles and largest value of ``max_lr_times_sharpness`` over all runs."""
    names = runs.names()
    counts = {s: names.count(s) for s in STATUSES}
    kept = runs.status != DIVERGED
    final_step = int(runs.steps.max())
    aggregate = {
        **quantiles(values, kept),
        **{f"batch/{s}": float(n) for s, n in counts.items()},
    }
    write_scalars(logger.writer, final_step, aggregate)
    stops = runs.steps.tolist()
    for k, writer in logger.tracked.items():
        final = {tag: float(v[k]) for tag, v in values.items()}
        if names[k] == "converged":
            write_scalars(writer, stops[k], final)
        run_hparams = hparams.of(cfg, names[k])
        run_hparams.update(
            {
                "seed": int(grid.seeds[k]),
                "init.scale": float(grid.init_scales[k]),
                "optim.lr": float(grid.lrs[k]),
            }
        )
        hparams.record(writer, run_hparams, final)
    logger.close()
    common = names[0] if len(set(names)) == 1 else "mixed"
    run_steps = int(runs.steps.sum())
    result: dict[str, Any] = {
        **aggregate,
        "status": "interrupted" if interrupted else common,
        "runs": len(grid),
        **{f"runs/{s}": n for s, n in counts.items() if s != "running" or n},
        "steps": final_step,
        "flow_time": float((lr * runs.steps).max()),
        "gradient_evaluations": run_steps,
        "run_steps_per_s": run_steps / wall_time,
        "wall_time_s": wall_time,
        "device": str(device),
        "seed": int(cfg.seed),
    }
    if stability:
        result.update(stability_summary(stability))
    write_runs_csv(out_dir / "runs.csv", grid, runs, lr, values, stability)
    if not interrupted:
        artifacts.save_torch(
            out_dir / "final.pt",
            {
                "factors": [f.detach().cpu() for f in factors],
                "W": W.detach().cpu(),
                "seed": grid.seeds,
                "init_scale": grid.init_scales,
                "lr": lr.cpu(),
                "status": names,
                "steps": runs.steps.cpu(),
                **saved_data(problem),
            },
        )
    return result


def stability_summary(stability: dict[str, Tensor]) -> dict[str, Any]:
    """``unstable_runs`` (the runs with ``unstable_at_step`` ≥ 0) and
    ``max_lr_times_sharpness/q10|median|q90|max`` over all runs (a diverged run's largest value
    is that of its last finite state)."""
    largest = stability["max_lr_times_sharpness"]
    everyone = torch.ones_like(largest, dtype=torch.bool)
    return {
        "unstable_runs": int((stability["unstable_at_step"] >= 0).sum()),
        **quantiles({"max_lr_times_sharpness": largest}, everyone),
        "max_lr_times_sharpness/max": float(largest.max()),
    }


def batch_line(result: dict[str, Any], out_dir: Path) -> str:
    """The line printed at the end of a batch: the runs by status, and ``unstable N`` the runs
    that crossed the stability bound (``unstable_runs``, whatever their status; without the
    guard, those stopped as ``unstable``)."""
    unstable = result.get("unstable_runs", result.get("runs/unstable", 0))
    counts = ", ".join(
        [
            *(
                f"{s} {result[f'runs/{s}']}"
                for s in STATUSES
                if f"runs/{s}" in result and s != "unstable"
            ),
            f"unstable {unstable}",
        ]
    )
    return (
        f"{result['runs']} runs in {result['wall_time_s']:.2f} s "
        f"({result['run_steps_per_s']:.3g} run-steps/s): {counts} → {out_dir}"
    )


def write_runs_csv(
    path: Path,
    grid: Grid,
    runs: Runs,
    lr: Tensor,
    values: dict[str, Tensor],
    stability: dict[str, Tensor],
) -> None:
    """One row per run: its seed, init scale, lr, status, steps, flow time, the guard's
    ``unstable_at_step`` (−1: never) and ``max_lr_times_sharpness`` (when it runs) and the final
    scalars (``repr``, empty where non-finite), ``CSV_CHUNK`` rows at a time."""
    tags = list(values)
    guarded = list(STABILITY_COLUMNS) if stability else []

    def write(f: Any) -> None:
        f.write(",".join([*RUN_COLUMNS, *guarded, *tags]) + "\n")
        for lo in range(0, len(grid), CSV_CHUNK):
            part = slice(lo, lo + CSV_CHUNK)
            steps = runs.steps[part].cpu()
            columns = [
                map(str, range(lo, lo + len(steps))),
                map(str, grid.seeds[part].tolist()),
                _floats(grid.init_scales[part]),
                _floats(grid.lrs[part]),
                (STATUSES[c] for c in runs.status[part].tolist()),
                map(str, steps.tolist()),
                _floats(lr[part].double().cpu() * steps),
                *_stability_columns(stability, part),
                *(_floats(values[t][part]) for t in tags),
            ]
            f.write("\n".join(map(",".join, zip(*columns, strict=True))) + "\n")

    artifacts.atomic_write(path, write)


def _stability_columns(stability: dict[str, Tensor], part: slice) -> list[Any]:
    """The ``STABILITY_COLUMNS`` of the rows ``part`` (none without the guard)."""
    if not stability:
        return []
    return [
        map(str, stability["unstable_at_step"][part].tolist()),
        _floats(stability["max_lr_times_sharpness"][part]),
    ]


def _floats(x: Tensor) -> list[str]:
    """``repr`` of each value as a Python float, '' where not finite."""
    x = x.double().cpu()
    out = list(map(repr, x.tolist()))
    for i in (~torch.isfinite(x)).nonzero().view(-1).tolist():
        out[i] = ""
    return out
