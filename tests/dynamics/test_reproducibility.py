"""Same seed, device and dtype give the same numbers, in one process and across processes; the
data seed (``problem.seed``) and the init seed (``seed``) are separate."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from implicit_reg import run
from implicit_reg.factorization import factor_shapes
from implicit_reg.init import sample_factors
from implicit_reg.problems import build_problem

RUN = (
    "problem=matrix_completion", "problem.rows=6", "problem.cols=5", "problem.observed=20",
    "init.scale=0.3", "optim.lr=0.05", "train.max_steps=400", "train.loss_tol=0",
    "train.log_every=100",
)  # fmt: skip


def without_wall_time(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "wall_time_s"}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_twice_in_one_process(tmp_path, dtype, bitwise_equal, compose_bare, read_factors):
    cfg = compose_bare(*RUN, f"dtype={dtype}", "device=cpu", "train.progress=false")
    first, second = run(cfg, tmp_path / "a"), run(cfg, tmp_path / "b")
    assert without_wall_time(first) == without_wall_time(second)
    assert bitwise_equal(read_factors(tmp_path / "a"), read_factors(tmp_path / "b"))
    assert read_factors(tmp_path / "a")[0].dtype == getattr(torch, dtype)


@pytest.mark.slow
def test_across_two_processes(
    tmp_path, bitwise_equal, compose_bare, read_factors, read_metrics, train_cli
):
    """A run in a child process gives the numbers of the same run in this one."""
    child = train_cli(*RUN, f"hydra.run.dir={tmp_path / 'child'}")
    assert child.returncode == 0, child.stderr
    here = run(compose_bare(*RUN, "device=cpu", "train.progress=false"), tmp_path / "here")
    assert bitwise_equal(read_factors(tmp_path / "child"), read_factors(tmp_path / "here"))
    assert without_wall_time(read_metrics(tmp_path / "child")) == without_wall_time(here)


PROBLEMS = {
    "matrix_completion": ("problem.rows=6", "problem.cols=5", "problem.observed=20"),
    "least_squares": ("problem.n=3", "problem.d=7", "model.depth=2", "init.kind=gaussian"),
}


@pytest.fixture
def data_and_init(compose_bare) -> Callable[..., tuple[dict, list[torch.Tensor]]]:
    """``data_and_init(problem, *overrides)``: the problem's data and the initial factors."""

    def draw(problem: str, *overrides: str) -> tuple[dict, list[torch.Tensor]]:
        cfg = compose_bare(f"problem={problem}", *PROBLEMS[problem], *overrides)
        built = build_problem(cfg.problem, torch.device("cpu"), torch.float64)
        shapes = factor_shapes(*built.shape, cfg.model.depth, min(built.shape))
        start = sample_factors(cfg.init.kind, cfg.init.scale, cfg.init.det, shapes, cfg.seed)
        return built.data(), start

    return draw


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_data_seed_and_init_seed_are_separate(problem, bitwise_equal, data_and_init):
    data, init = data_and_init(problem)
    new_init_data, new_init = data_and_init(problem, "seed=1")
    new_data, same_init = data_and_init(problem, "problem.seed=1")
    assert all(torch.equal(data[k], new_init_data[k]) for k in data)  # init seed keeps the problem
    assert not bitwise_equal(init, new_init)
    assert bitwise_equal(init, same_init)  # data seed keeps the init
    assert not all(torch.equal(data[k], new_data[k]) for k in data)
