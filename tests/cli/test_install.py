"""``pip install`` trains: the wheel carries the configs, and its ``implicit-reg`` console
script and ``python -m implicit_reg`` run the app of ``train.py`` from outside the repository.

The wheel goes into a fresh virtual environment that sees this interpreter's packages through a
``.pth`` file (torch, Hydra, …), so it installs offline in seconds; cwd is ``/``, so nothing of
the checkout is importable or readable by a relative path."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from implicit_reg.app import config_dir

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "train.py", "implicit_reg",
          "configs")  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel built from this checkout installed; its bin folder."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"  # a copy: no build/ folder of an earlier build in the checkout
    source.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCE:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": skip} if copy is shutil.copytree else {}))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
         "-w", str(tmp / "wheel"), str(source)],
        capture_output=True, text=True, timeout=600, cwd=tmp,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    assert "deprecat" not in build.stderr.lower(), build.stderr  # e.g. project.license
    env_dir = tmp / "env"
    venv.create(env_dir, with_pip=False)
    (purelib,) = (env_dir / "lib").glob("python*/site-packages")
    (purelib / "parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    (wheel,) = (tmp / "wheel").glob("implicit_reg-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install",
         "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=600, cwd=tmp,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    return env_dir / "bin"


def outside(cmd: list[str]) -> subprocess.CompletedProcess:
    """``cmd`` from ``/`` with no path into the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(cmd, cwd="/", env=env, capture_output=True, text=True, timeout=600)


def test_wheel_ships_every_config(installed: Path) -> None:
    """The installed package reads its own copy of configs/, and that copy is complete.
    Catches: configs left out of the wheel, or the app reading the checkout's folder."""
    found = outside(
        [str(installed / "python"), "-c",
         "import implicit_reg.app as a; print(a.__file__); print(a.config_dir())"]
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    module, folder = found.stdout.split()
    assert Path(module).is_relative_to(installed.parent)
    assert Path(folder) == Path(module).parent / "configs"
    shipped = sorted(p.relative_to(folder) for p in Path(folder).rglob("*.yaml"))
    source = sorted(p.relative_to(config_dir()) for p in config_dir().rglob("*.yaml"))
    assert shipped == source and len(source) > 20


@pytest.mark.parametrize("entry", ["script", "module"])
def test_installed_app_trains_from_root(installed: Path, tmp_path: Path, entry: str) -> None:
    """``implicit-reg`` and ``python -m implicit_reg`` train a short run from ``/`` and write the
    run's outputs (train.log too). Catches: no console script, no __main__, a config path
    relative to the checkout, a job name other than ``train``."""
    out = tmp_path / "run"
    start = (
        [str(installed / "implicit-reg")]
        if entry == "script"
        else [str(installed / "python"), "-m", "implicit_reg"]
    )
    done = outside(
        [*start, "train.max_steps=30", "train.progress=false", "device=cpu",
         f"hydra.run.dir={out}"]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "metrics.json").read_text())
    assert result["steps"] == 30 and result["status"] == "max_steps"
    assert (out / "train.log").is_file()


def test_installed_help_lists_user_groups(installed: Path) -> None:
    """``--help`` names every config group a user picks from, not the internal ``schema`` group,
    and points to the README. Catches: Hydra's default help (it lists ``schema``)."""
    shown = outside([str(installed / "implicit-reg"), "--help"])
    assert shown.returncode == 0, shown.stderr
    groups = [line.split(":")[0] for line in shown.stdout.splitlines() if ": " in line]
    for group in ("problem", "optim", "model", "init", "train", "batch", "experiment"):
        assert group in groups
    assert "schema" not in groups and "schema/" not in shown.stdout
    assert "README.md" in shown.stdout
