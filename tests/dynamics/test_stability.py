"""The stability guard. Its sharpness is λ_max, the largest algebraic eigenvalue of the
(preconditioned) Hessian in the factors: at a saddle, where a negative curvature has the largest
magnitude, a plain power iteration would return that negative number instead. And no run that
crossed lr × sharpness > 2 goes unseen: runs.csv, metrics.json, the summary, the run's log and
the Arora et al. (2019) figures all show it, across a resume."""

from __future__ import annotations

import csv
import functools
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from implicit_reg.factorization import product
from implicit_reg.figures import arora_completion
from implicit_reg.problems import MatrixCompletion
from implicit_reg.record import outputs
from implicit_reg.record.logger import QUANTILES
from implicit_reg.record.runs import find_runs
from implicit_reg.run import run
from implicit_reg.stability import sharpness
from implicit_reg.summarize import summarize

DEPTH = 3
TAGS = ("error/reconstruction", "norm/nuclear", "rank/effective")
PROBLEM = MatrixCompletion(
    torch.tensor([[1.0, 2.0], [2.0, 0.5]], dtype=torch.float64),
    torch.tensor([[True, True], [True, False]]),
    infimal_rank=1,
)


@functools.cache
def saddle_factors(runs: int) -> list[torch.Tensor]:
    """Depth-3 factors near the saddle W = 0 where a negative curvature dominates,
    |λ_min| > 1.2 λ_max > 0.05 (chosen by the full Hessian from random points of scale 0.2),
    repeated to ``runs`` runs in turn."""
    g = torch.Generator().manual_seed(0)
    pool = [0.2 * torch.randn(200, 2, 2, generator=g, dtype=torch.float64) for _ in range(DEPTH)]
    spectra = torch.stack([full_spectrum(pool, k, None) for k in range(200)])
    top, bottom = spectra[:, -1], spectra[:, 0]
    chosen = ((-bottom > 1.2 * top) & (top > 0.05)).nonzero().view(-1)
    assert len(chosen) >= 4
    picked = chosen[torch.arange(runs) % len(chosen)]
    return [f[picked] for f in pool]


def full_spectrum(factors: list[torch.Tensor], k: int, scale: torch.Tensor | None) -> torch.Tensor:
    """The eigenvalues (ascending) of run k's full Hessian in its 12 factor entries, by
    ``torch.autograd.functional.hessian`` and ``eigvalsh`` in float64 (as S H S, S = P^{−1/2},
    with a preconditioner)."""
    flat = torch.cat([f[k].flatten() for f in factors])

    def loss(x: torch.Tensor) -> torch.Tensor:
        Ws = [x[4 * j : 4 * j + 4].view(1, 2, 2) for j in range(DEPTH)]
        return PROBLEM.loss(product(Ws))[0]

    H = torch.autograd.functional.hessian(loss, flat)
    if scale is not None:
        s = torch.cat([p[k].flatten() for p in scale])
        H = s[:, None] * H * s[None, :]
    return torch.linalg.eigvalsh(H)


@pytest.mark.parametrize("preconditioned", [False, True])
@pytest.mark.parametrize("runs", [8, 64])  # batched ``@``, entry by entry
def test_sharpness_is_the_top_algebraic_eigenvalue_at_a_saddle(runs, preconditioned):
    """Against the full Hessian's λ_max, run by run, on runs of which several have
    |λ_min| > 1.2 λ_max > 0. Catches the eigenvalue of largest magnitude (the plain power
    iteration: negative there), a shift left in the result (λ_max + σ), one shift for all runs,
    and a preconditioner left out of either iteration."""
    factors = saddle_factors(runs)
    P = None
    if preconditioned:
        g = torch.Generator().manual_seed(5)
        P = [torch.rand(runs, 2, 2, generator=g, dtype=torch.float64) + 0.2 for _ in factors]
    value, _ = sharpness(PROBLEM, factors, 300, preconditioner=P)
    scale = None if P is None else [p.rsqrt() for p in P]
    spectra = torch.stack([full_spectrum(factors, k, scale) for k in range(runs)])
    top, bottom = spectra[:, -1], spectra[:, 0]
    assert int((-bottom > top).sum()) >= runs // 2  # the largest magnitude: negative
    torch.testing.assert_close(value, top, rtol=1e-3, atol=0.0)


def test_a_warm_start_keeps_the_top_eigenvalue_in_few_steps():
    """From the directions of a converged call, 4 steps give λ_max again (the guard's warm start
    at the next log); from the fixed start they do not. Catches directions not returned (or
    returned as the shifted iterate's opposite end) and the warm start ignored."""
    factors = saddle_factors(8)
    converged, directions = sharpness(PROBLEM, factors, 300)
    warm, _ = sharpness(PROBLEM, factors, 4, directions)
    cold, _ = sharpness(PROBLEM, factors, 4)
    torch.testing.assert_close(warm, converged, rtol=1e-4, atol=0.0)
    assert float(((cold - converged) / converged).abs().max()) > 1e-2


# A batch of two runs of 2×2 completion at depth 3 from init.scale 0.5: lr 0.05 stays far below
# the bound (lr × sharpness ≈ 0.4, max_steps); lr 0.6 crosses it at the guard's check at step
# 100 (≈ 2.9) and converges at step 110, so only the guard's record tells it apart.
UNSTABLE_BATCH = ["train.progress=false", "device=cpu", "dtype=float64", "init.scale=0.5",
                  "train.loss_tol=0.015", "batch.lrs=[0.05,0.6]",
                  "batch.check_every=100"]  # fmt: skip


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def unstable_batch(tmp_path_factory, compose_bare):
    """The batch run to 300 steps in one go, its folder laid out as Hydra lays one out."""
    out = tmp_path_factory.mktemp("unstable")
    cfg = compose_bare(*UNSTABLE_BATCH, "train.max_steps=300")
    (out / ".hydra").mkdir()
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml", resolve=True)
    with pytest.warns(RuntimeWarning, match="sharpness"):
        result = run(cfg, out)
    return out, result


def test_every_run_of_a_batch_records_whether_it_crossed_the_bound(unstable_batch):
    """runs.csv, metrics.json and the batch's end line show exactly the run at lr 0.6, though
    it converged. Catches the guard's record left out of any of them, a count of runs by
    status (0 unstable: none was stopped), and the quantiles over another column."""
    out, result = unstable_batch
    rows = read_rows(out / "runs.csv")
    assert [r["status"] for r in rows] == ["max_steps", "converged"]
    assert [int(r["unstable_at_step"]) for r in rows] == [-1, 100]
    largest = torch.tensor([float(r["max_lr_times_sharpness"]) for r in rows], dtype=torch.float64)
    assert float(largest[0]) < 1 and float(largest[1]) > 2
    saved = json.loads((out / "metrics.json").read_text())
    for metrics in (result, saved):
        assert metrics["unstable_runs"] == 1 and metrics["runs/unstable"] == 0
        for name, q in QUANTILES.items():
            want = float(torch.quantile(largest, q))
            assert metrics[f"max_lr_times_sharpness/{name}"] == pytest.approx(want, rel=1e-6)
        assert metrics["max_lr_times_sharpness/max"] == float(largest[1])
    assert ", unstable 1 →" in outputs.batch_line(result, out)


def test_the_summary_counts_the_runs_that_crossed_the_bound(unstable_batch):
    """``unstable 1`` from runs.csv's ``unstable_at_step`` (the statuses say converged and
    max_steps), and summary.csv keeps both columns as metrics, not swept keys."""
    out, _ = unstable_batch
    rows, text = summarize(out, plot=False)
    assert "\n2 runs: converged 1, max_steps 1, unstable 1\n" in text
    assert [row["unstable_at_step"] for row in rows] == [-1, 100]
    header = read_rows(out / "summary.csv")[0]
    assert {"unstable_at_step", "max_lr_times_sharpness"} <= set(header)


def test_the_run_log_names_the_runs_that_crossed(tmp_path, caplog, compose_bare):
    """One warning line: how many runs crossed, and the largest lr × sharpness."""
    with pytest.warns(RuntimeWarning), caplog.at_level(logging.WARNING, "implicit_reg.run"):
        run(compose_bare(*UNSTABLE_BATCH, "train.max_steps=120"), tmp_path)
    lines = [r.getMessage() for r in caplog.records if "crossed" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("1 of 2 runs crossed lr × sharpness > 2")
    largest = float(read_rows(tmp_path / "runs.csv")[1]["max_lr_times_sharpness"])
    assert f"largest {largest:.4g}, run 1 at optim.lr=0.6" in lines[0]


def test_a_resumed_batch_keeps_the_record(unstable_batch, tmp_path, compose_bare):
    """Stopped at step 105 (after the crossing at 100), then extended to 300 in the same folder:
    runs.csv has the same record as the batch run in one go. Catches the guard's state not
    loaded (the run at lr 0.6, converged, would be recorded at the next check, step 200)."""
    out, _ = unstable_batch
    run(compose_bare(*UNSTABLE_BATCH, "train.max_steps=105"), tmp_path)  # warns here
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once already: not again after the resume
        run(compose_bare(*UNSTABLE_BATCH, "train.max_steps=300", "train.extend=true"), tmp_path)
    columns = ("status", "steps", "unstable_at_step", "max_lr_times_sharpness")
    resumed, whole = read_rows(tmp_path / "runs.csv"), read_rows(out / "runs.csv")
    assert [[r[c] for c in columns] for r in resumed] == [[r[c] for c in columns] for r in whole]


def test_the_recovery_figure_marks_and_counts_the_unstable_runs(tmp_path):
    """A planted batch of five runs at one scale: two crossed the bound, one of them converged
    (drawn hollow at its own value, out of the median) and one stopped by its budget (left out,
    as every run that did not converge). Catches unstable runs left in the median, not marked,
    marked when they did not converge, and not counted in the legend."""
    folder = tmp_path / "0"
    (folder / ".hydra").mkdir(parents=True)
    cfg = {
        "problem": {"kind": "matrix_completion", "name": "matrix_completion", "target": None,
                    "observed": 100},
        "optim": {"name": "gd", "lr": 0.01},
        "model": {"depth": 2},
        "init": {"scale": 0.1, "kind": "balanced", "det": "any"},
        "batch": {"end_to_end_scales": [1e-2]},
    }  # fmt: skip
    OmegaConf.save(OmegaConf.create(cfg), folder / ".hydra" / "config.yaml")
    planted = [  # status, unstable_at_step, value of every tag
        ("converged", -1, 1.0), ("converged", -1, 2.0), ("converged", 40, 50.0),
        ("converged", -1, 4.0), ("max_steps", 70, 90.0),
    ]  # fmt: skip
    with (folder / "runs.csv").open("w") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "seed", "init_scale", "lr", "status", "steps",
                         "unstable_at_step", "max_lr_times_sharpness", *TAGS])  # fmt: skip
        for k, (status, step, value) in enumerate(planted):
            crossed = 2.5 if step >= 0 else 0.5
            writer.writerow([k, k, 0.1, 0.01, status, 100, step, crossed, *[value] * len(TAGS)])
    torch.save({"ground_truth": torch.eye(2, dtype=torch.float64)}, folder / "final.pt")
    fig = arora_completion.draw(arora_completion.supports(find_runs(tmp_path)))
    for ax in fig.axes:
        (median,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("depth 2")]
        legend = "depth 2 (2 unstable, hollow if converged; 1 not converged, left out)"
        assert median.get_label() == legend
        np.testing.assert_allclose(median.get_ydata(), [2.0])  # of 1, 2, 4
        hollow = [ln for ln in ax.get_lines() if ln.get_gid() == arora_completion.UNSTABLE_GID]
        assert [list(ln.get_ydata()) for ln in hollow] == [[50.0]]
        assert hollow[0].get_markerfacecolor() == "none"
        np.testing.assert_allclose(hollow[0].get_xdata(), [1e-2])
