"""Nuclear-norm minimization, the norm-based baseline against which Arora et al. (2019) compare
deep factorizations (seed §4: does gradient descent minimize a norm?):

    min ‖W‖_*   subject to   ⟨A_k, W⟩ = y_k,  k = 1 … K,

with the problem's own observations (``Problem.linear_measurements``) as *equality* constraints,
no slack. Its dual is

    max ⟨ν, y⟩   subject to   ‖A*(ν)‖₂ ≤ 1,   A*(ν) = Σ_k ν_k A_k,

and for every feasible W and dual-feasible ν, ⟨ν, y⟩ = ⟨A*(ν), W⟩ ≤ ‖A*(ν)‖₂‖W‖_* ≤ ‖W‖_*
(weak duality); at the optimum the two are equal and A*(ν) is a subgradient of ‖·‖_* at W.

cvxpy builds the problem (its ``normNuc`` is the semidefinite program
min ½(tr X + tr Y) s.t. [[X, W], [Wᵀ, Y]] ⪰ 0) and a conic solver solves it: Clarabel (interior
point) by default, SCS (first order) on request. A solve is ``converged`` only when the solver
certifies optimality (cvxpy status ``optimal``); anything else is ``solver_failed`` with the
solver's own status. The certificate is checked here too: the record holds the constraint
residual max_k |⟨A_k, W⟩ − y_k|, the dual objective ⟨ν, y⟩ and ‖A*(ν)‖₂ of the equality
constraints' dual ν as the solver returned it, and the duality gap |‖W‖_* − ⟨ν, y⟩|, all
computed from W and ν in float64 (not the solver's own gap estimate).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse
import torch
from torch import Tensor

SOLVERS = {"clarabel": "CLARABEL", "scs": "SCS"}
"""``optim.solver`` → cvxpy's solver name. Both report a status and a duality gap."""


@dataclass
class Solution:
    status: str
    """``converged`` (the solver certified optimality) or ``solver_failed``."""
    W: Tensor | None
    """The minimizer, float64 ``(rows, cols)``; None when the solver returned no point."""
    dual: Tensor | None
    """ν, float64 ``(K,)``: the dual of the equality constraints (module docstring)."""
    record: dict[str, Any] = field(default_factory=dict)
    """Entries for ``metrics.json``: the solver, its status and iterations, and the certificate
    (``constraint_residual``, ``primal_objective``, ``dual_objective``, ``dual_spectral_norm``,
    ``duality_gap``); ``solver_message`` when it failed."""


def measurement_matrix(A: Tensor) -> scipy.sparse.csr_matrix:
    """The measurements ``A`` ``(K, rows, cols)`` (dense, or sparse COO) as the K × (rows·cols)
    matrix acting on W flattened row by row."""
    K, rows, cols = A.shape
    A = A.detach().cpu().double()
    if A.is_sparse:
        A = A.coalesce()
        k, i, j = A.indices().numpy()
        return scipy.sparse.csr_matrix(
            (A.values().numpy(), (k, i * cols + j)), shape=(K, rows * cols)
        )
    return scipy.sparse.csr_matrix(A.reshape(K, rows * cols).numpy())


def solve(
    A: Tensor,
    y: Tensor,
    *,
    solver: str = "clarabel",
    tol: float = 1e-7,
    max_iters: int | None = None,
) -> Solution:
    """Minimize ‖W‖_* subject to ⟨A_k, W⟩ = y_k (module docstring). ``tol`` is the solver's
    feasibility and duality-gap tolerance; ``max_iters`` its iteration limit (None: its
    default, 200 for Clarabel, 100000 for SCS)."""
    import cvxpy as cp  # the optional extra: imported only when a baseline runs

    _, rows, cols = A.shape
    M = measurement_matrix(A)
    b = y.detach().cpu().double().numpy()
    W = cp.Variable((rows, cols))
    fit = M @ cp.vec(W, order="C") == b
    problem = cp.Problem(cp.Minimize(cp.normNuc(W)), [fit])
    name = SOLVERS[solver]
    options = _options(solver, tol, max_iters)
    record: dict[str, Any] = {"solver": name, "measurements": int(M.shape[0])}
    started = time.perf_counter()
    # cvxpy's documented three-step solve, which keeps the solver's raw result (its own words)
    data, chain, inverse = problem.get_problem_data(name, solver_opts=options)
    own_words = None
    try:
        raw = chain.solve_via_data(problem, data, False, False, options)
        own_words, record["solver_iterations"] = _raw_status(solver, raw)
        with warnings.catch_warnings():  # "Solution may be inaccurate": reported below instead
            warnings.simplefilter("ignore", UserWarning)
            problem.unpack_results(raw, chain, inverse)
    except cp.SolverError as error:  # the solver crashed, or returned a numerical error
        record.update(solve_time_s=time.perf_counter() - started, solver_status="solver_error")
        said = f"{own_words} ({error})" if own_words is not None else str(error)
        record["solver_message"] = f"{name}: {said}"
        return Solution("solver_failed", None, None, record)
    record["solve_time_s"] = time.perf_counter() - started
    record["solver_status"] = problem.status
    W_value = W.value
    # cvxpy's Lagrangian adds λᵀ(M vec W − y): the dual point of the module docstring is ν = −λ
    nu = None if fit.dual_value is None else -np.asarray(fit.dual_value, dtype=float).reshape(-1)
    if W_value is not None:
        record.update(certificate(M, b, W_value, nu))
    if problem.status != cp.OPTIMAL:
        record["solver_message"] = f"{name}: {own_words} (cvxpy status {problem.status})"
        status = "solver_failed"
    else:
        status = "converged"
    return Solution(
        status,
        None if W_value is None else torch.from_numpy(W_value),
        None if nu is None else torch.from_numpy(nu),
        record,
    )


def certificate(
    M: scipy.sparse.csr_matrix, y: np.ndarray, W: np.ndarray, nu: np.ndarray | None
) -> dict[str, float]:
    """The optimality certificate of W with the dual point ν (None: no dual returned):
    residual max_k |⟨A_k, W⟩ − y_k|, ‖W‖_*, ⟨ν, y⟩, ‖A*(ν)‖₂ and the gap |‖W‖_* − ⟨ν, y⟩|."""
    rows, cols = W.shape
    primal = float(np.linalg.svd(W, compute_uv=False).sum())
    out = {
        "constraint_residual": float(np.abs(M @ W.reshape(-1) - y).max()),
        "primal_objective": primal,
    }
    if nu is not None:
        dual = float(nu @ y)
        Z = (M.T @ nu).reshape(rows, cols)
        out.update(
            dual_objective=dual,
            dual_spectral_norm=float(np.linalg.norm(Z, 2)),
            duality_gap=abs(primal - dual),
        )
    return out


def _options(solver: str, tol: float, max_iters: int | None) -> dict[str, Any]:
    if solver == "clarabel":
        options: dict[str, Any] = {"tol_gap_abs": tol, "tol_gap_rel": tol, "tol_feas": tol}
        if max_iters is not None:
            options["max_iter"] = max_iters
        return options
    options = {"eps_abs": tol, "eps_rel": tol}
    if max_iters is not None:
        options["max_iters"] = max_iters
    return options


def _raw_status(solver: str, raw: Any) -> tuple[str, int]:
    """The solver's own status words and its iteration count, from its raw result."""
    if solver == "clarabel":
        return str(raw.status), int(raw.iterations)
    info = raw["info"]
    return str(info["status"]), int(info["iter"])
