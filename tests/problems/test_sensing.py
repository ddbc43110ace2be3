"""Matrix sensing (Arora et al. 2019, appendix) and the ground truth every run reports: the loss
and its closed-form gradient against autograd, the paper's scaling of W* and of the Aₖ, exact
recovery by gradient descent, and ``error/reconstruction``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from implicit_reg import scalars
from implicit_reg.problems import LeastSquares, MatrixCompletion, MatrixSensing
from implicit_reg.problems.ground_truth import low_rank
from implicit_reg.problems.matrix_completion import random_low_rank
from implicit_reg.problems.matrix_sensing import random_data

ROWS, COLS, RANK, K = 4, 3, 2, 7  # rows ≠ cols: a transposed vec Aₖ changes every number


def sensing(seed: int = 0, rows: int = ROWS, cols: int = COLS, k: int = K) -> MatrixSensing:
    A, y, truth = random_data(rows, cols, RANK, k, torch.Generator().manual_seed(seed))
    return MatrixSensing(A, y, truth, infimal_rank=RANK)


def planted(problem: MatrixSensing) -> torch.Tensor:
    """A batch (2, 3, rows, cols) of W around W*."""
    generator = torch.Generator().manual_seed(7)
    noise = torch.randn(2, 3, *problem.shape, generator=generator, dtype=torch.float64)
    return problem.ground_truth + noise


def test_loss_is_half_the_squared_misfit_of_each_measurement_batched() -> None:
    problem = sensing()
    A, y = problem.linear_measurements()
    W = planted(problem)
    expected = torch.zeros(W.shape[:-2], dtype=torch.float64)
    for k in range(K):  # ⟨Aₖ, W⟩ entry by entry, no flattening
        expected += 0.5 * ((A[k] * W).sum((-2, -1)) - y[k]) ** 2
    torch.testing.assert_close(problem.loss(W), expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(problem.loss(problem.ground_truth), torch.tensor(0.0).double())


def test_gradient_is_autograd_of_the_loss_batched() -> None:
    problem = sensing()
    W = planted(problem)
    reference = torch.func.grad(lambda V: problem.loss(V).sum())(W)
    torch.testing.assert_close(problem.gradient(W), reference, rtol=1e-12, atol=1e-13)


def test_numpy_closed_form_matches_torch() -> None:
    problem = sensing()
    W = planted(problem)[0, 0]
    gradient, loss = problem.numpy_closed_form()
    np.testing.assert_allclose(gradient(W.numpy()), problem.gradient(W).numpy(), rtol=1e-13)
    assert loss(W.numpy()) == pytest.approx(float(problem.loss(W)), rel=1e-13)
    # the flow's complex-step Jacobian: Im ∇ℓ(W + ihE)/h = Σₖ ⟨Aₖ, E⟩ Aₖ (no conjugation)
    E = torch.randn(ROWS, COLS, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hessian_E = torch.func.jvp(problem.gradient, (W,), (E,))[1]
    step = gradient(W.numpy() + 1e-100j * E.numpy()).imag / 1e-100
    np.testing.assert_allclose(step, hessian_E.numpy(), rtol=1e-12)


def test_measurements_are_of_the_ground_truth() -> None:
    problem = sensing()
    A, y = problem.linear_measurements()
    assert A.shape == (K, ROWS, COLS) and y.shape == (K,)
    torch.testing.assert_close((A * problem.ground_truth).sum((-2, -1)), y, rtol=1e-13, atol=0)


@pytest.mark.parametrize(("rows", "cols", "rank"), [(5, 4, 1), (3, 7, 2), (6, 6, 6)])
def test_ground_truth_has_its_rank_and_entries_of_rms_exactly_one(rows, cols, rank) -> None:
    truth = low_rank(rows, cols, rank, torch.Generator().manual_seed(3))
    assert torch.linalg.matrix_rank(truth).item() == rank
    assert truth.square().mean().item() == pytest.approx(1.0, rel=1e-14)
    target, _ = random_low_rank(rows, cols, rank, 1, torch.Generator().manual_seed(3))
    torch.testing.assert_close(target, truth, rtol=0, atol=0)  # completion: the same W*


def test_measurements_have_rms_one() -> None:
    """Given W* with ‖W*‖²_F = mn, each yₖ ~ N(0, 1) independently (Aₖ entries N(0, 1/(mn))), so
    the mean of y² over N measurements is 1 ± √(2/N) (CLT); allow 5 standard deviations."""
    draws = [sensing(seed, rows=5, cols=4, k=500).y for seed in range(20)]
    y = torch.cat(draws)
    sd = (2 / y.numel()) ** 0.5
    assert abs(y.square().mean().item() - 1) < 5 * sd
    assert abs(y.mean().item()) < 5 * y.numel() ** -0.5


def test_reconstruction_error_is_the_relative_frobenius_distance() -> None:
    problem = sensing()
    W = planted(problem)
    values = scalars.compute(problem, W, flow_time=0.0)
    truth = problem.ground_truth
    expected = torch.stack(
        [torch.stack([(w - truth).norm() / truth.norm() for w in row]) for row in W]
    )
    torch.testing.assert_close(values["error/reconstruction"], expected, rtol=1e-13, atol=0)
    assert scalars.compute(problem, truth, flow_time=0.0)["error/reconstruction"].item() == 0


def test_reconstruction_error_only_where_the_ground_truth_is_known(completion_2x2) -> None:
    target, mask = random_low_rank(3, 3, 1, 5, torch.Generator().manual_seed(0))
    random = MatrixCompletion(target, mask, infimal_rank=1, truth_known=True)
    W = torch.zeros(3, 3, dtype=torch.float64)
    assert scalars.compute(random, W, flow_time=0.0)["error/reconstruction"].item() == 1.0
    least_squares = LeastSquares(torch.eye(2, 3, dtype=torch.float64), torch.ones(2).double())
    for problem in (completion_2x2, least_squares):
        assert problem.ground_truth is None
        values = scalars.compute(problem, torch.ones(*problem.shape).double(), flow_time=0.0)
        assert "error/reconstruction" not in values


def test_gradient_descent_recovers_a_rank_one_matrix_from_few_measurements(train_run) -> None:
    """6×6 rank 1 has 11 degrees of freedom; 30 measurements suffice for the small-init deep
    factorization to find W* itself (Arora et al. 2019), not just some zero-loss W."""
    metrics, out = train_run(
        "problem=matrix_sensing",
        "problem.rows=6",
        "problem.cols=6",
        "problem.rank=1",
        "problem.measurements=30",
        "model.depth=3",
        "init.scale=1e-3",
        "optim.lr=0.05",
        "train.loss_tol=1e-10",
        "train.max_steps=20000",
    )
    final = torch.load(out / "final.pt", weights_only=True)
    truth = final["ground_truth"]
    assert metrics["status"] == "converged"
    assert metrics["error/reconstruction"] < 1e-4
    expected = ((final["W"] - truth).norm() / truth.norm()).item()
    assert metrics["error/reconstruction"] == pytest.approx(expected, rel=1e-9)


def test_a_batch_reports_the_reconstruction_error_of_each_run(train_run) -> None:
    metrics, out = train_run(
        "problem=matrix_sensing",
        "problem.rows=5",
        "problem.cols=4",
        "problem.measurements=30",
        "model.depth=2",
        "batch.seeds=3",
        "optim.lr=0.02",
        "train.max_steps=50",
    )
    final = torch.load(out / "final.pt", weights_only=True)
    truth = final["ground_truth"]
    expected = ((final["W"] - truth).flatten(1).norm(dim=1) / truth.norm()).tolist()
    lines = (out / "runs.csv").read_text().splitlines()
    column = lines[0].split(",").index("error/reconstruction")
    logged = [float(line.split(",")[column]) for line in lines[1:]]
    assert logged == pytest.approx(expected, rel=1e-9)
    assert metrics["error/reconstruction/median"] == pytest.approx(sorted(expected)[1], rel=1e-9)


@pytest.mark.slow
def test_train_py_sensing_writes_reconstruction_error_and_ground_truth(train_cli, tmp_path):
    out = tmp_path / "run"
    done = train_cli(
        "problem=matrix_sensing",
        "problem.rows=5",
        "problem.cols=4",
        "problem.measurements=25",
        "train.max_steps=200",
        f"hydra.run.dir={out}",
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    final = torch.load(out / "final.pt", weights_only=True)
    truth = final["ground_truth"]
    assert truth.shape == (5, 4) and torch.linalg.matrix_rank(truth).item() == 2
    assert truth.square().mean().item() == pytest.approx(1.0, rel=1e-12)
    expected = ((final["W"] - truth).norm() / truth.norm()).item()
    assert metrics["error/reconstruction"] == pytest.approx(expected, rel=1e-9)
