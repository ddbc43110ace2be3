"""Gradient flow (optim=flow) against plain gradient descent on the 2×2 problem of seed eq. (9).

Depth 3 from the original code's default init (i.i.d. Gaussian factors of std 8e-3, det ≥ 0),
float64, lr 3e-3: a plain per-step autograd GD loop to ℓ ≤ ``--loss-tol`` against ``optim=flow``
(``run`` with a composed config; its wall_time_s) to the same loss, measured side by side in one
process. Prints the wall-time and gradient-evaluation ratios and the relative difference of
|W11|, then the flow alone to ``--flow-only-tol``. A flow run is short, so its wall time is the
median of ``--repeats`` runs; the flow on the torch reference field (``flow.field=torch``) is
timed the same way beside it.

    python benchmarks/flow_vs_gd.py [--loss-tol 1e-3] [--flow-only-tol 1e-4] [--method LSODA]
                                    [--rtol 1e-8] [--atol 1e-16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from implicit_reg import run
from implicit_reg.factorization import factor_shapes, product
from implicit_reg.init import sample_factors
from implicit_reg.problems import build_problem

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SETUP = [
    "problem=completion_2x2",
    "model.depth=3",
    "init.kind=gaussian",
    "init.scale=8e-3",
    "init.det=positive",
    "optim.lr=3e-3",
    "dtype=float64",
    "device=cpu",
    "train.progress=false",
    "train.max_steps=100000000",
]


def compose_config(overrides: list[str]):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        return compose("train", overrides=SETUP + overrides)


def gradient_descent(loss_tol: float) -> dict[str, float]:
    """The plain loop: one forward, one autograd backward and one update per step."""
    cfg = compose_config(["optim=gd"])
    problem = build_problem(cfg.problem, torch.device("cpu"), torch.float64)
    shapes = factor_shapes(2, 2, 3, 2)
    factors = sample_factors("gaussian", 8e-3, "positive", shapes, int(cfg.seed))
    params = [f.clone().requires_grad_() for f in factors]
    lr, steps = cfg.optim.lr, 0
    started = time.perf_counter()
    while True:
        loss = problem.loss(product(params))
        if loss.item() <= loss_tol:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)
        steps += 1
    wall = time.perf_counter() - started
    W11 = float(product(params)[0, 0].detach())
    return {"wall": wall, "evaluations": steps, "W11": W11}


def flow(
    loss_tol: float, args: argparse.Namespace, out_dir: Path, field: str = "auto"
) -> dict[str, float]:
    """``optim=flow`` to ``loss_tol``, ``args.repeats`` times: the median wall time."""
    cfg = compose_config(
        [
            "optim=flow",
            f"flow.field={field}",
            f"optim.method={args.method}",
            f"optim.rtol={args.rtol}",
            f"optim.atol={args.atol}",
            f"train.loss_tol={loss_tol}",
            "train.log_every=1000000000",
            "train.log_per_decade=0",
        ]
    )
    results = [run(cfg, out_dir / str(i)) for i in range(args.repeats)]
    result = results[0]
    return {
        "wall": statistics.median(r["wall_time_s"] for r in results),
        "field": result["flow_field"],
        "evaluations": result["gradient_evaluations"],
        "W11": result["entries/1_1"],
        "status": result["status"],
        "solver_steps": result["solver_steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss-tol", type=float, default=1e-3)
    parser.add_argument("--flow-only-tol", type=float, default=1e-4)
    parser.add_argument("--method", default="LSODA")
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--atol", type=float, default=1e-16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        flow(1e-1, args, Path(tmp, "warmup"))  # imports and first calls, not timed
        f = flow(args.loss_tol, args, Path(tmp, "flow"))
        reference = flow(args.loss_tol, args, Path(tmp, "torch"), field="torch")
        g = gradient_descent(args.loss_tol)
        print("2x2 completion, depth 3, Gaussian init std 8e-3 (det > 0), lr 3e-3, float64")
        print(f"to loss <= {args.loss_tol:g}:")
        print(
            f"  gd   {g['evaluations']:>9,} steps        {g['wall']:9.2f} s  W11 = {g['W11']:.6f}"
        )
        print(
            f"  flow {f['evaluations']:>9,} evaluations  {f['wall']:9.3f} s  W11 = {f['W11']:.6f}"
            f"  ({args.method} rtol {args.rtol:g} atol {args.atol:g}, {f['solver_steps']} steps,"
            f" {f['status']}, field {f['field']})"
        )
        print(
            f"  flow {reference['evaluations']:>9,} evaluations  {reference['wall']:9.3f} s"
            f"  W11 = {reference['W11']:.6f}  ({reference['solver_steps']} steps,"
            f" {reference['status']}, field {reference['field']}: the reference)"
        )
        print(f"  wall-time ratio gd/flow:       {g['wall'] / f['wall']:.0f}x")
        print(f"  gradient-evaluation ratio:     {g['evaluations'] / f['evaluations']:.0f}x")
        print(f"  |W11| relative difference:     {abs(abs(f['W11']) / abs(g['W11']) - 1):.2e}")
        print(f"  wall-time ratio torch/numpy field: {reference['wall'] / f['wall']:.1f}x")
        f4 = flow(args.flow_only_tol, args, Path(tmp, "flow4"))
        print(
            f"flow to loss <= {args.flow_only_tol:g}: {f4['evaluations']:,} evaluations, "
            f"{f4['wall']:.3f} s, W11 = {f4['W11']:.6f} ({f4['status']})"
        )


if __name__ == "__main__":
    main()
