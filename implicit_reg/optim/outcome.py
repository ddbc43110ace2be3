"""How an optimizer run ended."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outcome:
    status: str
    """``converged`` (loss below ``train.loss_tol``), ``max_steps`` or ``diverged``."""
    steps: int
    """Gradient steps taken."""
    flow_time: float
    """Gradient-flow time reached: lr × steps for gradient descent."""
    gradient_evaluations: int
