"""A run that cannot progress says so (issue 11, item 7): ``stalled`` when no factor entry moved
between two host checks at a loss above the tolerance."""

from __future__ import annotations

import csv

SADDLE = ("init.kind=gaussian", "init.det=any", "init.scale=1e-100", "train.max_steps=2000")


def test_a_run_at_a_saddle_stops_as_stalled(train_run, caplog):
    """Factors of 1e-100 at depth 3: W ≈ 1e-300, the gradient ≈ 1e-200, and η∇ℓ is far below the
    factors' rounding: the run stops at the first check after its start, with a warning.
    Catches: no stall check (the run would go on to ``max_steps`` at step 2000)."""
    metrics, _ = train_run(*SADDLE)
    # the first host check (batch.check_every): η∇ℓ ≈ 1e-202 against the factors' ulp ≈ 1e-116,
    # so no entry moves on any IEEE CPU, whatever its kernels round
    assert metrics["status"] == "stalled" and metrics["steps"] == 100
    assert any("stalled" in r.message and "init.scale" in r.message for r in caplog.records)


def test_only_the_stalled_runs_of_a_batch_stop(train_run):
    """Of seeds × scales [1e-100, 0.1], the 1e-100 runs stall and the 0.1 runs go on.
    Catches: a stall check that looks at the whole batch, or at the loss instead of the
    factors."""
    metrics, out = train_run(*SADDLE, "batch.seeds=2", "batch.init_scales=[1e-100,0.1]")
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    statuses = {(float(r["init_scale"]), r["status"]) for r in rows}
    assert statuses == {(1e-100, "stalled"), (0.1, "max_steps")}
    assert metrics["runs/stalled"] == 2


def test_a_slow_plateau_is_not_stalled(train_run):
    """float32 from init.scale 1e-3 at depth 3: W ≈ 1e-9, so the loss ½(1 + 1 + W₂₂²) ≈ 1 rounds
    to the same float32 for hundreds of steps, but the factors grow (relative steps ~1e-5).
    Catches: a stall check on an unchanged loss instead of unchanged factors."""
    metrics, _ = train_run(
        "dtype=float32", "init.scale=1e-3", "train.max_steps=300", "train.loss_tol=0"
    )
    assert metrics["status"] == "max_steps"
