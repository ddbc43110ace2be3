"""The Hydra app behind ``python train.py``, ``python -m implicit_reg`` and the ``implicit-reg``
console script: one run, or a sweep with ``-m`` (README § "Quick start" and § "Sweeps").

Its configs are the repository's ``configs/`` folder; an installed wheel carries a copy of it
as ``implicit_reg/configs`` (``setup.py``), so the app runs from any directory."""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from implicit_reg.os_errors import console_never_fails, one_line
from implicit_reg.sweep_job import run_job

PACKAGE = Path(__file__).resolve().parent


def config_dir() -> Path:
    """The folder of ``train.yaml``: the copy inside an installed package, else the checkout's
    ``configs/`` beside the package (a source tree or an editable install)."""
    for folder in (PACKAGE / "configs", PACKAGE.parent / "configs"):
        if (folder / "train.yaml").is_file():
            return folder
    raise FileNotFoundError(
        f"no train.yaml in {PACKAGE / 'configs'} or {PACKAGE.parent / 'configs'}"
    )


def config_groups() -> str:
    """``group: option, option, …`` for each config group a user picks from (``--help``): the
    folders of :func:`config_dir` but ``hydra``; the ``schema`` group of the config store is
    internal (``implicit_reg/config/schema.py``) and left out."""
    lines = []
    for group in sorted(p for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra"):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        lines.append(
            textwrap.fill(
                f"{group.name}: {', '.join(options)}", width=100, subsequent_indent="    "
            )
        )
    return "\n".join(lines)


OmegaConf.register_new_resolver("app_config_groups", config_groups, replace=True)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> None:
    """Train the composed config into Hydra's output folder; a stopped run stops a sweep too."""
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        result = run_job(cfg, out_dir, multirun=hydra_cfg.mode == RunMode.MULTIRUN)
    except KeyboardInterrupt as stop:  # a second signal, or one before the handler is on
        signum = getattr(stop, "signum", signal.SIGINT)
        print(
            f"{signal.Signals(signum).name}: stopped at once; {out_dir} keeps its last checkpoint "
            "(run the same command again to resume from it)",
            file=sys.stderr,
        )
        sys.exit(128 + signum)
    except OSError as error:  # a full disk, a read-only folder: the files written are whole
        sys.exit(one_line(error))
    if result["status"] == "interrupted":  # outputs are written; stop a sweep too
        sys.exit(128 + signal.Signals[result["signal"]])


def cli() -> None:
    """The command line (``train.py``, ``python -m implicit_reg``, ``implicit-reg``): a console
    that cannot encode a character escapes it rather than failing, then the app."""
    console_never_fails()
    main()
