"""The progress bar counts decades of loss toward train.loss_tol for a run stopped by its loss,
steps otherwise, and shows a batch's counts."""

import pytest

from implicit_reg.record.progress import Progress

SCALARS = {"loss/train": 1.0, "entries/1_1": 0.5, "rank/effective": 1.5}


def test_a_run_stopped_by_its_loss_counts_decades_toward_the_tolerance():
    bar = Progress(10**6, 1e-3, True, single=True)
    bar.update(0, SCALARS)  # loss 1: three decades to go
    assert bar.bar.total == pytest.approx(3.0)
    bar.update(500, {**SCALARS, "loss/train": 1e-2})
    assert bar.bar.n == pytest.approx(2.0)  # not 500 of 10⁶ steps
    bar.update(900, {**SCALARS, "loss/train": 1e-4})
    assert bar.bar.n == pytest.approx(3.0)  # capped at the tolerance
    bar.close()


def test_without_a_tolerance_or_for_a_batch_it_counts_steps():
    run = Progress(1000, 0.0, True, single=True)
    run.update(250, SCALARS)
    assert (run.bar.n, run.bar.total) == (250, 1000)
    run.close()
    batch = Progress(1000, 1e-3, True, single=False)
    batch.update(300, SCALARS, {"going": 5, "converged": 3, "diverged": 1})
    assert (batch.bar.n, batch.bar.total) == (300, 1000)
    assert batch.bar.postfix == "going=5, converged=3, diverged=1"
    batch.close()
