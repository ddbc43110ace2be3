"""The test harness, as fixtures (a test asks for what it uses; nothing here is imported):

- configs: ``compose_cfg`` (the quiet CPU config, Hydra's compose API) and ``compose_bare`` (as
  composed, without the quiet overrides);
- runs in this process: ``train_run`` (into a fresh folder laid out as Hydra lays it out) and
  ``train_here`` (``python train.py`` without the interpreter start-up; ``train_app`` is its app);
- subprocesses, one helper: ``python_cli`` (``python args…`` with the checkout importable) and
  ``train_cli`` (``python train.py overrides…``, quiet, on the CPU);
- readers of a run folder: ``read_metrics``, ``read_factors``, and ``bitwise_equal``;
- ``repo``: the repository's root.

A test that starts a subprocess is marked ``slow``; ``make test`` runs it too, ``make test-fast``
(``pytest -m "not slow"``) leaves it out. Tests are grouped by the layer they test, one folder
each (``problems/``, ``dynamics/``, ``record/``, …); docs/tests.md lists them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
QUIET = ("train.progress=false", "device=cpu")


def _compose(*overrides: str, quiet: bool = True, hydra: bool = False) -> DictConfig:
    """The train config with those overrides (after the quiet CPU ones unless ``quiet=False``);
    ``hydra=True`` keeps its ``hydra`` node (a multirun's sweeper params live there)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        return compose(
            "train", overrides=[*(QUIET if quiet else ()), *overrides], return_hydra_config=hydra
        )


_running: list[pytest.Item] = []  # the test being run (its fixtures' set-up included)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


def _python(
    *args: str,
    cwd: Path | str = ROOT,
    env: dict[str, str] | None = None,
    wait: bool = True,
    timeout: float = 300,
    **run: Any,
) -> subprocess.CompletedProcess | subprocess.Popen:
    """``python args…`` in ``cwd`` with the checkout importable: with ``wait`` its completed
    process (output captured as text; ``check``, ``encoding``… pass through), else the running
    one (stdout dropped and stderr piped unless ``run`` says otherwise). Only a test marked
    ``slow`` may call it: the fast suite starts no interpreter."""
    if _running and _running[-1].get_closest_marker("slow") is None:
        pytest.fail(f"{_running[-1].nodeid} starts a subprocess: mark it @pytest.mark.slow")
    cmd = [sys.executable, *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if not wait:
        popen = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True, **run}
        return subprocess.Popen(cmd, cwd=cwd, env=env, **popen)
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **run
    )


def _train(*overrides: str, quiet: bool = True, **kwargs: Any) -> Any:
    """``python train.py overrides…`` (flags such as ``-m`` first), quiet and on the CPU unless
    ``quiet=False``; the keywords of :func:`_python`."""
    flags = [o for o in overrides if o.startswith("-")]  # argparse wants -m before overrides
    rest = [o for o in overrides if not o.startswith("-")]
    return _python(str(ROOT / "train.py"), *flags, *(QUIET if quiet else ()), *rest, **kwargs)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository's root (``train.py``, ``configs/``, ``implicit_reg/``)."""
    return ROOT


@pytest.fixture(scope="session")
def compose_cfg() -> Callable[..., DictConfig]:
    """``compose_cfg(*overrides, quiet=True, hydra=False)``: the quiet CPU config."""
    return _compose


@pytest.fixture(scope="session")
def compose_bare() -> Callable[..., DictConfig]:
    """``compose_bare(*overrides)``: the train config as composed (no overrides added)."""
    return lambda *overrides: _compose(*overrides, quiet=False)


@pytest.fixture(scope="session")
def python_cli() -> Callable[..., Any]:
    """``python_cli(*args, cwd=repo, env=None, wait=True, timeout=300, **run)``: the one
    subprocess helper, ``python args…`` with the checkout importable."""
    return _python


@pytest.fixture(scope="session")
def train_cli() -> Callable[..., Any]:
    """``train_cli(*overrides, quiet=True, wait=True, **python_cli's keywords)``:
    ``python train.py`` in a subprocess."""
    return _train


@pytest.fixture(scope="session")
def train_app() -> Any:
    """The Hydra app that train.py runs (``main``, and the ``run_job`` it calls)."""
    from implicit_reg import app

    return app


@pytest.fixture
def train_here(monkeypatch: pytest.MonkeyPatch, train_app: Any) -> Callable[..., None]:
    """``train_here(*args)``: ``python train.py args…`` in this process (no interpreter
    start-up)."""

    def go(*args: str) -> None:
        monkeypatch.setattr(sys, "argv", ["train.py", *args])
        train_app.main()

    return go


@pytest.fixture(scope="session")
def read_metrics() -> Callable[[Path], dict[str, Any]]:
    """``read_metrics(run_dir)``: its ``metrics.json``."""
    return lambda run_dir: json.loads((Path(run_dir) / "metrics.json").read_text())


@pytest.fixture(scope="session")
def read_factors() -> Callable[[Path], list[torch.Tensor]]:
    """``read_factors(run_dir)``: the factors of its ``final.pt``."""
    return lambda run_dir: torch.load(Path(run_dir) / "final.pt", weights_only=True)["factors"]


@pytest.fixture(scope="session")
def bitwise_equal() -> Callable[[list[torch.Tensor], list[torch.Tensor]], bool]:
    """``bitwise_equal(a, b)``: the same tensors, dtype and bits."""

    def equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
        return len(a) == len(b) and all(
            x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b, strict=True)
        )

    return equal


@pytest.fixture
def train_run(tmp_path: Path) -> Callable[..., tuple[dict[str, Any], Path]]:
    """``train_run(*overrides)``: run in-process into a fresh folder laid out as Hydra lays it
    out (``.hydra/config.yaml`` beside the outputs); returns (metrics, folder)."""
    from implicit_reg.run import run

    count = 0

    def go(*overrides: str) -> tuple[dict[str, Any], Path]:
        nonlocal count
        count += 1
        out = tmp_path / f"run{count}"
        cfg = _compose(*overrides)
        (out / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, out / ".hydra" / "config.yaml", resolve=True)
        return run(cfg, out), out

    return go


@pytest.fixture
def completion_2x2() -> Any:
    """The 2×2 completion b = [[*, 1], [1, 0]] of Razin & Cohen (2020), infimal rank 1."""
    from implicit_reg.problems import MatrixCompletion
    from implicit_reg.problems.matrix_completion import parse_entries

    target, mask = parse_entries([[None, 1.0], [1.0, 0.0]])
    return MatrixCompletion(target, mask, infimal_rank=1)
