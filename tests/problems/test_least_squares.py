"""Least squares (seed §2–3): the closed-form flow and the min-norm limit of gradient descent."""

import pytest
import torch

from implicit_reg import theory
from implicit_reg.init import sample_factors
from implicit_reg.record.events import read_scalars
from implicit_reg.run import steps_within


def data(n: int = 4, d: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(
        n, generator=g, dtype=torch.float64
    )


def flow_by_matrix_exponential(X: torch.Tensor, y: torch.Tensor, t: float, beta0: torch.Tensor):
    """β_t of β̇ = z − Aβ, A = 2XᵀX, z = 2Xᵀy (seed eq. 5) without the SVD: the affine ODE is the
    linear one (β, 1)˙ = M (β, 1) with M = [[−A, z], [0, 0]], so (β_t, 1) = e^{tM} (β₀, 1)."""
    d = X.shape[1]
    M = torch.zeros(d + 1, d + 1, dtype=X.dtype)
    M[:d, :d], M[:d, d] = -2 * X.T @ X, 2 * X.T @ y
    return (torch.linalg.matrix_exp(t * M) @ torch.cat([beta0, torch.ones(1, dtype=X.dtype)]))[:d]


def test_closed_form_flow_solves_the_flow_ode() -> None:
    """seed eq. (6), β_t = V Σ_tᵀ Uᵀ y + V e^{−2tΛ} Vᵀ β₀, equals e^{tM}(β₀, 1), an independent
    solution of eq. (5), from β₀ = 0 and from a random β₀.

    Catches: a factor 2 in the flow time (e^{−4tλ}), or β₀'s null-space component decayed."""
    X, y = data()
    beta0 = torch.randn(9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # at t = 0, β₀ goes through V and Vᵀ: a few roundings of its O(1) entries
    assert torch.allclose(theory.least_squares_flow(X, y, 0.0, beta0), beta0, rtol=0, atol=1e-13)
    for start in (torch.zeros(9, dtype=torch.float64), beta0):
        for t in (0.01, 0.3, 2.0):
            closed = theory.least_squares_flow(X, y, t, start)
            exact = flow_by_matrix_exponential(X, y, t, start)
            # both are within a few ε·t‖A‖ ≲ 1e-14 relative of β_t (t‖A‖ ≤ 2·36 here; seen
            # ≤ 2e-14): 1e-10 leaves a margin of 10⁴
            assert (closed - exact).norm() <= 1e-10 * exact.norm(), t


def test_closed_form_flow_from_zero_tends_to_pinv() -> None:
    """β_t → Xᵀ(XXᵀ)⁻¹y, the minimum-norm solution (seed §3), computed by a linear solve rather
    than the SVD; ``min_norm_solution`` is that point too.

    Catches: a ``min_norm_solution`` that is not the minimum-norm point (e.g. scaled by 0.999),
    or a closed form whose limit from 0 is another point."""
    X, y = data()
    min_norm = X.T @ torch.linalg.solve(X @ X.T, y)
    # e^{−2tλ_min} with t = 1e4 and λ_min(XXᵀ) ≳ 0.1 is 0; the rest is rounding, cond(XXᵀ) ≲ 1e2
    assert torch.allclose(theory.least_squares_flow(X, y, 1e4), min_norm, rtol=0, atol=1e-12)
    assert torch.allclose(theory.min_norm_solution(X, y), min_norm, rtol=0, atol=1e-12)


def test_gd_from_zero_reaches_min_norm_solution(train_run) -> None:
    """GD from β₀ = 0 ends at pinv(X) y (seed §3), and longer zero-loss solutions exist.

    Catches: a GD start other than 0 (``init.kind=zero`` ignored), or ``dist/min_norm`` measured
    from another point."""
    metrics, out = train_run("problem=least_squares", "train.max_steps=20000")
    final = torch.load(out / "final.pt", weights_only=True)
    X, y, beta = final["X"], final["y"], final["beta"]
    min_norm = torch.linalg.pinv(X) @ y
    assert metrics["status"] == "converged"
    # loss_tol 1e-24: ‖Xβ − y‖ ≤ 1e-12, and β stays in the row space of X, so ‖β − pinv(X)y‖ ≤
    # 1e-12/σ_min(X) ≈ 2e-12 (seen 4e-13 relative); 1e-6 holds with a wide margin
    assert ((beta - min_norm).norm() / min_norm.norm()).item() < 1e-6
    # other zero-loss solutions exist (n < d) and are longer
    null_direction = torch.linalg.svd(X).Vh[-1]
    assert (X @ (min_norm + null_direction) - y).norm() < 1e-8  # rounding: ~1e-15
    assert (min_norm + null_direction).norm() > min_norm.norm()
    assert metrics["dist/min_norm"] < 1e-6 * min_norm.norm().item()


def test_gd_tracks_the_closed_form_flow_for_small_lr(train_run) -> None:
    """The logged ``dist/flow_closed_form`` ‖β_GD − β_t‖, t = lr·step (seed eq. 6), stays small.

    Catches: a factor 2 in GD's flow time (β_{2t} is far from β_GD early on)."""
    _, out = train_run(
        "problem=least_squares", "optim.lr=1e-3", "train.max_steps=3000", "train.log_every=100"
    )
    logged = read_scalars(out)
    distances = logged["dist/flow_closed_form"][1]
    norms = logged["norm/l2"][1]
    assert len(distances) > 20  # 3000 steps logged every 100: 31 points, no solver involved
    # GD is a first-order approximation of the flow: the gap is O(η λ_max) ≈ 1e-3·2σ²_max(X) ≈
    # 4e-3 of ‖β‖ (seen 2.6e-4); 1e-2 leaves a margin of ~40
    assert max(distances) < 1e-2 * max(norms)


def test_gd_from_a_nonzero_start_keeps_its_null_space_component(train_run) -> None:
    """From β₀ ≠ 0, GD ends at pinv(X) y plus β₀'s null-space component (seed eq. 6, t → ∞).

    Catches: ``least_squares_flow`` decaying the null-space part of β₀ (its limit would be the
    minimum-norm solution)."""
    metrics, out = train_run(
        "problem=least_squares", "init.kind=gaussian", "init.scale=0.3", "train.max_steps=20000"
    )
    final = torch.load(out / "final.pt", weights_only=True)
    X, y, beta = final["X"], final["y"], final["beta"]
    (start,) = sample_factors("gaussian", 0.3, "any", [(X.shape[1], 1)], seed=0)
    # the limit of seed eq. (6) from β₀: pinv(X) y plus β₀'s component in the null space of X
    # converged to loss 1e-24 (β within ~1e-12 of its limit, seen 8e-13): atol 1e-8 is ample
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
    # the quotients are IEEE divisions, correctly rounded on every CPU: the same counts everywhere
    assert int(steps_within(max_time, torch.tensor([lr], dtype=torch.float64))[0]) == steps
