"""Faults of the machine, each one line and a non-zero exit status with nothing half-written:
a full disk at the start or mid-run (a write hook raising ENOSPC: no tmpfs here), a folder that
cannot be written (the hook raising EROFS: tests may run as root, which ignores modes), a parent
path that is a file, a name too long, any error in a Hydra callback (Hydra would write
``.hydra/`` anyway), a second signal, stale temporary files, and a console that is not UTF-8."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from implicit_reg.interrupt import StopNow
from implicit_reg.record import artifacts, run_folder

QUIET = ("train.progress=false", "device=cpu")
SHORT = (*QUIET, "train.max_steps=600", "train.loss_tol=0", "train.checkpoint_every=200")


@pytest.fixture
def refused(capsys, train_here) -> Callable[..., str]:
    """``refused(*args)``: the one line ``train.py args…`` exits with (status non-zero)."""

    def go(*args: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            train_here(*args)
        code = exit_.value.code
        message = code if isinstance(code, str) else capsys.readouterr().err.strip()
        assert code not in (0, None) and message and "\n" not in message.strip()
        assert "Traceback" not in message
        return message

    return go


def failing(number: int):
    def fail(*args, **kwargs) -> None:
        raise OSError(number, os.strerror(number), "<the folder>")

    return fail


def test_any_error_in_the_folder_callback_is_one_line_and_hydra_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, refused
) -> None:
    """Catches: the callbacks catching only ``ConfigError`` (Hydra turned the rest into a
    warning, rewrote ``.hydra/`` and died with a traceback)."""

    def broken(path: Path, cfg) -> None:
        raise RuntimeError("an unforeseen fault")

    monkeypatch.setattr(run_folder, "check", broken)
    line = refused(*SHORT, f"hydra.run.dir={tmp_path / 'run'}")
    assert line == "RuntimeError: an unforeseen fault"
    assert not (tmp_path / "run" / ".hydra").exists()


def test_a_hand_edited_segments_list_is_refused_and_the_record_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, train_here, refused
) -> None:
    train_here(*SHORT, f"hydra.run.dir={tmp_path}")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"segments": [', '"segments": 5, "x": ['))
    before = (tmp_path / ".hydra" / "config.yaml").read_bytes()
    line = refused(
        *SHORT, "train.max_steps=900", "train.extend=true",
        f"hydra.run.dir={tmp_path}",
    )  # fmt: skip
    assert line.startswith("FolderRefused:") and "metrics.json is corrupt" in line
    assert (tmp_path / ".hydra" / "config.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("number", "words"),
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")],
)
def test_a_folder_that_cannot_be_written_is_refused_before_hydra_writes(
    number: int, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, refused
) -> None:
    """Catches: a zero-byte ``.hydra/config.yaml`` and a traceback when the disk is full at
    the start (Hydra's own writes are not atomic: the check must come first)."""
    monkeypatch.setattr(artifacts, "check_writable", failing(number))
    line = refused(*SHORT, f"hydra.run.dir={tmp_path / 'run'}")
    assert line.startswith(f"OSError: {words}: <the folder>; ")
    assert not (tmp_path / "run" / ".hydra").exists()


def test_a_disk_full_mid_run_is_one_line_and_the_resume_is_bit_equal(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    bitwise_equal,
    read_factors,
    train_here,
    hook_writes,
    refused,
) -> None:
    """The disk fills at the second checkpoint (step 400): one line, exit status 1, the
    checkpoint of step 200 whole, no temporary file left; the same command then ends with the
    factors of a run never stopped."""
    train_here(*SHORT, f"hydra.run.dir={tmp_path / 'unbroken'}")
    hook_writes("checkpoint.pt", failing(errno.ENOSPC), at=2)
    line = refused(*SHORT, f"hydra.run.dir={tmp_path / 'run'}")
    assert line.startswith("OSError: No space left on device") and "run the same command" in line
    assert not list((tmp_path / "run").glob(".*.tmp"))
    assert not (tmp_path / "run" / "metrics.json").exists()
    monkeypatch.undo()
    train_here(*SHORT, f"hydra.run.dir={tmp_path / 'run'}")
    assert bitwise_equal(read_factors(tmp_path / "run"), read_factors(tmp_path / "unbroken"))


@pytest.mark.parametrize("where", ["parent_is_a_file", "name_too_long"])
def test_a_bad_path_is_one_line(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, refused
) -> None:
    """Catches: a traceback from ``mkdir``, or a long name reported as a corrupt checkpoint."""
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "run" if where == "parent_is_a_file" else tmp_path / ("x" * 300)
    line = refused(*SHORT, f"hydra.run.dir={path}")
    assert line.startswith(("FileExistsError", "NotADirectoryError", "OSError"))
    assert (
        ("Not a directory" in line or "File exists" in line)
        if where[0] == "p"
        else ("File name too long" in line and "corrupt" not in line)
    )


def test_a_second_signal_is_one_line_with_128_plus_its_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, train_app, train_here
) -> None:
    """Catches: the KeyboardInterrupt traceback of a second Ctrl-C."""

    def stop_now(*args, **kwargs):
        raise StopNow(signal.SIGTERM)

    monkeypatch.setattr(train_app, "run_job", stop_now)
    with pytest.raises(SystemExit) as exit_:
        train_here(*SHORT, f"hydra.run.dir={tmp_path}")
    assert exit_.value.code == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("SIGTERM: stopped at once;") and "Traceback" not in "".join(err)


def test_stale_temporary_files_are_removed_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_here
) -> None:
    """Catches: a ``.checkpoint.pt.*.tmp`` left by a killed write staying for ever."""
    stale = tmp_path / ".checkpoint.pt.k2j3h4.tmp"
    stale.write_bytes(b"\0" * 1000)
    kept = tmp_path / "notes.tmp"  # not a temporary file of ours
    kept.write_text("mine")
    train_here(*SHORT, f"hydra.run.dir={tmp_path}")
    assert not stale.exists() and kept.exists()


@pytest.mark.slow
def test_a_console_that_is_not_utf8_gets_escapes_not_tracebacks(tmp_path: Path, train_cli) -> None:
    """Catches: a logging traceback for "×" under ``PYTHONIOENCODING=ascii``."""
    done = train_cli(
        *SHORT, "train.max_steps=20", f"hydra.run.dir={tmp_path}", quiet=False,
        env={"PYTHONIOENCODING": "ascii"}, encoding="ascii", errors="replace",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Logging error" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # a second process holds the lock
def test_a_job_whose_folder_another_process_runs_in_gets_no_hydra_record(
    tmp_path: Path, python_cli
) -> None:
    """Catches: a second sweep into the same folder rewriting the running job's ``.hydra/``
    (its summary then showed the other sweep's overrides beside the first one's result)."""
    from implicit_reg.sweep_job import record_subdir

    tmp_path.joinpath(run_folder.LOCK).touch()
    holder = python_cli(
        "-c", "import fcntl, os, sys, time; "
        f"fd = os.open({str(tmp_path / run_folder.LOCK)!r}, os.O_RDWR); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
        wait=False, stdout=subprocess.PIPE, stderr=None,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert record_subdir(str(tmp_path), "RunMode.MULTIRUN") is None
        assert run_folder.in_use(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert record_subdir(str(tmp_path), "RunMode.MULTIRUN") == ".hydra"
    assert not run_folder.in_use(tmp_path)


def test_a_sweep_folder_in_use_is_refused_before_multirun_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, refused
) -> None:
    """Catches: a second sweep into a running sweep's folder rewriting its ``multirun.yaml``."""

    def held(path: Path) -> bool:
        raise run_folder.FolderRefused(f"{path} is in use by another running process")

    monkeypatch.setattr(run_folder, "lock", held)
    sweep = tmp_path / "s"
    overrides = (*SHORT, "optim.lr=0.01,0.02", f"hydra.sweep.dir={sweep}")
    line = refused("-m", *overrides)
    assert line.startswith(f"sweep {sweep}: FolderRefused: ") and "in use" in line
    assert not (sweep / "multirun.yaml").exists()


def test_summarize_in_a_folder_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_here
) -> None:
    """Catches: a traceback from writing ``summary.csv`` into a read-only sweep folder."""
    from implicit_reg import summarize

    train_here(*SHORT, "train.max_steps=20", f"hydra.run.dir={tmp_path / '0'}")
    monkeypatch.setattr(artifacts, "atomic_write", failing(errno.EROFS))
    with pytest.raises(SystemExit) as exit_:
        summarize.main([str(tmp_path), "--no-plot"])
    assert str(exit_.value.code).startswith("summarize: OSError: Read-only file system")
    assert not (tmp_path / "summary.csv").exists()
