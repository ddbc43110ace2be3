"""What robustness costs per gradient step: the loop of issue 6 (stop check, last finite W kept,
periodic checkpoints) against the core loop it replaced, side by side in one process.

    python benchmarks/robust_overhead.py [--steps 5000] [--repeats 5]

Prints, per problem, the best time per step of each variant and its ratio to the core loop.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from implicit_reg import checkpoint
from implicit_reg.factorization import DeepFactorization, factor_shapes
from implicit_reg.init import sample_factors
from implicit_reg.interrupt import StopRequest
from implicit_reg.optim import gradient_descent
from implicit_reg.problems import LeastSquares, MatrixCompletion, least_squares_data
from implicit_reg.problems.matrix_completion import parse_entries, random_low_rank
from implicit_reg.schedule import LogSchedule


def core_loop(model, problem, *, lr, max_steps, loss_tol, schedule, on_log):
    """The gradient-descent loop before issue 6 (commit 4a63351), the baseline."""
    params = list(model.parameters())
    for step in range(max_steps + 1):
        W = model()
        loss = problem.loss(W).sum()
        value = loss.item()
        if not math.isfinite(value):
            break
        done = value < loss_tol or step == max_steps
        if done or schedule.due(step):
            on_log(step, lr * step, W.detach())
        if done:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)


def problems():
    g = torch.Generator().manual_seed(0)
    target, mask = parse_entries([[None, 1.0], [1.0, 0.0]])
    yield "2x2 completion, depth 3", MatrixCompletion(target, mask, 1), 3, 0.01
    target, mask = random_low_rank(10, 10, 2, 50, g)
    yield "10x10 completion, depth 3", MatrixCompletion(target, mask, 2), 3, 0.01
    X, y = least_squares_data(10, 40, g)
    yield "least squares d=40, depth 1", LeastSquares(X, y), 1, 0.1


def time_per_step(kind: str, problem, start, lr: float, steps: int, out: Path) -> float:
    """µs per step of one variant, from the same start."""
    model = DeepFactorization(start).double()
    common = dict(
        lr=lr, max_steps=steps, loss_tol=0.0, schedule=LogSchedule(steps, 1000, 0),
        on_log=lambda *a: None,
    )  # fmt: skip

    def save(step: int) -> None:
        checkpoint.write(out, checkpoint.Checkpoint(step, list(model.factors), {}, 0.0, {}))

    began = time.perf_counter()
    if kind == "core loop":
        core_loop(model, problem, **common)
    elif kind == "robust loop":
        gradient_descent(model, problem, **common)
    else:
        with StopRequest() as stop:
            gradient_descent(
                model, problem, **common, checkpoint_every=int(kind.split()[-1]),
                on_checkpoint=save, stop_requested=stop,
            )  # fmt: skip
    return (time.perf_counter() - began) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(tempfile.mkdtemp())
    kinds = ["core loop", "robust loop", "robust + checkpoint every 1000"]
    print(f"{args.steps} steps, best of {args.repeats}; µs per step (ratio to the core loop)")
    for name, problem, depth, lr in problems():
        rows, cols = problem.shape
        shapes = factor_shapes(rows, cols, depth, min(rows, cols))
        start = sample_factors("gaussian", 0.1, "any", shapes, 0)
        best = {kind: math.inf for kind in kinds}
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits all alike
            for kind in kinds:
                t = time_per_step(kind, problem, start, lr, args.steps, out)
                best[kind] = min(best[kind], t)
        print(name)
        for kind in kinds:
            ratio = best[kind] / best["core loop"]
            print(f"  {kind:<32} {best[kind]:8.1f} µs  ({ratio:.3f}×)")


if __name__ == "__main__":
    main()
