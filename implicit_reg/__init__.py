"""implicit-reg: which solution gradient descent picks when many fit the data.

Least squares (gradient descent finds the minimum-norm solution) and deep matrix factorization
(norms blow up while rank is minimized; Razin & Cohen 2020), run with Hydra, logged to TensorBoard.
"""

from implicit_reg.config import schema
from implicit_reg.run import run

schema.register()  # the config schema, before Hydra composes

__all__ = ["run"]
