"""Least squares (seed §2–3): the closed-form flow and the min-norm limit of gradient descent."""

import pytest
import torch

from implicit_reg import theory
from implicit_reg.events import read_scalars
from implicit_reg.init import sample_factors
from implicit_reg.run import steps_within


def data(n: int = 4, d: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(
        n, generator=g, dtype=torch.float64
    )


def test_closed_form_flow_solves_the_flow_ode() -> None:
    X, y = data()
    beta0 = torch.randn(9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(theory.least_squares_flow(X, y, 0.0, beta0), beta0, atol=1e-14)
    for t in (0.01, 0.3, 2.0):
        h = 1e-5
        derivative = (
            theory.least_squares_flow(X, y, t + h, beta0)
            - theory.least_squares_flow(X, y, t - h, beta0)
        ) / (2 * h)
        beta = theory.least_squares_flow(X, y, t, beta0)
        assert torch.allclose(derivative, 2 * X.T @ (y - X @ beta), rtol=1e-6, atol=1e-8)  # eq. (5)


def test_closed_form_flow_from_zero_tends_to_pinv() -> None:
    X, y = data()
    assert torch.allclose(
        theory.least_squares_flow(X, y, 1e4), torch.linalg.pinv(X) @ y, atol=1e-12
    )


def test_gd_from_zero_reaches_min_norm_solution(train_run) -> None:
    metrics, out = train_run("problem=least_squares", "train.max_steps=20000")
    final = torch.load(out / "final.pt")
    X, y, beta = final["X"], final["y"], final["beta"]
    min_norm = torch.linalg.pinv(X) @ y
    assert metrics["status"] == "converged"
    assert ((beta - min_norm).norm() / min_norm.norm()).item() < 1e-6
    # other zero-loss solutions exist (n < d) and are longer
    null_direction = torch.linalg.svd(X).Vh[-1]
    assert (X @ (min_norm + null_direction) - y).norm() < 1e-8
    assert (min_norm + null_direction).norm() > min_norm.norm()
    assert metrics["dist/min_norm"] < 1e-6 * min_norm.norm().item()


def test_gd_tracks_the_closed_form_flow_for_small_lr(train_run) -> None:
    _, out = train_run(
        "problem=least_squares", "optim.lr=1e-3", "train.max_steps=3000", "train.log_every=100"
    )
    logged = read_scalars(out)
    distances = logged["dist/flow_closed_form"][1]
    norms = logged["norm/l2"][1]
    assert len(distances) > 20
    # GD is a first-order (O(η)) approximation of the flow
    assert max(distances) < 1e-2 * max(norms)


def test_gd_from_a_nonzero_start_keeps_its_null_space_component(train_run) -> None:
    metrics, out = train_run(
        "problem=least_squares", "init.kind=gaussian", "init.scale=0.3", "train.max_steps=20000"
    )
    final = torch.load(out / "final.pt")
    X, y, beta = final["X"], final["y"], final["beta"]
    (start,) = sample_factors("gaussian", 0.3, "any", [(X.shape[1], 1)], seed=0)
    # the limit of seed eq. (6) from β₀: pinv(X) y plus β₀'s component in the null space of X
    assert torch.allclose(beta, theory.least_squares_flow(X, y, 1e6, start[:, 0]), atol=1e-8)
    assert metrics["dist/min_norm"] > 0.1


def test_max_time_runs_every_step_that_fits(train_run) -> None:
    """``train.max_time=0.3`` at lr 0.1 is 3 steps, flow time 0.3: 0.3 / 0.1 rounds to
    2.9999999999999996 in float64, which ``int()`` truncated to 2 (issue 9, item 6)."""
    metrics, _ = train_run("problem=least_squares", "optim.lr=0.1", "train.max_time=0.3")
    assert metrics["status"] == "max_steps"
    assert metrics["steps"] == 3
    assert metrics["flow_time"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("max_time", "lr", "steps"),
    [
        (0.3, 0.1, 3),  # quotient 2.9999999999999996
        (2.3, 0.1, 23),  # 22.999999999999996
        (0.7, 0.1, 7),  # 6.999999999999999
        (1.0, 0.1, 10),  # exact
        (0.35, 0.1, 3),  # a part step is not taken
        (0.299, 0.1, 2),  # 2.99: not rounding, so not 3
        (0.05, 0.1, 0),
    ],
)
def test_steps_within_is_the_largest_count_that_fits(max_time: float, lr: float, steps: int):
    assert steps_within(max_time, lr) == steps
