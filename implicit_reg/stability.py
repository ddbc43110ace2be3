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
from typing import Any

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
    start: list[Tensor] | None = None,
    preconditioner: list[Tensor] | None = None,
) -> tuple[Tensor, list[Tensor]]:
    """λ_max(∇²f_k) of every run k at its factors ``(K, d_j, d_{j−1})`` by ``iters``
    power-iteration steps on Hessian-vector products (double backward), from ``start`` (the
    previous directions, so a few steps keep up with a slowly turning one) or a fixed
    pseudo-random vector (the same for every run). The loss of the stack is a sum over runs, so
    its Hessian is block diagonal and each run's iteration is its own. Returns the Rayleigh
    quotients vᵀ∇²f v of the unit iterates ``(K,)`` (the eigenvalue of largest magnitude, which is
    the top one away from saddles) and the iterates. With a ``preconditioner`` P (positive, in
    the factors' layout) the iteration is on P^{−1/2} ∇²f P^{−1/2}, whose eigenvalues are those
    of P⁻¹∇²f. Small factors of many runs are differentiated entry by entry, as their gradient
    step is (``EntryStepper``; a batched ``@`` of tiny matrices, twice differentiated, costs
    several times more)."""
    shapes = [tuple(f.shape[1:]) for f in factors]
    runs = factors[0].shape[0]
    if start is None:
        z = rng.normals(torch.zeros(1, dtype=torch.int64), 0, sum(r * c for r, c in shapes), 1)
        parts = z.to(factors[0].device, factors[0].dtype).split([r * c for r, c in shapes], -1)
        start = [t.view(1, *s).expand(runs, *s) for t, s in zip(parts, shapes, strict=True)]
    with torch.enable_grad():
        scale = None if preconditioner is None else [p.rsqrt() for p in preconditioner]
        if entry_layout(factors):
            stepper = EntryStepper(factors, problem)
            params, loss = stepper.params, stepper.graph()
            v = to_entries(start)
            scale = None if scale is None else to_entries(scale)
        else:
            params = [f.detach().clone().requires_grad_(True) for f in factors]
            loss, v = problem.loss(product(params)), list(start)
        grads = torch.autograd.grad(
            loss.sum(), params, create_graph=True, allow_unused=True, materialize_grads=True
        )
        live = [i for i, g in enumerate(grads) if g.requires_grad]  # an unused entry: ∇ ≡ 0
        value = torch.zeros(runs, dtype=params[0].dtype, device=params[0].device)
        for _ in range(iters):
            v = _unit(v)
            u = v if scale is None else [a * b for a, b in zip(v, scale, strict=True)]
            # ∇²f u = ∇⟨∇f, u⟩ with u held fixed: a scalar's gradient (no grad_outputs, whose
            # shape check imports SymPy, seconds at the first check of a process)
            inner = sum((grads[i] * u[i]).sum() for i in live)
            hv = torch.autograd.grad(
                inner, params, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            if scale is not None:
                hv = [a * b for a, b in zip(hv, scale, strict=True)]
            value = sum(_per_run(a * b) for a, b in zip(v, hv, strict=True))
            v = [t.detach() for t in hv]
    v = _unit(v)
    if len(v) != len(factors):  # entries back into factors
        v = from_entries(v, shapes)
    return value.detach(), v


def _per_run(t: Tensor) -> Tensor:
    return t.sum(tuple(range(1, t.dim()))) if t.dim() > 1 else t


def _unit(v: list[Tensor]) -> list[Tensor]:
    norm = torch.sqrt(sum(_per_run(t * t) for t in v))
    return [t / norm.view(-1, *[1] * (t.dim() - 1)) for t in v]


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
        self.direction: list[Tensor] | None = None
        self.unstable_at_step = torch.full_like(lr, -1, dtype=torch.long)
        self.max_lr_times_sharpness = torch.zeros_like(lr)
        self.warned = False

    def check(
        self, step: int, factors: list[Tensor], preconditioner: list[Tensor] | None = None
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """The scalars at ``factors`` (and the adaptive rule's current ``preconditioner``) and
        the runs to stop, if any."""
        value, self.direction = sharpness(
            self.problem, factors, self.iters, self.direction, preconditioner
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
            "direction": None if self.direction is None else [v.cpu() for v in self.direction],
            "unstable_at_step": self.unstable_at_step.cpu(),
            "max_lr_times_sharpness": self.max_lr_times_sharpness.cpu(),
            "warned": self.warned,
        }

    def load(self, state: dict[str, Any]) -> None:
        device = self.lr.device
        direction = state["direction"]
        self.direction = None if direction is None else [v.to(device) for v in direction]
        self.unstable_at_step = state["unstable_at_step"].to(device)
        self.max_lr_times_sharpness = state["max_lr_times_sharpness"].to(device)
        self.warned = state["warned"]

    def record(self) -> dict[str, Any]:
        """A single run's ``unstable_at_step`` (None if never) and ``max_lr_times_sharpness``."""
        step = int(self.unstable_at_step[0])
        return {
            "unstable_at_step": None if step < 0 else step,
            "max_lr_times_sharpness": float(self.max_lr_times_sharpness[0]),
        }
