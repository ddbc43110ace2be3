"""Optimizers: how the factors move. Each returns an ``Outcome``."""

from implicit_reg.optim.gd import gradient_descent
from implicit_reg.optim.outcome import Outcome

__all__ = ["Outcome", "gradient_descent"]
