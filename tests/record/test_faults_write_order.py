"""One write order for every kind of run (gradient descent, a batch, the flow, the nuclear-norm
baseline): the results first, then ``metrics.json``, the record that they are complete, with the
stop handler on throughout. A fault at any write (a full disk, simulated by a write hook that
raises ENOSPC; a kill, simulated by an exception that nothing catches) leaves a folder that
reads as unfinished and is run again; ``singular_values.npz`` and ``checkpoint.pt`` are
committed together, or a resume refuses in one line."""

from __future__ import annotations

import errno
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from implicit_reg.record import history
from implicit_reg.record.run_folder import FolderRefused
from implicit_reg.run import run

SHORT = ("train.max_steps=200", "train.loss_tol=0", "train.checkpoint_every=0")
KINDS = {
    "gd": SHORT,
    "batch": (*SHORT, "batch.seeds=3"),
    "flow": ("optim=flow", "train.max_steps=200"),
    "nuclear_norm": ("method=nuclear_norm",),
}


class Killed(BaseException):
    """A simulated SIGKILL: nothing in the program catches it."""


def disk_full() -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def kill() -> None:
    raise Killed


def no_temporaries(folder: Path) -> bool:
    return not list(folder.glob(".*.tmp"))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_full_disk_at_final_pt_leaves_no_record_of_completion_and_a_rerun_finishes(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compose_cfg,
    read_metrics,
    hook_writes,
) -> None:
    """Catches: ``metrics.json`` written before ``final.pt`` (the flow and the nuclear-norm
    baseline did so): it said the run had ended, and the folder refused every rerun."""
    cfg = compose_cfg(*KINDS[kind])
    hook_writes("final.pt", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run(cfg, tmp_path)
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "final.pt").exists()
    assert no_temporaries(tmp_path)
    monkeypatch.undo()
    result = run(cfg, tmp_path)  # the same command again: not refused, it finishes
    assert result["status"] != "interrupted" and (tmp_path / "final.pt").exists()
    assert read_metrics(tmp_path)["results"][-1:] == ["final.pt"] or "final.pt" in result["results"]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("damage", [b"", b"garbage", None])  # None: deleted
def test_a_record_whose_final_pt_is_lost_reads_as_unfinished(
    kind: str, damage: bytes | None, tmp_path: Path, compose_cfg, read_metrics
) -> None:
    """Catches: a ``metrics.json`` saying ``converged`` over a missing or corrupt ``final.pt``
    locking the folder for good ("holds a finished run")."""
    cfg = compose_cfg(*KINDS[kind])
    first = run(cfg, tmp_path)
    final = tmp_path / "final.pt"
    reference = torch.load(final, weights_only=True)
    if damage is None:
        final.unlink()
    else:
        final.write_bytes(damage)
    again = run(cfg, tmp_path)
    assert again["status"] == first["status"]
    assert [s["status"] for s in read_metrics(tmp_path)["segments"]] == [
        "incomplete",
        first["status"],
    ]
    redone = torch.load(final, weights_only=True)
    for key in ("factors", "W"):
        if key in reference:
            for a, b in zip(
                reference[key] if key == "factors" else [reference[key]],
                redone[key] if key == "factors" else [redone[key]],
                strict=True,
            ):
                torch.testing.assert_close(a, b, rtol=1e-9, atol=0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_signal_while_the_results_are_written_is_honoured_after_them(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compose_cfg,
    read_metrics,
    hook_writes,
) -> None:
    """A first SIGINT while ``final.pt`` is being written only asks to stop: the run, already
    done, writes its results and then its record, which names the signal.
    Catches: no stop handler while writing (the flow and the baseline): the KeyboardInterrupt
    left the results half-written."""
    cfg = compose_cfg(*KINDS[kind])
    hook_writes("final.pt", lambda: os.kill(os.getpid(), signal.SIGINT))
    result = run(cfg, tmp_path)
    assert result["signal"] == "SIGINT" and read_metrics(tmp_path)["signal"] == "SIGINT"
    assert "final.pt" in read_metrics(tmp_path)["results"]
    torch.load(tmp_path / "final.pt", weights_only=True)  # whole


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_second_signal_stops_before_the_record_and_the_folder_runs_again(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compose_cfg, hook_writes
) -> None:
    """Catches: a record written though the run was stopped at once, or a stop that left the
    folder refusing its rerun."""
    cfg = compose_cfg(*KINDS[kind])

    def twice() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    hook_writes("metrics.json", twice)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path)
    assert not (tmp_path / "metrics.json").exists() and no_temporaries(tmp_path)
    monkeypatch.undo()
    assert run(cfg, tmp_path)["status"] != "interrupted"


HISTORY = (
    "problem=matrix_completion", "problem.rows=6", "problem.cols=5", "problem.rank=2",
    "problem.observed=18", "init.det=any", "train.max_steps=600", "train.loss_tol=0",
    "train.log_every=50", "train.log_per_decade=0", "train.checkpoint_every=200",
    "train.singular_value_history=2",
)  # fmt: skip


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory: pytest.TempPathFactory, compose_cfg) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("unbroken")
    run(compose_cfg(*HISTORY), out)
    return history.read(out)


@pytest.mark.parametrize("file", [history.FILE, "checkpoint.pt"])
def test_a_kill_at_either_write_of_a_checkpoint_resumes_to_the_same_history(
    file: str,
    unbroken: dict[str, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compose_cfg,
    hook_writes,
) -> None:
    """Killed while writing the checkpoint at step 400 (its history, or the checkpoint itself),
    then resumed: the history is that of a run never stopped, record for record.
    Catches: the checkpoint written before its history (a kill between the two lost the records
    from the previous checkpoint on, silently)."""
    cfg = compose_cfg(*HISTORY)
    hook_writes(file, kill, at=2)  # the second periodic checkpoint: step 400
    with pytest.raises(Killed):
        run(cfg, tmp_path)
    monkeypatch.undo()
    run(cfg, tmp_path)
    resumed = history.read(tmp_path)
    np.testing.assert_array_equal(resumed["step"], unbroken["step"])
    np.testing.assert_array_equal(resumed["values"], unbroken["values"])


def test_a_history_older_than_its_checkpoint_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compose_cfg, hook_writes
) -> None:
    """Catches: a resume that carries on from a history missing the records between an older
    write and the checkpoint (a file copied back, or written by the old order)."""
    cfg = compose_cfg(*HISTORY)
    older = tmp_path / "older.npz"
    real = history.SingularValueHistory.write

    def keep_first(self, out_dir: Path) -> None:
        real(self, out_dir)
        if not older.exists():
            shutil.copy(out_dir / history.FILE, older)

    monkeypatch.setattr(history.SingularValueHistory, "write", keep_first)
    hook_writes("checkpoint.pt", kill, at=3)
    with pytest.raises(Killed):
        run(cfg, tmp_path / "run")
    monkeypatch.undo()
    shutil.copy(older, tmp_path / "run" / history.FILE)  # the records up to step 200 only
    with pytest.raises(FolderRefused, match="were not written together") as refused:
        run(cfg, tmp_path / "run")
    assert "\n" not in str(refused.value)
    (tmp_path / "run" / history.FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(FolderRefused, match=r"singular_values.npz is corrupt \(BadZipFile\)"):
        run(cfg, tmp_path / "run")
