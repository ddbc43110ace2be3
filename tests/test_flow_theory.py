"""The gradient flow held to the theory (float64): closed forms, eq. (14)/(16), Lemma 5,
Theorem 1 and eq. (20)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.integrate import solve_ivp

from implicit_reg import scalars, theory
from implicit_reg.factorization import DeepFactorization, factor_shapes, product
from implicit_reg.init import sample_factors
from implicit_reg.loss_gradient import loss_gradient
from implicit_reg.optim import gradient_descent, gradient_flow
from implicit_reg.optim.factor_flow import FactorCoordinates
from implicit_reg.optim.svd_flow import SvdCoordinates
from implicit_reg.problems import LeastSquares, MatrixCompletion, least_squares_data
from implicit_reg.problems.matrix_completion import parse_entries, random_low_rank
from implicit_reg.schedule import LogSchedule


def integrate(coordinates, problem, *, max_time=None, loss_tol=0.0, lr=1.0, per_decade=4, **kw):
    """Run the flow and return its logged (step, t, W, exact) points and its outcome."""
    points = []

    def on_log(step, t, W, exact):
        points.append((step, t, W, exact))

    kw = {"rtol": 1e-10, "atol": 1e-14, **kw}
    outcome, y = gradient_flow(
        coordinates,
        problem,
        lr=lr,
        max_time=max_time,
        max_steps=10**6,
        loss_tol=loss_tol,
        log_every=10**12,
        log_per_decade=per_decade,
        on_log=on_log,
        **kw,
    )
    return points, outcome, y


@pytest.fixture
def least_squares() -> LeastSquares:
    X, y = least_squares_data(10, 40, torch.Generator().manual_seed(0))
    return LeastSquares(X, y)


def test_least_squares_flow_matches_closed_form(least_squares):
    """β_t = V Σ_tᵀ Uᵀ y (seed eq. 6) at every logged t, to 1e-6 relative."""
    coordinates = FactorCoordinates(least_squares, [torch.zeros(40, 1, dtype=torch.float64)])
    points, outcome, _ = integrate(coordinates, least_squares, max_time=20.0, lr=0.01)
    assert outcome.status == "max_time"
    times = [t for _, t, _, _ in points if t > 0]
    assert len(times) >= 10 and times[0] <= 0.02 and times[-1] == pytest.approx(20.0)
    for _, t, W, _ in points[1:]:
        closed = theory.least_squares_flow(least_squares.X, least_squares.y, t)
        assert (W[:, 0] - closed).norm() <= 1e-6 * closed.norm(), t


def test_gradient_descent_is_within_order_eta_of_the_flow(least_squares):
    """‖β_GD(t) − β_t‖ = O(η): bounded by C·η and halving with η."""
    t, errors = 2.0, []
    for lr in (0.02, 0.01, 0.005):
        model = DeepFactorization([torch.zeros(40, 1, dtype=torch.float64)])
        steps = round(t / lr)
        gradient_descent(
            model,
            least_squares,
            lr=lr,
            max_steps=steps,
            loss_tol=0.0,
            schedule=LogSchedule(steps, steps, 0),
            on_log=lambda *_: None,
        )
        closed = theory.least_squares_flow(least_squares.X, least_squares.y, t)
        errors.append(float((model()[:, 0].detach() - closed).norm() / closed.norm()))
    assert errors[0] < 0.02 * 2  # C·η with C = 2 (the curvature 2σ²_max(X) is ≈ 3)
    for coarse, fine in itertools.pairwise(errors):
        assert 1.7 < coarse / fine < 2.3


def rectangular_problem(rows: int, cols: int) -> MatrixCompletion:
    target, mask = random_low_rank(rows, cols, 1, rows * cols - 1, torch.Generator().manual_seed(1))
    return MatrixCompletion(target, mask, infimal_rank=1)


_target, _mask = parse_entries([[None, 1.0], [1.0, 0.0]])
COMPLETION_2X2 = MatrixCompletion(_target, _mask, infimal_rank=1)

CASES = [((2, 2), 2), ((2, 2), 3), ((2, 2), 4), ((3, 2), 3), ((2, 3), 2), ((3, 2), 4)]


@pytest.mark.parametrize(("shape", "depth"), CASES)
def test_balanced_factor_flow_svd_flow_and_eq14_agree(shape, depth, completion_2x2):
    """Under balanced init the factors' flow, the SVD-coordinate flow and eq. (14) integrated
    entrywise give the same W(t); along it Ẇ is eq. (14) and σ̇ is eq. (16)."""
    problem = completion_2x2 if shape == (2, 2) else rectangular_problem(*shape)
    rows, cols = shape
    shapes = factor_shapes(rows, cols, depth, min(rows, cols))
    factors = sample_factors("balanced", 0.9, "any", shapes, seed=3)
    W0 = product(factors)
    factor_coords = FactorCoordinates(problem, factors)
    svd_coords = SvdCoordinates(problem, W0, depth)
    by_factors, _, _ = integrate(factor_coords, problem, max_time=3.0, lr=0.01)
    by_svd, _, _ = integrate(svd_coords, problem, max_time=3.0, lr=0.01)

    def eq14(t, w):
        W = torch.from_numpy(w).view(shape)
        return theory.end_to_end_rhs(W, loss_gradient(problem, W), depth).flatten().numpy()

    # both runs log at the same log-spaced times (and each where its own loss dropped)
    svd_at = {t: W for _, t, W, _ in by_svd}
    common = [(t, W_f, svd_at[t]) for _, t, W_f, _ in by_factors if t in svd_at]
    assert len(common) > 10
    times = [t for t, _, _ in common]
    w0 = W0.flatten().numpy()
    direct = solve_ivp(eq14, (0, 3.0), w0, "DOP853", t_eval=times, rtol=1e-10, atol=1e-13)
    assert direct.success
    moved = max(float((W - W0).norm()) for _, _, W, _ in by_factors)
    assert moved > 0.3  # the comparison is over a real stretch of the flow
    for k, (_, W_f, W_s) in enumerate(common):
        W_14 = torch.from_numpy(direct.y[:, k]).view(shape)
        scale = float(W_f.norm())
        assert (W_f - W_s).norm() <= 1e-7 * scale
        assert (W_f - W_14).norm() <= 1e-6 * scale
    check_rates(factor_coords, svd_coords, problem, depth)


def check_rates(factor_coords, svd_coords, problem, depth):
    """At the start: the factors' Ẇ is eq. (14) (Theorem 2) and the SVD coordinates' σ̇ is
    eq. (16)."""
    y = factor_coords.y0
    W, W_dot = torch.func.jvp(factor_coords.matrix, (y,), (factor_coords.field(y),))
    grad = loss_gradient(problem, W)
    expected = theory.end_to_end_rhs(W, grad, depth)
    assert (W_dot - expected).norm() <= 1e-10 * expected.norm()
    z = svd_coords.y0
    U, V, sigma = svd_coords.unpack(z)
    r_dot = svd_coords.field(z)[-len(sigma) :]
    predicted = theory.singular_value_rhs(sigma, U, V, grad, depth)
    assert torch.allclose(r_dot * sigma, predicted, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("sign", ["positive", "negative"])
def test_det_keeps_its_sign_along_the_svd_flow(depth, sign, completion_2x2):
    """Lemma 5: sign(det W(t)) = sign(det W(0)) at every logged point, to ℓ = 1e-6."""
    factors = sample_factors("balanced", 0.1, sign, factor_shapes(2, 2, depth, 2), seed=0)
    coordinates = SvdCoordinates(completion_2x2, product(factors), depth)
    points, outcome, _ = integrate(coordinates, completion_2x2, loss_tol=1e-6, rtol=1e-8)
    assert outcome.status == "converged"
    expected = 1.0 if sign == "positive" else -1.0
    assert [float(exact["det/sign"]) for *_, exact in points] == [expected] * len(points)
    if sign == "positive":  # the det > 0 branch: W₁₁ → ∞ while σ₂ → 0 (and stays > 0)
        assert float(points[-1][3]["singular_values/2"]) < 1e-6


def test_depth2_svd_flow_reaches_the_theorem(completion_2x2):
    """Issue target: depth 2, det > 0, ℓ = 1e-4 with det > 0 and |W₁₁|·√(2ℓ) within 1% of 1."""
    factors = sample_factors("balanced", 1e-2**0.5 * 0.3, "positive", factor_shapes(2, 2, 2, 2), 0)
    coordinates = SvdCoordinates(completion_2x2, product(factors), 2)
    points, outcome, _ = integrate(coordinates, completion_2x2, loss_tol=1e-4, rtol=1e-8)
    assert outcome.status == "converged"
    _, _, W, exact = points[-1]
    loss = float(completion_2x2.loss(W))
    assert loss == pytest.approx(1e-4, rel=1e-6)
    assert float(exact["det/sign"]) == 1.0
    assert abs(float(W[0, 0])) * math.sqrt(2 * loss) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("depth", [2, 3])
def test_theorem1_bounds_along_the_2x2_flow(depth, completion_2x2):
    """To ℓ ≤ 1e-8: ‖W‖·√ℓ bounded below (Frobenius, nuclear, spectral), (erank − 1)/√ℓ and
    D(W, M₁)/√ℓ bounded above, |W₁₁| ≥ 1/√(2ℓ) − 2 (eq. 20) at every logged point."""
    factors = sample_factors("balanced", 0.05, "positive", factor_shapes(2, 2, depth, 2), 0)
    coordinates = SvdCoordinates(completion_2x2, product(factors), depth)
    points, outcome, _ = integrate(
        coordinates, completion_2x2, loss_tol=1e-8, rtol=1e-8, per_decade=5
    )
    assert outcome.status == "converged"
    checked = 0
    for _, t, W, exact in points:
        values = scalars.compute(completion_2x2, W, flow_time=t)
        values.update({k: v for k, v in exact.items() if k in values})
        loss = values["loss/train"]
        if loss >= 1 / 8:
            continue
        checked += 1
        root = loss.sqrt()
        bound = theory.w11_lower_bound(loss)
        assert abs(W[0, 0]) >= 1 / (2 * loss).sqrt() - 2
        for norm in ("norm/fro", "norm/nuclear", "norm/spectral"):
            assert values[norm] >= bound
            if loss <= 1e-3:
                assert values[norm] * root >= 0.64  # 1/√2 − 2√ℓ
        assert values["rank/effective"] <= theory.effective_rank_upper_bound(loss) + 1e-12
        assert (values["rank/effective"] - 1) / root <= 1.0
        assert values["rank/infimal_distance"] <= theory.infimal_distance_upper_bound(loss)
        assert values["rank/infimal_distance"] / root <= 3.0  # √2 + 1/(|W₁₁|√ℓ) → 2√2
    assert checked >= 20
    assert float(points[-1][2][0, 0]) * math.sqrt(2e-8) == pytest.approx(1.0, abs=0.01)


def test_bound_curves_hold_on_the_det_positive_branch():
    """The curves are bounds: for 2×2 matrices with det > 0 at loss ℓ (random residuals of norm
    √(2ℓ) on Ω, W₁₁ anywhere allowed by det > 0), |W₁₁|, σ₁ ≥ eq. (20), D(W, M₁) and erank below
    their curves; and eq. (20) is (1 − √(2ℓ))²/√(2ℓ)."""
    generator = torch.Generator().manual_seed(0)
    for loss in (1e-2, 1e-4, 1e-8):
        root = math.sqrt(2 * loss)
        ell = torch.tensor(loss, dtype=torch.float64)
        assert float(theory.w11_lower_bound(ell)) == pytest.approx((1 - root) ** 2 / root)
        for _ in range(200):
            r = torch.randn(3, generator=generator, dtype=torch.float64)
            r12, r21, w22 = (r / r.norm() * root).tolist()
            w12, w21 = 1 + r12, 1 + r21
            edge = w12 * w21 / w22  # det = W₁₁W₂₂ − W₁₂W₂₁ > 0 beyond this W₁₁
            w11 = edge * (1 + float(torch.rand(1, generator=generator)) ** 2)
            W = torch.tensor([[w11, w12], [w21, w22]], dtype=torch.float64)
            assert torch.linalg.det(W) > 0
            assert float(COMPLETION_2X2.loss(W)) == pytest.approx(loss)
            sigma = torch.linalg.svdvals(W)
            rho = sigma / sigma.sum()
            erank = torch.exp(-(rho * rho.log()).sum())
            assert abs(w11) >= theory.w11_lower_bound(ell)
            assert sigma[1] <= theory.infimal_distance_upper_bound(ell)
            assert erank <= theory.effective_rank_upper_bound(ell)


def test_factor_field_is_minus_the_autograd_gradient():
    factors = sample_factors("gaussian", 0.5, "any", factor_shapes(3, 2, 3, 4), seed=2)
    problem = rectangular_problem(3, 2)
    coordinates = FactorCoordinates(problem, factors)
    y = coordinates.y0.clone().requires_grad_()
    (grad,) = torch.autograd.grad(problem.loss(coordinates.matrix(y)), y)
    assert torch.allclose(coordinates.field(coordinates.y0), -grad, rtol=1e-12, atol=1e-15)
    assert torch.allclose(
        loss_gradient(problem, W := coordinates.matrix(coordinates.y0)),
        (W - problem.target) * problem.weight,
    )


def test_svd_coordinates_report_a_near_crossing():
    """A fully observed diag(1, 3) target from diag(0.3, 0.1) (rotated by 1e-9): the two
    singular values must meet; the flow warns and records when instead of failing silently."""
    target = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    problem = MatrixCompletion(target, torch.ones(2, 2, dtype=torch.bool), infimal_rank=2)
    angle = torch.tensor(1e-9, dtype=torch.float64)
    R = torch.stack(
        [torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])]
    )
    W0 = R @ torch.diag(torch.tensor([0.3, 0.1], dtype=torch.float64))
    coordinates = SvdCoordinates(problem, W0, 2)
    with pytest.warns(RuntimeWarning, match="nearly cross"):
        integrate(coordinates, problem, max_time=5.0, loss_tol=1e-10, rtol=1e-8)
    record = coordinates.record()
    assert record["svd_near_crossing_at_time"] is not None
    assert 0 < record["svd_near_crossing_at_time"] < 5.0
    assert record["svd_min_gap"] < 1e-6
