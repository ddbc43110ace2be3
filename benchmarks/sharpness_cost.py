"""Cost of one stability check (``implicit_reg.stability.sharpness``): the shifted iteration
(⌈iters/2⌉ steps on ∇²f for the dominant eigenvalue, then ``iters`` steps on ∇²f + σI, which
give λ_max, the largest algebraic eigenvalue) against the plain power iteration it replaced
(``iters`` steps on ∇²f, which give the eigenvalue of largest magnitude; kept below as
``plain_power_iteration``), side by side in one invocation, alternated ``--repeats`` times, warm
started as at a log (median ms per check; ratio shifted/plain), for a single 2×2 depth-3 run (the
default ``python train.py``), a 100×100 rank-5 completion run at depth 3 with 2,000 entries
(Arora et al. 2019) and 4,096 2×2 runs (entry by entry). Also the λ_max each gives there.

    PYTHONPATH=. python benchmarks/sharpness_cost.py [--iters 20] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from implicit_reg.config.validate import problem_shape
from implicit_reg.dynamics.steppers import EntryStepper, entry_layout, from_entries, to_entries
from implicit_reg.factorization import factor_shapes, product
from implicit_reg.init import sample_batch
from implicit_reg.problems import Problem, build_problem
from implicit_reg.stability import sharpness

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
COMPLETION = ["problem=matrix_completion", "problem.rows=100", "problem.cols=100",
              "problem.rank=5", "problem.observed=2000"]  # fmt: skip
CASES = {  # overrides, runs
    "single 2×2, depth 3": ([], 1),
    "100×100 rank 5, depth 3": (COMPLETION, 1),
    "4,096 × 2×2, depth 3": ([], 4096),
}


def plain_power_iteration(
    problem: Problem, factors: list[torch.Tensor], iters: int, start: list[torch.Tensor] | None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The check as it was: ``iters`` power-iteration steps on ∇²f (entry by entry or batched
    ``@``, as ``sharpness``), returning the Rayleigh quotient (the eigenvalue of largest
    magnitude) and the unit iterate."""
    shapes = [tuple(f.shape[1:]) for f in factors]
    if start is None:
        start = [torch.ones_like(f) for f in factors]
    with torch.enable_grad():
        if entry_layout(factors):
            stepper = EntryStepper(factors, problem)
            params, loss, v = stepper.params, stepper.graph(), to_entries(start)
        else:
            params = [f.detach().clone().requires_grad_(True) for f in factors]
            loss, v = problem.loss(product(params)), list(start)
        grads = torch.autograd.grad(
            loss.sum(), params, create_graph=True, allow_unused=True, materialize_grads=True
        )
        live = [i for i, g in enumerate(grads) if g.requires_grad]
        value = torch.zeros(factors[0].shape[0], dtype=factors[0].dtype)
        for _ in range(iters):
            v = _unit(v)
            hv = torch.autograd.grad(
                [grads[i] for i in live],
                params,
                grad_outputs=[v[i] for i in live],
                retain_graph=True,
                allow_unused=True,
                materialize_grads=True,
            )
            value = _dot(v, hv)
            v = [t.detach() for t in hv]
    v = _unit(v)
    return value.detach(), (from_entries(v, shapes) if len(v) != len(factors) else v)


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).reshape(len(x), -1).sum(1) for x, y in zip(a, b, strict=True))


def _unit(v: list[torch.Tensor]) -> list[torch.Tensor]:
    norm = torch.sqrt(_dot(v, v))
    return [t / norm.view(-1, *[1] * (t.dim() - 1)) for t in v]


def problem_and_factors(overrides: list[str], runs: int) -> tuple[Problem, list[torch.Tensor]]:
    """The problem of the train config with ``overrides`` and ``runs`` balanced starts of
    end-to-end scale 0.1 (on the plateau near the saddle W = 0, where the shift matters)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cfg = compose("train", overrides=overrides)
    problem = build_problem(cfg.problem, torch.device("cpu"), torch.float64, 16)
    rows, cols = problem_shape(cfg.problem)
    shapes = factor_shapes(rows, cols, 3, min(rows, cols))
    scales = torch.full((runs,), 0.1 ** (1 / 3), dtype=torch.float64)
    factors = sample_batch("balanced", scales, "any", shapes, torch.arange(runs))
    return problem, [f.double() for f in factors]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"iters={args.iters}, median of {args.repeats}, 1 thread, float64")
    print(f"{'case':<26} {'plain ms':>9} {'shifted ms':>11} {'ratio':>6}  λ plain / shifted")
    for name, (overrides, runs) in CASES.items():
        problem, factors = problem_and_factors(overrides, runs)
        plain_value, plain_dir = plain_power_iteration(problem, factors, 200, None)
        value, directions = sharpness(problem, factors, 200)
        times: dict[str, list[float]] = {"plain": [], "shifted": []}
        for _ in range(args.repeats):
            t = time.perf_counter()
            plain_power_iteration(problem, factors, args.iters, plain_dir)
            times["plain"].append(time.perf_counter() - t)
            t = time.perf_counter()
            sharpness(problem, factors, args.iters, directions)
            times["shifted"].append(time.perf_counter() - t)
        plain, shifted = (1e3 * statistics.median(times[k]) for k in ("plain", "shifted"))
        print(
            f"{name:<26} {plain:9.3f} {shifted:11.3f} {shifted / plain:6.2f}  "
            f"{float(plain_value[0]):.4g} / {float(value[0]):.4g}"
        )


if __name__ == "__main__":
    main()
