"""Stability guard for gradient descent: the sharpness λ_max(∇²f) at the current factors.

Gradient descent with step η tracks the flow (seed eq. 1 → 2) only while η·λ_max < 2: past
that, the step overshoots along the top curvature direction. On the deep factorization the
sharpness grows with the norms (≈ L·σ₁^{2−2/L}), so a fixed η that starts stable need not stay so.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from implicit_reg.factorization import DeepFactorization
from implicit_reg.problems import Problem


def sharpness(
    model: DeepFactorization, problem: Problem, iters: int, start: list[Tensor] | None = None
) -> tuple[float, list[Tensor]]:
    """λ_max(∇²f) at the model's factors by ``iters`` power-iteration steps on Hessian-vector
    products (double backward), from ``start`` (the previous direction, so a few steps keep up
    with a slowly turning one) or a fixed pseudo-random vector. Returns the Rayleigh quotient
    vᵀ∇²f v of the unit iterate v (the eigenvalue of largest magnitude, which is the top one
    away from saddles) and v."""
    params = list(model.parameters())
    with torch.enable_grad():
        grads = torch.autograd.grad(problem.loss(model()).sum(), params, create_graph=True)
        if start is None:
            generator = torch.Generator().manual_seed(0)
            start = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]
        v = [t.to(p.device, p.dtype) for t, p in zip(start, params, strict=True)]
        value = 0.0
        for _ in range(iters):
            norm = torch.sqrt(sum((t * t).sum() for t in v))
            v = [t / norm for t in v]
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
            value = float(sum((a * b).sum() for a, b in zip(v, hv, strict=True)))
            v = [t.detach() for t in hv]
    norm = torch.sqrt(sum((t * t).sum() for t in v))
    return value, [t / norm for t in v]


class StabilityGuard:
    """At each log of a gradient-descent run: logs ``stability/sharpness`` and
    ``stability/lr_times_sharpness``; the first time lr × sharpness > 2 it warns and records the
    step, and with ``on_unstable="stop"`` returns the status ``unstable``."""

    LIMIT = 2.0

    def __init__(
        self, model: DeepFactorization, problem: Problem, lr: float, iters: int, on_unstable: str
    ) -> None:
        self.model, self.problem, self.lr, self.iters = model, problem, lr, iters
        self.on_unstable = on_unstable
        self.direction: list[Tensor] | None = None
        self.unstable_at_step: int | None = None
        self.max_lr_times_sharpness = 0.0

    def check(self, step: int) -> tuple[dict[str, float], str | None]:
        value, self.direction = sharpness(self.model, self.problem, self.iters, self.direction)
        product = self.lr * value
        self.max_lr_times_sharpness = max(self.max_lr_times_sharpness, product)
        status = None
        if product > self.LIMIT:
            if self.unstable_at_step is None:
                self.unstable_at_step = step
                warnings.warn(
                    f"optim.lr={self.lr:g} × sharpness {value:.4g} = {product:.4g} > 2 at step "
                    f"{step}: gradient descent no longer follows the gradient flow (lower "
                    "optim.lr, or use optim=flow)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            if self.on_unstable == "stop":
                status = "unstable"
        scalars = {"stability/sharpness": value, "stability/lr_times_sharpness": product}
        return scalars, status

    def record(self) -> dict[str, int | float | None]:
        return {
            "unstable_at_step": self.unstable_at_step,
            "max_lr_times_sharpness": self.max_lr_times_sharpness,
        }
