"""NaN/Inf in the loss or the factors ends a run as ``diverged`` at the step it happened, keeps
the last finite metrics, and lets a sweep go on."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from implicit_reg import run
from implicit_reg.dynamics import descend
from implicit_reg.dynamics.gd import Runs
from implicit_reg.dynamics.steppers import MatmulStepper
from implicit_reg.problems import MatrixCompletion
from implicit_reg.record.schedule import LogSchedule

LR = 10.0  # far above 1/λ_max(XᵀX): gradient descent on least squares blows up


def gd_recursion(X: torch.Tensor, y: torch.Tensor, lr: float) -> list[float]:
    """Losses ‖y − Xβ_k‖² of β_{k+1} = β_k − lr·2Xᵀ(Xβ_k − y), β_0 = 0 (seed eq. 1 on eq. 3), up
    to and including the first non-finite one."""
    beta, losses = torch.zeros(X.shape[1], dtype=torch.float64), []
    while not losses or math.isfinite(losses[-1]):
        residual = X @ beta - y
        losses.append(float(residual.square().sum()))
        beta = beta - lr * 2 * X.T @ residual
    return losses


def test_diverging_least_squares_stops_at_the_first_non_finite_step(
    tmp_path, compose_bare, read_metrics
):
    cfg = compose_bare(
        "problem=least_squares", f"optim.lr={LR}", "train.log_every=1000000", "device=cpu",
        "train.progress=false",
    )  # fmt: skip
    result = run(cfg, tmp_path)
    data = torch.load(tmp_path / "final.pt", weights_only=True)
    losses = gd_recursion(data["X"], data["y"], LR)
    k = len(losses) - 1  # the first step whose loss is not finite
    assert k > 10
    # both sides in this process; the loss grows by orders of magnitude a step, so rounding
    # cannot move the step where it overflows
    assert (result["status"], result["steps"]) == ("diverged", k)
    saved = read_metrics(tmp_path)
    assert saved["status"] == "diverged" and saved["steps"] == k
    # The last finite state is what metrics.json and TensorBoard end with: step k − 1.
    assert saved["time/flow"] == pytest.approx(LR * (k - 1), rel=1e-12)
    assert saved["loss/train"] == pytest.approx(losses[k - 1], rel=1e-9)
    assert math.isfinite(saved["norm/l2"]) and saved["norm/l2"] > 1e100
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("loss/train")]
    assert steps[-1] == k - 1 and steps == sorted(set(steps))


@pytest.mark.parametrize("check_every", [1, 4])
def test_a_non_finite_factor_ends_the_run_even_where_the_product_hides_it(check_every):
    """∞ in a hidden unit that W_2 multiplies by zero: W = W_2 W_1 gets 0·∞ = NaN, so the loss
    check sees it (no separate pass over the factors needed); the run is put back to its last
    finite state, whatever the host-check interval."""
    problem = MatrixCompletion(
        torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64),
        torch.tensor([[False, True], [True, True]]),
        infimal_rank=1,
    )
    W1 = torch.tensor([[0.3, 0.1], [0.2, 0.4]], dtype=torch.float64)
    W2 = torch.tensor([[0.5, 0.0], [0.1, 0.0]], dtype=torch.float64)  # hidden unit 2 unused
    stepper = MatmulStepper([W1[None], W2[None]], problem)
    runs = Runs.start(1, torch.device("cpu"))
    logged: list[int] = []
    at_step_5: list[torch.Tensor] = []

    def plant_infinity(step: int, W: torch.Tensor, loss: torch.Tensor) -> None:
        logged.append(step)
        if step == 5:  # as if the update of step 5 had overflowed
            at_step_5.extend(stepper.factors())
            stepper.params[0].data[1, 1] = math.inf

    descend(
        stepper,
        torch.tensor([0.1], dtype=torch.float64),
        runs,
        max_steps=torch.tensor([100]),
        loss_tol=0.0,
        schedule=LogSchedule(100, every=5, per_decade=0),
        on_log=plant_infinity,
        check_every=check_every,
    )
    assert (runs.names(), runs.steps.tolist()) == (["diverged"], [6])
    assert logged == [0, 5]  # nothing logged after the run stopped
    assert all(torch.equal(a, b) for a, b in zip(stepper.factors(), at_step_5, strict=True))


@pytest.mark.slow
def test_a_sweep_goes_on_after_a_diverged_run(tmp_path, read_metrics, train_cli):
    done = train_cli(
        "-m", "problem=least_squares", f"optim.lr={LR},0.1", "train.max_steps=2000",
        f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_metrics(tmp_path / f"0_optim.lr={LR}")["status"] == "diverged"
    assert read_metrics(tmp_path / "1_optim.lr=0.1")["status"] == "converged"
