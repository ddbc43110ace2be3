"""Validation of a composed run config: every bad value is refused before any work starts, with
one message naming the key, the value and what is allowed."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import math
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from implicit_reg import baselines, batch, init
from implicit_reg.config.device import DEVICES, DTYPES
from implicit_reg.dynamics import optimizers
from implicit_reg.problems import KINDS as PROBLEM_KINDS
from implicit_reg.problems.movielens import WHERE, RatingsError, read_ratings
from implicit_reg.record import history

STEPPED = ("gd", *optimizers.NAMES)  # what trains a batch of several runs
OPTIMIZERS = (*STEPPED, "flow", *baselines.NAMES)
NUCLEAR_NORM_SOLVERS = ("clarabel", "scs")  # cvxpy solvers that report status and duality gap
FLOW_METHODS = ("LSODA", "BDF", "Radau")  # scipy's implicit solvers: the flow is stiff
FLOW_COORDINATES = ("auto", "factors", "svd")
FLOW_FIELDS = ("auto", "numpy", "torch")  # the flow's right-hand side (dynamics/numpy_flow.py)
ON_UNSTABLE = ("warn", "stop")


class ConfigError(ValueError):
    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"invalid config: {key}={value!r} — allowed: {allowed}")
        self.key = key


INT_MAX = 2**63 - 1
"""The largest integer a count may hold: steps, runs and sizes are int64 on the device."""


def check_number(cfg: DictConfig, key: str, *, minimum: float, strict: bool, integer: bool) -> None:
    """Refuse ``key`` unless it is a finite number (an integer if ``integer``, at most
    ``INT_MAX``) above ``minimum`` (or at least it, unless ``strict``)."""
    value = OmegaConf.select(cfg, key)
    kind = "an integer" if integer else "a number"
    allowed = f"{kind} {'>' if strict else '≥'} {minimum:g}"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    ok = ok and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if ok and integer and value > INT_MAX:
        ok, allowed = False, f"an integer in {'(' if strict else '['}{minimum:g}, 2**63 − 1]"
    if not ok:
        raise ConfigError(key, value, allowed)


def _fraction(cfg: DictConfig, key: str) -> None:
    """Refuse ``key`` unless it is a number in [0, 1) (a decay rate)."""
    value = OmegaConf.select(cfg, key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and 0 <= value < 1):
        raise ConfigError(key, value, "a number in [0, 1)")


def _choice(cfg: DictConfig, key: str, allowed: tuple[str, ...]) -> None:
    value = OmegaConf.select(cfg, key)
    if value not in allowed:
        raise ConfigError(key, value, " | ".join(allowed))


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` on the first bad value."""
    _known_keys(cfg, "")
    _choice(cfg, "device", DEVICES)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda", "auto | cpu (no CUDA GPU is visible on this machine)")
    _choice(cfg, "dtype", tuple(DTYPES))
    check_number(cfg, "seed", minimum=0, strict=False, integer=True)
    _validate_problem(cfg)
    check_number(cfg, "model.depth", minimum=1, strict=False, integer=True)
    if cfg.model.width is not None:
        check_number(cfg, "model.width", minimum=1, strict=False, integer=True)
    _validate_init(cfg)
    _validate_optim(cfg)
    check_number(cfg, "train.max_steps", minimum=1, strict=False, integer=True)
    check_number(cfg, "train.loss_tol", minimum=0, strict=False, integer=False)
    if cfg.train.get("mse_tol") is not None:
        check_number(cfg, "train.mse_tol", minimum=0, strict=False, integer=False)
    check_number(cfg, "train.log_every", minimum=1, strict=False, integer=True)
    check_number(cfg, "train.log_per_decade", minimum=0, strict=False, integer=True)
    check_number(cfg, "train.max_tracked", minimum=0, strict=False, integer=True)
    check_number(cfg, "train.checkpoint_every", minimum=0, strict=False, integer=True)
    if cfg.train.get("max_time") is not None:
        check_number(cfg, "train.max_time", minimum=0, strict=True, integer=False)
    _choice(cfg, "train.on_unstable", ON_UNSTABLE)
    check_number(cfg, "train.sharpness_iters", minimum=0, strict=False, integer=True)
    _validate_history(cfg)
    _validate_batch(cfg)


def _validate_batch(cfg: DictConfig) -> None:
    """The ``batch`` node (``implicit_reg.batch``): the grid and how it is trained."""
    if cfg.get("batch") is None:
        return
    check_number(cfg, "batch.seeds", minimum=1, strict=False, integer=True)
    _positive_list(cfg, "batch.init_scales")
    _positive_list(cfg, "batch.end_to_end_scales")
    _positive_list(cfg, "batch.lrs")
    check_number(cfg, "batch.tracked_runs", minimum=0, strict=False, integer=True)
    check_number(cfg, "batch.check_every", minimum=1, strict=False, integer=True)
    threads = cfg.batch.get("threads")
    if threads is not None and threads != "auto":
        ok = isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1
        if not ok:
            raise ConfigError("batch.threads", threads, "auto | an integer ≥ 1 | null")
    if not isinstance(cfg.batch.fused, bool):
        raise ConfigError("batch.fused", cfg.batch.fused, "true | false")
    if cfg.optim.name == "nuclear_norm":
        _single_solve(cfg)
    if cfg.optim.name not in STEPPED and batch.size(cfg) > 1:
        raise ConfigError(
            "optim.name", cfg.optim.name, f"{' | '.join(STEPPED)} for a batch of several runs"
        )
    if cfg.batch.init_scales is not None and cfg.init.kind == "zero":
        raise ConfigError(
            "batch.init_scales",
            OmegaConf.to_container(cfg.batch.init_scales),
            "null when init.kind=zero (a zero init has no scale)",
        )
    if cfg.batch.get("end_to_end_scales") is not None:
        shown = OmegaConf.to_container(cfg.batch.end_to_end_scales)
        if cfg.batch.init_scales is not None:
            raise ConfigError(
                "batch.end_to_end_scales",
                shown,
                "null when batch.init_scales is set (one or the other)",
            )
        if cfg.init.kind not in ("balanced", "identity"):
            raise ConfigError(
                "batch.end_to_end_scales",
                shown,
                f"null when init.kind={cfg.init.kind} (W(0) = ε·G: init.kind=balanced or identity)",
            )


def _validate_history(cfg: DictConfig) -> None:
    """``train.singular_value_history``: k of the logged ``singular_values/<i>`` of every run."""
    check_number(cfg, "train.singular_value_history", minimum=0, strict=False, integer=True)
    k = cfg.train.singular_value_history
    if k > cfg.train.max_tracked:
        raise ConfigError(
            "train.singular_value_history",
            k,
            f"at most train.max_tracked={cfg.train.max_tracked} (the singular values logged)",
        )
    if k > 0 and cfg.get("batch") is not None and batch.size(cfg) > history.MAX_RUNS:
        raise ConfigError(
            "train.singular_value_history",
            k,
            f"0 for a batch of more than {history.MAX_RUNS} runs (here {batch.size(cfg)})",
        )


def _single_solve(cfg: DictConfig) -> None:
    """``optim=nuclear_norm`` solves one convex program: no batch of seeds, scales or lrs."""
    why = "with optim=nuclear_norm (one convex program, one solution: nothing to batch)"
    if cfg.batch.seeds != 1:
        raise ConfigError("batch.seeds", cfg.batch.seeds, f"1 {why}")
    for key in ("batch.init_scales", "batch.end_to_end_scales", "batch.lrs"):
        if (value := OmegaConf.select(cfg, key)) is not None:
            raise ConfigError(key, OmegaConf.to_container(value), f"null {why}")


def _positive_list(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if value is None:
        return
    items = list(value) if isinstance(value, (list, ListConfig)) else None
    ok = bool(items) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in items
    )
    if not ok:
        shown = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
        raise ConfigError(key, shown, "null or a non-empty list of finite numbers > 0")


def _known_keys(node: DictConfig, prefix: str) -> None:
    """Refuse keys that a node's schema (``implicit_reg.config.schema``) lacks. Composition already
    refuses them, except those added with ``+key=value``, which Hydra lets into any node."""
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        names = [f.name for f in dataclasses.fields(schema)]
        for key in node:
            if key not in names:
                where = f"a key of {prefix.rstrip('.') or 'the top level'}"
                raise ConfigError(
                    f"{prefix}{key}",
                    OmegaConf.select(node, str(key)),
                    f"{where}: {' | '.join(names)}",
                )
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none():
            _known_keys(child, f"{prefix}{key}.")


def _validate_optim(cfg: DictConfig) -> None:
    _choice(cfg, "optim.name", OPTIMIZERS)
    check_number(cfg, "optim.lr", minimum=0, strict=True, integer=False)
    if cfg.optim.name == "nuclear_norm":
        _validate_nuclear_norm(cfg)
        return
    if cfg.optim.name == "momentum":
        _fraction(cfg, "optim.momentum")
        if not isinstance(cfg.optim.nesterov, bool):
            raise ConfigError("optim.nesterov", cfg.optim.nesterov, "true | false")
    if cfg.optim.name == "adam":
        betas = OmegaConf.select(cfg, "optim.betas")
        if not (isinstance(betas, ListConfig) and len(betas) == 2):
            shown = OmegaConf.to_container(betas) if isinstance(betas, ListConfig) else betas
            raise ConfigError("optim.betas", shown, "a list of two numbers [β₁, β₂] in [0, 1)")
        _fraction(cfg, "optim.betas.0")
        _fraction(cfg, "optim.betas.1")
    if cfg.optim.name == "group_rmsprop":
        _fraction(cfg, "optim.alpha")
    if cfg.optim.name in ("adam", "group_rmsprop"):
        check_number(cfg, "optim.eps", minimum=0, strict=True, integer=False)
    if cfg.optim.name != "flow":
        return
    _choice(cfg, "optim.method", FLOW_METHODS)
    check_number(cfg, "optim.rtol", minimum=0, strict=True, integer=False)
    check_number(cfg, "optim.atol", minimum=0, strict=True, integer=False)
    _choice(cfg, "flow.coordinates", FLOW_COORDINATES)
    _choice(cfg, "flow.field", FLOW_FIELDS)
    if cfg.dtype != "float64":
        raise ConfigError(
            "dtype", cfg.dtype, "float64 with optim=flow (scipy's solvers are float64)"
        )
    if cfg.flow.coordinates != "svd":
        return
    rows, cols = problem_shape(cfg.problem)
    needs = (
        ("init.kind", cfg.init.kind, cfg.init.kind == "balanced", "balanced (eq. 14 needs it)"),
        ("model.depth", cfg.model.depth, cfg.model.depth >= 2, "an integer ≥ 2 (eq. 14)"),
        (
            "model.width",
            cfg.model.width,
            (cfg.model.width or min(rows, cols)) >= min(rows, cols),
            f"null or ≥ {min(rows, cols)} (a full-rank product)",
        ),
    )
    for key, value, ok, allowed in needs:
        if not ok:
            raise ConfigError(key, value, f"{allowed} with flow.coordinates=svd")


def _validate_nuclear_norm(cfg: DictConfig) -> None:
    """``optim=nuclear_norm`` (``implicit_reg.baselines.nuclear_norm``): a matrix problem, the
    solver's keys, float64, and cvxpy with the solver installed."""
    if cfg.problem.kind == "least_squares":
        raise ConfigError(
            "problem",
            cfg.problem.name,
            "a matrix problem (completion_2x2, matrix_completion, …) with optim=nuclear_norm: "
            "least squares fits a vector β, which has no nuclear norm to minimize",
        )
    _choice(cfg, "optim.solver", NUCLEAR_NORM_SOLVERS)
    check_number(cfg, "optim.tol", minimum=0, strict=True, integer=False)
    if cfg.optim.max_iters is not None:
        check_number(cfg, "optim.max_iters", minimum=1, strict=False, integer=True)
    if cfg.dtype != "float64":
        raise ConfigError(
            "dtype", cfg.dtype, "float64 with optim=nuclear_norm (cvxpy's solvers are float64)"
        )
    # each solver's Python package is named as the solver (clarabel, scs)
    missing = [m for m in ("cvxpy", cfg.optim.solver) if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            "optim.name",
            "nuclear_norm",
            f"{' | '.join(o for o in OPTIMIZERS if o not in baselines.NAMES)}: optim=nuclear_norm "
            f"needs {' and '.join(missing)}, not installed here "
            "(pip install -e '.[baselines]')",
        )


def _validate_problem(cfg: DictConfig) -> None:
    _choice(cfg, "problem.kind", PROBLEM_KINDS)
    check_number(cfg, "problem.seed", minimum=0, strict=False, integer=True)
    p = cfg.problem
    if p.kind == "least_squares":
        check_number(cfg, "problem.n", minimum=1, strict=False, integer=True)
        check_number(cfg, "problem.d", minimum=1, strict=False, integer=True)
    elif p.kind == "movielens":
        _validate_movielens(cfg)
    elif p.get("target") is not None:
        _validate_given_target(cfg)
    else:
        for key in ("rows", "cols", "rank"):
            check_number(cfg, f"problem.{key}", minimum=1, strict=False, integer=True)
        if p.rank > min(p.rows, p.cols):
            raise ConfigError("problem.rank", p.rank, f"an integer in [1, {min(p.rows, p.cols)}]")
        if p.kind == "matrix_sensing":
            check_number(cfg, "problem.measurements", minimum=1, strict=False, integer=True)
        elif not (isinstance(p.observed, int) and 1 <= p.observed <= p.rows * p.cols):
            raise ConfigError(
                "problem.observed", p.observed, f"an integer in [1, {p.rows * p.cols}]"
            )


def _validate_movielens(cfg: DictConfig) -> None:
    """``problem=movielens``: the shape, the infimal rank, and a readable ``u.data`` at
    ``problem.path`` (read here, so that a missing or malformed file is refused before any
    folder exists)."""
    p = cfg.problem
    for key in ("rows", "cols"):
        check_number(cfg, f"problem.{key}", minimum=1, strict=False, integer=True)
    check_number(cfg, "problem.infimal_rank", minimum=1, strict=False, integer=True)
    if p.infimal_rank > min(p.rows, p.cols):
        raise ConfigError(
            "problem.infimal_rank", p.infimal_rank, f"an integer in [1, {min(p.rows, p.cols)}]"
        )
    if p.path is None:
        raise ConfigError("problem.path", None, WHERE)
    try:
        read_ratings(p.path, int(p.rows), int(p.cols))
    except RatingsError as error:
        raise ConfigError("problem.path", p.path, f"{WHERE}; here: {error}") from None


def _validate_given_target(cfg: DictConfig) -> None:
    p = cfg.problem
    target = OmegaConf.to_container(p.target)
    if not (
        isinstance(target, list)
        and target
        and all(isinstance(row, list) and len(row) == len(target[0]) > 0 for row in target)
    ):
        raise ConfigError("problem.target", target, "a non-empty rectangular list of rows")
    for row in target:
        for v in row:
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise ConfigError(
                    "problem.target", target, "finite numbers, or null for unobserved"
                )
    shape = (len(target), len(target[0]))
    observed = [[v is not None for v in row] for row in target]
    if p.get("mask") is not None:
        mask = OmegaConf.to_container(p.mask)
        if not (
            isinstance(mask, list)
            and len(mask) == shape[0]
            and all(isinstance(r, list) and len(r) == shape[1] for r in mask)
            and all(v in (0, 1, True, False) for r in mask for v in r)
        ):
            raise ConfigError("problem.mask", mask, f"a {shape[0]}×{shape[1]} list of 0/1")
        if any(
            m and not o
            for mr, orow in zip(mask, observed, strict=True)
            for m, o in zip(mr, orow, strict=True)
        ):
            raise ConfigError("problem.mask", mask, "1 only where problem.target is not null")
        observed = [[bool(v) for v in r] for r in mask]
    if not any(v for row in observed for v in row):
        key = "problem.mask" if p.get("mask") is not None else "problem.target"
        raise ConfigError(key, OmegaConf.select(cfg, key), "at least one observed entry")
    if p.get("infimal_rank") is None:
        raise ConfigError(
            "problem.infimal_rank", None, "an integer ≥ 1 (required for a given target)"
        )
    check_number(cfg, "problem.infimal_rank", minimum=1, strict=False, integer=True)


def _validate_init(cfg: DictConfig) -> None:
    _choice(cfg, "init.kind", init.KINDS)
    _choice(cfg, "init.det", init.DET_SIGNS)
    kind, det, depth = cfg.init.kind, cfg.init.det, cfg.model.depth
    if kind == "zero":
        if depth != 1:
            raise ConfigError(
                "init.kind",
                kind,
                "gaussian | identity | balanced for model.depth ≥ 2 "
                "(at zero every factor's gradient vanishes)",
            )
    else:
        check_number(cfg, "init.scale", minimum=0, strict=True, integer=False)
    if det == "any":
        return
    rows, cols = problem_shape(cfg.problem)
    width = cfg.model.width or min(rows, cols)
    if rows != cols or (depth > 1 and width < rows) or kind == "zero":
        raise ConfigError(
            "init.det", det, "any (a determinant sign needs a square, full-rank product)"
        )
    if kind == "identity" and det == "negative":
        raise ConfigError("init.det", det, "any | positive for init.kind=identity (det > 0)")


def problem_shape(p: DictConfig) -> tuple[int, int]:
    """(rows, cols) of the end-to-end matrix a problem config asks for."""
    if p.kind == "least_squares":
        return int(p.d), 1
    if p.get("target") is not None:
        return len(p.target), len(p.target[0])
    return int(p.rows), int(p.cols)


def mse_per_loss(p: DictConfig) -> float:
    """c with mean squared error = c·ℓ over the K observations a problem config asks for: 1/n
    for least squares (f = ‖y − Xβ‖², seed eq. 3), 2/K for completion, sensing and MovieLens
    (ℓ = ½Σₖ rₖ²). Arora et al. (2019) stop at, and scale GroupRMSprop's ε by, the mean
    squared error."""
    if p.kind == "least_squares":
        return 1 / int(p.n)
    if p.kind == "matrix_sensing":
        return 2 / int(p.measurements)
    if p.kind == "movielens":  # every line of a valid u.data is one rating
        with open(p.path) as ratings:
            return 2 / sum(1 for line in ratings if line.strip())
    if p.get("mask") is not None:
        return 2 / sum(bool(v) for row in p.mask for v in row)
    if p.get("target") is not None:
        return 2 / sum(v is not None for row in p.target for v in row)
    return 2 / int(p.observed)


def with_loss_tol(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``train.loss_tol`` = ``train.mse_tol``/c (``mse_per_loss``) where
    ``train.mse_tol`` is set (a copy; the run stops on the loss, as every other)."""
    if cfg.train.get("mse_tol") is None:
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.train.loss_tol = float(cfg.train.mse_tol) / mse_per_loss(cfg.problem)
    return cfg
