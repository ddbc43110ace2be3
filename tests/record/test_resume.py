"""Interruption and resume: SIGTERM/SIGINT write a checkpoint and metrics.json (`interrupted`);
SIGKILL loses only what came after the last periodic checkpoint; a rerun in the same folder
continues the same curves and ends with the factors of an uninterrupted run, bit for bit (CPU)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from implicit_reg import run
from implicit_reg.interrupt import StopRequest
from implicit_reg.record import checkpoint
from implicit_reg.record.run_folder import FolderRefused

STEPS = 4000
BASE = (
    f"train.max_steps={STEPS}", "train.loss_tol=0", "train.log_every=250",
    "train.log_per_decade=10", "train.checkpoint_every=500",
)  # fmt: skip
SIZES = {  # a single run is a batch of one; the update rules' state is checkpointed too
    "single": (),
    "batch": ("batch.seeds=10000",),
    "single-adam": ("optim=adam",),
    "batch-momentum": ("batch.seeds=10000", "optim=momentum"),
}


@pytest.fixture(scope="module", params=list(SIZES))
def size(request) -> tuple[str, ...]:
    return SIZES[request.param]


def curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag as (step, value) pairs, as TensorBoard shows them (purged steps gone)."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory, size, compose_bare) -> Path:
    """The same run, never interrupted (in this process: the numbers do not depend on it)."""
    out = tmp_path_factory.mktemp("reference")
    run(compose_bare(*BASE, *size, "device=cpu", "train.progress=false"), out)
    return out


@pytest.fixture
def start_and_stop(train_cli) -> Callable[..., tuple[int, int]]:
    """``start_and_stop(out, signum, size)``: a run in a subprocess, stopped by a signal."""

    def start_and_stop(out: Path, signum: int, size: tuple[str, ...]) -> tuple[int, int]:
        """Start the run, send ``signum`` once its first periodic checkpoint is on disk and a
        little later; return the exit code and the checkpoint's step."""
        process = train_cli(*BASE, *size, f"hydra.run.dir={out}", wait=False)
        deadline = time.monotonic() + 60
        while not (out / checkpoint.FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert process.poll() is None, "the run ended before it could be stopped"
        process.send_signal(signum)
        code = process.wait(timeout=60)
        step = checkpoint.read(out).step
        assert 0 < step < STEPS
        return code, step

    return start_and_stop


@pytest.fixture
def assert_resumed_like(
    train_cli, bitwise_equal, read_factors, read_metrics
) -> Callable[..., None]:
    """``assert_resumed_like(out, reference, size)``: the same command resumes ``out`` and ends
    as the reference run, bit for bit."""

    def assert_resumed_like(out: Path, reference: Path, size: tuple[str, ...]) -> None:
        resumed = train_cli(*BASE, *size, f"hydra.run.dir={out}")
        assert resumed.returncode == 0, resumed.stderr
        assert bitwise_equal(read_factors(out), read_factors(reference))
        assert read_metrics(out)["status"] == "max_steps" and read_metrics(out)["steps"] == STEPS
        got, want = curves(out), curves(reference)
        assert got.keys() == want.keys()
        for tag in want:  # same steps, once each, same values
            assert [s for s, _ in got[tag]] == [s for s, _ in want[tag]], tag
            values, expected = [v for _, v in got[tag]], [v for _, v in want[tag]]
            assert values == expected, tag  # the guard's directions are in the checkpoint too

    return assert_resumed_like


@pytest.mark.slow
def test_sigkill_then_resume_from_the_last_periodic_checkpoint(
    tmp_path, reference, size, assert_resumed_like, start_and_stop
):
    code, step = start_and_stop(tmp_path, signal.SIGKILL, size)
    assert code == -signal.SIGKILL
    assert step % 500 == 0
    assert not (tmp_path / "final.pt").exists()
    assert_resumed_like(tmp_path, reference, size)


@pytest.mark.slow
def test_sigterm_writes_checkpoint_and_metrics_then_resumes(
    tmp_path, reference, size, read_metrics, assert_resumed_like, start_and_stop
):
    code, step = start_and_stop(tmp_path, signal.SIGTERM, size)
    assert code == 128 + signal.SIGTERM
    saved = read_metrics(tmp_path)
    assert (saved["status"], saved["signal"], saved["steps"]) == ("interrupted", "SIGTERM", step)
    assert saved["flow_time"] == pytest.approx(0.01 * step)
    tag = "/median" if "batch.seeds=10000" in size else ""  # a batch logs its quantiles
    assert {f"loss/train{tag}", f"rank/effective{tag}", f"entries/1_1{tag}"} <= saved.keys()
    assert not (tmp_path / "final.pt").exists()
    logged = curves(tmp_path)[f"loss/train{tag}"]  # flushed before the process ended
    assert logged and logged[-1][0] <= step
    assert_resumed_like(tmp_path, reference, size)


def test_stop_request_turns_the_first_signal_into_a_flag_and_the_second_into_an_exit():
    before = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop() and stop.name == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize(
    ("batch", "optim"),
    [((), "gd"), (("batch.seeds=10000",), "gd")]
    + [(batch, rule) for rule in ("momentum", "adam", "group_rmsprop")
       for batch in ((), ("batch.seeds=500",))],
)  # fmt: skip
def test_resume_refuses_a_different_run_and_extends_a_finished_one(
    tmp_path, batch, optim, bitwise_equal, compose_bare, read_factors
):
    """Extending a finished run from its checkpoint ends as the straight run, bit for bit: the
    factors and, for the update rules, their state (without it, momentum buffers and moments
    would restart from zero at step 300)."""
    base = (
        *batch, "train.loss_tol=0", "train.progress=false", "device=cpu",
        "train.checkpoint_every=0", f"optim={optim}", "optim.lr=0.01",
    )  # fmt: skip
    run(compose_bare(*base, "train.max_steps=300"), tmp_path)
    with pytest.raises(
        FolderRefused, match=r"these keys differ: optim\.lr=0\.02 \(the run's: 0\.01\)"
    ):
        run(
            compose_bare(*base, "train.max_steps=600", "optim.lr=0.02", "train.extend=true"),
            tmp_path,
        )
    with pytest.raises(FolderRefused, match="holds a finished run"):  # extending is explicit
        run(compose_bare(*base, "train.max_steps=600"), tmp_path)
    extended = run(compose_bare(*base, "train.max_steps=600", "train.extend=true"), tmp_path)
    straight = run(compose_bare(*base, "train.max_steps=600"), tmp_path / "straight")
    assert extended["steps"] == 600
    assert bitwise_equal(read_factors(tmp_path), read_factors(tmp_path / "straight"))
    tag = "loss/train/median" if batch else "loss/train"
    assert extended[tag] == straight[tag]
    assert torch.load(tmp_path / checkpoint.FILE, weights_only=True)["step"] == 600
