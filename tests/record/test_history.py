"""``train.singular_value_history`` (singular_values.npz) and ``batch.end_to_end_scales``."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from implicit_reg import batch
from implicit_reg.config.validate import ConfigError, validate
from implicit_reg.factorization import factor_shapes, product
from implicit_reg.init import sample_factors
from implicit_reg.record import history
from implicit_reg.record.events import read_scalars

PROBLEM = (
    "problem=matrix_completion", "problem.rows=6", "problem.cols=5", "problem.rank=2",
    "problem.observed=18", "init.det=any",
)  # fmt: skip


def test_a_batch_records_every_runs_top_singular_values_at_each_log(train_run) -> None:
    _, out = train_run(
        *PROBLEM, "batch.seeds=2", "batch.lrs=[0.02,0.05]", "train.max_steps=400",
        "train.log_every=50", "train.singular_value_history=3", "train.loss_tol=1e-6",
    )  # fmt: skip
    saved = history.read(out)
    runs, k = 4, 3
    assert saved["values"].shape == (len(saved["step"]), runs, k)
    assert saved["flow_time"].shape == (len(saved["step"]), runs)
    logged_steps = read_scalars(out)["loss/train/median"][0]
    np.testing.assert_array_equal(saved["step"], logged_steps[: len(saved["step"])])
    assert np.all(np.diff(saved["values"], axis=-1) <= 0)  # σ₁ ≥ σ₂ ≥ σ₃
    with (out / "runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):  # the last record is each run's final state
        final = [float(row[f"singular_values/{j + 1}"]) for j in range(k)]
        np.testing.assert_allclose(saved["values"][-1, i], final, rtol=1e-12)
        assert saved["flow_time"][-1, i] == pytest.approx(float(row["flow_time"]), rel=1e-12)


def test_a_single_runs_history_is_its_logged_curve(train_run) -> None:
    _, out = train_run(*PROBLEM, "train.max_steps=300", "train.singular_value_history=2")
    saved, scalars = history.read(out), read_scalars(out)
    for i in range(2):
        steps, values = scalars[f"singular_values/{i + 1}"]
        np.testing.assert_array_equal(saved["step"], steps)
        np.testing.assert_allclose(saved["values"][:, 0, i], values, rtol=1e-6)  # TB: float32
    np.testing.assert_allclose(saved["flow_time"][:, 0], scalars["time/flow"][1], rtol=1e-6)


def test_an_extended_run_continues_its_history_as_if_never_stopped(
    train_run, tmp_path, compose_cfg
) -> None:
    from omegaconf import OmegaConf

    from implicit_reg.run import run

    common = (*PROBLEM, "batch.seeds=2", "train.log_every=40", "train.loss_tol=0",
              "train.singular_value_history=2", "train.checkpoint_every=100")  # fmt: skip
    _, whole = train_run(*common, "train.max_steps=600")
    _, part = train_run(*common, "train.max_steps=300")
    cfg = compose_cfg(*common, "train.max_steps=600", "train.extend=true")
    OmegaConf.save(cfg, part / ".hydra" / "config.yaml")
    run(cfg, part)
    a, b = history.read(whole), history.read(part)
    np.testing.assert_array_equal(a["step"], b["step"])  # no step twice, none missing
    np.testing.assert_array_equal(a["values"], b["values"])
    np.testing.assert_array_equal(a["flow_time"], b["flow_time"])


def test_resume_keeps_the_records_before_the_checkpoint_step(tmp_path) -> None:
    h = history.SingularValueHistory(1)
    for step in (0, 10, 20, 30):
        values = {"singular_values/1": torch.tensor([float(step)]), "time/flow": torch.ones(1)}
        h.append(step, values)
    h.write(tmp_path)
    resumed = history.SingularValueHistory.resume(tmp_path, 1, start_step=20)
    assert resumed.steps == [0, 10]
    assert [float(v[0, 0]) for v in resumed.values] == [0.0, 10.0]
    assert history.SingularValueHistory.resume(tmp_path, 1, start_step=0).steps == []


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("train.singular_value_history=17",), "train.singular_value_history"),  # > max_tracked
        (("train.singular_value_history=-1",), "train.singular_value_history"),
        (("batch.seeds=70000", "train.singular_value_history=1"), "train.singular_value_history"),
        (("batch.end_to_end_scales=[1e-3]", "batch.init_scales=[0.1]"), "batch.end_to_end_scales"),
        (("batch.end_to_end_scales=[1e-3]", "init.kind=gaussian"), "batch.end_to_end_scales"),
        (("batch.end_to_end_scales=[0]",), "batch.end_to_end_scales"),
    ],
)
def test_bad_history_or_end_to_end_scales_are_refused_naming_the_key(
    compose_cfg, overrides, key
) -> None:
    with pytest.raises(ConfigError, match=key):
        validate(compose_cfg(*PROBLEM, *overrides))


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_end_to_end_scales_start_every_depth_at_the_same_product(compose_cfg, depth) -> None:
    eps = [1e-2, 1e-5]
    cfg = compose_cfg(*PROBLEM, f"model.depth={depth}", f"batch.end_to_end_scales={eps}")
    validate(cfg)
    grid = batch.grid(cfg)
    np.testing.assert_allclose(grid.init_scales**depth, eps, rtol=1e-12)
    shapes = factor_shapes(6, 5, depth, 5)
    for scale, e in zip(grid.init_scales.tolist(), eps, strict=True):
        W0 = product([f.unsqueeze(0) for f in sample_factors("balanced", scale, "any", shapes, 7)])
        (G,) = sample_factors("balanced", 1.0, "any", factor_shapes(6, 5, 1, 5), 7)
        torch.testing.assert_close(W0[0], e * G, rtol=1e-10, atol=0)
