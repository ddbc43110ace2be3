"""Hydra multirun through the joblib launcher, failed jobs, HParams and the sweep summary."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from implicit_reg.summarize import main as summarize_main
from implicit_reg.summarize import summarize

pytestmark = pytest.mark.slow  # python train.py -m in subprocesses
# 2×2 completion, depth 3 from init scale 0.5: lr 0.05 ends at max_steps, lr 0.2 converges,
# lr 3 diverges, lr −1 is refused by the config check (the job forced to fail).
LRS = ["0.05", "0.2", "3", "-1"]
EXPECTED = {"0.05": "max_steps", "0.2": "converged", "3": "diverged", "-1": "failed"}
JOBS = [f"{i}_optim.lr={lr}" for i, lr in enumerate(LRS)]  # job folders: number, what varied


def read_summary(folder: Path) -> list[dict[str, str]]:
    with open(folder / "summary.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, train_cli) -> Path:
    folder = tmp_path_factory.mktemp("sweep")
    done = train_cli(
        "-m",
        "hydra/launcher=local_processes",
        f"hydra.sweep.dir={folder}",
        f"optim.lr={','.join(LRS)}",
        "init.scale=0.5",
        "train.max_steps=300",
        "train.loss_tol=0.012",
        "train.progress=false",
        "device=cpu",
        quiet=False,
    )
    assert done.returncode == 1, done.stderr[-3000:]  # the lr −1 job failed (after the summary)
    return folder


def test_joblib_multirun_writes_every_metrics_json_and_a_summary(sweep):
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == JOBS
    statuses = {}
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        statuses[job.name] = metrics["status"]
    rows = read_summary(sweep)
    assert [r["run"] for r in rows] == JOBS
    assert {r["optim.lr"]: r["status"] for r in rows} == EXPECTED
    assert [r["status"] for r in rows] == [statuses[r["run"]] for r in rows]
    converged = next(r for r in rows if r["status"] == "converged")
    assert float(converged["loss/train"]) < 0.012
    metrics = json.loads((sweep / JOBS[1] / "metrics.json").read_text())
    assert float(converged["entries/1_1"]) == pytest.approx(metrics["entries/1_1"], rel=1e-12)
    assert list(sweep.glob("summary_*_vs_optim.lr.png"))


def test_failed_job_is_marked_and_its_error_recorded(sweep):
    failed = next(r for r in read_summary(sweep) if r["status"] == "failed")
    assert failed["optim.lr"] == "-1" and "optim.lr=-1" in failed["error"]
    assert failed["loss/train"] == ""


def test_each_run_event_file_holds_its_hparams(sweep):
    for num in (1, 3):
        job = JOBS[num]
        files = list((sweep / job).glob("events.out.tfevents.*"))
        assert len(files) == 1 and not any(
            p.is_dir() for p in (sweep / job).iterdir() if p.name != ".hydra"
        )
        plugins = EventAccumulator(str(sweep / job)).Reload().PluginTagToContent("hparams")
        start = HParamsPluginData.FromString(plugins["_hparams_/session_start_info"])
        hparams = start.session_start_info.hparams
        assert hparams["optim.lr"].number_value == float(LRS[num])
        assert hparams["status"].string_value == EXPECTED[LRS[num]]


def test_summary_marks_crashed_and_missing_jobs(sweep, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(sweep, partial)
    (partial / JOBS[0] / "metrics.json").unlink()  # killed mid-run
    shutil.rmtree(partial / JOBS[2])  # never started
    rows, text = summarize(partial, plot=False)
    status = {r["run"]: r["status"] for r in rows}
    assert status == dict(zip(JOBS, ["crashed", "converged", "missing", "failed"], strict=True))
    assert "crashed 1" in text and "missing 1" in text


def test_summarize_command_line(sweep, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(sweep, folder)
    (folder / "summary.csv").unlink()
    summarize_main([str(folder), "--metric", "norm/fro", "--by", "optim.lr", "--abs"])
    assert "4 runs: converged 1, diverged 1, failed 1, max_steps 1" in capsys.readouterr().out
    assert (folder / "summary.csv").exists()
    assert (folder / "summary_norm_fro_vs_optim.lr.png").exists()


def test_single_run_still_fails_loudly(tmp_path, train_cli):
    done = train_cli("optim.lr=-1", f"hydra.run.dir={tmp_path}", quiet=False)
    assert done.returncode != 0
    assert "invalid config: optim.lr=-1" in done.stderr
    assert not (tmp_path / "metrics.json").exists()
