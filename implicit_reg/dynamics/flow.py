"""Gradient flow ẏ = −∇f(y) (seed eq. 2) by an adaptive, error-controlled stiff solver.

The flow of a deep factorization is stiff: its largest curvature grows like L·σ₁^{2−2/L}, so an
explicit method (gradient descent, or torchdiffeq's adaptive Runge–Kutta solvers) is held to
steps below 2/curvature however smooth the path is. scipy's implicit solvers (LSODA, BDF,
Radau) take steps set by the accuracy asked for; they get a torch right-hand side and its
autograd Jacobian.

``optim.lr`` is a reference step: flow time t is logged at TensorBoard step ⌈t / lr⌉, the first
step at which gradient descent with that lr has reached the same flow time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.optimize import brentq
from torch import Tensor

from implicit_reg.dynamics.factor_flow import FactorCoordinates
from implicit_reg.dynamics.guarded_solver import GuardedSolver
from implicit_reg.dynamics.numpy_flow import numpy_flow
from implicit_reg.dynamics.outcome import Outcome
from implicit_reg.dynamics.svd_flow import SvdCoordinates
from implicit_reg.factorization import DeepFactorization, product
from implicit_reg.problems import Problem
from implicit_reg.record.schedule import log_steps

log_ = logging.getLogger(__name__)


class Coordinates(Protocol):
    """How a run's state is written as one vector y (``factor_flow``, ``svd_flow``)."""

    y0: Tensor

    def matrix(self, y: Tensor) -> Tensor:
        """The end-to-end matrix W(y)."""
        ...

    def field(self, y: Tensor) -> Tensor:
        """ẏ, in torch operations that autograd can differentiate."""
        ...

    def exact(self, y: Tensor) -> dict[str, Tensor]:
        """Logged scalars the coordinates know more precisely than W's entries do."""
        ...

    def check(self, y: np.ndarray, t: float) -> None:
        """Look at each accepted step (near-crossings of singular values); y as the solver
        holds it."""
        ...

    def record(self) -> dict[str, Any]:
        """What ``metrics.json`` gets from the coordinates."""
        ...

    def factors(self, y: Tensor, shapes: list[tuple[int, int]]) -> list[Tensor]:
        """Factors W_1 … W_L of those shapes whose product is W(y)."""
        ...


OnLog = Callable[..., "str | None"]
"""``on_log(step, flow_time, W, exact=…)``: returns a status to stop the run, or None."""


def gradient_flow(
    coordinates: Coordinates,
    problem: Problem,
    *,
    method: str = "LSODA",
    field: str = "auto",
    rtol: float = 1e-8,
    atol: float = 1e-16,
    lr: float,
    max_time: float | None,
    max_steps: int,
    loss_tol: float,
    log_every: int | None,
    log_per_decade: int,
    on_log: OnLog,
    stop_requested: Callable[[], bool] = lambda: False,
) -> tuple[Outcome, Tensor]:
    """Integrate from ``coordinates.y0`` until the loss falls below ``loss_tol`` (located on the
    solver's dense output), flow time ``max_time``, ``max_steps`` solver steps, a solver
    failure (``solver_failed``: the loss of a flow never increases, so a non-finite state is the
    solver's, and ``GuardedSolver`` retries it smaller first), or ``stop_requested()`` (status
    ``interrupted``). Returns the outcome and the final state.

    ``on_log(step, flow_time, W, exact=…)`` sees W at the flow times lr·step of the steps
    ``log_steps(log_every, log_per_decade)`` marks, where the loss has fallen by a further
    1/``log_per_decade`` of a decade, and at the final time (those at step ⌈t/lr⌉, each step
    logged once), read off the solver's interpolant; ``exact`` holds the scalars the
    coordinates know more precisely than W's entries (empty for factors). A returned string
    stops the run with that status.

    ``field``: ``torch`` evaluates ``coordinates.field`` and its autograd Jacobian; ``numpy``
    their NumPy twins (``numpy_flow``: completion and least squares only); ``auto`` NumPy
    where it applies, else torch.
    """
    device, dtype = coordinates.y0.device, coordinates.y0.dtype
    evaluations = 0

    def tensor(y: np.ndarray) -> Tensor:
        return torch.as_tensor(y, device=device, dtype=dtype)

    fast = None if field == "torch" else numpy_flow(coordinates, problem)
    if field == "numpy" and fast is None:
        raise ValueError(f"field='numpy' needs a closed-form gradient, {problem.name} has none")
    if fast is not None:
        field_of, jacobian_of, loss = fast.field, fast.jacobian, fast.loss
    else:

        def field_of(y: np.ndarray) -> np.ndarray:
            return coordinates.field(tensor(y)).cpu().numpy()

        def jacobian_of(y: np.ndarray) -> np.ndarray:
            return torch.autograd.functional.jacobian(coordinates.field, tensor(y)).cpu().numpy()

        def loss(y: np.ndarray) -> float:
            with torch.no_grad():
                return float(problem.loss(coordinates.matrix(tensor(y))).sum())

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        nonlocal evaluations
        evaluations += 1
        return field_of(y)

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        nonlocal evaluations
        evaluations += 1
        return jacobian_of(y)

    last = {"step": -1, "loss": math.inf}  # the last logged point

    def log(step: int, t: float, y: np.ndarray) -> str | None:
        last["step"], last["loss"] = step, loss(y)
        with torch.no_grad():
            W, exact = coordinates.matrix(tensor(y)), coordinates.exact(tensor(y))
        return on_log(step, t, W, exact=exact)

    # Besides the log-spaced times, log where the loss has fallen by a further 1/log_per_decade
    # of a decade: the loss can drop by decades within one decade of time.
    loss_factor = 10 ** (-1 / log_per_decade) if log_per_decade > 0 else 0.0

    y0 = coordinates.y0.cpu().numpy()
    bound = math.inf if max_time is None else max_time
    solver = GuardedSolver(method, fun, y0, bound, rtol=rtol, atol=atol, jac=jac, loss=loss)
    steps = log_steps(log_every, log_per_decade)
    status = log(next(steps), 0.0, y0)
    due = next(steps)
    if status is None and solver.loss < loss_tol:
        status = "converged"
    t_end, y_end, solver_steps, logged_end = 0.0, y0, 0, status is not None
    failure: str | None = None
    while status is None:
        if stop_requested():
            status = "interrupted"
            break
        t_old = solver.t
        failure = solver.step()
        solver_steps += 1
        if failure is not None:
            log_.warning(
                "optim.method=%s stopped at flow time %.6g: %s. Try optim.method=LSODA, a looser "
                "optim.rtol, or flow.coordinates=factors",
                method,
                t_old,
                failure,
            )
            status = "solver_failed"
            break
        dense = solver.dense_output  # this step's interpolant, built only when needed
        t_end, y_end = solver.t, solver.y
        if solver.loss < loss_tol:  # the solver event: the first time the loss reaches loss_tol
            t_end = _crossing(loss, dense(), loss_tol, t_old, t_end)
            y_end, status = dense()(t_end), "converged"
        elif solver.status == "finished":
            status = "max_time"
        elif solver_steps >= max_steps:
            status = "max_steps"
        coordinates.check(y_end, t_end)
        while due * lr < t_end:
            if due > last["step"]:
                y_due = dense()(due * lr)
                stop = log(due, due * lr, y_due)
                if stop is not None:
                    status, t_end, y_end, logged_end = stop, due * lr, y_due, True
                    break
            due = next(steps)
        step_end = reference_step(t_end, lr)
        if status is None and solver.loss < last["loss"] * loss_factor and step_end > last["step"]:
            status = log(step_end, t_end, y_end)
            logged_end = status is not None
    step_end = max(reference_step(t_end, lr), last["step"] + (not logged_end))
    if not logged_end:
        log(step_end, t_end, y_end)
    outcome = Outcome(
        status=status,
        steps=step_end,
        flow_time=t_end,
        gradient_evaluations=evaluations,
        record={
            "solver_steps": solver_steps,
            "solver_retries": solver.retries,
            **({"solver_message": failure} if failure is not None else {}),
            "flow_field": "torch" if fast is None else "numpy",
            **coordinates.record(),
        },
    )
    return outcome, tensor(y_end)


def reference_step(t: float, lr: float) -> int:
    """⌈t / lr⌉: the first step at which gradient descent with step lr has reached flow time t
    (the TensorBoard step of a flow point that is not on the log schedule)."""
    return math.ceil(t / lr * (1 - 4 * np.finfo(float).eps))


def _crossing(
    loss: Callable[[np.ndarray], float],
    interpolant: Callable[[float], np.ndarray],
    level: float,
    t_low: float,
    t_high: float,
) -> float:
    """The time in [t_low, t_high] at which the loss along the step's interpolant falls to
    ``level`` (it is above at t_low, below at t_high)."""
    return brentq(lambda t: loss(interpolant(t)) - level, t_low, t_high, xtol=1e-14 * t_high)


def resolve_coordinates(coordinates: str, init_kind: str) -> str:
    """``flow.coordinates=auto``: svd for balanced init (eq. 14 holds), factors otherwise."""
    if coordinates == "auto":
        return "svd" if init_kind == "balanced" else "factors"
    return coordinates


def flow_from_config(
    cfg: DictConfig,
    model: DeepFactorization,
    problem: Problem,
    on_log: OnLog,
    stop_requested: Callable[[], bool] = lambda: False,
) -> Outcome:
    """``optim=flow`` for a composed run config: integrate from the model's factors and leave
    the final factors in the model (for svd coordinates, a balanced factorization of W). The
    flow logs at log-spaced flow times only (``train.log_per_decade``): its runs span many
    decades of time, and evenly spaced logs would grow with the time reached."""
    start = [f.detach() for f in model.factors]
    if resolve_coordinates(cfg.flow.coordinates, cfg.init.kind) == "svd":
        coordinates: Coordinates = SvdCoordinates(problem, product(start), model.depth)
    else:
        coordinates = FactorCoordinates(problem, start)
    outcome, y = gradient_flow(
        coordinates,
        problem,
        method=cfg.optim.method,
        field=cfg.flow.field,
        rtol=cfg.optim.rtol,
        atol=cfg.optim.atol,
        lr=cfg.optim.lr,
        max_time=cfg.train.max_time,
        max_steps=cfg.train.max_steps,
        loss_tol=cfg.train.loss_tol,
        log_every=None,
        log_per_decade=cfg.train.log_per_decade,
        on_log=on_log,
        stop_requested=stop_requested,
    )
    with torch.no_grad():
        shapes = [tuple(f.shape) for f in start]
        for param, factor in zip(model.factors, coordinates.factors(y, shapes), strict=True):
            param.copy_(factor)
    return outcome
