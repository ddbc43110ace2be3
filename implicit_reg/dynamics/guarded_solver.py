"""A scipy stiff solver that never accepts a non-finite state.

scipy's solvers trust the right-hand side: LSODA accepts a step whose trial state overflowed
(its error test compares NaN, which is never "too large"), and BDF/Radau raise a ValueError from
their LU factorization. A gradient flow's loss never increases, so a non-finite state is always
the solver's doing, never the flow's. ``GuardedSolver.step`` therefore checks every step: a step
that raises, or ends in a state whose loss is not finite (W, and so the field, overflowed), is
undone and retried from the last good state with the step size capped at a quarter of the one
that failed. The cap holds until the flow has passed twice the time of the failure; then the
solver runs uncapped again. When the solver itself reports failure (LSODA's repeated Newton
failures once h·λ_max nears 1/ε), it is started afresh from the last good state, capped the same
way, up to ``RESTARTS`` times. Only when the step size can no longer shrink, or fresh starts fail
too, does the run end, as ``solver_failed`` with the solver's own words.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.integrate import BDF, LSODA, OdeSolver, Radau

METHODS: dict[str, type[OdeSolver]] = {"LSODA": LSODA, "BDF": BDF, "Radau": Radau}

SHRINK = 0.25
"""A retried step is capped at this fraction of the step that produced a non-finite state."""

MAX_RETRIES = 40
"""Consecutive retries before giving up (the cap is then 0.25⁴⁰ ≈ 10⁻²⁴ of the failed step)."""

RESTARTS = 3
"""Fresh starts from the last good state after the solver itself reports failure."""

Vector = Callable[[float, np.ndarray], np.ndarray]


class GuardedSolver:
    """``method`` (LSODA, BDF or Radau) from (0, y0) towards ``bound``, with ``step()``
    returning ``None`` on success and the failure message otherwise; ``t``, ``y``,
    ``dense_output()`` and ``status`` are those of the underlying solver's last good step, and
    ``loss`` is ``loss(y)`` there."""

    def __init__(
        self,
        method: str,
        fun: Vector,
        y0: np.ndarray,
        bound: float,
        *,
        rtol: float,
        atol: float,
        jac: Vector,
        loss: Callable[[np.ndarray], float],
    ) -> None:
        self.method = method
        self._make = lambda t, y, **cap: METHODS[method](
            fun, t, y, bound, rtol=rtol, atol=atol, jac=jac, **cap
        )
        self._loss = loss
        self.solver = self._make(0.0, y0)
        self.t, self.y, self.loss = 0.0, y0, loss(y0)
        self.h = 0.0
        """The last accepted step size."""
        self.retries = 0
        """Non-finite steps undone over the whole run (recorded in ``metrics.json``)."""
        self._capped_until = -math.inf

    @property
    def status(self) -> str:
        return self.solver.status

    def dense_output(self) -> Callable[[float], np.ndarray]:
        return self.solver.dense_output()

    def _restart(self, t: float, y: np.ndarray, cap: float) -> None:
        """Start afresh from (t, y) with steps of at most ``cap`` until the flow has passed 2t."""
        self.solver = self._make(t, y, first_step=cap, max_step=cap)
        self._capped_until = max(2 * t, t + 4 * cap)

    def step(self) -> str | None:
        """Advance one accepted, finite step; None, or why the solver cannot go on."""
        if self.t >= self._capped_until > -math.inf:  # past the trouble: lift the cap
            self.solver = self._make(self.t, self.y.copy())
            self._capped_until = -math.inf
        t_old, y_old, restarts = self.t, self.y.copy(), 0
        for _ in range(MAX_RETRIES):
            message = None
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    message = self.solver.step()
                    value = self._loss(self.solver.y)
            except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                value = math.nan
            if self.solver.status == "failed":  # the solver's own verdict (repeated Newton
                if restarts == RESTARTS:  # failures, step size underflow, …)
                    return str(message).rstrip(".")
                restarts += 1  # a fresh, capped start (new Jacobian, order 1) gets past it
                self._restart(t_old, y_old, SHRINK**restarts * max(self.h, 1e-3 * t_old))
                continue
            if math.isfinite(value):
                self.h = self.solver.t - t_old
                self.t, self.y, self.loss = self.solver.t, self.solver.y, value
                return None
            tried = self.solver.t - t_old or getattr(self.solver, "h_abs", 0.0)
            cap = SHRINK * (tried if tried > 0 else max(abs(t_old), 1.0) * 1e-3)
            if cap <= 4 * np.spacing(max(abs(t_old), 1.0)):
                break
            self.retries += 1
            self._restart(t_old, y_old, cap)
        return f"no step from flow time {t_old:.6g} keeps the state finite, however small"
