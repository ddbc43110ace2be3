"""Optimizers: how the factors move. Each returns an ``Outcome``."""

from implicit_reg.optim.flow import flow_from_config, gradient_flow
from implicit_reg.optim.gd import gradient_descent
from implicit_reg.optim.outcome import Outcome

__all__ = ["Outcome", "flow_from_config", "gradient_descent", "gradient_flow"]
