"""The gradient flow held to the theory (float64): closed forms, eq. (14)/(16), Lemma 5,
Theorem 1 and eq. (20)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.integrate import solve_ivp

from implicit_reg import scalars, theory
from implicit_reg.dynamics import gradient_descent, gradient_flow
from implicit_reg.dynamics.factor_flow import FactorCoordinates
from implicit_reg.dynamics.loss_gradient import loss_gradient
from implicit_reg.dynamics.svd_flow import SvdCoordinates
from implicit_reg.factorization import DeepFactorization, factor_shapes, product
from implicit_reg.init import sample_factors
from implicit_reg.problems import LeastSquares, MatrixCompletion, least_squares_data
from implicit_reg.problems.matrix_completion import parse_entries, random_low_rank
from implicit_reg.record.schedule import LogSchedule


def integrate(coordinates, problem, *, max_time=None, loss_tol=0.0, lr=1.0, per_decade=4, **kw):
    """Run the flow and return its logged (step, t, W, exact) points, its outcome and final y.

    At most 50,000 solver steps, 15× the most any test here takes (3,321), so that a broken
    field ends ``max_steps`` in seconds instead of crawling on."""
    points = []

    def on_log(step, t, W, exact):
        points.append((step, t, W, exact))

    kw = {"rtol": 1e-10, "atol": 1e-14, **kw}
    outcome, y = gradient_flow(
        coordinates,
        problem,
        lr=lr,
        max_time=max_time,
        max_steps=50_000,
        loss_tol=loss_tol,
        log_every=10**12,
        log_per_decade=per_decade,
        on_log=on_log,
        **kw,
    )
    return points, outcome, y


class RecordingSvd(SvdCoordinates):
    """SVD coordinates that keep the integrated state y of every logged point (``gradient_flow``
    asks ``exact(y)`` there), so that a test can unpack U, V and σ itself."""

    def __init__(self, problem: MatrixCompletion, W0: torch.Tensor, depth: int) -> None:
        super().__init__(problem, W0, depth)
        self.states: list[torch.Tensor] = []

    def exact(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        self.states.append(y.clone())
        return super().exact(y)


def integrated_det_sign(coordinates: SvdCoordinates, y: torch.Tensor) -> float:
    """sign det W of W = U diag(σ) Vᵀ, σᵢ = εᵢe^{rᵢ}, from the integrated state: sign det U ·
    sign det V · Πεᵢ (σ₂ itself may underflow to 0), after checking that U and V are
    orthonormal (so that det U, det V = ±1).

    The raw state drifts off orthonormality by the solver's error (seen ≤ 7e-7 at rtol 1e-8 over
    t ≤ 6e7); ``unpack``'s Newton–Schulz step squares that (seen ≤ 3e-13), so 1e-9 allows a raw
    drift of ~3e-5, while a field that does not keep UᵀU = I drifts by O(1)."""
    U, V, _ = coordinates.unpack(y)
    for Q in (U, V):
        eye = torch.eye(Q.shape[1], dtype=Q.dtype)
        assert (Q.mT @ Q - eye).norm() <= 1e-9
    return float(torch.linalg.det(U).sign() * torch.linalg.det(V).sign() * coordinates.eps.prod())


def resolvable(W: torch.Tensor) -> bool:
    """Whether sign det W can be read off W's entries: σ₂/σ₁ > 1e-8. An error of δ‖W‖ in W (δ ≈
    1e-16 rounding, ≲ 1e-9 from a solver at rtol 1e-10) moves det W = ±σ₁σ₂ by ≲ 2δσ₁², under
    20% of |det W|."""
    sigma = torch.linalg.svdvals(W)
    return bool(sigma[1] > 1e-8 * sigma[0])


@pytest.fixture
def least_squares() -> LeastSquares:
    X, y = least_squares_data(10, 40, torch.Generator().manual_seed(0))
    return LeastSquares(X, y)


def test_least_squares_flow_matches_closed_form(least_squares):
    """The integrated flow is β_t = V Σ_tᵀ Uᵀ y (seed eq. 6) at every logged t.

    Catches: a factor 2 in the flow time (the closed form's e^{−2tλ} as e^{−4tλ}, or the
    solver's t logged as 2t), or a factor 2 in the least-squares gradient (eq. 4)."""
    coordinates = FactorCoordinates(least_squares, [torch.zeros(40, 1, dtype=torch.float64)])
    points, outcome, _ = integrate(coordinates, least_squares, max_time=20.0, lr=0.01)
    assert outcome.status == "max_time"
    times = [t for _, t, _, _ in points if t > 0]
    # the schedule alone logs steps 1, 2, 3, 6, …, 1778 (t = 0.01 … 17.78, 14 points); a log
    # where the loss dropped can only stand in for the scheduled step within half a step of it
    assert len(times) >= 10 and times[0] <= 0.02 and times[-1] == pytest.approx(20.0)
    for _, t, W, _ in points[1:]:
        closed = theory.least_squares_flow(least_squares.X, least_squares.y, t)
        # the flow contracts (β̇ = −2XᵀX(β − β*)), so the error stays near the solver's rtol
        # 1e-10 (seen 1.4e-11 relative): 1e-6 is a margin of 10⁴
        assert (W[:, 0] - closed).norm() <= 1e-6 * closed.norm(), t


def test_gradient_descent_is_within_order_eta_of_the_flow(least_squares):
    """‖β_GD − β_t‖ = O(η) at the flow time t that gradient descent reports (lr·step): bounded by
    C·η and halving with η.

    Catches: a factor 2 in gradient descent's flow time (``lr * step`` as ``2 * lr * step``)."""
    t, errors = 2.0, []
    for lr in (0.02, 0.01, 0.005):
        model = DeepFactorization([torch.zeros(40, 1, dtype=torch.float64)])
        steps = round(t / lr)
        logged = {}

        def on_log(step, flow_time, W, logged=logged):
            logged[step] = (flow_time, W.clone())

        outcome = gradient_descent(
            model,
            least_squares,
            lr=lr,
            max_steps=steps,
            loss_tol=0.0,
            schedule=LogSchedule(steps, steps, 0),
            on_log=on_log,
        )
        flow_time, W = logged[steps]
        assert outcome.flow_time == flow_time
        closed = theory.least_squares_flow(least_squares.X, least_squares.y, flow_time)
        errors.append(float((W[:, 0] - closed).norm() / closed.norm()))
    # C·η with C = 2 (seen 0.13η): the per-step error is O(η²λ²), λ ≤ 2σ²_max(X) ≈ 4.4
    assert errors[0] < 0.02 * 2
    for coarse, fine in itertools.pairwise(errors):
        # error = c₁η + O(η²) with η·λ ≤ 0.09: the ratio is 2(1 + O(0.09)) (seen 2.0004)
        assert 1.7 < coarse / fine < 2.3


def rectangular_problem(rows: int, cols: int) -> MatrixCompletion:
    target, mask = random_low_rank(rows, cols, 1, rows * cols - 1, torch.Generator().manual_seed(1))
    return MatrixCompletion(target, mask, infimal_rank=1)


_target, _mask = parse_entries([[None, 1.0], [1.0, 0.0]])
COMPLETION_2X2 = MatrixCompletion(_target, _mask, infimal_rank=1)

CASES = [((2, 2), 2), ((2, 2), 3), ((2, 2), 4), ((3, 2), 3), ((2, 3), 2), ((3, 2), 4)]


@pytest.mark.parametrize(("shape", "depth"), CASES)
def test_balanced_factor_flow_svd_flow_and_eq14_agree(shape, depth, completion_2x2):
    """Under balanced init the factors' flow (Theorem 2), the SVD-coordinate flow (eqs. 15–16)
    and eq. (14) integrated entrywise by an explicit Runge–Kutta method give the same W(t) at
    every logged t; at the start Ẇ is eq. (14) and σ̇ is eq. (16) (``check_rates``).

    Catches: a wrong exponent in eq. (16) in the SVD field (|σ|^{1−2/L} as |σ|^{1−1/L}), in
    ``singular_value_rhs`` or in ``end_to_end_rhs``; a wrong ε in ``SvdCoordinates`` (W(0) ≠ W0);
    a factor 2 in the flow time the solver loop logs."""
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

    for points in (by_factors, by_svd):
        # schedule steps 0, 1, 2, 3, 6, 10, …, 178 and the end, t = 3: 12 points (a log where
        # the loss dropped only stands in for a scheduled one within half a step of it)
        assert len(points) >= 10 and points[-1][1] == pytest.approx(3.0, rel=1e-12)
        times = [t for _, t, _, _ in points]
        direct = solve_ivp(
            eq14, (0, 3.0), W0.flatten().numpy(), "DOP853", t_eval=times, rtol=1e-10, atol=1e-13
        )
        assert direct.success
        moved = max(float((W - W0).norm()) for _, _, W, _ in points)
        assert moved > 0.3  # the comparison is over a real stretch of the flow
        for k, (_, _, W, _) in enumerate(points):
            W_14 = torch.from_numpy(direct.y[:, k]).view(shape)
            # integrations at rtol 1e-10 over t ≤ 3, a non-stiff stretch (‖W‖ ≤ 1.7), seen ≤
            # 1.3e-10 apart: 1e-7 is a margin of ~800
            assert (W - W_14).norm() <= 1e-7 * W.norm()
    check_rates(factor_coords, svd_coords, problem, depth)


def check_rates(factor_coords, svd_coords, problem, depth):
    """At the start: the factors' Ẇ is eq. (14) (Theorem 2) and the SVD coordinates' σ̇ is
    eq. (16)."""
    y = factor_coords.y0
    W, W_dot = torch.func.jvp(factor_coords.matrix, (y,), (factor_coords.field(y),))
    grad = loss_gradient(problem, W)
    expected = theory.end_to_end_rhs(W, grad, depth)
    # the same quantity by two routes in float64 (eigh's powers vs products of balanced
    # factors): a few roundings of O(1) numbers, so 1e-10 relative is ample
    assert (W_dot - expected).norm() <= 1e-10 * expected.norm()
    z = svd_coords.y0
    U, V, sigma = svd_coords.unpack(z)
    r_dot = svd_coords.field(z)[-len(sigma) :]
    predicted = theory.singular_value_rhs(sigma, U, V, grad, depth)
    # σ̇ = σ ṙ: again two float64 routes to one formula, equal to a few roundings
    assert torch.allclose(r_dot * sigma, predicted, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("sign", ["positive", "negative"])
def test_det_keeps_its_sign_along_the_svd_flow(depth, sign, completion_2x2):
    """Lemma 5: sign det W(t) = sign det W(0), to ℓ = 1e-6, read off what is integrated, not off
    the bookkeeping (``det/sign`` is Πεᵢ, fixed by construction):

    - at every logged point, from the state: U, V orthonormal and sign det U · sign det V ·
      Πεᵢ; and from W's entries wherever they resolve det W; the logged ``det/sign``
      agrees, W(0) = W0, and the loss never increases (a gradient flow);
    - at t = 1 and at the last logged t ≤ 100 with σ₂/σ₁ > 1e-6 (W has moved: ℓ has dropped
      to 0.35 … 1e-6 there, and W's entries still resolve det W; at depth 2 their rounding
      later flips it), against the factors' flow (Theorem 2), whose state has no sign built
      in: the same W, with the same sign of det.

    Catches: a flipped ε in ``SvdCoordinates.__init__`` (ε not flipped with U's or V's column:
    W(0) ≠ W0 and det W(0) of the wrong sign; or only U made det +1); a field that flips a
    singular value's rate (ε dropped from eq. 16's |σ|^{2−2/L}/σ); a ``det/sign`` that does not
    follow the state."""
    factors = sample_factors("balanced", 0.1, sign, factor_shapes(2, 2, depth, 2), seed=0)
    W0 = product(factors)
    expected = 1.0 if sign == "positive" else -1.0
    coordinates = RecordingSvd(completion_2x2, W0, depth)
    points, outcome, _ = integrate(coordinates, completion_2x2, loss_tol=1e-6, rtol=1e-8)
    assert outcome.status == "converged"
    assert len(coordinates.states) == len(points)
    # W(0) = U diag(σ) Vᵀ of W0's SVD: a few roundings (seen ≤ 1e-15 relative)
    assert (points[0][2] - W0).norm() <= 1e-13 * W0.norm()
    resolved, losses = 0, []
    for (_, _, W, exact), y in zip(points, coordinates.states, strict=True):
        assert integrated_det_sign(coordinates, y) == expected
        assert float(exact["det/sign"]) == expected
        if resolvable(W):
            resolved += 1
            assert float(torch.linalg.det(W).sign()) == expected
        losses.append(float(completion_2x2.loss(W)))
    # t = 0, 1, 2 are logged (or stood in for within half a unit) with σ₂/σ₁ ≥ 2e-3
    assert resolved >= 3
    for before, after in itertools.pairwise(losses):
        # ℓ decreases along the flow; read off the interpolant at rtol 1e-8: 1e-7 relative slack
        assert after <= before * (1 + 1e-7)
    if sign == "positive":  # the det > 0 branch: W₁₁ → ∞ while σ₂ → 0 (and stays > 0)
        assert float(points[-1][3]["singular_values/2"]) < 1e-6
    sigma = [
        (t, exact["singular_values/1"], exact["singular_values/2"]) for _, t, _, exact in points
    ]
    last = max(t for t, s1, s2 in sigma if t <= 100 and s2 > 1e-6 * s1)
    assert last >= 3
    for T in (1.0, last):
        svd = SvdCoordinates(completion_2x2, W0, depth)
        _, _, y_svd = integrate(svd, completion_2x2, max_time=T)
        by_factors = FactorCoordinates(completion_2x2, factors)
        _, _, y_factors = integrate(by_factors, completion_2x2, max_time=T)
        W_svd, W_factors = svd.matrix(y_svd), by_factors.matrix(y_factors)
        # both at rtol 1e-10 over t ≤ 100, seen ≤ 2e-9 apart: 1e-7 is a margin of 50
        assert (W_svd - W_factors).norm() <= 1e-7 * W_factors.norm()
        assert resolvable(W_factors)
        assert float(torch.linalg.det(W_factors).sign()) == expected
        assert integrated_det_sign(svd, y_svd) == expected


def test_depth2_svd_flow_reaches_the_theorem(completion_2x2):
    """Issue target: depth 2, det > 0, ℓ = 1e-4 with det > 0 (from the integrated U, V, σ: W's
    entries no longer resolve it) and |W₁₁|·√(2ℓ) within 1% of 1.

    Catches: W assembled wrongly from the integrated state (U diag(σ) V for U diag(σ) Vᵀ), or a
    field that never reaches ℓ = 1e-4 (the rotation rates A of eq. 15 with the wrong sign)."""
    factors = sample_factors("balanced", 1e-2**0.5 * 0.3, "positive", factor_shapes(2, 2, 2, 2), 0)
    coordinates = SvdCoordinates(completion_2x2, product(factors), 2)
    points, outcome, y = integrate(coordinates, completion_2x2, loss_tol=1e-4, rtol=1e-8)
    assert outcome.status == "converged"
    W = points[-1][2]
    assert (coordinates.matrix(y) - W).norm() <= 1e-12 * W.norm()  # the last log is the end
    loss = float(completion_2x2.loss(W))
    # the end is located on the solver's interpolant to 1e-14 in t, where ℓ changes by ~ℓ/t per
    # unit time: ℓ = 1e-4 to ~1e-13 relative, 1e-6 is ample
    assert loss == pytest.approx(1e-4, rel=1e-6)
    assert integrated_det_sign(coordinates, y) == 1.0
    # |W₁₁|√(2ℓ) ≥ 1 − 2√(2ℓ) = 0.97 by eq. (20), and ≈ 1 − O(ℓ) along the flow (seen 0.9998)
    assert abs(float(W[0, 0])) * math.sqrt(2 * loss) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("depth", [2, 3])
def test_theorem1_bounds_along_the_2x2_flow(depth, completion_2x2):
    """To ℓ ≤ 1e-8: ‖W‖·√ℓ bounded below (Frobenius, nuclear, spectral), (erank − 1)/√ℓ and
    D(W, M₁)/√ℓ bounded above, |W₁₁| ≥ 1/√(2ℓ) − 2 (eq. 20) at every logged point with ℓ < 1/8
    (Theorem 1, eqs. 11–13), and |W₁₁|·√(2ℓ) → 1 at the end.

    Catches: a curve too strong for the flow, e.g. eq. (20) as 1.01/√(2ℓ) − 2 + √(2ℓ) (the flow
    runs along |W₁₁| ≈ 1/√(2ℓ), 2 above the curve); W assembled wrongly from the state (U
    diag(σ) V); a field that does not converge (the rotation rates with the wrong sign)."""
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
        # margins seen along both flows: |W₁₁| is ≥ 1.6 above 1/√(2ℓ) − 2 and the norms ≥ 1.6
        # above eq. (20) (absolute: rounding of O(1/√ℓ) numbers is far below), ‖W‖√ℓ ≥ 0.707
        # against 0.64, erank − 1 and D(W, M₁) ≤ 1e-4·√ℓ against 1·√ℓ and 3·√ℓ
        assert abs(W[0, 0]) >= 1 / (2 * loss).sqrt() - 2
        for norm in ("norm/fro", "norm/nuclear", "norm/spectral"):
            assert values[norm] >= bound
            if loss <= 1e-3:
                assert values[norm] * root >= 0.64  # 1/√2 − 2√ℓ
        # erank and its curve are both 1 + O(√ℓ log 1/ℓ), the curve ≥ 7e-7 above at ℓ = 1e-8;
        # 1e-12 covers rounding of numbers near 1
        assert values["rank/effective"] <= theory.effective_rank_upper_bound(loss) + 1e-12
        assert (values["rank/effective"] - 1) / root <= 1.0
        assert values["rank/infimal_distance"] <= theory.infimal_distance_upper_bound(loss)
        assert values["rank/infimal_distance"] / root <= 3.0  # √2 + 1/(|W₁₁|√ℓ) → 2√2
    # the schedule alone logs 5 flow times a decade over t ≈ 40 … 1e9 (depth 3), 10 … 6e10
    # (depth 2), and a loss-drop log only stands in for a scheduled one: ≥ 40 points seen
    assert checked >= 20
    # |W₁₁|√(2ℓ) = 1 − O(ℓ) along the flow (seen 1 − 2e-8), eq. (20) alone gives ≥ 1 − 3e-4
    assert abs(float(points[-1][2][0, 0])) * math.sqrt(2e-8) == pytest.approx(1.0, abs=0.01)


def test_bound_curves_hold_on_the_det_positive_branch():
    """The curves are bounds: for 2×2 matrices with det > 0 at loss ℓ (random residuals of norm
    √(2ℓ) on Ω, W₁₁ up to twice the edge W₁₂W₂₁/W₂₂ of the branch), |W₁₁| ≥ eq. (20), D(W, M₁)
    and erank (written out here) below their curves; and eq. (20) is (1 − √(2ℓ))²/√(2ℓ).

    Catches: a change of eq. (20)'s formula (e.g. 1/√(2ℓ) − 3 + √(2ℓ)); a curve too strong near
    the det = 0 edge (e.g. 1.01/√(2ℓ) − 2 + √(2ℓ), or the erank curve 1 + ℓ)."""
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
            # analytic margins, far above rounding: |W₁₁| ≥ 1/√(2ℓ) − √(2ℓ) + O(ℓ^{3/2}) on the
            # branch, ≥ 1.7 above eq. (20); σ₂ ≤ |W₂₂| ≤ √(2ℓ), 1/(eq. 20) below its curve;
            # erank seen ≥ 6e-7 below its curve (at ℓ = 1e-8, where the curve is 1 + 7e-7)
            assert abs(w11) >= theory.w11_lower_bound(ell)
            assert sigma[1] <= theory.infimal_distance_upper_bound(ell)
            assert erank <= theory.effective_rank_upper_bound(ell)


def test_factor_field_is_minus_the_autograd_gradient():
    """The factors' field is −∇ of the loss in the factors (seed eq. 2, Theorem 2), against
    autograd; ``loss_gradient`` is (W − b) on Ω (eq. 7).

    Catches: a transposed or missing factor product in ``FactorCoordinates.field``, a factor 2
    in ``loss_gradient``."""
    factors = sample_factors("gaussian", 0.5, "any", factor_shapes(3, 2, 3, 4), seed=2)
    problem = rectangular_problem(3, 2)
    coordinates = FactorCoordinates(problem, factors)
    y = coordinates.y0.clone().requires_grad_()
    (grad,) = torch.autograd.grad(problem.loss(coordinates.matrix(y)), y)
    # the same products in another order: equal to a few roundings of O(1) numbers
    assert torch.allclose(coordinates.field(coordinates.y0), -grad, rtol=1e-12, atol=1e-15)
    assert torch.allclose(
        loss_gradient(problem, W := coordinates.matrix(coordinates.y0)),
        (W - problem.target) * problem.weight,
        rtol=1e-14,
        atol=0,
    )


def test_svd_coordinates_report_a_near_crossing():
    """A fully observed diag(1, 3) target from diag(0.3, 0.1) (rotated by 1e-9): the two
    singular values must meet; the flow warns and records when instead of failing silently.

    Not a matter of the solver's step sequence: near the crossing the rotation rates grow like
    1/gap, so every solver has to resolve it (LSODA, BDF and Radau at rtol 1e-6 … 1e-10 all
    took ≥ 280 accepted steps with a relative gap below 1e-6, the smallest ≈ 1e-9).

    Catches: a ``check`` that never warns (e.g. comparing the gap with 1e-6 squared)."""
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
