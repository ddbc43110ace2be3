"""Update rules (implicit_reg/dynamics/optimizers.py) against their references: torch.optim.SGD with
momentum and torch.optim.Adam, and a direct transcription of Arora et al. 2019's GroupRMSprop,
run by run on every stepper layout (float64); a stopped run and its state stay bit for bit; a
run that diverges under Adam is put back to its last finite factors and state; config errors."""

from __future__ import annotations

import math

import pytest
import torch

from implicit_reg.config.validate import ConfigError, validate
from implicit_reg.dynamics.gd import DIVERGED, Runs, descend
from implicit_reg.dynamics.optimizers import (
    Adam,
    GroupRMSprop,
    Momentum,
    make_rule,
    stability_limit,
)
from implicit_reg.dynamics.steppers import make_stepper
from implicit_reg.factorization import product
from implicit_reg.record import checkpoint
from implicit_reg.record.schedule import LogSchedule

RUNS = 5
LRS = torch.tensor([0.01, 0.03, 0.002, 0.05, 0.02], dtype=torch.float64)
LAYOUTS = ("single", "matmul", "entries", "fused", "fused_entries")


def starts(runs: int, depth: int = 3, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [0.6 * torch.randn(runs, 2, 2, generator=g, dtype=torch.float64) for _ in range(depth)]


def stepper_for(layout: str, factors: list[torch.Tensor], problem):
    fused = layout.startswith("fused")
    return make_stepper(factors, problem, fused, entries=layout.endswith("entries"))


def torch_reference(name: str, factors: list[torch.Tensor], problem, lr: float, steps: int):
    """One run's factors (2-D) after ``steps`` steps of the torch.optim optimizer."""
    params = [f.clone().requires_grad_(True) for f in factors]
    if name == "momentum":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    elif name == "nesterov":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.8, nesterov=True)
    else:
        opt = torch.optim.Adam(params, lr=lr, betas=(0.8, 0.99), eps=1e-8)
    for _ in range(steps):
        opt.zero_grad()
        problem.loss(product(params)).backward()
        opt.step()
    return [p.detach() for p in params]


def paper_group_rmsprop(factors, problem, lr, alpha, eps, steps):
    """Arora et al. 2019's GroupRMSprop step as written in their opt.py (one param group holding
    every layer): v ← αv, v += (1 − α)·Σg² tensor by tensor, t += 1, avg = √(v/(1 − αᵗ)) + eps,
    p ← p − (lr/avg)·g; in float64 (theirs keeps v as a float32 scalar)."""
    params = [f.clone().requires_grad_(True) for f in factors]
    square_avg = torch.tensor(0.0, dtype=torch.float64)
    for step in range(1, steps + 1):
        grads = torch.autograd.grad(problem.loss(product(params)), params)
        square_avg = square_avg * alpha
        for g in grads:
            square_avg = square_avg + (1 - alpha) * g.pow(2).sum()
        avg = (square_avg / (1 - alpha**step)).sqrt() + eps
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.add_(-(lr / avg) * g)
    return [p.detach() for p in params]


def make(name: str, stepper):
    if name == "momentum":
        return Momentum(stepper, momentum=0.9)
    if name == "nesterov":
        return Momentum(stepper, momentum=0.8, nesterov=True)
    if name == "adam":
        return Adam(stepper, betas=(0.8, 0.99), eps=1e-8)
    return GroupRMSprop(stepper, alpha=0.9, eps=1e-4)


def train(rule, stepper, lr: torch.Tensor, steps: int) -> None:
    for _ in range(steps):
        stepper.loss()
        rule.step(lr)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam", "group_rmsprop"])
@pytest.mark.parametrize("steps", [1, 40])
def test_each_run_follows_its_own_reference_trajectory(completion_2x2, layout, name, steps):
    """Catches: a wrong update (no bias correction, eps inside the root, Nesterov's direction,
    the group norm over one factor or over all runs), the lr of another run, a state that is not
    per run, a layout (entry-wise, 2-D single run) whose reductions mix runs or factors."""
    runs = 1 if layout == "single" else RUNS
    start = starts(runs)
    stepper = stepper_for(layout, start, completion_2x2)
    rule = make(name, stepper)
    train(rule, stepper, LRS[:runs], steps)
    got = stepper.factors()
    for k in range(runs):
        mine = [f[k] for f in start]
        lr = float(LRS[k])
        if name == "group_rmsprop":
            want = paper_group_rmsprop(mine, completion_2x2, lr, 0.9, 1e-4, steps)
        else:
            want = torch_reference(name, mine, completion_2x2, lr, steps)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a[k], b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("observed", [3, 40])
def test_group_rmsprop_takes_the_papers_steps_on_their_mean_squared_error(observed, compose_cfg):
    """Arora et al.'s optimizer minimizes the mean squared error over the K observations with
    ε = 1e-4 on its gradient; ``make_rule`` on our ½Σ loss must take the same steps. Against the
    transcription of their step on their loss, at K = 3 (the 2×2 problem) and K = 40, where
    their ε on our loss would be 20× too small. Catches ε passed through unscaled, or scaled by
    c instead of 1/c."""
    from implicit_reg.config.validate import mse_per_loss
    from implicit_reg.problems import MatrixCompletion

    g = torch.Generator().manual_seed(1)
    target = torch.randn(8, 8, generator=g, dtype=torch.float64)
    mask = torch.zeros(64, dtype=torch.bool)
    mask[torch.randperm(64, generator=g)[:observed]] = True
    problem = MatrixCompletion(target, mask.view(8, 8), infimal_rank=2)

    class MeanSquaredError:  # their loss: mean over Ω of (W_ij − b_ij)²
        def loss(self, W):
            return (W - target)[mask.view(8, 8)].square().mean()

    cfg = compose_cfg(
        "problem=matrix_completion", "problem.rows=8", "problem.cols=8", "problem.rank=2",
        f"problem.observed={observed}", "optim=group_rmsprop", "optim.lr=1e-2",
    )  # fmt: skip
    assert mse_per_loss(cfg.problem) == 2 / observed
    start = [1e-3 * torch.randn(1, 8, 8, generator=g, dtype=torch.float64) for _ in range(3)]
    stepper = make_stepper(start, problem, entries=False)
    rule = make_rule(cfg.optim, stepper, mse_per_loss(cfg.problem))
    train(rule, stepper, torch.tensor([1e-2], dtype=torch.float64), 50)
    want = paper_group_rmsprop([f[0] for f in start], MeanSquaredError(), 1e-2, 0.99, 1e-4, 50)
    for a, b in zip(stepper.factors(), want, strict=True):
        torch.testing.assert_close(a[0], b, rtol=1e-10, atol=1e-13)


def test_group_rmsprop_is_gd_with_one_step_size_per_run(completion_2x2):
    """The step of every factor is the gradient times lr/(√v̂ + eps) for a v shared by all
    factors of the run (not one per factor): after one step, v̂ = Σ_j ‖g_j‖², so the move is
    lr·g/(‖g‖ + eps). Catches a per-factor or per-entry normalizer."""
    start = starts(RUNS)
    stepper = make_stepper(start, completion_2x2, entries=False)
    stepper.loss()
    grads = [g.clone() for g in stepper._grads]
    GroupRMSprop(stepper, alpha=0.99, eps=1e-4).step(LRS)
    norm = torch.sqrt(sum(g.square().sum((1, 2)) for g in grads))
    rate = (LRS / (norm + 1e-4)).view(-1, 1, 1)
    for now, before, g in zip(stepper.factors(), start, grads, strict=True):
        torch.testing.assert_close(now, before - rate * g, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("layout", LAYOUTS[1:])
@pytest.mark.parametrize("name", ["momentum", "adam", "group_rmsprop"])
def test_a_stopped_run_and_its_state_stay_bit_for_bit(completion_2x2, layout, name):
    """lr_k = 0 is a stopped run: after some steps, run 1 stops (and run 3 never starts); more
    steps leave their factors and state unchanged, and the running runs go on as if alone.
    Catches: state updated for stopped runs (a momentum buffer or moment that keeps decaying,
    a step count that keeps counting), NaN from a zero step count's bias correction."""
    stepper = stepper_for(layout, starts(RUNS), completion_2x2)
    rule = make(name, stepper)
    never = LRS.clone()
    never[3] = 0
    train(rule, stepper, never, 5)
    factors, state = stepper.factors(), rule.state()
    stopped = never.clone()
    stopped[1] = 0
    train(rule, stepper, stopped, 7)
    for k in (1, 3):
        for a, b in zip(stepper.factors(), factors, strict=True):
            assert torch.equal(a[k], b[k])
        for key, value in rule.state().items():
            for a, b in zip(value if isinstance(value, list) else [value],
                            state[key] if isinstance(value, list) else [state[key]],
                            strict=True):  # fmt: skip
                assert torch.equal(a[k], b[k]), key
    assert int(rule.state()["step"][3]) == 0 and int(rule.state()["step"][1]) == 5
    moved = [not torch.equal(a[0], b[0]) for a, b in zip(stepper.factors(), factors, strict=True)]
    assert all(moved)


@pytest.mark.parametrize("name", ["momentum", "adam", "group_rmsprop"])
def test_state_round_trips_between_layouts(completion_2x2, name):
    """``state()`` is in the layout of ``Stepper.factors()`` whatever the stepper: the state of an
    entry-wise batch loads into a batched-``@`` one, which then steps to the same factors.
    Catches a state saved in the stepper's own layout (entries transposed, runs lost)."""
    start = starts(RUNS)
    entries = make_stepper(start, completion_2x2, entries=True)
    rule = make(name, entries)
    train(rule, entries, LRS, 6)
    matmul = make_stepper(entries.factors(), completion_2x2, entries=False)
    other = make(name, matmul)
    other.load(rule.state())
    train(rule, entries, LRS, 6)
    train(other, matmul, LRS, 6)
    for a, b in zip(entries.factors(), matmul.factors(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_divergence_under_adam_ends_at_the_last_finite_factors_and_state(completion_2x2):
    """Adam's step is at most about lr per entry, and its second moment overflows (freezing the
    run) before the loss does, so a blow-up needs ε so large that the step is lr·m̂/ε, GD-like
    (effective step lr/ε), until the growing gradient makes it ±lr at once: run 1 (lr/ε = 1.5)
    overflows mid-window (step 11 here; check_every = 7). ``descend`` must leave it at the
    factors and the Adam state of its last finite step, as stepping the batch by hand finds
    them, and the other runs as if alone. Catches: a snapshot without the optimizer state (the
    replay starts from later moments and lands elsewhere), a replay that moves or updates the
    other runs."""
    eps = 1e150
    lr = torch.tensor([0.01, 1.5, 0.02], dtype=torch.float64) * eps
    start = starts(3, seed=1)
    steps = 60

    stepper = make_stepper(start, completion_2x2, entries=False)
    rule = Adam(stepper, betas=(0.9, 0.999), eps=eps)
    finite_factors, finite_state, first_inf = None, None, None
    for step in range(steps):
        loss = stepper.loss()
        if not math.isfinite(float(loss[1])):
            first_inf = step
            break
        finite_factors, finite_state = stepper.factors(), rule.state()
        rule.step(lr)
    # strictly between two host checks (7, 14): what the replay is tested on; the exact step
    # follows from the start's draws and need not be pinned
    assert 7 < first_inf < 14

    stepper = make_stepper(start, completion_2x2, entries=False)
    rule = Adam(stepper, betas=(0.9, 0.999), eps=eps)
    runs = Runs.start(3, torch.device("cpu"))
    descend(stepper, lr, runs, max_steps=torch.full((3,), steps), loss_tol=0.0,
            schedule=LogSchedule(steps, 1000, 0), on_log=lambda *a: None, check_every=7,
            rule=rule)  # fmt: skip
    assert runs.names() == ["max_steps", "diverged", "max_steps"]
    assert int(runs.steps[1]) == first_inf and int(runs.status[1]) == DIVERGED
    for a, b in zip(stepper.factors(), finite_factors, strict=True):
        assert torch.equal(a[1], b[1])
    state = rule.state()
    assert int(state["step"][1]) == int(finite_state["step"][1]) == first_inf - 1
    for key in ("exp_avg", "exp_avg_sq"):
        for a, b in zip(state[key], finite_state[key], strict=True):
            assert torch.equal(a[1], b[1]), key
    alone = make_stepper([f[[0, 2]] for f in start], completion_2x2, entries=False)
    train(Adam(alone, betas=(0.9, 0.999), eps=eps), alone, lr[[0, 2]], steps)
    for a, b in zip(stepper.factors(), alone.factors(), strict=True):
        assert torch.equal(a[[0, 2]], b)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_stability_limit_separates_decay_from_growth(
    completion_2x2, nesterov, compose_cfg
):
    """On W = W_1 (depth 1) ℓ is a quadratic with curvature 1 on the observed entries, so
    heavy-ball momentum decays for lr just below ``stability_limit`` and grows just above it.
    Catches a wrong limit (GD's 2, or Nesterov's taken for heavy ball)."""
    cfg = compose_cfg("optim=momentum", "optim.momentum=0.5", f"optim.nesterov={nesterov}")
    limit = stability_limit(cfg.optim)
    lr = torch.tensor([0.95 * limit, 1.05 * limit], dtype=torch.float64)
    stepper = make_stepper([torch.full((2, 2, 2), 0.3, dtype=torch.float64)], completion_2x2)
    rule = make_rule(cfg.optim, stepper, mse_per_loss=2 / 3)
    first = stepper.loss()
    train(rule, stepper, lr, 1000)
    loss = stepper.loss()
    assert float(loss[0]) < float(first[0]) * 1e-6 and float(loss[1]) > float(first[1]) * 1e6


@pytest.mark.parametrize("beta1", [0.0, 0.5, 0.9])
def test_adam_stability_limit_is_that_of_its_frozen_preconditioner_recurrence(beta1, compose_cfg):
    """With P held fixed, Adam on a quadratic of curvature a along an eigenvector of P⁻¹∇²ℓ is
    m ← β₁m + (1 − β₁)a x, x ← x − lr·m: its 2×2 recurrence has spectral radius < 1 just
    below lr·a = ``stability_limit`` and > 1 just above (38 at β₁ = 0.9). Catches the limit of
    GD (2) or of heavy ball (2(1 + β₁)) taken for Adam's."""
    limit = stability_limit(compose_cfg("optim=adam", f"optim.betas=[{beta1},0.999]").optim)
    for factor, stable in ((0.99, True), (1.01, False)):
        c = factor * limit * (1 - beta1)  # lr·(1 − β₁)·a
        recurrence = torch.tensor([[beta1, c], [-beta1, 1 - c]], dtype=torch.float64)  # (m, x/lr·a)
        radius = float(torch.linalg.eigvals(recurrence).abs().max())
        assert (radius < 1) == stable


@pytest.mark.parametrize("runs", [3, 64])  # batched ``@``, entry by entry
@pytest.mark.parametrize("name", ["adam", "group_rmsprop"])
def test_preconditioned_sharpness_is_the_top_eigenvalue_of_p_inverse_hessian(
    runs, name, compose_cfg
):
    """The guard's sharpness under an adaptive rule is λ_max(P⁻¹∇²ℓ), P the rule's current
    preconditioner, against the eigenvalues of P^{−1/2} H P^{−1/2} from the full Hessian of a
    few runs. Catches P^{−1} applied once (P^{−1/2}·H, not symmetric), P itself for P⁻¹, P of
    another run, and the plain sharpness."""
    from implicit_reg.problems import MatrixCompletion
    from implicit_reg.stability import sharpness

    problem = MatrixCompletion(
        torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64),
        torch.tensor([[False, True], [True, True]]),
        infimal_rank=1,
    )
    stepper = make_stepper(starts(runs, depth=2, seed=3), problem)
    rule = make_rule(compose_cfg(f"optim={name}").optim, stepper, mse_per_loss=2 / 3)
    lr = torch.linspace(0.01, 0.03, runs, dtype=torch.float64)
    train(rule, stepper, lr, 7)  # the preconditioners now differ between runs and entries
    factors, P = stepper.factors(), rule.preconditioner()
    value, _ = sharpness(problem, factors, 400, preconditioner=P)
    for k in (0, runs - 1):
        flat = torch.cat([f[k].flatten() for f in factors])

        def loss(x, k=k):
            W1, W2 = x[:4].view(2, 2), x[4:].view(2, 2)
            return problem.loss(W2 @ W1)

        H = torch.autograd.functional.hessian(loss, flat)
        d = torch.cat([p[k].flatten() for p in P]).rsqrt()
        eigenvalues = torch.linalg.eigvalsh(d[:, None] * H * d[None, :])
        top = eigenvalues[-1]  # λ_max (at these factors also the largest in magnitude)
        assert top == eigenvalues[eigenvalues.abs().argmax()]
        assert float(value[k]) == pytest.approx(float(top), rel=1e-6)
        assert abs(float(top) - float(torch.linalg.eigvalsh(H)[-1])) > 1e-3 * abs(float(top))


def test_an_adam_run_past_its_limit_is_stopped_as_unstable(train_run):
    """lr·λ_max(P⁻¹∇²ℓ) > 38 at β₁ = 0.9: ``train.on_unstable=stop`` ends the run there, and
    the preconditioned sharpness is logged under its own tag; a small lr is left alone."""
    base = ("optim=adam", "model.depth=2", "init.scale=0.5", "train.max_steps=200",
            "train.log_every=20", "train.on_unstable=stop")  # fmt: skip
    result, _ = train_run(*base, "optim.lr=1.0")
    assert result["status"] == "unstable" and result["max_lr_times_sharpness"] > 38
    assert "stability/preconditioned_sharpness" in result
    assert "stability/sharpness" not in result
    calm, _ = train_run(*base, "optim.lr=1e-4")
    assert calm["unstable_at_step"] is None and 0 < calm["max_lr_times_sharpness"] < 38


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("optim=momentum", "optim.momentum=1.0"), "optim.momentum"),
        (("optim=momentum", "optim.momentum=-0.1"), "optim.momentum"),
        (("optim=momentum", "optim.lr=0"), "optim.lr"),
        (("optim=adam", "optim.betas=[0.9,1.0]"), "optim.betas.1"),
        (("optim=adam", "optim.betas=[nan,0.9]"), "optim.betas.0"),
        (("optim=adam", "optim.betas=[0.9]"), "optim.betas"),
        (("optim=adam", "optim.eps=0"), "optim.eps"),
        (("optim=group_rmsprop", "optim.alpha=1"), "optim.alpha"),
        (("optim=group_rmsprop", "optim.eps=-1e-4"), "optim.eps"),
    ],
)
def test_bad_optimizer_values_are_refused_naming_the_key(overrides, key, compose_cfg):
    with pytest.raises(ConfigError) as raised:
        validate(compose_cfg(*overrides))
    assert raised.value.key == key


def test_a_batch_takes_every_rule_but_the_flow(compose_cfg):
    """Catches the old refusal of a batch for anything but gd, and a flow batch let through."""
    for name in ("momentum", "adam", "group_rmsprop"):
        validate(compose_cfg(f"optim={name}", "batch.seeds=4"))
    with pytest.raises(ConfigError, match=r"optim\.name"):
        validate(compose_cfg("optim=flow", "batch.seeds=4"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["momentum", "adam", "group_rmsprop"])
def test_each_optimizer_trains_through_the_cli(tmp_path, train_cli, name, read_metrics):
    """``python train.py optim=<name>`` on the 2×2 problem (ℓ(0) ≈ 1) converges to ℓ < 1e-2,
    and its checkpoint carries the rule's state at the final step. Catches a rule that is not
    wired in (GD would be taken instead: a different step count than the rule's state says)
    or one that does not descend."""
    done = train_cli(f"optim={name}", "train.max_steps=20000", "train.loss_tol=1e-2",
                     f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = read_metrics(tmp_path)
    assert result["status"] == "converged" and result["loss/train"] < 1e-2
    saved = checkpoint.read(tmp_path)
    assert saved is not None and saved.optimizer is not None
    assert int(saved.optimizer["step"][0]) == result["steps"] > 0
