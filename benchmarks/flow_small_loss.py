"""How far, and how fast, the exact-sign flow goes on the 2×2 problem (issue 9).

    python benchmarks/flow_small_loss.py [--methods LSODA,BDF,Radau] [--loss-tol 1e-12]
                                         [--depths 2,3,4] [--scales 1e-3,0.05,0.3] [--seeds 0,1]

For each method × depth × balanced det > 0 init: the status, the loss reached, |W₁₁|·√(2ℓ) − 1
(Theorem 1, eq. 20), sign det W from the integrated U, V, solver steps, undone (non-finite)
steps and wall time, at the default tolerances (rtol 1e-8, atol 1e-16).
"""

from __future__ import annotations

import argparse
import math
import time

from implicit_reg.dynamics import gradient_flow
from implicit_reg.dynamics.svd_flow import SvdCoordinates
from implicit_reg.factorization import factor_shapes, product
from implicit_reg.init import sample_factors
from implicit_reg.problems import MatrixCompletion
from implicit_reg.problems.matrix_completion import parse_entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="LSODA,BDF,Radau")
    parser.add_argument("--loss-tol", type=float, default=1e-12)
    parser.add_argument("--depths", default="2,3,4")
    parser.add_argument("--scales", default="1e-3,0.05,0.3")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    target, mask = parse_entries([[None, 1.0], [1.0, 0.0]])
    problem = MatrixCompletion(target, mask, infimal_rank=1)
    print("method  depth  scale  seed  status     loss      |W11|√(2ℓ)−1  det  steps  undone  wall")
    for method in args.methods.split(","):
        for depth in map(int, args.depths.split(",")):
            for scale in map(float, args.scales.split(",")):
                for seed in map(int, args.seeds.split(",")):
                    shapes = factor_shapes(2, 2, depth, 2)
                    factors = sample_factors("balanced", scale, "positive", shapes, seed)
                    coordinates = SvdCoordinates(problem, product(factors), depth)
                    start = time.perf_counter()
                    outcome, y = gradient_flow(
                        coordinates,
                        problem,
                        method=method,
                        lr=1e-2,
                        max_time=None,
                        max_steps=10**6,
                        loss_tol=args.loss_tol,
                        log_every=None,
                        log_per_decade=0,
                        on_log=lambda *_, **__: None,
                    )
                    wall = time.perf_counter() - start
                    W = coordinates.matrix(y)
                    loss = float(problem.loss(W))
                    ratio = abs(float(W[0, 0])) * math.sqrt(2 * loss) - 1
                    sign = float(coordinates.exact(y)["det/sign"])
                    record = outcome.record
                    print(
                        f"{method:<6}  {depth:>5}  {scale:<5g}  {seed:>4}  {outcome.status:<9}"
                        f"  {loss:.2e}  {ratio:+.1e}       {sign:+.0f}  "
                        f"{record['solver_steps']:>5}  {record['solver_retries']:>6}"
                        f"  {wall:.1f} s",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
