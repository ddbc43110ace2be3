"""Stability guard for gradient descent: the sharpness λ_max(∇²f) of every run at its factors.

Gradient descent with step η tracks the flow (seed eq. 1 → 2) only while η·λ_max < 2: past
that, the step overshoots along the top curvature direction. On the deep factorization the
sharpness grows with the norms (≈ L·σ₁^{2−2/L}), so a fixed η that starts stable need not stay so.
An adaptive step x ← x − η P⁻¹(…) (Adam, GroupRMSprop) sees the preconditioned Hessian instead:
its guard takes λ_max(P⁻¹∇²f), the top eigenvalue of P^{−1/2} ∇²f P^{−1/2} (Cohen et al. 2022,
"Adaptive gradient methods at the edge of stability"), with the bound of its rule
(``dynamics.optimizers.stability_limit``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor

from implicit_reg import rng
from implicit_reg.dynamics.steppers import EntryStepper, entry_layout, from_entries, to_entries
from implicit_reg.factorization import product
from implicit_reg.problems import Problem


def sharpness(
    problem: Problem,
    factors: list[Tensor],
    iters: int,
    start: Directions | None = None,
    preconditioner: list[Tensor] | None = None,
) -> tuple[Tensor, Directions]:
    """λ_max(∇²f_k), the largest *algebraic* eigenvalue of every run k's Hessian at its factors
    ``(K, d_j, d_{j−1})``, by power iterations on Hessian-vector products (double backward).

    A plain power iteration finds the eigenvalue of largest magnitude: at a saddle (W = 0 for
    small init) that is a negative curvature, which would hide a smaller positive one that
    breaks lr·λ_max < 2. So two iterations run: ⌈iters/2⌉ steps on H find the dominant
    eigenvalue ρ and ‖Hv‖; then ``iters`` steps on the shifted H + σI, σ = (‖Hv‖ − ρ)/2
    (≈ |λ_min| when a negative eigenvalue dominates, 0 when a positive one does), whose dominant
    eigenvalue is λ_max + σ. The result is the larger of the two Rayleigh quotients (uᵀHu of the
    last unit iterates), neither of which exceeds λ_max. Each iteration starts from ``start``
    (the previous call's ``Directions``, so a few steps keep up with slowly turning
    eigenvectors) or a fixed pseudo-random vector (the same for every run). The loss of the
    stack is a sum over runs, so its Hessian is block diagonal and each run's iteration (and
    shift) is its own. With a ``preconditioner`` P (positive, in the factors' layout) the
    iterations are on P^{−1/2} ∇²f P^{−1/2}, whose eigenvalues are those of P⁻¹∇²f. Small
    factors of many runs are differentiated entry by entry, as their gradient step is
    (``EntryStepper``; a batched ``@`` of tiny matrices, twice differentiated, costs several
    times more). Returns λ_max ``(K,)`` and the directions for the next call."""
    shapes = [tuple(f.shape[1:]) for f in factors]
    runs = factors[0].shape[0]
    if start is None:
        z = rng.normals(torch.zeros(1, dtype=torch.int64), 0, sum(r * c for r, c in shapes), 1)
        parts = z.to(factors[0].device, factors[0].dtype).split([r * c for r, c in shapes], -1)
        fixed = [t.view(1, *s).expand(runs, *s) for t, s in zip(parts, shapes, strict=True)]
        start = Directions(fixed, fixed)
    with torch.enable_grad():
        scale = None if preconditioner is None else [p.rsqrt() for p in preconditioner]
        if entry_layout(factors):
            stepper = EntryStepper(factors, problem)
            params, loss = stepper.params, stepper.graph()
            top, dominant = to_entries(start.top), to_entries(start.dominant)
            scale = None if scale is None else to_entries(scale)
        else:
            params = [f.detach().clone().requires_grad_(True) for f in factors]
            loss, top, dominant = problem.loss(product(params)), start.top, start.dominant
        grads = torch.autograd.grad(
            loss.sum(), params, create_graph=True, allow_unused=True, materialize_grads=True
        )
        live = [i for i, g in enumerate(grads) if g.requires_grad]  # an unused entry: ∇ ≡ 0

        def hessian_times(v: list[Tensor]) -> list[Tensor]:
            """S ∇²f S v for unit v, S = P^{−1/2} (or 1), every run at once."""
            u = v if scale is None else [a * b for a, b in zip(v, scale, strict=True)]
            # ∇²f u = ∇⟨∇f, u⟩ with u held fixed: a scalar's gradient (no grad_outputs, whose
            # shape check imports SymPy, seconds at the first check of a process)
            inner = sum((grads[i] * u[i]).sum() for i in live)
            hv = torch.autograd.grad(
                inner, params, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            if scale is not None:
                hv = [a * b for a, b in zip(hv, scale, strict=True)]
            return [t.detach() for t in hv]

        zero = torch.zeros(runs, dtype=params[0].dtype, device=params[0].device)
        rho, norm = zero, zero
        for _ in range(math.ceil(iters / 2)):  # the dominant eigenvalue ρ, of either sign
            dominant = _unit(dominant)
            hv = hessian_times(dominant)
            rho, norm = _dot(dominant, hv), torch.sqrt(_dot(hv, hv))
            dominant = hv
        shift = (norm - rho) / 2  # ≥ 0; ≈ |λ_min| if ρ = λ_min < 0, 0 if ρ = λ_max > 0
        value = zero
        for _ in range(iters):  # the dominant eigenvalue of H + σI: λ_max + σ
            top = _unit(top)
            hv = hessian_times(top)
            value = _dot(top, hv)  # uᵀHu
            top = [a + _per_run_scale(shift, a) * b for a, b in zip(hv, top, strict=True)]
        value = torch.fmax(value, rho)  # both Rayleigh quotients: the larger is nearer λ_max
    top, dominant = _unit(top), _unit(dominant)
    if len(top) != len(factors):  # entries back into factors
        top, dominant = from_entries(top, shapes), from_entries(dominant, shapes)
    return value.detach(), Directions(top, dominant)


class Directions(NamedTuple):
    """The unit iterates ``sharpness`` ends with, in the factors' layout: ``top`` (toward the
    eigenvector of λ_max) and ``dominant`` (toward that of the eigenvalue of largest
    magnitude)."""

    top: list[Tensor]
    dominant: list[Tensor]


def _dot(a: list[Tensor], b: list[Tensor]) -> Tensor:
    """⟨a_k, b_k⟩ of every run k ``(K,)``."""
    return sum(_per_run(x * y) for x, y in zip(a, b, strict=True))


def _per_run_scale(s: Tensor, like: Tensor) -> Tensor:
    """``s (K,)`` shaped to multiply ``like (K, …)``."""
    return s.view(-1, *[1] * (like.dim() - 1))


def _per_run(t: Tensor) -> Tensor:
    return t.sum(tuple(range(1, t.dim()))) if t.dim() > 1 else t


def _unit(v: list[Tensor]) -> list[Tensor]:
    norm = torch.sqrt(_dot(v, v))
    return [t / _per_run_scale(norm, t) for t in v]


STEPS_PER_ITERATION = 60
"""A single run's guard is priced: one power-iteration step (a Hessian-vector product, a double
backward) costs about three gradient steps, so checking at most once every
``STEPS_PER_ITERATION × iters`` steps keeps it under ~5 % of the training (``due``)."""


def due(step: int, iters: int, log_every: int) -> bool:
    """Whether a single run's guard runs at the logged ``step``: at step 0 and each power of ten
    (the early, log-spaced logs), then at the multiples of ``STEPS_PER_ITERATION × iters`` rounded
    up to a multiple of ``log_every`` (so that those steps are logged). It depends on the step
    alone, so a resumed run checks where an uninterrupted one does."""
    gap = -(-STEPS_PER_ITERATION * iters // log_every) * log_every
    return step % gap == 0 or 10 ** round(math.log10(step)) == step


class StabilityGuard:
    """At each log of a gradient-descent run: ``stability/sharpness`` (of P⁻¹∇²f for an adaptive
    rule: ``stability/preconditioned_sharpness``) and ``stability/lr_times_sharpness`` of every
    run; the first time a run's lr × sharpness > ``limit`` (2 for GD, 2(1 + μ) for heavy-ball
    momentum, …: ``stability_limit``) its step is recorded (and a warning given once), and with
    ``on_unstable="stop"`` ``check`` returns the runs to stop with the status ``unstable``."""

    def __init__(
        self,
        problem: Problem,
        lr: Tensor,
        iters: int,
        on_unstable: str,
        limit: float = 2.0,
    ) -> None:
        self.problem, self.lr, self.iters, self.on_unstable = problem, lr, iters, on_unstable
        self.limit = limit
        self.directions: Directions | None = None
        self.unstable_at_step = torch.full_like(lr, -1, dtype=torch.long)
        self.max_lr_times_sharpness = torch.zeros_like(lr)
        self.warned = False

    def check(
        self, step: int, factors: list[Tensor], preconditioner: list[Tensor] | None = None
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """The scalars at ``factors`` (and the adaptive rule's current ``preconditioner``) and
        the runs to stop, if any."""
        value, self.directions = sharpness(
            self.problem, factors, self.iters, self.directions, preconditioner
        )
        product_ = self.lr * value
        self.max_lr_times_sharpness = torch.fmax(self.max_lr_times_sharpness, product_)
        over = product_ > self.limit
        first = over & (self.unstable_at_step < 0)
        self.unstable_at_step.masked_fill_(first, step)
        if not self.warned and bool(over.any()):
            self.warned = True
            k = int(over.nonzero()[0])
            what = "preconditioned sharpness" if preconditioner is not None else "sharpness"
            why = (
                "the adaptive step overshoots its preconditioned curvature (lower optim.lr)"
                if preconditioner is not None
                else "gradient descent no longer follows the gradient flow (lower optim.lr, or "
                "use optim=flow)"
            )
            warnings.warn(
                f"optim.lr={float(self.lr[k]):g} × {what} {float(value[k]):.4g} = "
                f"{float(product_[k]):.4g} > {self.limit:.4g} at step {step} "
                f"({int(over.sum())} of {len(over)} runs): {why}",
                RuntimeWarning,
                stacklevel=2,
            )
        tag = (
            "stability/sharpness"
            if preconditioner is None
            else "stability/preconditioned_sharpness"
        )
        scalars = {tag: value, "stability/lr_times_sharpness": product_}
        return scalars, (over if self.on_unstable == "stop" else None)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps, so that a resumed run logs the same sharpness."""
        return {
            "direction": None
            if self.directions is None
            else [v.cpu() for v in self.directions.top],
            "dominant": None
            if self.directions is None
            else [v.cpu() for v in self.directions.dominant],
            "unstable_at_step": self.unstable_at_step.cpu(),
            "max_lr_times_sharpness": self.max_lr_times_sharpness.cpu(),
            "warned": self.warned,
        }

    def load(self, state: dict[str, Any]) -> None:
        device = self.lr.device
        top = state["direction"]
        dominant = state.get("dominant") or top  # a checkpoint from before the shift: top
        self.directions = (
            None
            if top is None
            else Directions([v.to(device) for v in top], [v.to(device) for v in dominant])
        )
        self.unstable_at_step = state["unstable_at_step"].to(device)
        self.max_lr_times_sharpness = state["max_lr_times_sharpness"].to(device)
        self.warned = state["warned"]

    def per_run(self) -> dict[str, Tensor]:
        """Every run's ``unstable_at_step`` (−1: never) and ``max_lr_times_sharpness``, on the
        CPU (``runs.csv``'s columns, ``metrics.json``'s counts)."""
        return {
            "unstable_at_step": self.unstable_at_step.cpu(),
            "max_lr_times_sharpness": self.max_lr_times_sharpness.cpu(),
        }

    def warning(self) -> str | None:
        """The line for the run's log when any run crossed the bound: how many, the first
        step and the largest lr × sharpness; None when none did."""
        crossed = self.unstable_at_step >= 0
        if not bool(crossed.any()):
            return None
        worst = int(self.max_lr_times_sharpness.argmax())
        return (
            f"{int(crossed.sum())} of {len(crossed)} runs crossed lr × sharpness > "
            f"{self.limit:.4g} (first at step {int(self.unstable_at_step[crossed].min())}; "
            f"largest {float(self.max_lr_times_sharpness[worst]):.4g}, run {worst} at "
            f"optim.lr={float(self.lr[worst]):g}): past the bound the steps no longer track the "
            "gradient flow that Arora et al. (2019) analyse; unstable_at_step in runs.csv / "
            "metrics.json marks them, and the figures draw them hollow"
        )

    def record(self) -> dict[str, Any]:
        """A single run's ``unstable_at_step`` (None if never) and ``max_lr_times_sharpness``."""
        step = int(self.unstable_at_step[0])
        return {
            "unstable_at_step": None if step < 0 else step,
            "max_lr_times_sharpness": float(self.max_lr_times_sharpness[0]),
        }
