"""optim=flow, the det-sign monitor and the stability guard through ``run`` and the configs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from implicit_reg import run
from implicit_reg.config.validate import ConfigError, validate
from implicit_reg.det_sign import DetSignMonitor
from implicit_reg.dynamics.steppers import ENTRY_MIN_RUNS
from implicit_reg.factorization import factor_shapes
from implicit_reg.init import sample_batch, sample_factors
from implicit_reg.problems import LeastSquares, MatrixCompletion, least_squares_data
from implicit_reg.record.schedule import LogSchedule, log_steps
from implicit_reg.stability import sharpness


def test_flow_run_writes_the_contract_and_reaches_the_depth2_target(tmp_path, compose_cfg):
    cfg = compose_cfg(
        "optim=flow", "model.depth=2", "train.loss_tol=1e-4", "train.log_every=1000000"
    )
    result = run(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "converged" and metrics["flow_coordinates"] == "svd"
    assert metrics["steps"] == math.ceil(metrics["flow_time"] / cfg.optim.lr)  # ⌈t/lr⌉
    assert metrics["gradient_evaluations"] > metrics["solver_steps"] > 0
    assert metrics["det/sign"] == 1.0 and metrics["det_sign_changed_at_step"] is None
    assert abs(metrics["entries/1_1"]) * math.sqrt(2 * metrics["loss/train"]) == pytest.approx(
        1.0, abs=0.01
    )
    final = torch.load(tmp_path / "final.pt", weights_only=True)
    assert torch.allclose(final["factors"][1] @ final["factors"][0], final["W"], atol=1e-9)
    assert result["svd_near_crossing_at_time"] is None
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_flow_in_factor_coordinates_matches_gradient_descent(tmp_path, compose_cfg):
    """Gaussian init (auto → factors): the flow and small-step GD end at the same |W₁₁|."""
    common = ["init.kind=gaussian", "init.scale=0.3", "train.loss_tol=1e-2", "optim.lr=1e-3"]
    flow = run(compose_cfg("optim=flow", *common), tmp_path / "flow")
    gd = run(compose_cfg("optim=gd", "train.sharpness_iters=0", *common), tmp_path / "gd")
    assert flow["flow_coordinates"] == "factors" and flow["status"] == gd["status"] == "converged"
    assert flow["flow_time"] == pytest.approx(gd["flow_time"], rel=0.01)
    assert flow["entries/1_1"] == pytest.approx(gd["entries/1_1"], rel=0.01)


def test_flow_stops_at_max_time(tmp_path, compose_cfg):
    cfg = compose_cfg("optim=flow", "train.max_time=2.5", "train.loss_tol=0")
    result = run(cfg, tmp_path)
    assert result["status"] == "max_time" and result["flow_time"] == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["optim=flow", "optim.method=RK45"], "optim.method"),
        (["optim=flow", "optim.rtol=0"], "optim.rtol"),
        (["optim=flow", "flow.coordinates=polar"], "flow.coordinates"),
        (["optim=flow", "flow.coordinates=svd", "init.kind=gaussian"], "init.kind"),
        (["optim=flow", "flow.coordinates=svd", "model.depth=1"], "model.depth"),
        (["optim=flow", "dtype=float32"], "dtype"),
        (["train.max_time=-1"], "train.max_time"),
        (["train.on_unstable=ignore"], "train.on_unstable"),
        (["train.sharpness_iters=-2"], "train.sharpness_iters"),
    ],
)
def test_bad_flow_and_guard_settings_are_refused(overrides, key, compose_cfg):
    with pytest.raises(ConfigError) as error:
        validate(compose_cfg(*overrides))
    assert error.value.key == key and key in str(error.value)


def test_log_steps_are_the_log_schedule_in_order():
    schedule = LogSchedule(10**5, 700, 7)
    expected = sorted(s for s in range(10**5) if schedule.due(s))
    steps = log_steps(700, 7)
    assert [next(steps) for _ in expected] == expected


def test_det_sign_monitor_records_the_first_change():
    monitor = DetSignMonitor()
    for step, sign in [(0, 1.0), (10, 1.0), (20, -1.0), (30, 1.0), (40, -1.0)]:
        monitor.update(step, step * 0.1, sign)
    assert monitor.record() == {"det_sign_changed_at_step": 20, "det_sign_changed_at_time": 2.0}


def test_gradient_descent_run_records_a_det_sign_change(tmp_path, compose_cfg):
    """i.i.d. Gaussian factors, depth 2: GD leaves det > 0 on the way (the lead's measurement at
    depth 3; depth 2 is faster); the monitor puts the change into metrics.json."""
    cfg = compose_cfg(
        "model.depth=2",
        "init.kind=gaussian",
        "init.scale=0.1",
        "optim.lr=0.05",
        "train.loss_tol=1e-3",
        "train.log_every=10",
    )
    result = run(cfg, tmp_path)
    assert result["status"] == "converged"
    assert result["det/sign"] == -1.0
    assert result["det_sign_changed_at_step"] is not None
    assert result["det_sign_changed_at_time"] == pytest.approx(
        result["det_sign_changed_at_step"] * 0.05
    )


def test_sharpness_is_the_top_hessian_eigenvalue():
    """Least squares: ∇²f = 2XᵀX, so the sharpness is 2σ_max(X)²; a depth-3 factorization:
    the top eigenvalue of the dense Hessian."""
    X, y = least_squares_data(10, 40, torch.Generator().manual_seed(0))
    problem = LeastSquares(X, y)
    value, _ = sharpness(problem, [torch.zeros(1, 40, 1, dtype=torch.float64)], iters=300)
    assert float(value[0]) == pytest.approx(
        2 * float(torch.linalg.matrix_norm(X, 2)) ** 2, rel=1e-8
    )

    factors = sample_factors("gaussian", 1.0, "any", factor_shapes(2, 2, 3, 2), seed=0)
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    completion = MatrixCompletion(target, target != 0, infimal_rank=1)
    flat = torch.cat([f.flatten() for f in factors])
    sizes = [f.numel() for f in factors]

    def loss(theta):
        parts = [p.view(f.shape) for p, f in zip(theta.split(sizes), factors, strict=True)]
        return completion.loss(parts[2] @ parts[1] @ parts[0])

    top = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat))[-1]
    # a batch of runs: each run's own sharpness (the Hessian of the stack is block diagonal)
    stacked = [torch.stack([f, 0.5 * f, f]) for f in factors]
    value, _ = sharpness(completion, stacked, iters=300)
    assert float(value[0]) == pytest.approx(float(top), rel=1e-6)
    # runs 0 and 2 are the same factors in one batch, in one process: the same bits
    assert float(value[2]) == float(value[0]) and float(value[1]) != pytest.approx(float(top))


def test_stability_guard_warns_and_stops(tmp_path, compose_cfg):
    """lr = 1.5/sharpness·2 > 2/sharpness on least squares: ``stop`` ends the run as unstable
    at the first log; ``warn`` warns once and records the step."""
    X, _ = least_squares_data(10, 40, torch.Generator().manual_seed(0))
    lr = 1.5 * 2 / (2 * float(torch.linalg.matrix_norm(X, 2)) ** 2)
    base = ["problem=least_squares", f"optim.lr={lr}", "train.max_steps=50", "train.log_every=5"]
    stopped = run(compose_cfg(*base, "train.on_unstable=stop"), tmp_path / "stop")
    assert stopped["status"] == "unstable" and stopped["unstable_at_step"] == 0
    assert stopped["stability/lr_times_sharpness"] == pytest.approx(3.0, rel=1e-2)
    with pytest.warns(RuntimeWarning, match="sharpness"):
        warned = run(compose_cfg(*base, "train.on_unstable=warn"), tmp_path / "warn")
    assert warned["status"] in ("max_steps", "diverged") and warned["unstable_at_step"] == 0
    assert warned["max_lr_times_sharpness"] == pytest.approx(3.0, rel=1e-2)


@pytest.mark.parametrize("unobserved_row", [False, True])
def test_sharpness_entry_by_entry_equals_batched_matmul(unobserved_row):
    """Many runs of small factors are differentiated entry by entry (``EntryStepper``'s
    layout), few by batched ``@``: the same sharpness and directions. With a row of W that no
    observed entry reads, entries of the last factor have ∇ ≡ 0 (no graph to differentiate)."""
    size = 3 if unobserved_row else 2
    target = torch.arange(1.0, size * size + 1, dtype=torch.float64).view(size, size)
    mask = torch.ones(size, size, dtype=torch.bool)
    mask[0] = not unobserved_row
    mask[-1, -1] = False
    completion = MatrixCompletion(target, mask, infimal_rank=1)
    shapes = factor_shapes(size, size, 3, size)
    runs = 2 * ENTRY_MIN_RUNS
    factors = sample_batch("gaussian", torch.full((runs,), 0.7, dtype=torch.float64), "any",
                           shapes, torch.arange(runs))  # fmt: skip
    value, direction = sharpness(completion, factors, iters=30)
    half = ENTRY_MIN_RUNS // 2  # fewer runs than that: batched @
    for part in range(0, runs, half):
        alone, along = sharpness(completion, [f[part : part + half] for f in factors], iters=30)
        torch.testing.assert_close(value[part : part + half], alone, rtol=1e-10, atol=0)
        for mine, theirs in zip(direction, along, strict=True):  # the top and dominant ones
            for d, a in zip(mine, theirs, strict=True):
                torch.testing.assert_close(d[part : part + half], a, rtol=1e-8, atol=1e-10)


@pytest.mark.slow  # a fresh interpreter
def test_sharpness_does_not_import_sympy(python_cli):
    """A Hessian-vector product taken as ``autograd.grad`` with ``grad_outputs`` makes torch check
    their shapes through ``torch.fx.experimental.symbolic_shapes``, which imports SymPy: seconds
    at a process's first stability check (as long as ~1,000 steps of a 100×100 run). The guard
    differentiates the scalar ⟨∇f, u⟩ instead; a fresh process must not load SymPy."""
    code = (
        "import sys, torch\n"
        "from implicit_reg.problems import MatrixCompletion\n"
        "from implicit_reg.stability import sharpness\n"
        "target = torch.arange(1.0, 10.0, dtype=torch.float64).view(3, 3)\n"
        "problem = MatrixCompletion(target, target > 2, infimal_rank=1)\n"
        "factors = [torch.full((1, 3, 3), 0.5, dtype=torch.float64) for _ in range(3)]\n"
        "value, _ = sharpness(problem, factors, iters=3)\n"
        "assert float(value[0]) > 0\n"
        "print('sympy' in sys.modules)\n"
    )
    done = python_cli("-c", code, check=True)
    assert done.stdout.strip() == "False"
