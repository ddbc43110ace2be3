"""Typed schema of the run config: one dataclass per config group, registered with Hydra's
ConfigStore under ``schema/`` and named first in each yaml's defaults list (Hydra's
"Structured Configs / Schema" pattern). Composition then refuses a misspelled key or a value of
the wrong type; ``implicit_reg.config.validate.validate`` checks the values themselves.

Adding a key is one line: a field in the dataclass of its group (``TrainSchema`` for
``train.*``), or in ``RunSchema`` for a new top-level key or group. A new option of a group with
its own keys (``optim=flow``) gets its own dataclass, one ``_STORE`` entry and a
``- /schema/<name>@_here_`` line at the top of its yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# Optional[...] rather than `X | None`: OmegaConf reads these annotations at runtime (Python 3.10).
# ruff: noqa: UP045


@dataclass
class ModelSchema:
    depth: int = 3
    width: Optional[int] = None


@dataclass
class InitSchema:
    kind: str = "balanced"
    scale: float = 1.0e-2
    det: str = "positive"


@dataclass
class GDSchema:
    name: str = "gd"
    lr: float = 1.0e-2


@dataclass
class MomentumSchema:
    """``optim=momentum``: heavy-ball (torch.optim.SGD with momentum, dampening 0)."""

    name: str = "momentum"
    lr: float = 1.0e-2
    momentum: float = 0.9
    nesterov: bool = False


@dataclass
class AdamSchema:
    """``optim=adam``: torch.optim.Adam without weight decay."""

    name: str = "adam"
    lr: float = 1.0e-2
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1.0e-8


@dataclass
class GroupRMSpropSchema:
    """``optim=group_rmsprop``: Arora et al. 2019's GroupRMSprop (one second moment per run)."""

    name: str = "group_rmsprop"
    lr: float = 1.0e-3
    alpha: float = 0.99
    eps: float = 1.0e-4


@dataclass
class FlowSchema:
    """``optim=flow``: a stiff scipy solver; ``lr`` is the reference step of the step axis."""

    name: str = "flow"
    method: str = "LSODA"
    rtol: float = 1.0e-8
    atol: float = 1.0e-16
    lr: float = 1.0e-2


@dataclass
class NuclearNormSchema:
    """``optim=nuclear_norm``: min ‖W‖_* subject to the observations, one cvxpy solve
    (``implicit_reg.baselines.nuclear_norm``). ``lr`` is not used: it lets presets and sweeps
    that set ``optim.lr`` compose."""

    name: str = "nuclear_norm"
    solver: str = "clarabel"
    tol: float = 1.0e-7
    max_iters: Optional[int] = None
    lr: float = 1.0e-2


@dataclass
class FlowCoordinatesSchema:
    coordinates: str = "auto"
    field: str = "auto"


@dataclass
class TrainSchema:
    max_steps: int = 1_000_000
    loss_tol: float = 1.0e-3
    mse_tol: Optional[float] = None
    log_every: int = 1000
    log_per_decade: int = 20
    max_tracked: int = 16
    progress: bool = True
    checkpoint_every: int = 10_000
    detect_anomaly: bool = False
    max_time: Optional[float] = None
    on_unstable: str = "warn"
    sharpness_iters: int = 20
    extend: bool = False
    singular_value_history: int = 0


@dataclass
class LeastSquaresSchema:
    name: str = "least_squares"
    kind: str = "least_squares"
    n: int = 10
    d: int = 40
    seed: int = 0


@dataclass
class MatrixCompletionSchema:
    """Either ``target`` (null = unobserved) with optional ``mask``, or a random rank-``rank``
    ``rows``×``cols`` target with ``observed`` entries seen; the unused keys stay null."""

    name: str = "matrix_completion"
    kind: str = "matrix_completion"
    rows: Optional[int] = None
    cols: Optional[int] = None
    rank: Optional[int] = None
    observed: Optional[int] = None
    seed: int = 0
    target: Optional[Any] = None  # nested lists; shape and values checked by config.validate
    mask: Optional[Any] = None
    infimal_rank: Optional[int] = None


@dataclass
class MatrixSensingSchema:
    """A random rank-``rank`` ``rows``×``cols`` W* seen through ``measurements`` Gaussian
    measurements (``implicit_reg.problems.matrix_sensing``)."""

    name: str = "matrix_sensing"
    kind: str = "matrix_sensing"
    rows: int = 10
    cols: int = 10
    rank: int = 2
    measurements: int = 60
    seed: int = 0


@dataclass
class MovieLensSchema:
    """MovieLens 100K's ratings from the user's ``u.data`` at ``path``
    (``implicit_reg.problems.movielens``); ``seed`` is unused (the data are the file's)."""

    name: str = "movielens"
    kind: str = "movielens"
    path: Optional[str] = None
    rows: int = 943
    cols: int = 1682
    infimal_rank: int = 10
    seed: int = 0


@dataclass
class BatchSchema:
    """Batched runs: the grid seeds × init_scales × lrs as one stacked tensor (README, Sweeps)."""

    seeds: int = 1
    init_scales: Optional[list[float]] = None
    end_to_end_scales: Optional[list[float]] = None
    lrs: Optional[list[float]] = None
    tracked_runs: int = 4
    check_every: int = 100
    fused: bool = False
    threads: Any = "auto"  # auto | an integer ≥ 1 | null


@dataclass
class RunSchema:
    """The top level: the groups (each typed by its option's schema) and the run-wide keys."""

    model: Any = MISSING
    init: Any = MISSING
    optim: Any = MISSING
    train: Any = MISSING
    problem: Any = MISSING
    batch: Any = MISSING
    flow: Optional[FlowCoordinatesSchema] = None  # set by optim=flow only
    device: str = "auto"
    dtype: str = "float64"
    seed: int = 0


def _global(node: str, schema: type) -> dict[str, Any]:
    """A schema for a ``@package _global_`` option (the problem presets set other groups too)."""
    return {node: schema}


_STORE: dict[str, Any] = {
    "run": RunSchema,
    "model": ModelSchema,
    "init": InitSchema,
    "optim_gd": GDSchema,
    "optim_momentum": MomentumSchema,
    "optim_adam": AdamSchema,
    "optim_group_rmsprop": GroupRMSpropSchema,
    "optim_flow": {"optim": FlowSchema, "flow": FlowCoordinatesSchema},
    "optim_nuclear_norm": NuclearNormSchema,
    "train": TrainSchema,
    "batch": BatchSchema,
    "problem_least_squares": _global("problem", LeastSquaresSchema),
    "problem_matrix_completion": _global("problem", MatrixCompletionSchema),
    "problem_matrix_sensing": _global("problem", MatrixSensingSchema),
    "problem_movielens": _global("problem", MovieLensSchema),
}


def register() -> None:
    """Store every schema as ``schema/<name>`` (idempotent; done on ``import implicit_reg``)."""
    store = ConfigStore.instance()
    for name, node in _STORE.items():
        store.store(group="schema", name=name, node=node)
