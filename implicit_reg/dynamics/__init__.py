"""Dynamics: how the factors move (``optim=gd`` and the other update rules, ``optim=flow``).
``descend`` is the gradient-descent loop of every run and batch; ``gradient_descent`` runs one
model through it; the flow returns an ``Outcome``. The flow (and SciPy, which it needs) is
imported when first asked for: gradient descent starts without it."""

from typing import Any

from implicit_reg.dynamics.gd import descend, gradient_descent
from implicit_reg.dynamics.outcome import Outcome

__all__ = ["Outcome", "descend", "flow_from_config", "gradient_descent", "gradient_flow"]


def __getattr__(name: str) -> Any:
    if name in ("flow_from_config", "gradient_flow"):
        from implicit_reg.dynamics import flow

        return getattr(flow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
