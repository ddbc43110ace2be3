"""How long ``optim=nuclear_norm`` takes, by size and solver (docs/nuclear_norm.md).

Random rank-2 n×n completions (``problem=matrix_completion``, ``problem.seed=0``) with half
their entries seen, solved by ``implicit_reg.baselines.nuclear_norm.solve``. Prints, per
instance, the status, the solve's wall time (cvxpy's import excluded), the solver's iterations,
the certificate (duality gap relative to ‖W‖_*, constraint residual, ‖A*ν‖₂ − 1) and the
recovery error ‖W − W*‖_F / ‖W*‖_F.

    python benchmarks/nuclear_norm_size.py                      # ~2 min on 2 busy CPU cores
    python benchmarks/nuclear_norm_size.py --sizes 100 --solvers scs
"""

from __future__ import annotations

import argparse
import time

import cvxpy  # noqa: F401  (imported here so that its ~1 s import is not timed)
import torch

from implicit_reg import metrics
from implicit_reg.baselines import nuclear_norm
from implicit_reg.problems.matrix_completion import MatrixCompletion, random_low_rank

TOL = {"clarabel": 1e-7, "scs": 1e-6}
SIZES = {"clarabel": [10, 20, 30, 40, 50], "scs": [50, 100]}  # Clarabel past 50: many minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", help="n (default: by solver, SIZES)")
    parser.add_argument("--solvers", nargs="+", default=["clarabel", "scs"])
    args = parser.parse_args()
    for solver in args.solvers:
        for n in args.sizes or SIZES[solver]:
            print(measure(n, solver), flush=True)


def measure(n: int, solver: str) -> str:
    """One instance's line."""
    target, mask = random_low_rank(n, n, 2, n * n // 2, torch.Generator().manual_seed(0))
    problem = MatrixCompletion(target, mask, infimal_rank=2, truth_known=True)
    tol = TOL[solver]
    started = time.perf_counter()
    solution = nuclear_norm.solve(*problem.linear_measurements(), solver=solver, tol=tol)
    seconds = time.perf_counter() - started
    line = f"{n:>4}×{n:<4} {solver:<8} tol {tol:g}: {solution.status:<13} {seconds:7.2f} s"
    if solution.W is None:
        return line
    r = solution.record
    error = float(metrics.reconstruction_error(solution.W, target))
    return (
        f"{line}  {r['solver_iterations']:>3} it"
        f"  gap/‖W‖_* {r['duality_gap'] / r['primal_objective']:.1e}"
        f"  residual {r['constraint_residual']:.1e}"
        f"  ‖A*ν‖₂−1 {r['dual_spectral_norm'] - 1:+.1e}  error {error:.1e}"
    )


if __name__ == "__main__":
    main()
