"""The Arora et al. (2019) presets: each composes (Hydra's compose API) into a multirun over the
methods and observation counts the paper sweeps, every job of it is a valid config whose batch
is seeds × end-to-end scales, and (slow) a cut-down of each quick preset runs through the CLI and
draws its figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from implicit_reg import batch
from implicit_reg.config.validate import validate

METHODS = "depth1,depth2,depth3,depth4,nuclear_norm"
FULL_METHODS = "depth2,depth3,depth4,nuclear_norm_scs"  # the paper: no depth 1; SCS at 100×100
FULL, QUICK = [1e-4, 1e-5, 1e-6, 1e-7], [1e-3, 1e-4, 1e-5, 1e-6]
PRESETS = {
    # preset: (count key, counts, methods, seeds, ε, (n, rank) of the n×n ground truth)
    "arora2019_completion": ("observed", "2000,5000", FULL_METHODS, 5, FULL, (100, 5)),
    "arora2019_completion_quick": ("observed", "300,600", METHODS, 5, QUICK, (30, 3)),
    "arora2019_sensing": ("measurements", "2000,5000", FULL_METHODS, 5, FULL, (100, 5)),
    "arora2019_sensing_quick": ("measurements", "220,300", METHODS, 5, QUICK, (30, 3)),
    "arora2019_dynamics": ("observed", "2000", "depth1,depth2,depth3", 3, [1e-4], (100, 5)),
    "arora2019_dynamics_quick": ("observed", "300", "depth1,depth2,depth3", 3, [1e-3], (30, 3)),
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_sweeps_the_papers_grid(compose_cfg, preset: str) -> None:
    count_key, counts, methods, seeds, eps, (n, rank) = PRESETS[preset]
    cfg = compose_cfg(f"experiment={preset}", hydra=True)  # with its hydra node
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert dict(cfg.hydra.sweeper.params) == {f"problem.{count_key}": counts, "method": methods}
    assert cfg.hydra.sweep.dir.startswith(f"outputs/experiments/{preset}/")
    for count in counts.split(","):
        for method in methods.split(","):
            job = compose_cfg(f"experiment={preset}", f"problem.{count_key}={count}",
                              f"method={method}")  # fmt: skip
            validate(job)
            assert (job.problem.rows, job.problem.cols, job.problem.rank) == (n, n, rank)
            assert job.problem[count_key] == int(count)
            if method.startswith("nuclear_norm"):
                assert job.optim.name == "nuclear_norm" and batch.size(job) == 1
                assert job.optim.solver == ("scs" if method.endswith("_scs") else "clarabel")
                continue
            depth = int(method.removeprefix("depth"))
            # the paper's optimizer and stopping: GroupRMSprop (lr 1e-3, ε 1e-4 on the mean
            # squared error), float32, mean squared error 1e-6 on the observations
            assert job.optim.name == "group_rmsprop" and job.model.depth == depth
            assert (job.optim.lr, job.optim.alpha, job.optim.eps) == (1e-3, 0.99, 1e-4)
            assert job.dtype == "float32" and job.train.mse_tol == 1e-6
            grid = batch.grid(job)
            assert len(grid) == seeds * len(eps)
            assert sorted(set(grid.seeds.tolist())) == list(range(seeds))
            np.testing.assert_allclose(sorted(set((grid.init_scales**depth).tolist())),
                                       sorted(eps), rtol=1e-9)  # fmt: skip
            assert job.init.kind == "balanced"
            history = job.train.singular_value_history
            assert history == (10 if "dynamics" in preset else 0)


CUT_DOWN = {
    "arora2019_completion_quick": (
        ["problem.rows=8", "problem.cols=8", "problem.rank=1", "problem.observed=20,40",
         "method=depth1,depth3,nuclear_norm", "optim.lr=0.01"], "arora2019_completion.png"),
    "arora2019_sensing_quick": (
        ["problem.rows=6", "problem.cols=6", "problem.rank=1", "problem.measurements=14,30",
         "method=depth1,depth3,nuclear_norm", "optim.lr=0.01"], "arora2019_sensing.png"),
    "arora2019_dynamics_quick": (
        ["problem.rows=8", "problem.cols=8", "problem.rank=2", "problem.observed=40",
         "method=depth1,depth2", "optim.lr=0.01"], "arora2019_dynamics.png"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(CUT_DOWN))
def test_quick_preset_runs_and_draws_its_figure(
    tmp_path: Path, train_cli, python_cli, preset: str
) -> None:
    overrides, png = CUT_DOWN[preset]
    sweep = tmp_path / "sweep"
    done = train_cli(
        f"experiment={preset}", *overrides, "train.max_steps=3000", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]  # every job finished (none failed)
    drawn = python_cli("-m", "implicit_reg.figures", str(sweep))
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert png in [Path(line).name for line in drawn.stdout.split()]
    assert (sweep / "figures" / png).stat().st_size > 20_000
