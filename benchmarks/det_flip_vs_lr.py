"""When does gradient descent carry det W across 0 on the 2×2 problem (seed eq. 9)?

Plain GD (seed eq. 1) on W = W_L ⋯ W_1 from the CLI's init (`init.sample_factors("balanced",
scale, "positive", ...)`, seeds 0 … N−1), for each lr and depth, in float64, checking sign det W
after every step. Prints, per run, the first step whose iterate has det W ≤ 0 and its flow time
lr·step, and for the last iterate with det W > 0 (before the flip, or at flow time
``--max-time``): σ₂ and σ₁ of W (float64 rounds W's entries at ≈ 2⁻⁵²σ₁), the loss, and the
factors' imbalance max_j ‖W_{j+1}ᵀW_{j+1} − W_jW_jᵀ‖_F (0 at balanced init, conserved by the
flow, seed Theorem 2). The gradient flow keeps sign det W (seed Lemma 5), so a flip is the finite
step's doing; ``--check-digits`` reruns depth 2, seed 1 of every lr in mpmath at that many
digits, to show it flips at the float64 step (docs/experiments.md).

    python benchmarks/det_flip_vs_lr.py                     # 1.5–3 min on 2 busy CPU cores
    python benchmarks/det_flip_vs_lr.py --depths 2 --lrs 1e-2 --check-digits 0
"""

from __future__ import annotations

import argparse
import itertools
import time

import mpmath
import numpy as np

from implicit_reg.factorization import factor_shapes
from implicit_reg.init import sample_factors

TARGET = np.array([[0.0, 1.0], [1.0, 0.0]])  # b = [[*, 1], [1, 0]], * unobserved (eq. 9)
MASK = np.array([[0.0, 1.0], [1.0, 1.0]])


def initial_factors(depth: int, seeds: list[int], scale: float) -> list[np.ndarray]:
    """[W_1, …, W_L], each stacked over the seeds: ``(len(seeds), 2, 2)``, as the CLI draws them."""
    runs = [
        sample_factors("balanced", scale, "positive", factor_shapes(2, 2, depth, 2), seed)
        for seed in seeds
    ]
    return [np.stack([run[j].numpy() for run in runs]) for j in range(depth)]


def product(factors: list[np.ndarray]) -> np.ndarray:
    W = factors[0]
    for factor in factors[1:]:
        W = factor @ W
    return W


def det(W: np.ndarray) -> np.ndarray:
    return W[..., 0, 0] * W[..., 1, 1] - W[..., 0, 1] * W[..., 1, 0]


def gd_step(
    factors: list[np.ndarray], lr: float, target: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """W = W_L ⋯ W_1 and the factors after one GD step (seed eq. 1) on ℓ = ½Σ_Ω(W − b)²
    (eq. 7): ∂ℓ/∂W_j = (W_L⋯W_{j+1})ᵀ G (W_{j−1}⋯W_1)ᵀ with G = P_Ω(W − b)."""
    depth = len(factors)
    below = [np.broadcast_to(np.eye(2), factors[0].shape)]  # below[j] = W_j ⋯ W_1 (below[0] = I)
    for factor in factors:
        below.append(factor @ below[-1])
    W = below[-1]
    G = mask * (W - target)
    above = np.broadcast_to(np.eye(2), factors[0].shape)  # W_L ⋯ W_{j+2}
    stepped = [None] * depth
    for j in reversed(range(depth)):
        grad = np.swapaxes(above, -1, -2) @ G @ np.swapaxes(below[j], -1, -2)
        stepped[j] = factors[j] - lr * grad
        above = above @ factors[j]
    return W, stepped


def until_flip(
    factors: list[np.ndarray], lr: float, max_steps: int, target=TARGET, mask=MASK
) -> list[dict]:
    """GD on each stacked run until det W ≤ 0 or ``max_steps``; per run its flip step (None if
    none), and W, the loss and the imbalance of the last iterate with det W > 0 before it (or of
    the final iterate). Float64 arrays, or object arrays of mpmath numbers (then ``target`` and
    ``mask`` too)."""
    runs = factors[0].shape[0]
    flip: list[int | None] = [None] * runs
    kept: list[list[np.ndarray] | None] = [None] * runs  # each run's factors before its flip
    previous = factors
    for step in range(max_steps + 1):
        W, stepped = gd_step(factors, lr, target, mask)
        for k in np.flatnonzero(det(W) <= 0):
            if flip[k] is None:
                flip[k], kept[k] = step, [f[k] for f in previous]
        if None not in flip or step == max_steps:
            break
        previous, factors = factors, stepped
    results = []
    for k in range(runs):
        last = kept[k] or [f[k] for f in factors]
        W = product(last)
        loss = (0.5 * (mask * (W - target)) ** 2).sum()
        results.append(
            {
                "flip": flip[k],
                "factors": last,
                "W": W,
                "loss": float(loss),
                "imbalance": imbalance(last),
            }
        )
    return results


def imbalance(factors: list[np.ndarray]) -> float:
    """max_j ‖W_{j+1}ᵀW_{j+1} − W_jW_jᵀ‖_F of one run's factors."""
    return max(float(np.linalg.norm(b.T @ b - a @ a.T)) for a, b in itertools.pairwise(factors))


def step_anatomy(factors: list[np.ndarray], lr: float, target: np.ndarray, mask: np.ndarray) -> str:
    """Depth 2: what one GD step from ``factors`` does to each det W_j. For 2×2 matrices exactly
    det(W_j − ηΔ_j) = det W_j − η tr(adj(W_j)Δ_j) + η² det Δ_j; printed are σ₂(W_j), the
    first-order and η² terms over det W_j, and η·tr(UᵀGV) (W = USVᵀ), the first-order term over
    det W_j that balanced factors of the same W would have (both equal it then; seed eq. 16)."""
    W1, W2 = factors
    G = mask * (W2 @ W1 - target)
    parts = []
    for name, A, Delta in (("W₁", W1, W2.T @ G), ("W₂", W2, G @ W1.T)):
        adjugate = np.array([[A[1, 1], -A[0, 1]], [-A[1, 0], A[0, 0]]])
        first = -lr * np.trace(adjugate @ Delta) / det(A)
        second = lr**2 * det(Delta) / det(A)
        sigma2 = np.linalg.svd(A.astype(float), compute_uv=False)[1]
        parts.append(
            f"{name}: σ₂ {sigma2:.2e}, first-order {float(first):+.3g}·det, "
            f"η² term {float(second):+.2g}·det"
        )
    U, _, Vt = np.linalg.svd((W2 @ W1).astype(float))
    balanced = float(lr) * np.trace(U.T @ G.astype(float) @ Vt.T)
    return "; ".join(parts) + f"; balanced factors: {-balanced:+.2g}·det"


def mp_check(seed: int, scale: float, lr: float, digits: int, max_steps: int) -> str:
    """Depth 2, one run, the same GD in mpmath at ``digits`` significant digits (object arrays;
    the float64 init converts exactly): its flip step and the anatomy of the flipping step."""
    with mpmath.workdps(digits):
        to_mp = np.vectorize(mpmath.mpf, otypes=[object])
        factors = [to_mp(f) for f in initial_factors(2, [seed], scale)]
        target, mask, eta = to_mp(TARGET), to_mp(MASK), mpmath.mpf(lr)
        run = until_flip(factors, eta, max_steps, target, mask)[0]
        if run["flip"] is None:
            return f"no flip in {max_steps:,} steps"
        return f"flips at step {run['flip']:,}\n  " + step_anatomy(
            run["factors"], eta, target, mask
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-2, 3e-3, 1e-3])
    parser.add_argument("--seeds", type=int, default=6, help="seeds 0 … N−1")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--max-time", type=float, default=300.0, help="flow time cap")
    parser.add_argument("--check-digits", type=int, default=50, help="0: no mpmath check")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    print("| depth | lr | seed | flip step | flip flow time | σ₂ | σ₁ | loss | imbalance |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    started = time.perf_counter()
    float64_flip = {}
    for depth in args.depths:
        for lr in args.lrs:
            max_steps = round(args.max_time / lr)
            results = until_flip(initial_factors(depth, seeds, args.scale), lr, max_steps)
            for seed, r in zip(seeds, results, strict=True):
                float64_flip[depth, lr, seed] = r["flip"]
                s = np.linalg.svd(r["W"], compute_uv=False)
                where = (
                    f"{r['flip']:,} | {lr * r['flip']:.4g}"
                    if r["flip"] is not None
                    else f"none in {max_steps:,} | none by {args.max_time:g}"
                )
                print(
                    f"| {depth} | {lr:g} | {seed} | {where} | {s[1]:.2e} | {s[0]:.3g} "
                    f"| {r['loss']:.2e} | {r['imbalance']:.2e} |"
                )
    print(f"\nfloat64 table: {time.perf_counter() - started:.1f} s")
    if args.check_digits and 2 in args.depths and args.seeds > 1:
        for lr in args.lrs:
            started = time.perf_counter()
            check = mp_check(1, args.scale, lr, args.check_digits, round(args.max_time / lr))
            print(
                f"mpmath, {args.check_digits} digits, depth 2, seed 1, lr {lr:g} (float64 flip "
                f"step {float64_flip[2, lr, 1]}; {time.perf_counter() - started:.1f} s): {check}"
            )


if __name__ == "__main__":
    main()
