"""Theorem 1's explicit 2×2 bounds (seed eqs. 11–13, 20): they hold on the det > 0 branch, are
nearly attained there, fail off it, and have the theorem's order; the effective-rank curve's
range (``theory.EFFECTIVE_RANK_BOUND_MAX_LOSS``)."""

import math

import torch
from scipy.optimize import brentq

from implicit_reg import metrics, theory

EPS = torch.finfo(torch.float64).eps


def branch_points(n: int = 4000, max_residual: float = 0.25) -> torch.Tensor:
    """Random 2×2 matrices near the zero-loss set S (seed eq. 10) with det > 0: residuals on Ω of
    size up to ``max_residual`` (log-uniform scale), and W₁₁ = e(1 + u) beyond the edge
    e = W₁₂W₂₁/W₂₂ of the branch, u log-uniform in [1e-12, 1e3], so that some points lie next to
    the boundary det = 0 where eq. (20) is nearly tight."""
    g = torch.Generator().manual_seed(0)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)

    scale = max_residual * 10 ** uniform(-4, 0)
    W = torch.empty(n, 2, 2, dtype=torch.float64)
    W[:, 0, 1] = 1 + scale * uniform(-1, 1)
    W[:, 1, 0] = 1 + scale * uniform(-1, 1)
    W[:, 1, 1] = scale * uniform(-1, 1)
    edge = W[:, 0, 1] * W[:, 1, 0] / W[:, 1, 1]
    W[:, 0, 0] = edge * (1 + 10 ** uniform(-12, 3))
    return W[torch.linalg.det(W) > 0]


def loss(W: torch.Tensor) -> torch.Tensor:
    """ℓ(W) of seed eq. (18), written out independently of ``MatrixCompletion``."""
    return 0.5 * ((W[..., 0, 1] - 1) ** 2 + (W[..., 1, 0] - 1) ** 2 + W[..., 1, 1] ** 2)


def test_bounds_hold_on_the_det_positive_branch() -> None:
    """|W₁₁|, ‖W‖ ≥ eq. (20); D(W, M₁), erank ≤ their curves at every sampled det > 0 point.

    Catches: a bound that is too strong, e.g. ``w11_lower_bound`` = 1/√(2ℓ) (without −2 + √(2ℓ))
    or ``infimal_distance_upper_bound`` = 0.9√(2ℓ)."""
    W = branch_points()
    ell = loss(W)
    assert len(W) > 1000 and (ell < 1 / 8).all()
    sigma = torch.linalg.svdvals(W)
    # svdvals is backward stable: each σᵢ is off by at most a few ε·σ₁ (16 ε σ₁ allowed below)
    rounding = 16 * EPS * sigma[:, 0]
    bound = theory.w11_lower_bound(ell)
    # W₁₁ is exact and the bound is a few roundings off: 1e-12 relative is ample
    assert (W[:, 0, 0].abs() >= bound * (1 - 1e-12)).all()
    for norm in (metrics.frobenius, metrics.nuclear, metrics.spectral):
        assert (norm(W) >= theory.norm_lower_bound(ell) - rounding).all()
    distance = metrics.infimal_distance(W, 1)
    assert (distance <= theory.infimal_distance_upper_bound(ell) + rounding).all()
    # sharper, and not from the seed: σ₂ = det W/σ₁ ≤ W₁₁W₂₂/|W₁₁| = |W₂₂| ≤ √(2ℓ) on this branch,
    # so eq. (13) holds with c₂ = √2, half the proof's 2√2; some points come within 1% of it
    assert (distance <= W[:, 1, 1].abs() + rounding).all()
    assert (distance >= 0.99 * (2 * ell).sqrt()).any()
    # erank = exp H(ρ₂) with |dH/dρ₂| = log(ρ₁/ρ₂): a shift of σ₂ by 16 ε σ₁ moves it < 1e-12
    erank = metrics.effective_rank(W)
    assert (erank <= theory.effective_rank_upper_bound(ell) + 1e-12).all()


def test_eq20_is_nearly_attained_on_the_branch() -> None:
    """At each ℓ the det > 0 point W₁₂ = W₂₁ = 1 − a, W₂₂ = √(2ℓ − 2a²), a = 2ℓ, W₁₁ just past
    the edge W₁₂W₂₁/W₂₂ has loss ℓ and |W₁₁| = 1/√(2ℓ) − √(2ℓ) + ½(2ℓ)^{3/2} + …: eq. (20)'s
    1/√(2ℓ) − 2 + √(2ℓ) is below it by 2 − 2√(2ℓ) + O(ℓ^{3/2}), never by more than 2. So the
    curve is the best possible up to an additive 2 (a relative slack of O(√ℓ)).

    Catches: a bound too strong (e.g. 1/√(2ℓ), above this point by ≈ √(2ℓ)) or too weak (e.g.
    1/√(2ℓ) − 3 + √(2ℓ), or 1/(2√(2ℓ)))."""
    for ell in (1e-1, 1e-2, 1e-4, 1e-8, 1e-12):
        root, a = math.sqrt(2 * ell), 2 * ell
        w12 = 1 - a
        w22 = math.sqrt(2 * ell - 2 * a * a)
        w11 = w12 * w12 / w22 * (1 + 1e-12)  # det = 1e-12·W₁₂W₂₁ > 0
        W = torch.tensor([[w11, w12], [w12, w22]], dtype=torch.float64)
        assert torch.linalg.det(W) > 0
        assert abs(float(loss(W)) - ell) <= 1e-12 * ell  # exact up to a few roundings
        gap = w11 - float(theory.w11_lower_bound(torch.tensor(ell, dtype=torch.float64)))
        assert 0 < gap <= 2
        # gap − (2 − 2√(2ℓ)) = ½(2ℓ)^{3/2} + … (≤ (2ℓ)^{3/2} for ℓ ≤ 0.1) plus the 1e-12·W₁₁ nudge
        assert abs(gap - (2 - 2 * root)) <= root**3 + 2e-12 * w11


def test_bound_fails_off_the_branch() -> None:
    """Without det > 0 Theorem 1 is false: W = [[0, 1], [1, √(2ℓ)]] has det = −1, loss ℓ and
    W₁₁ = 0, below eq. (20) for every ℓ < 1/2; at ℓ = 0 it is [[0, 1], [1, 0]] ∈ S (seed
    Section 5), whose norms (√2), effective rank (2) and distance to M₁ (1) stay far from the
    curves of eqs. (11)–(13) as ℓ → 0.

    Catches: a vacuous curve (e.g. eq. 20 as √(2ℓ) − 2 ≤ 0 or 1/√(2ℓ) − 3 + √(2ℓ), or the erank
    curve stuck at 2)."""
    for ell in (0.12, 0.05, 1e-2, 1e-4, 1e-8):
        ell_t = torch.tensor(ell, dtype=torch.float64)
        W = torch.tensor([[0.0, 1.0], [1.0, math.sqrt(2 * ell)]], dtype=torch.float64)
        assert torch.linalg.det(W) < 0
        assert abs(float(loss(W)) - ell) <= 1e-12 * ell  # exact up to a few roundings
        assert abs(float(W[0, 0])) < float(theory.w11_lower_bound(ell_t))
    zero_loss = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    # entries 0 and ±1: every product and sum (and LU's one row swap) is exact on any CPU
    assert float(loss(zero_loss)) == 0.0 and torch.linalg.det(zero_loss) == -1
    ell = torch.tensor(1e-4, dtype=torch.float64)
    assert float(metrics.frobenius(zero_loss)) < float(theory.norm_lower_bound(ell))
    assert float(metrics.effective_rank(zero_loss)) > float(theory.effective_rank_upper_bound(ell))
    distance = float(metrics.infimal_distance(zero_loss, 1))
    assert distance > float(theory.infimal_distance_upper_bound(ell))


def test_bounds_have_the_theorems_order() -> None:
    """‖W‖ ≥ a/√ℓ − b with a = 1/√2 (eq. 11), D(W, M₁) ≤ c₂√ℓ with c₂ → 2√2 (eq. 13), and the
    erank curve 1 + O(√ℓ log 1/ℓ) increasing to 1 (eq. 12). The relative deviations at
    ℓ ≤ 1e-6 are 2√(2ℓ) ≤ 3e-3 and √(2ℓ) ≤ 1.5e-3, so 1e-2 has a margin of 3.

    Catches: a curve of the wrong order, e.g. √(2ℓ) written 2ℓ in ``w11_lower_bound``."""
    ell = torch.logspace(-12, -6, 7, dtype=torch.float64)
    scaled = theory.norm_lower_bound(ell) * ell.sqrt()
    assert torch.allclose(scaled, torch.full_like(ell, 0.5**0.5), rtol=1e-2)
    ratio = theory.infimal_distance_upper_bound(ell) / ell.sqrt()
    assert torch.allclose(ratio, torch.full_like(ell, 8**0.5), rtol=1e-2)
    assert (theory.effective_rank_upper_bound(ell).diff() > 0).all()
    # ρ̄ ≈ 2√(2ℓ)·… at ℓ = 1e-12: erank − 1 ≈ ρ̄ log(1/ρ̄) ≈ 1e-4 · 0.3
    assert theory.effective_rank_upper_bound(ell[:1]) - 1 < 1e-4


def rho_bar(ell: float) -> float:
    """ρ̄(ℓ) = σ̄₂/(σ̲₁ + σ̄₂) from eq. (20) and the D(W, M₁) bound, in plain floats."""
    root = math.sqrt(2 * ell)
    low = 1 / root - 2 + root
    high = root + 1 / low
    return high / (low + high)


def test_effective_rank_curve_range() -> None:
    """``EFFECTIVE_RANK_BOUND_MAX_LOSS`` is where ρ̄ = ½ (brentq, and the cubic's root); the curve
    increases up to it and is 2 (the largest erank of a 2×2 matrix) from it to 1/8.

    Catches: the unclamped exp H(ρ̄), which turns down above ℓ* ≈ 0.062, or a wrong threshold."""
    threshold = theory.EFFECTIVE_RANK_BOUND_MAX_LOSS
    located = brentq(lambda ell: rho_bar(ell) - 0.5, 1e-3, 0.12, xtol=1e-17)
    assert abs(threshold - located) <= 1e-14  # ρ̄ has slope ≈ 8 there: brentq to ~1e-16
    s = math.sqrt(2 * threshold)
    assert abs(2 * s**3 - 4 * s**2 + 4 * s - 1) <= 1e-14
    below = torch.linspace(1e-6, threshold, 2001, dtype=torch.float64)
    curve = theory.effective_rank_upper_bound(below)
    assert (curve.diff() > 0).all()
    # exp H(½) = 2; H is flat at ½, so to ~(Δρ)²; exp and log are within an ulp or two of exact
    # (glibc, SLEEF), which may round 2 up: 4 ε above
    assert 2 - 1e-12 <= float(curve[-1]) <= 2 + 4 * EPS
    above = torch.linspace(threshold, 1 / 8, 200, dtype=torch.float64)[1:]
    # 2 to the rounding of exp and log (the unclamped curve is ≥ 2e-5 below 2 from the first point)
    assert ((theory.effective_rank_upper_bound(above) - 2).abs() <= 4 * EPS).all()


def test_effective_rank_bound_holds_between_the_threshold_and_one_eighth() -> None:
    """On det > 0 points with ℓ in (ℓ*, 1/8) erank ≤ the curve (= 2 there). Their erank is far
    below 2 (≤ 1.25 by a numerical search): the clamp is where the proof stops, not where the
    bound is nearly attained.

    Catches: a curve too strong there, e.g. ρ clamped at 0.03 instead of ½, or 1 + ℓ."""
    W = branch_points(20000, max_residual=0.5)
    ell = loss(W)
    inside = (ell > theory.EFFECTIVE_RANK_BOUND_MAX_LOSS) & (ell < 1 / 8)
    assert inside.sum() > 50
    erank = metrics.effective_rank(W[inside])
    assert (erank <= theory.effective_rank_upper_bound(ell[inside])).all()
    assert (erank < 1.3).all()
