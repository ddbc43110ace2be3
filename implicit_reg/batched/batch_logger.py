"""TensorBoard for a batched run: per step, the 10/50/90% quantiles over the runs of every scalar
(tags ``<tag>/q10``, ``<tag>/median``, ``<tag>/q90``) and how many runs are active, converged and
diverged (``batch/<status>``); plus a few individual runs with the ordinary tags, each in its
own subfolder ``runs/<k>`` (k = the run's row in ``runs.csv``) with its HParams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from implicit_reg import hparams, scalars
from implicit_reg.batched.gd import BatchState
from implicit_reg.batched.grid import RunSpec
from implicit_reg.problems import Problem

QUANTILES = {"q10": 0.1, "median": 0.5, "q90": 0.9}
MAX_QUANTILE_INPUT = 2**24


def per_run_scalars(
    problem: Problem, W: Tensor, flow_times: Tensor, W0: Tensor | None, max_tracked: int
) -> dict[str, Tensor]:
    """``scalars.compute`` for runs ``(runs, rows, cols)`` at their own flow times ``(runs,)``.
    Only the closed-form flow of depth 1 (W0 given) depends on the time; there the runs are
    evaluated in groups of equal time. Runs with non-finite entries (diverged ones between two
    checks) get NaN, as the SVD cannot take them."""
    bad = ~torch.isfinite(W).all(-1).all(-1)
    W = torch.where(bad[:, None, None], 0.0, W)
    if W0 is None:
        values = scalars.compute(problem, W, flow_time=0.0, max_tracked=max_tracked)
    else:
        values = {}
        for t in flow_times.unique().tolist():
            runs = flow_times == t
            part = scalars.compute(
                problem, W[runs], flow_time=t, W0=W0[runs], max_tracked=max_tracked
            )
            for tag, value in part.items():
                values.setdefault(tag, value.new_empty(W.shape[0]))[runs] = value
    values = {tag: torch.where(bad, torch.nan, value) for tag, value in values.items()}
    values["time/flow"] = flow_times.to(W.dtype)
    return values


def quantiles(values: dict[str, Tensor], include: Tensor) -> dict[str, float]:
    """``<tag>/<q>`` over the runs where ``include`` is True (NaN where none is)."""
    tags = list(values)
    stacked = torch.stack([values[t].double() for t in tags])
    masked = torch.where(include, stacked, torch.nan)
    q = torch.tensor(list(QUANTILES.values()), dtype=torch.float64, device=include.device)
    if masked.numel() <= MAX_QUANTILE_INPUT:
        table = torch.nanquantile(masked, q, dim=1).T.tolist()
    else:  # torch.quantile refuses larger inputs: one tag at a time
        table = [torch.nanquantile(row, q).tolist() for row in masked]
    return {
        f"{tag}/{name}": v
        for tag, row in zip(tags, table, strict=True)
        for name, v in zip(QUANTILES, row, strict=True)
    }


def write_scalars(writer: SummaryWriter, step: int, values: dict[str, float]) -> None:
    """All of a step's scalars as one event (one ``add_scalar`` call each costs ~100 µs)."""
    summary = Summary(value=[Summary.Value(tag=t, simple_value=v) for t, v in values.items()])
    writer.file_writer.add_summary(summary, step)


def counts(state: BatchState) -> dict[str, float]:
    stopped = state.converged | state.diverged
    return {
        "batch/going": float(state.going.sum()),
        "batch/converged": float(state.converged.sum()),
        "batch/diverged": float(state.diverged.sum()),
        "batch/max_steps": float((~state.going & ~stopped).sum()),
    }


class BatchLogger:
    def __init__(self, out_dir: Path, specs: list[RunSpec], tracked: int) -> None:
        self.writer = SummaryWriter(log_dir=str(out_dir))
        self.specs = specs
        picks = torch.linspace(0, len(specs) - 1, min(tracked, len(specs))).round().long()
        digits = len(str(len(specs) - 1))
        self.tracked = {
            k: SummaryWriter(log_dir=str(out_dir / "runs" / f"{k:0{digits}d}"))
            for k in sorted(set(picks.tolist()))
        }
        self.last: dict[str, float] = {}

    def log(self, step: int, values: dict[str, Tensor], state: BatchState) -> dict[str, float]:
        """Log one step; returns the medians by plain tag (for the progress bar). Runs that
        have diverged are left out of the quantiles."""
        self.last = {**quantiles(values, ~state.diverged), **counts(state)}
        write_scalars(self.writer, step, self.last)
        live = state.going.tolist()
        for k, writer in self.tracked.items():
            if live[k]:
                write_scalars(writer, step, {tag: float(v[k]) for tag, v in values.items()})
        return {tag: self.last[f"{tag}/median"] for tag in values}

    def close(
        self, step: int, values: dict[str, Tensor], state: BatchState, cfg: DictConfig
    ) -> dict[str, Any]:
        """Log the final values (each converged tracked run at its stop step) and the tracked runs'
        HParams; returns the final quantiles and counts."""
        self.log(step, values, state)
        names, stops = state.status_names(), state.steps.tolist()
        for k, writer in self.tracked.items():
            final = {tag: float(value[k]) for tag, value in values.items()}
            if names[k] == "converged":  # max_steps runs were logged at max_steps
                write_scalars(writer, stops[k], final)
            spec = self.specs[k]
            run_hparams = hparams.of(cfg, names[k])
            run_hparams.update(
                {"seed": spec.seed, "init.scale": spec.init_scale, "optim.lr": spec.lr}
            )
            hparams.record(writer, run_hparams, final)
        for writer in (self.writer, *self.tracked.values()):
            writer.flush()
            writer.close()
        return self.last

    def abort(self) -> None:
        for writer in (self.writer, *self.tracked.values()):
            writer.close()
