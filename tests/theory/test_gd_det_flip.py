"""Why gradient descent leaves det W > 0 at depth 2 on the 2×2 problem (seed eq. 9; issue 9,
item 7): a finite step, not rounding.

The gradient flow keeps sign det W (seed Lemma 5; eq. 16 with L = 2 makes each σⱼ a multiple
of its start). Gradient descent W_j ← W_j − η∂ℓ/∂W_j from the CLI's balanced init crosses det = 0:

- exact arithmetic crosses at the same step as float64, while σ₂ is still far above the float64
  rounding of W's O(1) entries (so rounding is not the cause);
- at that step one factor's det is carried across 0 by the step's *first-order* change, which
  overshoots (> 100 % of det W_j) because GD has unbalanced the factors (W₁W₁ᵀ − W₂ᵀW₂ grows
  by O(η²) a step; the flow conserves it): with balanced factors the same step would change
  det W_j by under 1 %; the step's η² det Δ_j term is negligible;
- σ₂ at the crossing falls roughly as η², the flip's flow time grows as η shrinks, and the
  imbalance there scales as η: the signature of GD's O(η²)-per-step departure from the flow.

The GD here is written out for L = 2 in plain Python arithmetic, so the same code runs in
float64 (Python floats) and in mpmath at 50 digits, from exactly the same init.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import pytest

from implicit_reg.factorization import factor_shapes
from implicit_reg.init import sample_factors
from implicit_reg.record.run_summary import summary
from implicit_reg.record.schedule import LogSchedule

Matrix = list[list[Any]]  # 2×2, entries float or mpmath.mpf
TARGET = [[0, 1], [1, 0]]  # b = [[*, 1], [1, 0]]
MASK = [[0, 1], [1, 1]]  # Ω: the observed entries
SCALE = 0.1
DIGITS = 50


def matmul(A: Matrix, B: Matrix) -> Matrix:
    return [[A[i][0] * B[0][j] + A[i][1] * B[1][j] for j in range(2)] for i in range(2)]


def transpose(A: Matrix) -> Matrix:
    return [[A[0][0], A[1][0]], [A[0][1], A[1][1]]]


def det(A: Matrix) -> Any:
    return A[0][0] * A[1][1] - A[0][1] * A[1][0]


def adjugate(A: Matrix) -> Matrix:
    return [[A[1][1], -A[0][1]], [-A[1][0], A[0][0]]]


def trace(A: Matrix) -> Any:
    return A[0][0] + A[1][1]


def axpy(A: Matrix, a: Any, B: Matrix) -> Matrix:
    return [[A[i][j] + a * B[i][j] for j in range(2)] for i in range(2)]


def residual(W: Matrix) -> Matrix:
    """G = ∇ℓ(W) = P_Ω(W − b) for ℓ = ½Σ_Ω(W − b)² (seed eq. 7)."""
    return [[MASK[i][j] * (W[i][j] - TARGET[i][j]) for j in range(2)] for i in range(2)]


def singular_values(W: Matrix) -> tuple[Any, Any]:
    """σ₁ ≥ σ₂ ≥ 0 of a 2×2 matrix: σ₁² + σ₂² = ‖W‖_F², σ₁σ₂ = |det W|."""
    fro2 = sum(x * x for row in W for x in row)
    d = abs(det(W))
    sigma1 = mpmath.sqrt((fro2 + mpmath.sqrt(fro2 * fro2 - 4 * d * d)) / 2)
    return sigma1, d / sigma1


@dataclass
class Flip:
    step: int | None  # first step whose iterate has det W ≤ 0 (None: none within the budget)
    W1: Matrix  # the factors of the last iterate with det W > 0
    W2: Matrix


def gd_until_flip(seed: int, lr: float, num: type, max_steps: int = 20_000) -> Flip:
    """GD at depth 2 from the CLI's init for ``seed`` in the arithmetic of ``num`` (float or
    mpmath.mpf; the float64 init converts exactly), det W checked after every step.
    ∂ℓ/∂W₁ = W₂ᵀG, ∂ℓ/∂W₂ = GW₁ᵀ with W = W₂W₁ (seed eq. 8)."""
    factors = sample_factors("balanced", SCALE, "positive", factor_shapes(2, 2, 2, 2), seed)
    W1, W2 = ([[num(x) for x in row] for row in f.tolist()] for f in factors)
    eta = num(lr)
    previous = W1, W2
    for step in range(max_steps + 1):
        W = matmul(W2, W1)
        if det(W) <= 0:
            return Flip(step, *previous)
        previous = W1, W2
        G = residual(W)
        W1, W2 = axpy(W1, -eta, matmul(transpose(W2), G)), axpy(W2, -eta, matmul(G, transpose(W1)))
    return Flip(None, W1, W2)


def imbalance(W1: Matrix, W2: Matrix) -> Any:
    """‖W₁W₁ᵀ − W₂ᵀW₂‖_F: zero at balanced init and conserved by the flow (seed Theorem 2)."""
    D = axpy(matmul(W1, transpose(W1)), -1, matmul(transpose(W2), W2))
    return mpmath.sqrt(sum(x * x for row in D for x in row))


@pytest.fixture(autouse=True)
def fifty_digits():
    with mpmath.workdps(DIGITS):
        yield


@pytest.mark.parametrize("seed", range(6))
def test_exact_gd_flips_det_at_the_float64_step(seed: int) -> None:
    """Every seed flips within flow time 20 at lr 1e-2, at the same step in float64 and in
    50-digit arithmetic, with σ₂ > 1e-12·‖W‖ there (float64 rounds W's entries at ~2e-16·‖W‖).
    Catches the wrong claim that rounding makes the flip: run the float64 side in float32
    (``num=np.float32``) and it flips at another step."""
    in_float64 = gd_until_flip(seed, 1e-2, float, max_steps=2000)
    exact = gd_until_flip(seed, 1e-2, mpmath.mpf, max_steps=2000)
    assert exact.step is not None
    assert in_float64.step == exact.step
    W = matmul(exact.W2, exact.W1)
    sigma1, sigma2 = singular_values(W)
    assert sigma2 > 1e-12 * sigma1


def test_the_flip_is_a_first_order_step_across_zero_of_an_unbalanced_factor() -> None:
    """From the last det W > 0 iterate (seed 1, lr 1e-2, the issue's run; 50 digits), the 2×2
    identity det(A − ηΔ) = det A − η tr(adj(A)Δ) + η² det Δ splits each factor's stepped det.
    One factor crosses 0 by its first-order term alone (it exceeds |det W_j|), the η² term is
    under 1 % of it, and with balanced factors of the same W (relative det change
    η·tr(UᵀGV), seed eq. 16 at L = 2) the step would change det W_j by under 1 %.
    Catches a GD that kept the factors balanced (W₁, W₂ rebuilt from the SVD of W after each
    step: no flip within 20,000 steps), and refutes reading the cause as the η² det Δ term of
    the flipping step."""
    flip = gd_until_flip(1, 1e-2, mpmath.mpf)
    assert flip.step is not None
    eta = mpmath.mpf(1e-2)
    W1, W2 = flip.W1, flip.W2
    G = residual(matmul(W2, W1))
    crossing = []
    for A, Delta in ((W1, matmul(transpose(W2), G)), (W2, matmul(G, transpose(W1)))):
        first = -eta * trace(matmul(adjugate(A), Delta))
        second = eta**2 * det(Delta)
        stepped = det(axpy(A, -eta, Delta))
        assert abs(stepped - (det(A) + first + second)) < mpmath.mpf(10) ** (5 - DIGITS)
        assert abs(second) < 1e-2 * abs(det(A))
        if stepped * det(A) <= 0:
            crossing.append(first / det(A))
    assert len(crossing) == 1  # one factor changes sign; det W = det W₂·det W₁ then does
    assert crossing[0] < -1  # its first-order change overshoots det W_j
    U, _, Vt = np.linalg.svd(np.array(matmul(W2, W1), dtype=float))
    balanced_change = 1e-2 * np.trace(U.T @ np.array(G, dtype=float) @ Vt.T)
    assert abs(balanced_change) < 1e-2


def test_flip_comes_later_with_smaller_steps_at_sigma2_of_order_lr_squared() -> None:
    """float64, seeds 0–5, lr 1e-2, 3e-3, 1e-3 (float64 flips at mpmath's step: previous tests
    and benchmarks/det_flip_vs_lr.py): for every seed the flip's flow time grows as lr shrinks
    and the imbalance there over lr stays within a factor 2 (seen 0.107 … 0.108 for seed 1); the
    median over seeds of σ₂ at the flip over lr² stays within a factor 4 (seen 0.85e-6 …
    2.3e-6; a single seed's σ₂ depends on where in its last step the crossing falls, so only
    the median is held to it). Rounding would flip at σ₂ ~ 1e-16·‖W‖ whatever the lr, and a
    flow that crossed would cross at one flow time. Catches a rounding-made flip: in float32
    (``num=np.float32``) the flip comes at nearly one flow time for every lr, not later."""
    lrs = (1e-2, 3e-3, 1e-3)
    per_lr2 = {lr: [] for lr in lrs}
    for seed in range(6):
        flips = [gd_until_flip(seed, lr, float) for lr in lrs]
        assert all(f.step is not None for f in flips)
        times = [lr * f.step for lr, f in zip(lrs, flips, strict=True)]
        assert times[0] < times[1] < times[2]
        per_lr = [float(imbalance(f.W1, f.W2)) / lr for f, lr in zip(flips, lrs, strict=True)]
        assert max(per_lr) < 2 * min(per_lr)
        for f, lr in zip(flips, lrs, strict=True):
            per_lr2[lr].append(float(singular_values(matmul(f.W2, f.W1))[1]) / lr**2)
    medians = [float(np.median(values)) for values in per_lr2.values()]
    assert max(medians) < 4 * min(medians)


def test_the_run_summary_says_when_det_changed_sign(train_run, caplog) -> None:
    """The issue's run through the CLI's code: the summary it logs has a ``det sign changed``
    row at the first logged step at or after the reference's flip (step 1,033 here; the
    monitor sees logged points only), and a summary without a change has no such row.
    Catches a summary that leaves the row out or shows another step."""
    flip = gd_until_flip(1, 1e-2, float).step
    with caplog.at_level(logging.INFO, logger="implicit_reg.run"):
        metrics, out = train_run(
            "model.depth=2",
            "seed=1",
            "init.scale=0.1",
            "optim.lr=0.01",
            "train.max_steps=3000",
            "train.log_every=1000",
            "train.log_per_decade=20",
        )
    schedule = LogSchedule(3000, 1000, 20)
    logged = next(step for step in range(flip, 3001) if schedule.due(step))
    assert metrics["det_sign_changed_at_step"] == logged
    (row,) = [line for line in caplog.text.splitlines() if "det sign changed" in line]
    when = f"first logged at step {logged:,} (flow time {logged / 100:.6g})"
    assert row.split("det sign changed")[1].strip() == when
    assert "det sign changed" not in summary(
        {**metrics, "det_sign_changed_at_step": None}, out, (2, 2)
    )
