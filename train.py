"""Entry point: ``python train.py [overrides]`` trains one run; ``-m`` sweeps. See README."""

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from implicit_reg.os_errors import console_never_fails, one_line
from implicit_reg.sweep_job import run_job


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
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


if __name__ == "__main__":
    console_never_fails()
    main()
