"""The NumPy flow (``dynamics/numpy_flow.py``) held to the torch reference: the field equal to the
torch coordinates' field, the complex-step Jacobian equal to autograd's, in float64, for several
shapes and depths of both problems and both coordinate systems; then whole runs through both."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from implicit_reg import run
from implicit_reg.config.validate import ConfigError, validate
from implicit_reg.dynamics import gradient_flow
from implicit_reg.dynamics.factor_flow import FactorCoordinates
from implicit_reg.dynamics.numpy_flow import numpy_flow
from implicit_reg.dynamics.svd_flow import SvdCoordinates
from implicit_reg.factorization import factor_shapes, product
from implicit_reg.init import sample_factors
from implicit_reg.problems import LeastSquares, MatrixCompletion, MatrixSensing, least_squares_data
from implicit_reg.problems.matrix_completion import parse_entries, random_low_rank
from implicit_reg.problems.matrix_sensing import random_data as sensing_data


def completion(rows: int, cols: int) -> MatrixCompletion:
    """A rank-1 target with all but two entries observed."""
    generator = torch.Generator().manual_seed(rows * 10 + cols)
    target, mask = random_low_rank(rows, cols, 1, rows * cols - 2, generator)
    return MatrixCompletion(target, mask, infimal_rank=1)


def least_squares(n: int, d: int) -> LeastSquares:
    X, y = least_squares_data(n, d, torch.Generator().manual_seed(d))
    return LeastSquares(X, y)


def sensing(rows: int, cols: int, measurements: int) -> MatrixSensing:
    generator = torch.Generator().manual_seed(rows * 10 + cols)
    A, y, truth = sensing_data(rows, cols, 1, measurements, generator)
    return MatrixSensing(A, y, truth, infimal_rank=1)


PROBLEMS = {
    "completion_2x2": lambda: completion(2, 2),
    "completion_3x2": lambda: completion(3, 2),
    "completion_2x4": lambda: completion(2, 4),
    "least_squares_3x5": lambda: least_squares(3, 5),
    "sensing_3x2": lambda: sensing(3, 2, 4),
}


def start_factors(problem, depth: int, width: int, seed: int, scale=0.7) -> list[torch.Tensor]:
    rows, cols = problem.shape
    shapes = factor_shapes(rows, cols, depth, width)
    return sample_factors("gaussian", scale, "any", shapes, seed)


def assert_same_flow(coordinates, problem) -> None:
    """Field to 1e-13 and Jacobian to 1e-11 of their largest entry, and the loss, at y0 and at
    a random nearby point (where the SVD coordinates are off the orthonormal manifold)."""
    fast = numpy_flow(coordinates, problem)
    assert fast is not None
    generator = torch.Generator().manual_seed(7)
    nearby = coordinates.y0 + 1e-3 * torch.randn(coordinates.y0.shape, generator=generator)
    for y in (coordinates.y0, nearby.to(torch.float64)):
        field = coordinates.field(y).numpy()
        jacobian = torch.autograd.functional.jacobian(coordinates.field, y).numpy()
        assert np.abs(fast.field(y.numpy()) - field).max() <= 1e-13 * np.abs(field).max()
        assert np.abs(fast.jacobian(y.numpy()) - jacobian).max() <= 1e-11 * np.abs(jacobian).max()
        loss = float(problem.loss(coordinates.matrix(y)))
        assert fast.loss(y.numpy()) == pytest.approx(loss, rel=1e-13)


@pytest.mark.parametrize("name", PROBLEMS)
@pytest.mark.parametrize(("depth", "width"), [(1, 1), (2, 1), (2, 3), (3, 2), (4, 3)])
def test_numpy_factor_field_and_jacobian_equal_torch_and_autograd(name, depth, width):
    problem = PROBLEMS[name]()
    factors = start_factors(problem, depth, width, seed=depth + width)
    assert_same_flow(FactorCoordinates(problem, factors), problem)


@pytest.mark.parametrize("name", PROBLEMS)
@pytest.mark.parametrize("depth", [2, 3, 4])
def test_numpy_svd_field_and_jacobian_equal_torch_and_autograd(name, depth):
    problem = PROBLEMS[name]()
    W0 = product(start_factors(problem, depth, min(problem.shape), seed=depth))
    if name == "completion_2x2" and torch.linalg.det(W0) > 0:  # det < 0: a sign εᵢ = −1
        W0[0] *= -1
    coordinates = SvdCoordinates(problem, W0, depth)
    if name == "completion_2x2":
        assert coordinates.eps.prod() < 0
    assert_same_flow(coordinates, problem)


def integrate(coordinates, problem, field: str, loss_tol: float):
    outcome, y = gradient_flow(
        coordinates,
        problem,
        field=field,
        rtol=1e-9,
        atol=1e-13,
        lr=1e-2,
        max_time=None,
        max_steps=10**6,
        loss_tol=loss_tol,
        log_every=10**12,
        log_per_decade=0,
        on_log=lambda *_, **__: None,
    )
    return outcome, coordinates.matrix(y)


@pytest.mark.parametrize(("kind", "loss_tol"), [("factors", 1e-3), ("svd", 1e-1)])
def test_numpy_and_torch_fields_integrate_to_the_same_point(kind, loss_tol, completion_2x2):
    """The 2×2 problem of seed eq. (9), depth 3, from Gaussian factors of std 0.1 (hundreds of
    solver steps): the same solver on the two fields reaches ℓ = loss_tol at the same flow time
    and the same W."""
    factors = start_factors(completion_2x2, 3, 2, seed=3, scale=0.1)
    if kind == "factors":
        make = lambda: FactorCoordinates(completion_2x2, factors)  # noqa: E731
    else:
        make = lambda: SvdCoordinates(completion_2x2, product(factors), 3)  # noqa: E731
    fast, W_fast = integrate(make(), completion_2x2, "numpy", loss_tol)
    slow, W_slow = integrate(make(), completion_2x2, "torch", loss_tol)
    assert fast.status == slow.status == "converged"
    assert fast.record["flow_field"] == "numpy" and slow.record["flow_field"] == "torch"
    assert fast.flow_time == pytest.approx(slow.flow_time, rel=1e-6)
    assert torch.allclose(W_fast, W_slow, rtol=1e-6, atol=1e-8)
    assert float(completion_2x2.loss(W_fast)) == pytest.approx(loss_tol, rel=1e-6)
    assert fast.record["solver_steps"] > 100


class QuarticCompletion:
    """A problem without a closed-form gradient in ``numpy_flow``: ¼ Σ_Ω (W − b)⁴."""

    name, shape, infimal_rank = "quartic", (2, 2), 1

    def __init__(self) -> None:
        target, mask = parse_entries([[None, 1.0], [1.0, 0.0]])
        self.target, self.weight = target, mask.to(torch.float64)

    def loss(self, W: torch.Tensor) -> torch.Tensor:
        return 0.25 * ((W - self.target) * self.weight).pow(4).sum((-2, -1))


def test_auto_falls_back_to_torch_and_numpy_refuses_other_problems():
    problem = QuarticCompletion()
    factors = start_factors(problem, 2, 2, seed=0)
    assert numpy_flow(FactorCoordinates(problem, factors), problem) is None
    outcome, W = integrate(FactorCoordinates(problem, factors), problem, "auto", 1e-2)
    assert outcome.record["flow_field"] == "torch" and outcome.status == "converged"
    assert float(problem.loss(W)) == pytest.approx(1e-2, rel=1e-6)
    with pytest.raises(ValueError, match="closed-form gradient"):
        integrate(FactorCoordinates(problem, factors), problem, "numpy", 1e-2)


def test_flow_field_key_reaches_the_run_and_bad_values_are_refused(tmp_path, compose_cfg):
    common = ("optim=flow", "model.depth=2", "train.loss_tol=1e-2", "train.log_every=1000000")
    result = run(compose_cfg(*common, "flow.field=torch"), tmp_path / "torch")
    assert result["flow_field"] == "torch" and result["status"] == "converged"
    result = run(compose_cfg(*common), tmp_path / "auto")
    assert result["flow_field"] == "numpy" and result["status"] == "converged"
    with pytest.raises(ConfigError, match=r"flow\.field"):
        validate(compose_cfg("optim=flow", "flow.field=jax"))
