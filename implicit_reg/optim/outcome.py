"""How an optimizer run ended."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outcome:
    status: str
    """``converged`` (loss below ``train.loss_tol``), ``max_steps``, ``diverged`` (the loss or a
    factor turned NaN/Inf) or ``interrupted`` (SIGINT/SIGTERM)."""
    steps: int
    """Gradient steps taken; for ``diverged``, the step whose loss was first non-finite."""
    flow_time: float
    """Gradient-flow time reached: lr × steps for gradient descent."""
    gradient_evaluations: int
