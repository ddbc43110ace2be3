"""Faults of a Hydra multirun: failed jobs set the exit status after the summary, and a sweep
run again into its own folder (to finish an interrupted one, default timestamped folder
included) keeps every finished job byte for byte, ``.hydra/`` included."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from implicit_reg.sweep_job import finished_metrics, record_subdir

# 2×2 completion, depth 3 from init scale 0.5, 50 steps: both lrs end at max_steps.
QUICK = ("init.scale=0.5", "train.max_steps=50", "train.progress=false", "device=cpu")
GRID = "optim.lr=0.2,0.05"
JOB0, JOB1 = "0_optim.lr=0.2", "1_optim.lr=0.05"  # job folders: number, then what varied


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes (folders as None) under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def statuses(sweep: Path) -> dict[str, str]:
    with open(sweep / "summary.csv") as f:
        return {row["run"]: row["status"] for row in csv.DictReader(f)}


def assert_kept(before: dict, after: dict, job: str) -> None:
    """Every file of ``job`` is unchanged but ``train.log``, which only gained lines."""
    mine = [k for k in before if k.startswith(f"{job}/")]
    assert f"{job}/.hydra/overrides.yaml" in mine and f"{job}/metrics.json" in mine
    assert sorted(k for k in after if k.startswith(f"{job}/")) == mine  # no file added
    for key in mine:
        if key.endswith("train.log"):
            assert after[key].startswith(before[key]) and b"kept, not run again" in after[key]
        else:
            assert after[key] == before[key], key


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, train_cli) -> Path:
    """A finished sweep in Hydra's default, timestamped folder."""
    cwd = tmp_path_factory.mktemp("default_sweep")
    done = train_cli("-m", *QUICK, GRID, quiet=False, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]  # every job finished: exit 0
    (folder,) = (cwd / "outputs" / "multirun").glob("*/*")
    return folder


@pytest.mark.slow
def test_failed_job_makes_the_multirun_exit_non_zero_after_its_summary(
    tmp_path: Path, train_cli
) -> None:
    done = train_cli(
        "-m",
        *QUICK,
        f"hydra.sweep.dir={tmp_path / 's'}",
        "optim.lr=0.2,-1",
        quiet=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "sweep summary" in done.stderr + done.stdout and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"sweep {tmp_path / 's'}: 1 of 2 runs did not finish (failed 1)"
    assert statuses(tmp_path / "s") == {JOB0: "max_steps", "1_optim.lr=-1": "failed"}


@pytest.mark.slow
def test_sweep_of_only_invalid_jobs_exits_non_zero_in_one_line_each(
    tmp_path: Path, train_cli
) -> None:
    done = train_cli(
        "-m",
        *QUICK,
        f"hydra.sweep.dir={tmp_path / 's'}",
        "model.depth=0,-1",
        quiet=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    log = done.stdout + done.stderr  # Hydra's log goes to stdout
    failures = [line for line in log.splitlines() if "job failed" in line]
    assert len(failures) == 2 and all("invalid config: model.depth=" in f for f in failures)
    assert done.stderr.strip().splitlines()[-1].endswith("2 of 2 runs did not finish (failed 2)")


@pytest.mark.slow
def test_resuming_a_default_sweep_keeps_finished_jobs_byte_for_byte(
    sweep: Path, tmp_path: Path, train_cli
) -> None:
    folder = tmp_path / sweep.name
    shutil.copytree(sweep, folder)
    shutil.rmtree(folder / JOB1)  # interrupted before job 1 started
    before = snapshot(folder)
    done = train_cli("-m", *QUICK, f"hydra.sweep.dir={folder}", GRID, quiet=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    after = snapshot(folder)
    assert_kept(before, after, JOB0)
    assert json.loads(after[f"{JOB1}/metrics.json"])["status"] == "max_steps"  # the missing job ran
    assert statuses(folder) == {JOB0: "max_steps", JOB1: "max_steps"}


@pytest.mark.slow
def test_rerun_with_other_fixed_overrides_keeps_every_finished_job_and_exits_non_zero(
    sweep: Path, tmp_path: Path, train_cli
) -> None:
    """The same grid with another fixed override (seed=1) maps each job to its old folder,
    which holds a run of other overrides: kept, said, and the exit status is 1."""
    folder = tmp_path / sweep.name
    shutil.copytree(sweep, folder)
    before = snapshot(folder)
    done = train_cli(
        "-m", *QUICK, f"hydra.sweep.dir={folder}", GRID, "seed=1", quiet=False, cwd=tmp_path
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.endswith(
        "jobs 0, 1 kept a finished run made with other overrides (see its train.log); "
        "use a new hydra.sweep.dir for a new grid"
    )
    after = snapshot(folder)
    for job in (JOB0, JOB1):
        assert_kept(before, after, job)
    assert b"this job asks seed=1, the kept run has nothing else" in after[f"{JOB0}/train.log"]
    with open(folder / "summary.csv") as f:  # the summary tells the kept runs' own lrs
        assert [row["optim.lr"] for row in csv.DictReader(f)] == ["0.2", "0.05"]


@pytest.mark.slow
def test_a_new_grid_in_the_same_folder_runs_into_folders_of_its_own(
    sweep: Path, tmp_path: Path, train_cli
) -> None:
    """optim.lr=0.02,0.05 after 0.2,0.05: job 0 is a new point (its own folder, run), job 1
    is the old point 0.05 (same folder, kept). Catches: job n of a new grid taking the
    folder of job n of the old one."""
    folder = tmp_path / sweep.name
    shutil.copytree(sweep, folder)
    before = snapshot(folder)
    done = train_cli(
        "-m", *QUICK, f"hydra.sweep.dir={folder}", "optim.lr=0.02,0.05", quiet=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    after = snapshot(folder)
    assert_kept(before, after, JOB1)
    assert all(after[k] == before[k] for k in before if k.startswith(f"{JOB0}/"))  # untouched
    assert json.loads(after["0_optim.lr=0.02/metrics.json"])["status"] == "max_steps"


@pytest.mark.parametrize(
    "content, kept",
    [
        ('{"status": "converged"}', True),
        ('{"status": "diverged"}', True),
        ('{"status": "max_steps"}', True),
        ('{"status": "failed", "error": "x"}', False),
        ('{"status": "interrupted"}', False),
        ('{"status": "conv', False),  # corrupt: the job runs again
        ("[1]", False),
        (None, False),  # killed before its end, or never started
    ],
)
def test_which_job_folders_a_sweep_keeps(tmp_path: Path, content: str | None, kept: bool) -> None:
    torch.save({"W": torch.zeros(2, 2)}, tmp_path / "final.pt")
    if content is not None:
        (tmp_path / "metrics.json").write_text(content)
    assert (finished_metrics(tmp_path) is not None) == kept
    assert record_subdir(str(tmp_path), "RunMode.MULTIRUN") == (None if kept else ".hydra")
    assert record_subdir(str(tmp_path), "RunMode.RUN") == ".hydra"  # a single run: not here


def test_a_finished_job_whose_final_pt_is_lost_runs_again(tmp_path: Path) -> None:
    """Catches: a sweep keeping a job whose record says it ended over a lost ``final.pt``."""
    (tmp_path / "metrics.json").write_text('{"status": "converged", "results": ["final.pt"]}')
    assert finished_metrics(tmp_path) is None
    (tmp_path / "final.pt").write_bytes(b"PK\x03\x04 cut short")
    assert finished_metrics(tmp_path) is None
    torch.save({"W": torch.zeros(2, 2)}, tmp_path / "final.pt")
    assert finished_metrics(tmp_path) is not None
