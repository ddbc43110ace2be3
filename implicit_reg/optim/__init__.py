"""Optimizers: how the factors move. ``descend`` is the gradient-descent loop of every run and
batch; ``gradient_descent`` runs one model through it; the flow returns an ``Outcome``."""

from implicit_reg.optim.flow import flow_from_config, gradient_flow
from implicit_reg.optim.gd import descend, gradient_descent
from implicit_reg.optim.outcome import Outcome

__all__ = ["Outcome", "descend", "flow_from_config", "gradient_descent", "gradient_flow"]
