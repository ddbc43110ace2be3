"""A run folder holds one run: a finished or foreign run is never overwritten, a corrupt
checkpoint is refused, every refusal comes before any file changes (compared byte for byte), a
second process on the folder is refused while a killed one's lock does not block a resume, and
extending a finished run is explicit and recorded segment by segment."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from implicit_reg import run
from implicit_reg.record import checkpoint
from implicit_reg.record.run_folder import FolderRefused
from implicit_reg.sweep_job import run_job

QUIET = ("train.progress=false", "device=cpu")
SHORT = (*QUIET, "train.max_steps=200", "train.loss_tol=0", "train.checkpoint_every=0")
SIZES = {"single": (), "batch": ("batch.seeds=8",)}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(params=list(SIZES))
def size(request) -> tuple[str, ...]:
    return SIZES[request.param]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ((), "holds a finished run (max_steps, 200 steps), which is never overwritten"),
        (("optim.lr=0.02",), "holds another run; these keys differ: optim.lr=0.02"),
        (("train.extend=true",), "train.extend=true needs train.max_steps > 200"),
        (("seed=1", "train.extend=true"), "these keys differ: seed=1"),
    ],
)
def test_train_py_refuses_a_finished_or_other_run_before_any_file_changes(
    tmp_path, monkeypatch, size, change, words, train_here
):
    train_here(*SHORT, *size, f"hydra.run.dir={tmp_path}")
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as refused:
        train_here(*SHORT, *size, *change, f"hydra.run.dir={tmp_path}")
    message = str(refused.value.code)
    assert message.startswith(f"FolderRefused: {tmp_path} ") and words in message
    assert "\n" not in message
    assert snapshot(tmp_path) == before


def test_a_finished_flow_run_is_not_overwritten_by_gradient_descent(
    tmp_path, monkeypatch, train_here
):
    flow = ("optim=flow", "train.max_steps=50", "model.depth=2", *QUIET)
    train_here(*flow, f"hydra.run.dir={tmp_path}")
    before = snapshot(tmp_path)
    reruns = {
        ("train.max_steps=50", "model.depth=2"): "optim.name='gd' (the run's: 'flow')",
        ("optim=flow", "train.max_steps=50"): "model.depth=3 (the run's: 2)",
    }
    for rerun, words in reruns.items():
        with pytest.raises(SystemExit) as refused:
            train_here(*QUIET, *rerun, f"hydra.run.dir={tmp_path}")
        message = str(refused.value.code)
        assert (
            message.startswith(f"FolderRefused: {tmp_path} holds another run") and words in message
        )
    with pytest.raises(SystemExit) as refused:  # flow writes no checkpoint: nothing to extend
        train_here(*flow, "train.extend=true", f"hydra.run.dir={tmp_path}")
    assert "without checkpoint.pt: it cannot be extended" in str(refused.value.code)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "damage", [b"", b"garbage, not a torch file", "truncated"], ids=["empty", "garbage", "cut"]
)
def test_a_corrupt_checkpoint_is_refused_naming_the_file(
    tmp_path, monkeypatch, damage, compose_bare, train_here
):
    train_here(*SHORT, f"hydra.run.dir={tmp_path}")
    ckpt = tmp_path / checkpoint.FILE
    whole = ckpt.read_bytes()
    ckpt.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else damage)
    (tmp_path / "metrics.json").unlink()  # as if killed: a resume would read the checkpoint
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as refused:
        train_here(*SHORT, f"hydra.run.dir={tmp_path}")
    assert str(refused.value.code).startswith(f"FolderRefused: {ckpt} is corrupt (")
    assert snapshot(tmp_path) == before
    with pytest.raises(FolderRefused, match="is corrupt"):  # the compose API too
        run(compose_bare(*SHORT), tmp_path)
    assert snapshot(tmp_path) == before


def test_an_unfinished_run_resumes_only_with_its_own_config(
    tmp_path, monkeypatch, size, train_here
):
    train_here(*SHORT, *size, f"hydra.run.dir={tmp_path}")
    (tmp_path / "metrics.json").unlink()  # as if killed after its last checkpoint
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as refused:
        train_here(*SHORT, *size, "init.scale=0.1", f"hydra.run.dir={tmp_path}")
    assert "these keys differ: init.scale=0.1 (the run's: 0.01)" in str(refused.value.code)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("damage", [b"", b'{"status": "conv', b"[1, 2]"])
def test_a_corrupt_metrics_json_is_refused_naming_the_file(
    tmp_path, monkeypatch, damage, train_here
):
    train_here(*SHORT, f"hydra.run.dir={tmp_path}")
    (tmp_path / "metrics.json").write_bytes(damage)
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as refused:
        train_here(*SHORT, "train.extend=true", f"hydra.run.dir={tmp_path}")
    assert str(refused.value.code).startswith(
        f"FolderRefused: {tmp_path / 'metrics.json'} is corrupt"
    )
    assert snapshot(tmp_path) == before


def test_run_refuses_a_finished_run_in_its_folder(tmp_path, size, compose_bare):
    """What a sweep job's run path sees: ``run`` itself refuses, with no file changed."""
    run(compose_bare(*SHORT, *size), tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(FolderRefused, match="holds a finished run"):
        run(compose_bare(*SHORT, *size), tmp_path)
    assert snapshot(tmp_path) == before


def test_extend_records_each_segment(tmp_path, size, compose_bare, read_metrics):
    run(compose_bare(*SHORT, *size), tmp_path)
    extended = run(
        compose_bare(*SHORT, *size, "train.max_steps=400", "train.extend=true"), tmp_path
    )
    assert extended["steps"] == 400
    assert [(s["start_step"], s["steps"], s["max_steps"]) for s in extended["segments"]] == [
        (0, 200, 200),
        (200, 400, 400),
    ]
    assert read_metrics(tmp_path)["segments"] == extended["segments"]


def test_a_tolerance_met_before_the_extension_is_said_so(tmp_path, caplog, compose_bare):
    """The issue's case: a finished loss_tol=0 run rerun with a looser tolerance. Without more
    steps that is refused (nothing to extend); with more, the record says that the tolerance was
    met where the extension started (a fresh run converges much earlier)."""
    base = (*QUIET, "init.scale=0.5", "optim.lr=0.05", "train.max_steps=3000")
    run(compose_bare(*base, "train.loss_tol=0"), tmp_path / "long")
    fresh = run(compose_bare(*base, "train.loss_tol=0.01"), tmp_path / "fresh")
    assert fresh["status"] == "converged" and fresh["steps"] < 3000
    looser = ("train.loss_tol=0.01", "train.extend=true")
    with pytest.raises(FolderRefused, match=r"extend=true needs train\.max_steps > 3000"):
        run(compose_bare(*base, *looser), tmp_path / "long")
    extended = run(compose_bare(*base, *looser, "train.max_steps=4000"), tmp_path / "long")
    last = extended["segments"][-1]
    assert (extended["status"], extended["steps"]) == ("converged", 3000)
    assert last == {
        "start_step": 3000, "steps": 3000, "status": "converged", "max_steps": 4000,
        "loss_tol": 0.01, "tolerance_met_at_start": True,
    }  # fmt: skip
    assert "already met at step 3,000" in caplog.text


def test_resume_says_from_which_step(tmp_path, caplog, compose_bare):
    run(compose_bare(*SHORT, "train.max_steps=100"), tmp_path)
    (tmp_path / "metrics.json").unlink()  # killed after its last checkpoint
    run(compose_bare(*SHORT, "train.max_steps=100"), tmp_path)
    assert f"resuming {tmp_path} from step 100" in caplog.text


def test_an_unreachable_tolerance_is_warned_about(tmp_path, caplog, compose_bare):
    """The loss ½Σr² of unit-size data rounds at ½·eps²: float32 cannot reach 1e-15."""
    run(
        compose_bare(*QUIET, "dtype=float32", "train.loss_tol=1e-15", "train.max_steps=5"), tmp_path
    )
    assert "train.loss_tol=1e-15 is below float32's resolution" in caplog.text
    assert "use dtype=float64" in caplog.text


def test_a_reachable_float64_tolerance_is_not_warned_about(tmp_path, caplog, compose_bare):
    """Least squares in float64 reaches 1e-24 (below eps = 2.2e-16, above ½·eps²): no warning.
    Catches: the check against eps instead of the loss's resolution."""
    folder = tmp_path / "ls"
    result = run(compose_bare(*QUIET, "problem=least_squares", "train.loss_tol=1e-24"), folder)
    assert result["status"] == "converged" and result["loss/train"] < 1e-24
    assert "resolution" not in caplog.text


@pytest.mark.slow
def test_a_second_process_is_refused_and_a_killed_ones_lock_does_not_block(
    tmp_path, train_cli, read_metrics
):
    long = (*QUIET, "train.max_steps=3000000", "train.loss_tol=0", f"hydra.run.dir={tmp_path}")
    first = train_cli(*long, "train.checkpoint_every=1000", wait=False)
    deadline = time.monotonic() + 60
    while not (tmp_path / checkpoint.FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the first run ended before the second could start"
    second = train_cli(*long, "train.checkpoint_every=1000", "seed=0")
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"FolderRefused: {tmp_path} is in use by another running process (it holds "
        f"{tmp_path / '.lock'}); wait for it to end or use a new hydra.run.dir"
    ]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    step = checkpoint.read(tmp_path).step
    resumed = train_cli(*SHORT, f"train.max_steps={step + 100}", f"hydra.run.dir={tmp_path}")
    assert resumed.returncode == 0, resumed.stderr
    assert read_metrics(tmp_path)["steps"] == step + 100
    assert f"resuming {tmp_path} from step {step:,}" in resumed.stderr + resumed.stdout


@pytest.mark.slow
def test_a_refusal_is_one_line_and_exit_status_1_in_a_real_process(
    tmp_path, monkeypatch, train_cli, train_here
):
    train_here(*SHORT, f"hydra.run.dir={tmp_path}")
    before = snapshot(tmp_path)
    for rerun in [("optim.lr=0.02",), ("model.depth=10000",)]:
        refused = train_cli(*SHORT, *rerun, f"hydra.run.dir={tmp_path}")
        assert refused.returncode == 1
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].split(":")[0] in ("FolderRefused", "ConfigError")
        assert snapshot(tmp_path) == before


def test_a_refused_sweep_job_writes_nothing_into_the_folder(
    tmp_path, monkeypatch, compose_bare, train_here
):
    """A sweep job whose folder holds an unfinished run of another config is refused and the
    sweep goes on, with every file of that folder as it was (``sweep_job.run_job``; its
    ``train.log`` may gain the line saying why).
    Catches: the job wrapper recording the refusal as ``status: failed`` over the run's files."""
    train_here(*SHORT, f"hydra.run.dir={tmp_path}")
    (tmp_path / "metrics.json").unlink()  # as if killed after its last checkpoint
    before = snapshot(tmp_path)
    result = run_job(compose_bare(*SHORT, "optim.lr=0.02"), tmp_path, multirun=True)
    assert result["status"] == "refused" and "optim.lr=0.02" in result["error"]
    after = snapshot(tmp_path)
    log_before, log_after = before.pop("train.log"), after.pop("train.log")
    assert after == before and log_after.startswith(log_before)  # the log only says why
