"""Entry point: ``python train.py [overrides]`` trains one run; ``-m`` sweeps. See README."""

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from implicit_reg.sweep_job import run_job


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    result = run_job(cfg, out_dir, multirun=hydra_cfg.mode == RunMode.MULTIRUN)
    if result["status"] == "interrupted":  # outputs are written; stop a sweep too
        sys.exit(128 + signal.Signals[result["signal"]])


if __name__ == "__main__":
    main()
