"""Batched runs (docs/sweeps.md): each run of a batch is the single run with its seed, scale
and lr, bit for bit on the CPU; diverged runs are put back to their last finite state and leave
the others alone; every stepper (batched ``@``, entry by entry, hand-written gradient) takes the
same steps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from implicit_reg.config.validate import ConfigError
from implicit_reg.dynamics.steppers import (
    EntryStepper,
    FusedEntryStepper,
    FusedStepper,
    MatmulStepper,
    make_stepper,
)
from implicit_reg.factorization import factor_shapes
from implicit_reg.problems import build_problem
from implicit_reg.record.logger import QUANTILES, quantiles
from implicit_reg.record.outputs import STABILITY_COLUMNS
from implicit_reg.run import run
from implicit_reg.summarize import summarize

QUIET = ["train.progress=false", "device=cpu", "dtype=float64"]
# Depth-3 2×2 completion from a larger init: with loss_tol 0.015, lr 0.2 converges (at a step
# that depends on the seed), lr 0.05 reaches max_steps and lr 3 diverges within a few steps.
GRID = ["init.scale=0.5", "train.max_steps=300", "train.loss_tol=0.015", *QUIET]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def batch(tmp_path_factory, compose_bare):
    out = tmp_path_factory.mktemp("batch")
    cfg = compose_bare(*[*GRID, "batch.seeds=3", "batch.lrs=[0.05,0.2,3.0]", "batch.check_every=7"])
    (out / ".hydra").mkdir()  # laid out as Hydra lays out a run folder (summarize needs it)
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml", resolve=True)
    result = run(cfg, out)
    return out, result


def test_batched_run_equals_unbatched_runs(batch, tmp_path, compose_bare):
    out, result = batch
    rows = read_rows(out / "runs.csv")
    final = torch.load(out / "final.pt", weights_only=True)
    assert len(rows) == 9 and [r["status"] for r in rows].count("diverged") == 3
    assert {r["status"] for r in rows} == {"converged", "max_steps", "diverged"}
    assert result["runs/converged"] == 3 and result["status"] == "mixed"
    for k, row in enumerate(rows):
        alone = tmp_path / str(k)
        metrics = run(compose_bare(*[*GRID, f"seed={row['seed']}", f"optim.lr={row['lr']}"]), alone)
        assert (row["status"], int(row["steps"])) == (metrics["status"], metrics["steps"])
        if row["status"] == "diverged":  # put back to a state of finite loss
            assert all(torch.isfinite(f[k]).all() for f in final["factors"])
            continue
        # A single run multiplies 2-D matrices (BLAS, which may fuse a multiply-add), a batch
        # sums its products in order: equal to within an ulp a step.
        single = torch.load(alone / "final.pt", weights_only=True)
        for batched_factor, factor in zip(final["factors"], single["factors"], strict=True):
            torch.testing.assert_close(batched_factor[k], factor, rtol=1e-12, atol=1e-15)
        for tag in ("loss/train", "norm/nuclear", "rank/effective", "entries/1_1", "time/flow"):
            assert float(row[tag]) == pytest.approx(metrics[tag], rel=1e-12, abs=1e-15)


def test_check_every_does_not_change_results(batch, tmp_path, compose_bare):
    out, _ = batch
    cfg = compose_bare(*[*GRID, "batch.seeds=3", "batch.lrs=[0.05,0.2,3.0]", "batch.check_every=1"])
    run(cfg, tmp_path)

    def results(path: Path) -> list[dict[str, str]]:  # the guard's record: checked more often
        return [
            {k: v for k, v in row.items() if k not in STABILITY_COLUMNS} for row in read_rows(path)
        ]

    assert results(out / "runs.csv") == results(tmp_path / "runs.csv")
    a = torch.load(out / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "final.pt", weights_only=True)
    assert all(torch.equal(x, y) for x, y in zip(a["factors"], b["factors"], strict=True))


def test_batch_outputs(batch):
    out, result = batch
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["runs"] == 9 and metrics["gradient_evaluations"] == result["gradient_evaluations"]
    )
    assert metrics["loss/train/q10"] <= metrics["loss/train/median"] <= metrics["loss/train/q90"]
    events = EventAccumulator(str(out)).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train/median", "loss/train/q10", "entries/1_1/q90", "batch/diverged"} <= tags
    tracked = sorted(p.name for p in (out / "runs").iterdir())
    assert tracked == ["0", "3", "5", "8"]  # 4 runs spread over the 9
    run_tags = set(EventAccumulator(str(out / "runs" / "3")).Reload().Tags()["scalars"])
    assert {"loss/train", "entries/1_1", "rank/effective"} <= run_tags


def test_least_squares_batch_reaches_min_norm(tmp_path, compose_bare):
    cfg = compose_bare(*["problem=least_squares", "batch.lrs=[0.1,0.05]", "batch.seeds=2", *QUIET])
    cfg.train.max_steps = 20000
    result = run(cfg, tmp_path)
    assert result["runs/converged"] == 4
    final = torch.load(tmp_path / "final.pt", weights_only=True)
    min_norm = torch.linalg.pinv(final["X"]) @ final["y"]
    for W in final["W"]:
        torch.testing.assert_close(W[:, 0], min_norm, rtol=1e-9, atol=1e-11)
    assert result["dist/flow_closed_form/q90"] < 1e-3


@pytest.mark.parametrize(
    ("overrides", "depth"),
    [
        (["problem=completion_2x2"], 1),
        (["problem=completion_2x2"], 2),
        (["problem=completion_2x2"], 4),
        (
            [
                "problem=matrix_completion",
                "problem.rows=4",
                "problem.cols=3",
                "problem.observed=7",
                "problem.rank=1",
                "model.width=2",
            ],
            3,
        ),
        (["problem=least_squares"], 1),
        (["problem=least_squares"], 3),
        (
            [
                "problem=matrix_sensing",
                "problem.rows=3",
                "problem.cols=2",
                "problem.rank=1",
                "problem.measurements=4",
            ],
            3,
        ),
    ],
)
def test_every_stepper_takes_the_same_steps(overrides, depth, compose_bare):
    cfg = compose_bare(*[*overrides, f"model.depth={depth}", *QUIET])
    problem = build_problem(cfg.problem, torch.device("cpu"), torch.float64)
    shapes = factor_shapes(*problem.shape, depth, cfg.model.width or min(problem.shape))
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(5, *s, generator=generator, dtype=torch.float64) for s in shapes]
    steppers = [cls(start, problem) for cls in (MatmulStepper, EntryStepper, FusedStepper,
                                                FusedEntryStepper)]  # fmt: skip
    lr = torch.linspace(0.01, 0.05, 5, dtype=torch.float64)
    reference = steppers[0]
    losses = [s.loss() for s in steppers]
    for stepper, loss in zip(steppers[1:], losses[1:], strict=True):
        torch.testing.assert_close(loss, losses[0], rtol=1e-13, atol=0)
        torch.testing.assert_close(stepper.end_to_end(), reference.end_to_end())
    for stepper in steppers:
        stepper.step(lr)
    for stepper in steppers[1:]:  # one step: the factors moved by the same gradient
        for a, b in zip(stepper.factors(), reference.factors(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_fused_batch_equals_autograd_batch(batch, tmp_path, compose_bare):
    out, _ = batch
    cfg = compose_bare(*[*GRID, "batch.seeds=3", "batch.lrs=[0.05,0.2,3.0]", "batch.fused=true"])
    run(cfg, tmp_path)
    for a, b in zip(read_rows(out / "runs.csv"), read_rows(tmp_path / "runs.csv"), strict=True):
        assert (a["status"], a["steps"]) == (b["status"], b["steps"])
        assert float(a["entries/1_1"]) == pytest.approx(float(b["entries/1_1"]), rel=1e-9)


def test_fused_entry_batch_equals_autograd_entry_batch(tmp_path, compose_bare):
    """66 runs of 2×2 factors: both go entry by entry (``FusedEntryStepper``, ``EntryStepper``),
    with converged, capped and diverged runs (put back by ``load``) among them."""
    grid = [*GRID, "batch.seeds=22", "batch.lrs=[0.05,0.2,3.0]"]
    run(compose_bare(*grid), tmp_path / "autograd")
    run(compose_bare(*grid, "batch.fused=true"), tmp_path / "fused")
    autograd, fused = (read_rows(tmp_path / name / "runs.csv") for name in ("autograd", "fused"))
    assert len(fused) == 66 and {r["status"] for r in fused} == {
        "converged",
        "max_steps",
        "diverged",
    }
    for a, b in zip(autograd, fused, strict=True):
        assert (a["status"], a["steps"]) == (b["status"], b["steps"])
        assert float(a["entries/1_1"]) == pytest.approx(float(b["entries/1_1"]), rel=1e-9)
        assert float(a["loss/train"]) == pytest.approx(float(b["loss/train"]), rel=1e-9)


def test_fused_takes_the_entry_layout_where_autograd_does(compose_bare):
    problem = build_problem(compose_bare(*QUIET).problem, torch.device("cpu"), torch.float64)
    for runs, entries in ((63, False), (64, True)):
        start = [torch.zeros(runs, 2, 2, dtype=torch.float64) for _ in range(3)]
        assert isinstance(make_stepper(start, problem), EntryStepper) == entries
        fused = make_stepper(start, problem, fused=True)
        assert isinstance(fused, FusedEntryStepper if entries else FusedStepper)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("batch.seeds=0", "batch.seeds"),
        ("batch.lrs=[0.1,-1]", "batch.lrs"),
        ("batch.init_scales=[]", "batch.init_scales"),
        ("batch.check_every=0", "batch.check_every"),
        ("batch.threads=0", "batch.threads"),
    ],
)
def test_bad_batch_values_are_refused(override, key, tmp_path, compose_bare):
    with pytest.raises(ConfigError, match=key):
        run(compose_bare(*[override, *QUIET]), tmp_path)
    assert not any(tmp_path.iterdir())  # refused before any work started


def test_mistyped_batch_value_is_refused_at_composition(compose_bare):
    with pytest.raises(ConfigCompositionException, match=r"batch\.fused=maybe"):
        compose_bare(*["batch.fused=maybe"])


def test_summary_of_a_batched_run(batch):
    out, _ = batch
    rows, text = summarize(out, metric="entries/1_1", absolute=True)
    assert [r["run"] for r in rows] == [f".#{k}" for k in range(9)]
    assert {r["optim.lr"] for r in rows} == {0.05, 0.2, 3.0} and rows[4]["seed"] == 1
    with open(out / "runs.csv") as f:
        expected = [float(r["entries/1_1"]) for r in csv.DictReader(f)]
    assert [r["entries/1_1"] for r in rows] == expected
    assert (out / "summary_entries_1_1_vs_optim.lr.png").exists() and "9 runs" in text


def test_max_time_is_each_runs_own_step_budget(tmp_path, compose_bare):
    cfg = compose_bare(*QUIET, "batch.lrs=[0.5,0.25]", "train.max_time=1.5", "train.loss_tol=0")
    result = run(cfg, tmp_path)
    rows = read_rows(tmp_path / "runs.csv")
    # 1.5/0.5 and 1.5/0.25 are exact in binary: these counts hold on any IEEE CPU
    assert [(r["status"], int(r["steps"])) for r in rows] == [("max_steps", 3), ("max_steps", 6)]
    assert result["flow_time"] == pytest.approx(1.5)


def test_the_stability_guard_stops_only_the_unstable_runs(tmp_path, compose_bare):
    cfg = compose_bare(*GRID, "batch.seeds=2", "batch.lrs=[0.05,3.0]", "train.on_unstable=stop")
    with pytest.warns(RuntimeWarning, match="sharpness"):
        run(cfg, tmp_path)
    rows = read_rows(tmp_path / "runs.csv")
    assert [r["status"] for r in rows] == ["max_steps", "unstable", "max_steps", "unstable"]
    assert [int(r["steps"]) for r in rows] == [300, 0, 300, 0]  # lr 3 is unstable at step 0


@pytest.mark.parametrize("runs", [1, 2, 10, 1001])
def test_batch_quantiles_are_torch_quantiles(runs):
    """``<tag>/q10|median|q90`` equal ``torch.quantile`` (linear) over the included, non-NaN runs:
    all tags selected together, and tag by tag once a NaN makes their runs differ."""
    generator = torch.Generator().manual_seed(runs)
    values = {
        f"t{i}": torch.randn(runs, generator=generator, dtype=torch.float64) for i in range(3)
    }
    values["single"] = values["t0"].float()
    include = torch.rand(runs, generator=generator) < 0.8
    include[0] = True
    for nan in (False, True):
        if nan and runs > 1:
            values["t1"][1] = torch.nan
        out = quantiles(values, include)
        for tag, value in values.items():
            x = value.double()[include]
            x = x[~torch.isnan(x)]
            for name, q in QUANTILES.items():
                assert out[f"{tag}/{name}"] == pytest.approx(float(torch.quantile(x, q)), rel=1e-12)
