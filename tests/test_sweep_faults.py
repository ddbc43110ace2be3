"""Faults of a Hydra multirun: failed jobs set the exit status after the summary."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# 2×2 completion, depth 3 from init scale 0.5, 50 steps: lr 0.2 ends at max_steps.
QUICK = ("init.scale=0.5", "train.max_steps=50", "train.progress=false", "device=cpu")


def multirun(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python train.py -m overrides…`` in ``cwd`` (Hydra's default sweep folder goes there)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", *QUICK, *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def statuses(sweep: Path) -> dict[str, str]:
    with open(sweep / "summary.csv") as f:
        return {row["run"]: row["status"] for row in csv.DictReader(f)}


def test_failed_job_makes_the_multirun_exit_non_zero_after_its_summary(tmp_path: Path) -> None:
    done = multirun(tmp_path, f"hydra.sweep.dir={tmp_path / 's'}", "optim.lr=0.2,-1")
    assert done.returncode == 1
    assert "sweep summary" in done.stderr + done.stdout and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"sweep {tmp_path / 's'}: 1 of 2 runs did not finish (failed 1)"
    assert statuses(tmp_path / "s") == {"0": "max_steps", "1": "failed"}


def test_sweep_of_only_invalid_jobs_exits_non_zero_in_one_line_each(tmp_path: Path) -> None:
    done = multirun(tmp_path, f"hydra.sweep.dir={tmp_path / 's'}", "model.depth=0,-1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    log = done.stdout + done.stderr  # Hydra's log goes to stdout
    failures = [line for line in log.splitlines() if "job failed" in line]
    assert len(failures) == 2 and all("invalid config: model.depth=" in f for f in failures)
    assert done.stderr.strip().splitlines()[-1].endswith("2 of 2 runs did not finish (failed 2)")
