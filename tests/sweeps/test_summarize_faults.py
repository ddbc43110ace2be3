"""Faults met by ``summarize``, ``figures`` and the files they read and write: every refusal is
one line with a non-zero exit and no file written, a bad ``metrics.json`` costs only its own row,
written files follow the umask, and TensorBoard's reader keeps quiet. Folders are compared byte
for byte before and after."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from implicit_reg.figures.__main__ import main as figures_main
from implicit_reg.record import artifacts
from implicit_reg.record.events import read_scalars
from implicit_reg.summarize import main as summarize_main
from implicit_reg.summarize import summarize


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes (folders as None) under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def job(sweep: Path, name: str, lr: float, metrics: dict | bytes | None) -> Path:
    """A sweep job folder as Hydra and a run leave it: ``.hydra/overrides.yaml`` and, unless
    None, ``metrics.json`` (a dict as JSON, bytes as they are), after the ``final.pt`` it
    vouches for."""
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"optim.lr={lr}"]))
    if isinstance(metrics, dict):
        torch.save({"W": torch.zeros(2, 2)}, folder / "final.pt")
        (folder / "metrics.json").write_text(json.dumps(metrics))
    elif metrics is not None:
        (folder / "metrics.json").write_bytes(metrics)
    return folder


def finished(lr: float) -> dict:
    return {"status": "converged", "steps": 100, "loss/train": 1e-3, "entries/1_1": 10 * lr}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    folder = tmp_path / "sweep"
    for k, lr in enumerate((0.01, 0.02, 0.03)):
        job(folder, str(k), lr, finished(lr))
    return folder


def refusal(main, argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """The one line ``main(argv)`` refuses with (exit status non-zero, nothing on stdout)."""
    with pytest.raises(SystemExit) as exit_:
        code = main(argv)
        raise SystemExit(code)  # figures' main returns its status
    captured = capsys.readouterr()
    message = exit_.value.code if isinstance(exit_.value.code, str) else captured.err.strip()
    assert exit_.value.code not in (0, None) and captured.out == ""
    assert message and "\n" not in message.strip() and "Traceback" not in message
    return message


@pytest.mark.parametrize("main", [summarize_main, figures_main], ids=["summarize", "figures"])
def test_missing_file_empty_and_non_sweep_folders_are_refused_in_one_line(
    main, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "notes" / "stray").mkdir(parents=True)  # a metrics.json with no run around it
    (tmp_path / "notes" / "stray" / "metrics.json").write_text('{"accuracy": 1}')
    before = snapshot(tmp_path)
    assert "does not exist" in refusal(main, [str(tmp_path / "nope")], capsys)
    message = refusal(main, [str(tmp_path / "a_file")], capsys)
    assert "is a file, not a folder" in message and "does not exist" not in message
    for name in ("empty", "notes"):
        assert "holds no" in refusal(main, [str(tmp_path / name)], capsys)
    assert snapshot(tmp_path) == before  # no summary.csv, no figures/ folder


def test_unknown_metric_or_key_is_refused_naming_what_exists(
    sweep: Path, capsys: pytest.CaptureFixture
) -> None:
    before = snapshot(sweep)
    message = refusal(summarize_main, [str(sweep), "--metric", "entries/9_9"], capsys)
    assert "entries/9_9" in message and "entries/1_1, loss/train" in message
    message = refusal(summarize_main, [str(sweep), "--by", "model.depth"], capsys)
    assert "model.depth" in message and "keys: optim.lr" in message
    assert snapshot(sweep) == before


def test_figures_refuse_runs_that_no_figure_uses(tmp_path: Path, capsys, compose_cfg) -> None:
    run = tmp_path / "0"
    (run / ".hydra").mkdir(parents=True)
    cfg = compose_cfg("problem=matrix_completion")
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml", resolve=True)
    torch.save({"W": torch.zeros(2, 2)}, run / "final.pt")  # whole, never loaded
    before = snapshot(tmp_path)
    assert "no figure" in refusal(figures_main, [str(tmp_path)], capsys)
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_refusal_from_the_command_line_has_no_traceback(tmp_path: Path, python_cli) -> None:
    for module in ("implicit_reg.summarize", "implicit_reg.figures"):
        done = python_cli("-m", module, str(tmp_path), timeout=120)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and str(tmp_path) in done.stderr
    assert not any(tmp_path.iterdir())


def test_corrupt_metrics_json_marks_its_job_and_the_summary_goes_on(sweep: Path) -> None:
    job(sweep, "3", 0.04, b'{"status": "conver')  # truncated mid-write
    job(sweep, "4", 0.05, b"\xff\x00garbage")
    job(sweep, "5", 0.06, b"[1, 2]")
    job(sweep, "6", 0.07, None)  # still running, or killed
    (sweep / "notes").mkdir()
    (sweep / "notes" / "metrics.json").write_text('{"accuracy": 1}')  # stray: not a run
    before = snapshot(sweep)
    rows, text = summarize(sweep)
    assert {r["run"]: r["status"] for r in rows} == {
        "0": "converged",
        "1": "converged",
        "2": "converged",
        "3": "corrupt",
        "4": "corrupt",
        "5": "corrupt",
        "6": "crashed",
    }
    assert all("metrics.json" in r["error"] for r in rows if r["status"] == "corrupt")
    assert [r["entries/1_1"] for r in rows[:3]] == pytest.approx([0.1, 0.2, 0.3])
    assert "corrupt 3" in text and "unknown" not in text
    after = snapshot(sweep)
    written = {"summary.csv", "summary_entries_1_1_vs_optim.lr.png"}
    assert set(after) - set(before) == written
    assert {k: v for k, v in after.items() if k not in written} == before


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        artifacts.write_json(tmp_path / "metrics.json", {"status": "converged"})
        artifacts.save_torch(tmp_path / "final.pt", {"W": 1})
        job(tmp_path, "sweep/0", 0.01, finished(0.01))
        summarize(tmp_path / "sweep", plot=False)
    finally:
        os.umask(old)
    for path in (tmp_path / "metrics.json", tmp_path / "final.pt", tmp_path / "sweep/summary.csv"):
        assert path.stat().st_mode & 0o777 == mode, path


def test_reading_event_files_keeps_tensorboard_internals_off_the_console(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with SummaryWriter(log_dir=str(tmp_path)) as writer:  # a run …
        for step in range(10):
            writer.add_scalar("loss/train", 1.0 / (step + 1), step)
    with SummaryWriter(log_dir=str(tmp_path), purge_step=5) as writer:  # … resumed at step 5
        for step in range(5, 8):
            writer.add_scalar("loss/train", 1.0 / (step + 1), step)
    caplog.set_level(logging.DEBUG)
    steps, _ = read_scalars(tmp_path)["loss/train"]
    assert steps.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("tensorboard")] == []
    assert logging.getLogger("tensorboard").level == logging.NOTSET  # put back as it was
