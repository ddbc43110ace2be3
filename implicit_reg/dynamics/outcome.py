"""How an optimizer run ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    status: str
    """``converged`` (loss below ``train.loss_tol``), ``max_steps``, ``diverged`` (the loss or a
    factor turned NaN/Inf), ``interrupted`` (SIGINT/SIGTERM) or a status ``on_log`` returned
    (``unstable``); gradient flow adds ``max_time`` and ``solver_failed``."""
    steps: int
    """Gradient steps taken (for ``diverged``, the step whose loss was first non-finite); gradient
    flow: flow time / optim.lr, the TensorBoard step."""
    flow_time: float
    """Gradient-flow time reached: lr × steps for gradient descent."""
    gradient_evaluations: int
    record: dict[str, Any] = field(default_factory=dict)
    """Optimizer-specific entries for ``metrics.json`` (solver steps, …)."""
