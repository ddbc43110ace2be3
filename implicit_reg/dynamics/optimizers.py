"""Update rules other than plain gradient descent, acting on a stepper's factors and gradients
(``Stepper.params``, ``Stepper._grads``) in place of ``Stepper.step``: heavy-ball momentum, Adam
and the GroupRMSprop of Arora et al. 2019 (the optimizers of their experiments). GD (seed eq. 1)
stays the reference: ``descend`` calls ``Stepper.step`` when there is no rule.

Every rule keeps its state per run, and ``step(lr)`` follows the loop's convention that a run
with lr_k = 0 has stopped: its factors and its state (buffers, moments, step count) stay
exactly as they are, so a stopped run is bit-identical to one that was never stepped again, and
runs never mix (each reduction is over one run's entries). ``state()``/``load()`` carry the
state into checkpoints and into the loop's snapshots (divergence replay), in the layout of
``Stepper.factors()``: ``(K, d_j, d_{j−1})`` per factor.

Why they matter here: the seed's results and the end-to-end dynamics of Arora et al. 2018
(Ẇ = −Σ_j (WWᵀ)^{(L−j)/L} ∇ℓ(W) (WᵀW)^{(j−1)/L}) are about gradient flow, to which GD with a
small step is close. Each rule below says what of that it keeps.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Protocol

import torch
from omegaconf import DictConfig
from torch import Tensor

from implicit_reg.dynamics.steppers import EntryStepper, Stepper, from_entries, to_entries

NAMES = ("momentum", "adam", "group_rmsprop")
"""``optim.name`` values that take an update rule (``gd`` takes ``Stepper.step``)."""


class UpdateRule(Protocol):
    def step(self, lr: Tensor | float) -> None:
        """Move every run k with lr_k ≠ 0 by the gradient of the stepper's last ``loss()``, and
        update its state; leave the runs with lr_k = 0 (and their state) as they are."""
        ...

    def state(self) -> dict[str, Any]:
        """Copies of the state, per factor ``(K, d_j, d_{j−1})`` or per run ``(K,)``."""
        ...

    def load(self, state: dict[str, Any], runs: Tensor | None = None) -> None:
        """Set the state of the runs where ``runs`` (bool ``(K,)``) is True, or of all."""
        ...

    def preconditioner(self) -> list[Tensor] | None:
        """P of an adaptive step (Adam, GroupRMSprop) per parameter ``(K, d_j, d_{j−1})``, else
        None."""
        ...


def make_rule(optim: DictConfig, stepper: Stepper, mse_per_loss: float) -> UpdateRule | None:
    """The update rule of ``optim`` (``configs/optim``) on ``stepper``; None for ``gd``.
    ``mse_per_loss`` is c in MSE = c·ℓ (``config.validate.mse_per_loss``): GroupRMSprop's
    ``optim.eps`` is Arora et al.'s, which acts on the gradient of the mean squared error, c·∇ℓ;
    on ∇ℓ the same step takes ε/c (√v̂ scales with the gradient, ε does not)."""
    if optim.name == "momentum":
        return Momentum(stepper, momentum=optim.momentum, nesterov=optim.nesterov)
    if optim.name == "adam":
        return Adam(stepper, betas=(optim.betas[0], optim.betas[1]), eps=optim.eps)
    if optim.name == "group_rmsprop":
        return GroupRMSprop(stepper, alpha=optim.alpha, eps=optim.eps / mse_per_loss)
    return None


def stability_limit(optim: DictConfig) -> float:
    """The bound on lr·λ_max past which the step overshoots a quadratic of curvature λ_max
    (``StabilityGuard``): 2 for GD, 2(1 + μ) for heavy-ball momentum, 2(1 + μ)/(1 + 2μ) with
    Nesterov. For the adaptive rules λ_max is that of P⁻¹∇²ℓ, P their ``preconditioner()``,
    held fixed: GroupRMSprop is then GD with step lr/P, bound 2, and Adam is momentum with
    m ← β₁m + (1 − β₁)g, bound 2(1 + β₁)/(1 − β₁) (38 at β₁ = 0.9; Cohen et al. 2022, "Adaptive
    gradient methods at the edge of stability")."""
    if optim.name == "momentum":
        mu = optim.momentum
        return 2 * (1 + mu) / (1 + 2 * mu) if optim.nesterov else 2 * (1 + mu)
    if optim.name == "adam":
        beta1 = optim.betas[0]
        return 2 * (1 + beta1) / (1 - beta1)
    return 2.0


class _Layout:
    """Where run k's numbers sit in a stepper's ``params``: ``(K, …)`` tensors, plain 2-D
    matrices for a single-run ``MatmulStepper``, or one ``(K,)`` tensor per factor entry
    (``EntryStepper``, factor j being ``shapes[j]`` consecutive entries)."""

    def __init__(self, stepper: Stepper) -> None:
        params: list[Tensor] = stepper.params  # type: ignore[attr-defined]
        self.entries = isinstance(stepper, EntryStepper)
        self.single = bool(getattr(stepper, "single", False))
        if self.entries:
            self.shapes: list[tuple[int, ...]] = list(stepper.shapes)
        else:
            self.shapes = [tuple(p.shape[-2:]) for p in params]
        sizes = [math.prod(s) if self.entries else 1 for s in self.shapes]
        bounds = [sum(sizes[:j]) for j in range(len(sizes) + 1)]
        self.groups = [range(a, b) for a, b in itertools.pairwise(bounds)]
        self.runs = 1 if self.single else params[0].shape[0]
        self.dtype, self.device = params[0].dtype, params[0].device

    def per_run(self, t: Tensor, p: Tensor) -> Tensor:
        """A per-run ``(K,)`` tensor shaped to broadcast against parameter ``p``."""
        return t if self.single else t.view(-1, *[1] * (p.dim() - 1))

    def factor_sums(self, tensors: list[Tensor]) -> list[Tensor]:
        """Σ over each factor's entries, per run: one ``(K,)`` tensor per factor."""
        out = []
        for group in self.groups:
            if self.entries:
                total = tensors[group[0]]
                for i in group[1:]:
                    total = total + tensors[i]
            else:
                t = tensors[group[0]]
                total = t.sum().view(1) if self.single else t.flatten(1).sum(1)
            out.append(total)
        return out

    def to_factors(self, tensors: list[Tensor]) -> list[Tensor]:
        """Per-parameter tensors as copies ``(K, d_j, d_{j−1})`` per factor."""
        if not self.entries:
            return [(t.unsqueeze(0) if self.single else t).clone() for t in tensors]
        return from_entries(tensors, self.shapes)

    def from_factors(self, factors: list[Tensor]) -> list[Tensor]:
        """The inverse of ``to_factors``, on this stepper's device and dtype."""
        factors = [f.to(self.device, self.dtype) for f in factors]
        if self.entries:
            return [e.clone() for e in to_entries(factors)]
        return [(f[0] if self.single else f).clone() for f in factors]

    def blend(self, new: Tensor, old: Tensor, runs: Tensor) -> Tensor:
        """Parameter-shaped: ``new`` for the runs where ``runs`` is True, else ``old``."""
        return torch.where(self.per_run(runs, new), new, old)


class _Rule:
    """What the three rules share: the layout, the per-run step count ``t`` and its rates."""

    BUFFERS: tuple[str, ...] = ()
    """Names of the per-parameter state tensors (attributes holding a list per parameter)."""

    def __init__(self, stepper: Stepper) -> None:
        self.stepper = stepper
        self.params: list[Tensor] = stepper.params  # type: ignore[attr-defined]
        self.layout = _Layout(stepper)
        self.t = torch.zeros(self.layout.runs, dtype=torch.long, device=self.layout.device)
        for name in self.BUFFERS:
            setattr(self, name, [torch.zeros_like(p) for p in self.params])

    def _rates(self, lr: Tensor | float) -> tuple[Tensor, Tensor]:
        """lr as a ``(K,)`` tensor and the runs that go (lr ≠ 0); counts their step."""
        lr = torch.as_tensor(lr, dtype=self.layout.dtype, device=self.layout.device).reshape(-1)
        going = lr != 0
        self.t += going
        return lr, going

    def _grads(self) -> tuple[Tensor, ...]:
        return tuple(self.stepper._grads)  # type: ignore[attr-defined]

    def _move(self, directions: list[Tensor], rate: Tensor) -> None:
        """x ← x − rate_k·d per run: the rounding of torch.optim's ``add_(d, alpha=−rate)``."""
        with torch.no_grad():
            for p, d in zip(self.params, directions, strict=True):
                p.addcmul_(d, self.layout.per_run(rate, p), value=-1.0)

    def _keep(self, name: str, new: list[Tensor], going: Tensor) -> None:
        old = getattr(self, name)
        setattr(self, name, [self.layout.blend(n, o, going) for n, o in zip(new, old, strict=True)])

    def _extra_state(self) -> dict[str, Tensor]:
        return {}

    def preconditioner(self) -> list[Tensor] | None:
        """P of an adaptive step x ← x − lr P⁻¹(…), per parameter in the layout of
        ``Stepper.factors()``, as the next step would use it; None where the step is lr·(…)."""
        return None

    def _load_extra(self, state: dict[str, Any], runs: Tensor | None) -> None:
        return None

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.t.clone()}
        for name in self.BUFFERS:
            out[name] = self.layout.to_factors(getattr(self, name))
        out.update({k: v.clone() for k, v in self._extra_state().items()})
        return out

    def load(self, state: dict[str, Any], runs: Tensor | None = None) -> None:
        step = state["step"].to(self.t.device)
        self.t = step.clone() if runs is None else torch.where(runs, step, self.t)
        for name in self.BUFFERS:
            loaded = self.layout.from_factors(state[name])  # copies
            if runs is None:
                setattr(self, name, loaded)
            else:
                self._keep(name, loaded, runs)
        self._load_extra(state, runs)


class Momentum(_Rule):
    """Heavy-ball momentum, torch.optim.SGD(momentum=μ, dampening=0, nesterov=…):
    b ← μ b + ∇ℓ (b = ∇ℓ at the first step), x ← x − lr·b, or with Nesterov
    x ← x − lr·(∇ℓ + μ b).

    Implicit bias: x_{t+1} − x_t = μ (x_t − x_{t−1}) − lr ∇ℓ(x_t) is a discretization of
    the heavy-ball ODE, which for small lr follows gradient flow at the rescaled time
    t·lr/(1 − μ) (a larger effective step lr/(1 − μ) plus O(lr) corrections). The end-to-end
    dynamics and balancedness of Arora et al. 2018 hold for it only up to those corrections, so
    GD at step lr/(1 − μ) is its reference; stability on a quadratic needs lr·λ < 2(1 + μ)
    (2(1 + μ)/(1 + 2μ) with Nesterov) instead of GD's lr·λ < 2.
    """

    BUFFERS = ("momentum_buffer",)

    def __init__(self, stepper: Stepper, momentum: float, nesterov: bool = False) -> None:
        super().__init__(stepper)
        self.momentum, self.nesterov = momentum, nesterov

    def step(self, lr: Tensor | float) -> None:
        lr, going = self._rates(lr)
        grads = self._grads()
        with torch.no_grad():
            new = torch._foreach_mul(self.momentum_buffer, self.momentum)
            torch._foreach_add_(new, grads)
            self._keep("momentum_buffer", new, going)
            if self.nesterov:
                directions = torch._foreach_add(grads, self.momentum_buffer, alpha=self.momentum)
            else:
                directions = self.momentum_buffer
            self._move(directions, lr)


class Adam(_Rule):
    """Adam, torch.optim.Adam(betas=(β₁, β₂), eps=ε) without weight decay: m ← β₁ m + (1 − β₁) g,
    v ← β₂ v + (1 − β₂) g², x ← x − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε), with t the
    run's own step count (runs stop at different steps).

    Implicit bias: the step is scaled entry by entry, so it is not rotation-invariant: the
    factorization's symmetries (W_j → W_j O, O orthogonal) no longer leave the trajectory
    equivalent, balancedness W_{j+1}ᵀW_{j+1} = W_j W_jᵀ is not conserved, and the end-to-end
    dynamics of Arora et al. 2018 (hence the seed's flow analysis) do not apply; with small
    gradients each entry moves at about lr per step regardless of the gradient's size (close to
    sign descent), so the step count, not lr·step, is the natural clock.
    """

    BUFFERS = ("exp_avg", "exp_avg_sq")

    def __init__(self, stepper: Stepper, betas: tuple[float, float], eps: float) -> None:
        super().__init__(stepper)
        self.beta1, self.beta2, self.eps = betas[0], betas[1], eps

    def step(self, lr: Tensor | float) -> None:
        lr, going = self._rates(lr)
        grads = self._grads()
        t = self.t.clamp(min=1).to(self.layout.dtype)  # a run that never stepped has t = 0
        rate = lr / (1 - torch.pow(self.beta1, t))
        with torch.no_grad():
            m = [a.lerp(g, 1 - self.beta1) for a, g in zip(self.exp_avg, grads, strict=True)]
            self._keep("exp_avg", m, going)
            self._keep("exp_avg_sq", self._moment(grads), going)
            denominators = self._denominators(self.exp_avg_sq, t)
            directions = [a / d for a, d in zip(self.exp_avg, denominators, strict=True)]
            self._move(directions, rate)

    def _moment(self, grads: tuple[Tensor, ...]) -> list[Tensor]:
        """β₂ v + (1 − β₂) g² per parameter."""
        v = torch._foreach_mul(self.exp_avg_sq, self.beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - self.beta2)
        return v

    def _denominators(self, exp_avg_sq: list[Tensor], t: Tensor) -> list[Tensor]:
        """√(v / (1 − β₂ᵗ)) + ε per parameter, at the runs' step counts ``t``."""
        root2 = torch.sqrt(1 - torch.pow(self.beta2, t))
        return [
            (s.sqrt() / self.layout.per_run(root2, p)).add_(self.eps)
            for s, p in zip(exp_avg_sq, self.params, strict=True)
        ]

    def preconditioner(self) -> list[Tensor]:
        """P = √v̂ + ε entry by entry, as the next step will divide by it (v taking in the
        gradient of the stepper's last ``loss()``: at step 0, P = |∇ℓ| + ε, not ε)."""
        with torch.no_grad():
            t = (self.t + 1).to(self.layout.dtype)
            return self.layout.to_factors(self._denominators(self._moment(self._grads()), t))


class GroupRMSprop(_Rule):
    """The GroupRMSprop of Arora et al. 2019 (their code's ``opt.GroupRMSprop``): RMSprop with
    one second moment for the whole parameter group — all factors of a run — instead of one per
    entry: v ← α v + (1 − α) Σ_j ‖∇_{W_j} ℓ‖²_F, then every factor takes
    W_j ← W_j − η_t ∇_{W_j} ℓ with η_t = lr / (√(v / (1 − αᵗ)) + ε). Their experiments pass all
    layers as one group, lr = 1e-3, α = 0.99, ε = 1e-4 (``configs/optim/group_rmsprop.yaml``),
    on the mean squared error over the K observations; ``eps`` here is on ∇ℓ, ε·K/2 for
    ℓ = ½Σ (``make_rule``). Their normalizer is a float32 CPU scalar; here it is in the run's
    dtype.

    Implicit bias: the step is the gradient times one positive scalar per run, so the direction
    is GD's: the trajectory is gradient flow's path run at the time change dτ = η_t dt (up to
    O(η_t) discretization), and balancedness and the end-to-end dynamics of Arora et al. 2018
    hold as for GD with a varying step. What changes is the speed: as ‖∇ℓ‖ → 0 the step η_t
    grows like lr/√v, so the late, slow phase (where the rank is decided) is crossed in far
    fewer steps; GD's stability limit applies to η_t (η_t·λ_max < 2), not to lr.
    """

    def __init__(self, stepper: Stepper, alpha: float, eps: float) -> None:
        super().__init__(stepper)
        self.alpha, self.eps = alpha, eps
        self.square_avg = torch.zeros(self.layout.runs, dtype=self.layout.dtype,
                                      device=self.layout.device)  # fmt: skip

    def step(self, lr: Tensor | float) -> None:
        lr, going = self._rates(lr)
        grads = self._grads()
        with torch.no_grad():
            v = self._moment(grads)  # as their loop: v ← α v, then + (1 − α)‖g_j‖² each
            self.square_avg = torch.where(going, v, self.square_avg)
            t = self.t.clamp(min=1).to(self.layout.dtype)
            self._move(list(grads), lr / self._scale(self.square_avg, t))

    def _moment(self, grads: tuple[Tensor, ...]) -> Tensor:
        """α v + (1 − α) Σ_j ‖g_j‖² per run, summed as their loop does."""
        v = self.square_avg * self.alpha
        for total in self.layout.factor_sums([g * g for g in grads]):
            v = v + (1 - self.alpha) * total
        return v

    def _scale(self, square_avg: Tensor, t: Tensor) -> Tensor:
        """√(v / (1 − αᵗ)) + ε per run ``(K,)``."""
        return (square_avg / (1 - torch.pow(self.alpha, t))).sqrt() + self.eps

    def preconditioner(self) -> list[Tensor]:
        """P = √v̂ + ε, one number a run spread over its factors' entries, as the next step will
        divide by it (v taking in the gradient of the stepper's last ``loss()``)."""
        with torch.no_grad():
            t = (self.t + 1).to(self.layout.dtype)
            scale = self._scale(self._moment(self._grads()), t)
        return [scale.view(-1, 1, 1).expand(-1, *s).clone() for s in self.layout.shapes]

    def _extra_state(self) -> dict[str, Tensor]:
        return {"square_avg": self.square_avg}

    def _load_extra(self, state: dict[str, Any], runs: Tensor | None) -> None:
        value = state["square_avg"].to(self.layout.device, self.layout.dtype)
        self.square_avg = (
            value.clone() if runs is None else torch.where(runs, value, self.square_avg)
        )
