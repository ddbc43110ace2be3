"""Arora et al. (2019), Figure 1 (``figures/arora_observations.py``) on a synthetic sweep whose
numbers are planted: each depth's curve must be the median and quartiles over its converged
seeds at each observation count, in count order, and the minimizer's curve its jobs' errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.colors
import numpy as np
import pytest
import torch
from matplotlib.collections import PolyCollection
from omegaconf import OmegaConf

from implicit_reg import batch
from implicit_reg.config.validate import validate
from implicit_reg.figures import arora_observations, draw_all
from implicit_reg.record.runs import find_runs

TAG = "error/reconstruction"
COUNTS = (300, 100, 200)  # jobs written out of count order: the curve must sort them
SPREAD = np.array([1.0, 2.0, 3.0, 10.0, 100.0])
"""A skewed sample: median 3, mean 23.2, quartiles 2 and 10."""


def planted(depth: int, count: int, eps: float) -> np.ndarray:
    """The five seeds' final error of depth ``depth`` at ``count`` entries and scale ``eps``."""
    return SPREAD * 1e-3 * depth * (1000 / count) * (2.0 if eps < 1e-3 else 1.0)


def _job(folder: Path, count: int, optim: str, depth: int, scales: list[float] | None) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    cfg = {
        "problem": {"kind": "matrix_completion", "name": "matrix_completion", "target": None,
                    "observed": count},
        "optim": {"name": optim, "lr": 1e-3},
        "model": {"depth": depth},
        "init": {"scale": 0.1, "kind": "balanced", "det": "any"},
        "batch": {"end_to_end_scales": scales},
    }  # fmt: skip
    OmegaConf.save(OmegaConf.create(cfg), folder / ".hydra" / "config.yaml")
    torch.save({"ground_truth": torch.eye(3, dtype=torch.float64)}, folder / "final.pt")
    return folder


def make_sweep(root: Path, counts: tuple[int, ...] = COUNTS, scales=(1e-3,)) -> Path:
    """Per count: depths 2 and 3 (5 seeds per scale that converged, one diverged run with an
    absurd error, one at its step budget with a tiny one) and a nuclear-norm job."""
    job = 0
    for count in counts:
        for depth in (2, 3):
            folder = _job(root / str(job), count, "group_rmsprop", depth, list(scales))
            with (folder / "runs.csv").open("w") as f:
                writer = csv.writer(f)
                writer.writerow(["run", "seed", "init_scale", "lr", "status", "steps", TAG])
                k = 0
                for eps in scales:
                    for seed, value in enumerate(planted(depth, count, eps)):
                        writer.writerow([k, seed, repr(eps ** (1 / depth)), 1e-3, "converged", 9,
                                         value])  # fmt: skip
                        k += 1
                    for status, value in (("diverged", 1e9), ("max_steps", 1e-12)):
                        writer.writerow([k, 5, repr(eps ** (1 / depth)), 1e-3, status, 9, value])
                        k += 1
            job += 1
        folder = _job(root / str(job), count, "nuclear_norm", 1, None)
        status = "converged" if count != 200 else "solver_failed"
        (folder / "metrics.json").write_text(json.dumps({TAG: count / 1000, "status": status}))
        job += 1
    return root


def _line(ax, label: str):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith(label)]
    return line


def _band(ax, line) -> np.ndarray:
    """The vertices of the band drawn in ``line``'s colour."""
    colour = matplotlib.colors.to_rgb(line.get_color())
    (band,) = [
        c
        for c in ax.collections
        if isinstance(c, PolyCollection) and np.allclose(c.get_facecolor()[0][:3], colour)
    ]
    return band.get_paths()[0].vertices


def test_figure_plots_each_depths_median_and_quartiles_against_the_count(tmp_path: Path) -> None:
    runs = arora_observations.supports(find_runs(make_sweep(tmp_path)))
    assert len(runs) == 9
    (ax,) = arora_observations.draw(runs).axes
    counts = sorted(COUNTS)
    for depth in (2, 3):
        line = _line(ax, f"depth {depth} (6 not converged, left out)")
        np.testing.assert_array_equal(line.get_xdata(), counts)
        want = [np.median(planted(depth, c, 1e-3)) for c in counts]
        np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-12)
        vertices = _band(ax, line)
        for count in counts:  # the band's edges at each count are the quartiles there
            q25, q75 = np.percentile(planted(depth, count, 1e-3), [25, 75])
            ys = vertices[np.isclose(vertices[:, 0], count), 1]
            np.testing.assert_allclose([ys.min(), ys.max()], [q25, q75], rtol=1e-12)
    minimizer = _line(ax, "nuclear-norm minimizer (converged, solver_failed)")
    np.testing.assert_array_equal(minimizer.get_xdata(), counts)
    np.testing.assert_allclose(minimizer.get_ydata(), [c / 1000 for c in counts])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "observed entries"


def test_one_panel_per_end_to_end_scale(tmp_path: Path) -> None:
    scales = (1e-3, 1e-5)
    runs = arora_observations.supports(find_runs(make_sweep(tmp_path, scales=scales)))
    axes = {ax.get_title(): ax for ax in arora_observations.draw(runs).axes}
    assert set(axes) == {f"end-to-end init scale ε = {e:.0e}" for e in scales}
    for eps in scales:
        line = _line(axes[f"end-to-end init scale ε = {eps:.0e}"], "depth 3")
        want = [np.median(planted(3, c, eps)) for c in sorted(COUNTS)]
        np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-12)


def test_a_run_that_crossed_the_stability_bound_is_hollow_and_out_of_the_band(
    tmp_path: Path,
) -> None:
    """A converged depth-2 run per count that crossed lr × sharpness > 2 (``unstable_at_step``),
    planted with an absurd error: the median and quartiles stay those of the stable seeds, the
    run is a hollow marker at its own error, and the legend counts it."""
    sweep = make_sweep(tmp_path)
    for csv_path in sweep.glob("*/runs.csv"):
        rows = list(csv.reader(csv_path.open()))
        if OmegaConf.load(csv_path.parent / ".hydra" / "config.yaml").model.depth != 2:
            continue
        header, body = [*rows[0], "unstable_at_step"], [[*r, ""] for r in rows[1:]]
        body.append([str(len(body)), "6", body[0][2], "0.001", "converged", "9", "7.0", "300"])
        with csv_path.open("w") as f:
            csv.writer(f).writerows([header, *body])
    (ax,) = arora_observations.draw(arora_observations.supports(find_runs(sweep))).axes
    line = _line(ax, "depth 2 (3 unstable, hollow if converged; 6 not converged, left out)")
    counts = sorted(COUNTS)
    want = [np.median(planted(2, c, 1e-3)) for c in counts]
    np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-12)
    (hollow,) = [ln for ln in ax.get_lines() if ln.get_gid() == "unstable"]
    np.testing.assert_array_equal(sorted(hollow.get_xdata()), counts)
    np.testing.assert_array_equal(hollow.get_ydata(), [7.0, 7.0, 7.0])
    assert hollow.get_markerfacecolor() == "none"


@pytest.mark.parametrize("counts", [(100, 200), (100,)])
def test_a_sweep_of_fewer_than_three_counts_is_not_figure_1(tmp_path: Path, counts) -> None:
    assert arora_observations.supports(find_runs(make_sweep(tmp_path, counts))) == []


def test_draw_all_writes_it(tmp_path: Path) -> None:
    names = [p.name for p in draw_all(make_sweep(tmp_path), only={arora_observations.NAME})]
    assert names == ["arora2019_observations.png"]
    assert (tmp_path / "figures" / "arora2019_observations.png").stat().st_size > 20_000


PRESETS = {
    # preset: (counts, methods, seeds, ε, (n, rank) of the n×n ground truth, mse_tol)
    "arora2019_observations": ("1000,1500,2000,2500,3000,4000,5000",
                               "depth2,depth3,depth4,nuclear_norm_scs", 5, 1e-4, (100, 5), 1e-6),
    "arora2019_observations_quick": ("200,300,450,600", "depth2,depth3,depth4,nuclear_norm", 3,
                                     1e-3, (30, 3), 1e-6),
}  # fmt: skip


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_sweeps_counts_and_methods(compose_cfg, preset: str) -> None:
    counts, methods, seeds, eps, (n, rank), mse_tol = PRESETS[preset]
    top = compose_cfg(f"experiment={preset}", hydra=True)
    assert top.hydra.mode.name == "MULTIRUN"
    assert dict(top.hydra.sweeper.params) == {"problem.observed": counts, "method": methods}
    assert top.hydra.sweep.dir.startswith(f"outputs/experiments/{preset}/")
    for count in counts.split(","):
        for method in methods.split(","):
            job = compose_cfg(
                f"experiment={preset}", f"problem.observed={count}", f"method={method}"
            )
            validate(job)
            assert (job.problem.rows, job.problem.cols, job.problem.rank) == (n, n, rank)
            assert job.problem.observed == int(count) and job.problem.target is None
            if method.startswith("nuclear_norm"):  # the solve is float64 whatever the preset's
                assert job.optim.name == "nuclear_norm" and job.dtype == "float64"
                assert batch.size(job) == 1
                continue
            depth = int(method.removeprefix("depth"))
            assert job.model.depth == depth and job.init.kind == "balanced"
            assert (job.optim.name, job.optim.lr, job.dtype) == ("group_rmsprop", 1e-3, "float32")
            assert job.train.mse_tol == mse_tol  # the paper's stop, at every count
            grid = batch.grid(job)
            assert sorted(grid.seeds.tolist()) == list(range(seeds))
            np.testing.assert_allclose(grid.init_scales**depth, eps, rtol=1e-9)


@pytest.mark.slow
def test_quick_preset_runs_and_draws_figure_1(tmp_path: Path, train_cli, python_cli) -> None:
    sweep = tmp_path / "sweep"
    done = train_cli(
        "experiment=arora2019_observations_quick", "problem.rows=8", "problem.cols=8",
        "problem.rank=1", "problem.observed=16,24,40", "method=depth2,nuclear_norm",
        "optim.lr=0.01", "train.max_steps=3000", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    drawn = python_cli("-m", "implicit_reg.figures", str(sweep), "--only", arora_observations.NAME)
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert (sweep / "figures" / "arora2019_observations.png").stat().st_size > 20_000
