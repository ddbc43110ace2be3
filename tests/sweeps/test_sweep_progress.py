"""A sweep says after each job how many of its jobs are done and the time so far, counted on
disk (any launcher, a rerun that keeps finished runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from implicit_reg.sweep_callback import sweep_progress

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def test_jobs_done_of_total_and_time_so_far(tmp_path: Path) -> None:
    """Two of 3×2 jobs have a metrics.json; the multirun started 65 s ago. Catches: a count of
    this process's jobs (0 here), a total from the jobs started, or a wrong clock."""
    multirun = {
        "hydra": {
            "sweeper": {"_target_": BASIC, "params": None},
            "overrides": {"task": ["model.depth=1,2,3", "seed=0,1", "device=cpu"]},
        }
    }
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    for job in ("0", "4"):
        (tmp_path / job).mkdir()
        (tmp_path / job / "metrics.json").write_text("{}")
    (tmp_path / "5").mkdir()  # started, not done
    started = (tmp_path / "multirun.yaml").stat().st_mtime
    assert sweep_progress(tmp_path, now=started + 65) == "sweep: 2 of 6 jobs done, 1:05 so far"


def test_unknown_grid_says_so(tmp_path: Path) -> None:
    assert sweep_progress(tmp_path) == "sweep: 0 of ? jobs done"


@pytest.mark.slow
def test_a_multirun_logs_each_job_done(tmp_path: Path, train_cli) -> None:
    """``train.py -m`` with two jobs logs ``1 of 2`` then ``2 of 2``."""
    done = train_cli(
        "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", "model.depth=2,3", "train.max_steps=20",
        "train.progress=false", "device=cpu", quiet=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    said = re.findall(r"sweep: (\d) of (\d) jobs done, \d+:\d\d so far", done.stdout + done.stderr)
    assert said == [("1", "2"), ("2", "2")]
