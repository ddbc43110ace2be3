"""``optim=nuclear_norm``: min ‖W‖_* subject to the observations (implicit_reg/baselines/), against
closed forms, a dual certificate, independent solver paths, and the run-folder contract."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from implicit_reg.baselines.solved_run import final_scalars
from implicit_reg.config.validate import ConfigError, validate
from implicit_reg.problems import MatrixCompletion, build_problem
from implicit_reg.problems.matrix_completion import parse_entries, random_low_rank
from implicit_reg.record.events import read_scalars

cp = pytest.importorskip("cvxpy")  # the baselines extra; make test installs it
nuclear_norm = pytest.importorskip("implicit_reg.baselines.nuclear_norm")


def completion(entries) -> MatrixCompletion:
    target, mask = parse_entries(entries)
    return MatrixCompletion(target, mask, infimal_rank=1)


def random_completion(rows: int, cols: int, rank: int, observed: int, seed: int):
    target, mask = random_low_rank(rows, cols, rank, observed, torch.Generator().manual_seed(seed))
    return MatrixCompletion(target, mask, infimal_rank=rank, truth_known=True), target


def nuclear(W) -> float:
    return float(np.linalg.svd(np.asarray(W), compute_uv=False).sum())


class Measured:
    """A problem given by its measurements only (dense A, as matrix sensing has them)."""

    def __init__(self, A: torch.Tensor, y: torch.Tensor) -> None:
        self.A, self.y = A, y

    def linear_measurements(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.A, self.y


# --- the measurements -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 2), (4, 5), (6, 3)])
def test_completion_measurements_are_the_observed_entries(shape):
    if shape == (2, 2):
        problem = completion([[None, 1.0], [1.0, 0.0]])
    else:
        problem = random_completion(*shape, 2, shape[0] * shape[1] // 2, seed=3)[0]
    A, y = problem.linear_measurements()
    assert A.shape == (int(problem.mask.sum()), *shape)
    W = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    A = A.to_dense()
    # Aₖ holds one 1 among 0s: every product and sum is exact, on any CPU
    assert torch.equal(torch.einsum("kij,ij->k", A, W), W[problem.mask])
    assert torch.equal(y, problem.target[problem.mask])
    assert torch.equal(A.sum(0), problem.mask.double())  # one e_i e_jᵀ per observed entry


def test_given_target_with_a_mask_measures_only_the_masked_entries(compose_cfg):
    cfg = compose_cfg(
        "problem=matrix_completion",
        "problem.target=[[1.0,2.0,3.0],[4.0,5.0,6.0]]",
        "problem.mask=[[1,0,1],[0,1,1]]",
        "problem.infimal_rank=1",
    )
    problem = build_problem(cfg.problem, torch.device("cpu"), torch.float64)
    A, y = problem.linear_measurements()
    assert torch.equal(
        A.to_dense().sum(0), torch.tensor([[1.0, 0, 1], [0, 1, 1]], dtype=torch.float64)
    )
    assert y.tolist() == [1.0, 3.0, 5.0, 6.0]


# --- known answers ----------------------------------------------------------------------------


def closed_form_2x2(p: float, q: float, r: float) -> tuple[float, float]:
    """min over a of ‖[[a, p], [q, r]]‖_* and its minimizer. ‖W‖_*² = ‖W‖_F² + 2|det W| (2×2),
    so a minimizes g(a) = a² + 2|ra − pq|, strictly convex. Its kink a = pq/r (det W = 0, the
    rank-1 completion) is the minimum iff |pq| ≤ r², giving ‖W‖_* = √((p²+r²)(q²+r²))/|r|;
    otherwise a = sign(pq)·|r|… = r·sign(pq) where g′ = 0, giving ‖W‖_* = |p| + |q|."""
    if abs(p * q) <= r * r and r != 0:
        return math.sqrt((p * p + r * r) * (q * q + r * r)) / abs(r), p * q / r
    return abs(p) + abs(q), r * math.copysign(1.0, p * q)


@pytest.mark.parametrize(
    ("p", "q", "r"),
    [(1.0, 1.0, 0.0), (2.0, 3.0, 1.0), (-2.0, 1.0, 0.5), (1.0, 2.0, 3.0), (-1.5, 0.5, -2.0)],
)
def test_one_unobserved_entry_of_a_2x2_matches_the_closed_form(p, q, r):
    """Seed eq. 9 (p = q = 1, r = 0: ‖W‖_* = √(a² + 4), minimum 2 at W11 = 0) and both regimes
    of the closed form (|pq| > r²: not the rank-1 completion; |pq| < r²: the rank-1 one)."""
    value, a = closed_form_2x2(p, q, r)
    solution = nuclear_norm.solve(*completion([[None, p], [q, r]]).linear_measurements())
    assert solution.status == "converged"
    assert solution.record["primal_objective"] == pytest.approx(value, rel=1e-7)
    # ‖W‖_* is quadratic in W11 − a near a (√((a′−a)² + ‖W‖_*²) at p = q = 1, r = 0), so a gap
    # of 1e-7 (optim.tol) places W11 only to about √1e-7: 1e-2 still tells the regimes apart
    assert float(solution.W[0, 0]) == pytest.approx(a, abs=1e-2)
    expected = torch.tensor([p, q, r], dtype=torch.float64)
    torch.testing.assert_close(solution.W.flatten()[1:], expected, atol=1e-9, rtol=0)


def test_closed_form_agrees_with_a_1d_search():
    """The closed form itself against scipy's bounded scalar search over W11 with numpy's SVD."""
    from scipy.optimize import minimize_scalar

    for p, q, r in [(1.0, 1.0, 0.0), (2.0, 3.0, 1.0), (1.0, 2.0, 3.0), (-1.5, 0.5, -2.0)]:
        best = minimize_scalar(
            lambda a, p=p, q=q, r=r: nuclear([[a, p], [q, r]]),
            bounds=(-10, 10),
            method="bounded",
            options={"xatol": 1e-12},
        )
        value, a = closed_form_2x2(p, q, r)
        assert value - 1e-12 <= best.fun <= value + 1e-8  # the closed form is the minimum
        assert best.x == pytest.approx(a, abs=1e-4)


def test_rank_one_matrix_is_recovered_exactly_from_enough_entries():
    problem, target = random_completion(10, 10, 1, 60, seed=0)  # ≥ 3 entries in each row, column
    solution = nuclear_norm.solve(*problem.linear_measurements())
    assert solution.status == "converged"
    torch.testing.assert_close(solution.W, target, atol=1e-6, rtol=0)


def test_rank_one_matrix_is_recovered_from_dense_gaussian_measurements():
    g = torch.Generator().manual_seed(0)
    truth = torch.outer(
        torch.randn(6, generator=g, dtype=torch.float64),
        torch.randn(5, generator=g, dtype=torch.float64),
    )
    A = torch.randn(25, 6, 5, generator=g, dtype=torch.float64)
    problem = Measured(A, torch.einsum("kij,ij->k", A, truth))
    solution = nuclear_norm.solve(*problem.linear_measurements())
    assert solution.status == "converged"
    torch.testing.assert_close(solution.W, truth, atol=1e-6, rtol=0)


# --- the certificate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "rank", "observed", "seed"), [((5, 6), 2, 16, 1), ((7, 4), 1, 12, 2)]
)
def test_kkt_dual_certificate(shape, rank, observed, seed):
    """W is feasible; Z = A*(ν) from the solver's dual ν has ‖Z‖₂ ≤ 1 (dual feasible), ⟨ν, y⟩ =
    ‖W‖_* (zero gap), and Z is a subgradient of ‖·‖_* at W: U_rᵀ Z V_r = I on W's range. At
    optim.tol=1e-7 that last holds to ~1e-4 (an interior point's W and ν are complementary only
    to its tolerance); here the solve goes to 1e-10."""
    problem = random_completion(*shape, rank, observed, seed)[0]
    A, y = problem.linear_measurements()
    solution = nuclear_norm.solve(A, y, tol=1e-10)
    assert solution.status == "converged"
    W, nu = solution.W.numpy(), solution.dual.numpy()
    assert np.abs(W[problem.mask.numpy()] - y.numpy()).max() < 1e-9
    Z = (nuclear_norm.measurement_matrix(A).T @ nu).reshape(shape)
    assert np.linalg.norm(Z, 2) <= 1 + 1e-9
    assert float(nu @ y.numpy()) == pytest.approx(nuclear(W), rel=1e-9)
    U, s, Vt = np.linalg.svd(W)
    r = int((s > 1e-6 * s[0]).sum())
    np.testing.assert_allclose(U[:, :r].T @ Z @ Vt[:r].T, np.eye(r), atol=2e-5)
    record = solution.record
    assert record["duality_gap"] == pytest.approx(abs(nuclear(W) - float(nu @ y.numpy())))
    assert record["dual_spectral_norm"] == pytest.approx(np.linalg.norm(Z, 2))
    assert record["constraint_residual"] == pytest.approx(
        np.abs(W[problem.mask.numpy()] - y.numpy()).max()
    )


# --- independent solver paths on instances nobody named ------------------------------------------


def test_objective_agrees_with_a_hand_written_sdp_and_the_dual_problem():
    """min ½(tr X + tr Y) s.t. [[X, W], [Wᵀ, Y]] ⪰ 0 solved by SCS, and the dual
    max ⟨ν, y⟩ s.t. σ_max(A*ν) ≤ 1 solved by Clarabel: three formulations, one optimum."""
    problem = random_completion(4, 5, 2, 11, seed=7)[0]
    A, y = problem.linear_measurements()
    ours = nuclear_norm.solve(A, y).record["primal_objective"]
    rows, cols = 4, 5
    target, mask = problem.target.numpy(), problem.mask.numpy()
    block = cp.Variable((rows + cols, rows + cols), PSD=True)
    W = block[:rows, rows:]
    fits = [W[i, j] == target[i, j] for i, j in zip(*np.nonzero(mask), strict=True)]
    sdp = cp.Problem(cp.Minimize(cp.trace(block) / 2), fits)
    sdp.solve(solver="SCS", eps_abs=1e-10, eps_rel=1e-10, max_iters=200_000)
    nu = cp.Variable(len(y))
    Z = cp.reshape(nuclear_norm.measurement_matrix(A).T @ nu, (rows, cols), order="C")
    dual = cp.Problem(cp.Maximize(nu @ y.numpy()), [cp.sigma_max(Z) <= 1])
    dual.solve(solver="CLARABEL")
    assert (sdp.status, dual.status) == ("optimal", "optimal")
    assert ours == pytest.approx(sdp.value, rel=1e-6)
    assert ours == pytest.approx(dual.value, rel=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_free_entry_of_a_3x3_agrees_with_a_1d_minimization(seed):
    """Only W_ij free: ‖W‖_* is convex in it; scipy's bounded scalar search with numpy's SVD."""
    from scipy.optimize import minimize_scalar

    g = np.random.default_rng(seed)
    B = g.standard_normal((3, 3))
    i, j = g.integers(3, size=2)
    entries = B.tolist()
    entries[i][j] = None
    solution = nuclear_norm.solve(*completion(entries).linear_measurements())

    def f(a: float) -> float:
        W = B.copy()
        W[i, j] = a
        return nuclear(W)

    best = minimize_scalar(f, bounds=(-20, 20), method="bounded", options={"xatol": 1e-10})
    assert solution.status == "converged"
    assert solution.record["primal_objective"] == pytest.approx(best.fun, rel=1e-7)


# --- failures ---------------------------------------------------------------------------------


def test_iteration_limit_is_solver_failed_with_the_solvers_words():
    problem = random_completion(5, 5, 2, 13, seed=0)[0]
    solution = nuclear_norm.solve(*problem.linear_measurements(), max_iters=1)
    assert solution.status == "solver_failed"
    assert solution.record["solver_message"] == "CLARABEL: MaxIterations (cvxpy status user_limit)"


def test_scs_iteration_limit_is_solver_failed_with_its_words():
    problem = random_completion(5, 5, 2, 13, seed=0)[0]
    solution = nuclear_norm.solve(*problem.linear_measurements(), solver="scs", max_iters=2)
    assert solution.status == "solver_failed"
    assert solution.record["solver_message"].startswith(
        "SCS: solved (inaccurate - reached max_iters)"
    )


def test_scs_certifies_a_small_problem():
    solution = nuclear_norm.solve(
        *completion([[None, 1.0], [1.0, 0.0]]).linear_measurements(), solver="scs", tol=1e-9
    )
    assert (solution.status, solution.record["solver"]) == ("converged", "SCS")
    assert solution.record["primal_objective"] == pytest.approx(2.0, abs=1e-6)


def test_scs_honours_optim_tol():
    """SCS stops at ``tol`` (eps_abs = eps_rel): a tight solve takes more iterations and ends
    with a far smaller duality gap and constraint residual than a loose one. Catches ``tol``
    not passed to SCS (both would stop at its default 1e-4, after the same iterations)."""
    measurements = random_completion(8, 8, 2, 30, seed=1)[0].linear_measurements()
    loose = nuclear_norm.solve(*measurements, solver="scs", tol=1e-2)
    tight = nuclear_norm.solve(*measurements, solver="scs", tol=1e-9)
    assert tight.record["solver_iterations"] > loose.record["solver_iterations"]
    assert tight.record["duality_gap"] < 1e-6 < loose.record["duality_gap"]
    assert tight.record["constraint_residual"] < 1e-6 < loose.record["constraint_residual"]


def test_infeasible_observations_are_solver_failed():
    """W11 = 1 and W11 = 2: no W fits; no point is returned."""
    A = torch.zeros(2, 2, 2, dtype=torch.float64)
    A[:, 0, 0] = 1.0
    solution = nuclear_norm.solve(A, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert (solution.status, solution.W) == ("solver_failed", None)
    assert (
        solution.record["solver_message"] == "CLARABEL: PrimalInfeasible (cvxpy status infeasible)"
    )


def test_a_solver_error_is_solver_failed_with_its_message(monkeypatch):
    from cvxpy.reductions.solvers.solving_chain import SolvingChain

    def crash(*args, **kwargs):
        raise cp.SolverError("the solver crashed")

    monkeypatch.setattr(SolvingChain, "solve_via_data", crash)
    solution = nuclear_norm.solve(*completion([[None, 1.0], [1.0, 0.0]]).linear_measurements())
    assert (solution.status, solution.W, solution.dual) == ("solver_failed", None, None)
    assert solution.record["solver_message"] == "CLARABEL: the solver crashed"
    assert solution.record["solver_status"] == "solver_error"


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        (
            ["problem=least_squares"],
            "problem",
            "a matrix problem (completion_2x2, matrix_completion, …) with optim=nuclear_norm",
        ),
        (["batch.seeds=3"], "batch.seeds", "1 with optim=nuclear_norm"),
        (["batch.lrs=[0.1,0.2]"], "batch.lrs", "null with optim=nuclear_norm"),
        (["batch.init_scales=[0.1]"], "batch.init_scales", "null with optim=nuclear_norm"),
        (
            ["batch.end_to_end_scales=[1e-3,1e-4]"],
            "batch.end_to_end_scales",
            "null with optim=nuclear_norm",
        ),
        (["optim.solver=mosek"], "optim.solver", "clarabel | scs"),
        (["optim.tol=0"], "optim.tol", "a number > 0"),
        (["optim.max_iters=0"], "optim.max_iters", "an integer ≥ 1"),
        (["dtype=float32"], "dtype", "float64 with optim=nuclear_norm"),
    ],
)
def test_bad_config_is_refused(compose_cfg, overrides, key, allowed):
    with pytest.raises(ConfigError) as error:
        validate(compose_cfg("optim=nuclear_norm", *overrides))
    assert error.value.key == key
    assert allowed in str(error.value)


def test_least_squares_is_refused_before_the_run_folder(tmp_path, monkeypatch, train_here):
    with pytest.raises(SystemExit) as refused:
        train_here(
            "optim=nuclear_norm",
            "problem=least_squares",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    assert str(refused.value.code) == (
        "ConfigError: invalid config: problem='least_squares' — allowed: a matrix problem "
        "(completion_2x2, matrix_completion, …) with optim=nuclear_norm: least squares fits a "
        "vector β, which has no nuclear norm to minimize"
    )
    assert not (tmp_path / "run").exists()


def test_missing_cvxpy_is_refused_with_the_install_line(compose_cfg, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "cvxpy" else real(n, *a)
    )
    with pytest.raises(
        ConfigError, match=r"needs cvxpy, not installed here \(pip install -e '\.\[baselines\]'\)"
    ):
        validate(compose_cfg("optim=nuclear_norm"))


# --- the run folder ---------------------------------------------------------------------------


def test_a_run_writes_the_gd_contract_at_one_step(train_run):
    result, out = train_run("optim=nuclear_norm")  # completion_2x2, seed eq. 9
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result))
    assert (metrics["status"], metrics["steps"], metrics["solver_status"]) == (
        "converged",
        0,
        "optimal",
    )
    assert metrics["norm/nuclear"] == pytest.approx(2.0, rel=1e-8)
    assert metrics["entries/1_1"] == pytest.approx(0.0, abs=1e-7)
    # the gap from the extracted duals is a few times the solver's own at optim.tol=1e-7
    assert metrics["constraint_residual"] < 1e-9 and metrics["duality_gap"] < 1e-6
    assert "solver_message" not in metrics
    final = torch.load(out / "final.pt", weights_only=True)
    expected = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(final["W"], expected, atol=1e-7, rtol=0)
    assert len(final["factors"]) == 1 and torch.equal(final["factors"][0], final["W"])
    assert set(final) == {"W", "factors", "target", "mask"}
    scalars = read_scalars(out)
    for tag in ("loss/train", "norm/nuclear", "rank/effective", "singular_values/1"):
        steps, values = scalars[tag]
        assert steps.tolist() == [0]
        assert values[0] == pytest.approx(metrics[tag], rel=1e-6, abs=1e-12)
    assert scalars["time/flow"][1].tolist() == [0.0] and metrics["flow_time"] == 0.0


def test_a_failed_solve_writes_its_message_and_one_log_line(train_run, caplog):
    _, out = train_run("optim=nuclear_norm", "problem=matrix_completion", "optim.max_iters=1")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "solver_failed"
    assert metrics["solver_message"] == "CLARABEL: MaxIterations (cvxpy status user_limit)"
    lines = [r.getMessage() for r in caplog.records if "did not certify" in r.getMessage()]
    assert len(lines) == 1 and "MaxIterations" in lines[0]


def test_reconstruction_error_where_the_ground_truth_is_known():
    problem, target = random_completion(4, 4, 1, 10, seed=0)
    problem.ground_truth = target
    W = (target + 0.1 * torch.eye(4, dtype=torch.float64)).unsqueeze(0)
    values = final_scalars(problem, W, 16)
    expected = 0.1 * 2 / float(target.norm())  # ‖0.1 I‖_F = 0.2
    assert float(values["error/reconstruction"][0]) == pytest.approx(expected, rel=1e-12)
    problem.ground_truth = None
    assert "error/reconstruction" not in final_scalars(problem, W, 16)


@pytest.mark.slow
def test_cli_matrix_completion_writes_the_contract(train_cli, tmp_path):
    out = tmp_path / "run"
    done = train_cli("optim=nuclear_norm", "problem=matrix_completion", f"hydra.run.dir={out}")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "converged"
    assert metrics["loss/train"] < 1e-14 and metrics["constraint_residual"] < 1e-8
    assert (out / ".hydra" / "config.yaml").exists() and (out / "train.log").exists()
    assert "status                 converged" in (out / "train.log").read_text()
    W = torch.load(out / "final.pt", weights_only=True)["W"]
    assert W.shape == (10, 10)
    assert metrics["norm/nuclear"] == pytest.approx(nuclear(W.numpy()), rel=1e-12)
    assert list(read_scalars(out)["norm/nuclear"][0]) == [0]


@pytest.mark.slow
def test_a_sweep_runs_it_beside_gradient_descent_and_summarizes_both(train_cli, tmp_path):
    sweep = tmp_path / "sweep"
    done = train_cli(
        "-m", "optim=gd,nuclear_norm", "train.max_steps=50", f"hydra.sweep.dir={sweep}"
    )
    assert done.returncode == 0, done.stderr
    with open(sweep / "summary.csv") as f:
        rows = {row["optim"]: row for row in csv.DictReader(f)}
    assert (rows["gd"]["status"], rows["nuclear_norm"]["status"]) == ("max_steps", "converged")
    assert float(rows["nuclear_norm"]["norm/nuclear"]) == pytest.approx(2.0, rel=1e-7)
    assert float(rows["gd"]["loss/train"]) > 0.5  # 50 steps from a small init: still on its plateau
