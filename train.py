"""Entry point: ``python train.py [overrides]`` trains one run; ``-m`` sweeps. See README."""

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from implicit_reg import run


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    result = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    if result["status"] == "interrupted":  # outputs are written; stop a sweep too
        sys.exit(128 + signal.Signals[result["signal"]])


if __name__ == "__main__":
    main()
