"""The Arora et al. (2019) figures on a synthetic sweep folder whose numbers are planted: the
plotted points must be the medians and quartiles of the planted values at ε = init.scale^depth,
without the diverged runs, and the reference lines the minimizer's and the ground truth's."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.collections import PolyCollection
from omegaconf import OmegaConf

from implicit_reg.figures import arora_completion, arora_dynamics, arora_sensing, draw_all
from implicit_reg.record import history
from implicit_reg.record.runs import find_runs

TAGS = ("error/reconstruction", "norm/nuclear", "rank/effective")
SCALES = (1e-2, 1e-4)
SPREAD = np.array([1.0, 2.0, 3.0, 10.0, 100.0])
"""A skewed sample: median 3, mean 23.2, quartiles 2 and 10."""
TRUTH = torch.diag(torch.tensor([3.0, 1.0, 0.0, 0.0], dtype=torch.float64))
"""Ground truth: nuclear norm 4, effective rank exp(H(3/4, 1/4))."""


def _job(folder: Path, cfg: dict) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(cfg), folder / ".hydra" / "config.yaml")
    return folder


def _cfg(kind: str, count_key: str, count: int, optim: str, depth: int, scale: float) -> dict:
    return {
        "problem": {"kind": kind, "name": kind, "target": None, count_key: count},
        "optim": {"name": optim, "lr": 0.01},
        "model": {"depth": depth},
        "init": {"scale": scale, "kind": "balanced", "det": "any"},
        "batch": {"end_to_end_scales": list(SCALES) if optim != "nuclear_norm" else None},
    }


def planted(depth: int, count: int, tag: str, eps: float) -> np.ndarray:
    """The five seeds' final ``tag`` at end-to-end scale ``eps`` in the planted sweep."""
    offset = {"error/reconstruction": 0.0, "norm/nuclear": 10.0, "rank/effective": 20.0}[tag]
    return SPREAD * (1 + depth) * (count / 100) * (1 + 0.5 * (eps == SCALES[1])) + offset


def make_sweep(
    root: Path, kind: str = "matrix_completion", count_key: str = "observed", optim: str = "gd"
) -> Path:
    """Jobs: depths 2 and 3 at counts 100 and 200 (a batch of 5 seeds × 2 scales, plus one
    diverged run with absurd values, trained by ``optim``), and a nuclear-norm job per count."""
    job = 0
    for count in (100, 200):
        for depth in (2, 3):
            folder = _job(root / str(job), _cfg(kind, count_key, count, optim, depth, 0.1))
            rows = []
            for seed in range(5):
                for eps in SCALES:
                    values = {t: planted(depth, count, t, eps)[seed] for t in TAGS}
                    rows.append((seed, eps ** (1 / depth), "converged", values))
            rows.append((5, SCALES[0] ** (1 / depth), "diverged", dict.fromkeys(TAGS, 1e9)))
            rows.append((6, SCALES[1] ** (1 / depth), "max_steps", dict.fromkeys(TAGS, 1e-9)))
            with (folder / "runs.csv").open("w") as f:
                writer = csv.writer(f)
                writer.writerow(["run", "seed", "init_scale", "lr", "status", "steps", *TAGS])
                for k, (seed, scale, status, values) in enumerate(rows):
                    writer.writerow([k, seed, repr(scale), 0.01, status, 10, *values.values()])
            torch.save({"ground_truth": TRUTH}, folder / "final.pt")
            job += 1
        folder = _job(root / str(job), _cfg(kind, count_key, count, "nuclear_norm", 1, 0.1))
        minimizer = {
            "error/reconstruction": 0.5 * count,
            "norm/nuclear": 3.5,
            "rank/effective": 1.5,
        }
        (folder / "metrics.json").write_text(json.dumps({**minimizer, "status": "converged"}))
        torch.save({"ground_truth": TRUTH, "W": TRUTH}, folder / "final.pt")
        job += 1
    return root


def _line(ax, label: str):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith(label)]
    return line


@pytest.mark.parametrize(
    ("module", "kind", "count_key"),
    [
        (arora_completion, "matrix_completion", "observed"),
        (arora_sensing, "matrix_sensing", "measurements"),
    ],
)
@pytest.mark.parametrize("optim", ["gd", "group_rmsprop"])  # the presets train by the paper's
def test_recovery_figure_plots_medians_quartiles_and_reference_lines(
    tmp_path: Path, module, kind: str, count_key: str, optim: str
) -> None:
    """Catches a figure that draws gradient descent's runs only (the presets use GroupRMSprop)."""
    runs = module.supports(find_runs(make_sweep(tmp_path, kind, count_key, optim)))
    assert len(runs) == 6
    fig = module.draw(runs)
    axes = np.array(fig.axes).reshape(2, 3)
    s = TRUTH.diagonal()[:2] / 4
    truth = {"norm/nuclear": 4.0, "rank/effective": float(torch.exp(-(s * s.log()).sum()))}
    for row, count in zip(axes, (100, 200), strict=True):
        assert f"{count}" in row[0].get_title()
        for ax, tag, ylabel in zip(
            row, TAGS, ("reconstruction error", "nuclear", "effective rank"), strict=True
        ):
            assert ax.get_ylabel().startswith(ylabel)
            for depth in (2, 3):
                line = _line(ax, f"depth {depth} (2 not converged, left out)")
                np.testing.assert_allclose(line.get_xdata(), SCALES[::-1], rtol=1e-12)
                want = [np.median(planted(depth, count, tag, e)) for e in SCALES[::-1]]
                np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-12)
                band = _band(ax, line)
                ys = band.get_paths()[0].vertices[:, 1]
                quartiles = [np.percentile(planted(depth, count, tag, e), [25, 75]) for e in SCALES]
                assert np.isclose(ys.min(), min(q[0] for q in quartiles))
                assert np.isclose(ys.max(), max(q[1] for q in quartiles))
            minimizer = {"error/reconstruction": 0.5 * count, "norm/nuclear": 3.5}
            minimizer["rank/effective"] = 1.5
            np.testing.assert_allclose(
                _line(ax, "nuclear-norm minimizer").get_ydata(), minimizer[tag]
            )
            if tag in truth:
                np.testing.assert_allclose(_line(ax, "ground truth").get_ydata(), truth[tag])
            else:
                assert not [ln for ln in ax.get_lines() if ln.get_label() == "ground truth"]
        assert all(ax.get_yscale() == "log" and ax.get_xscale() == "log" for ax in row)


def _band(ax, line) -> PolyCollection:
    """The interquartile band drawn in the colour of ``line``."""
    import matplotlib.colors

    colour = matplotlib.colors.to_rgb(line.get_color())
    (band,) = [
        c
        for c in ax.collections
        if isinstance(c, PolyCollection) and np.allclose(c.get_facecolor()[0][:3], colour)
    ]
    return band


def test_recovery_figures_choose_their_problem(tmp_path: Path) -> None:
    completion = find_runs(make_sweep(tmp_path / "c"))
    sensing = find_runs(make_sweep(tmp_path / "s", "matrix_sensing", "measurements"))
    assert [p.name for p in draw_all(tmp_path / "c")] == ["arora2019_completion.png"]
    assert arora_sensing.supports(completion) == []
    assert arora_completion.supports(sensing) == []
    descents = [r for r in completion if r.cfg.optim.name == "gd"]
    for run in descents:  # gradient descent without end-to-end scales has no x-axis here
        run.cfg.batch.end_to_end_scales = None
    assert arora_completion.supports(completion) == []


def _dynamics_run(folder: Path, depth: int, scales: list[float], sv: np.ndarray, t: np.ndarray):
    _job(folder, _cfg("matrix_completion", "observed", 100, "gd", depth, scales[0]))
    per_factor = torch.tensor(scales, dtype=torch.float64) ** (1 / depth)
    torch.save({"ground_truth": TRUTH, "init_scale": per_factor}, folder / "final.pt")
    buffer = io.BytesIO()
    np.savez(buffer, step=np.arange(len(t)) * 10, flow_time=t, values=sv)
    (folder / history.FILE).write_bytes(buffer.getvalue())


def test_dynamics_figure_plots_the_median_singular_values_over_flow_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    T, K, k = 6, 6, 3  # 3 seeds at ε = 1e-2, 3 at 1e-4 (interleaved as a batch's grid)
    sv = rng.lognormal(size=(T, K, k))
    t = np.tile(np.arange(T, dtype=float)[:, None] * 0.1, (1, K))
    t[4:, 0] = 0.3  # run 0 stopped at t = 0.3: the time axis is the latest run's
    _dynamics_run(tmp_path / "a", 2, [1e-2, 1e-4] * 3, sv, t)
    runs = arora_dynamics.supports(find_runs(tmp_path))
    fig = arora_dynamics.draw(runs)
    titles = {ax.get_title(): ax for ax in fig.axes}
    assert set(titles) == {"depth 2, ε = 1e-02", "depth 2, ε = 1e-04"}
    for title, columns in (("depth 2, ε = 1e-02", [0, 2, 4]), ("depth 2, ε = 1e-04", [1, 3, 5])):
        ax = titles[title]
        for i in range(k):
            line = _line(ax, f"σ{i + 1}")
            np.testing.assert_allclose(line.get_xdata(), t[:, columns].max(axis=1))
            np.testing.assert_allclose(line.get_ydata(), np.median(sv[:, columns, i], axis=1))
        truth_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
        levels = sorted(float(ln.get_ydata()[0]) for ln in truth_lines if len(ln.get_ydata()))
        assert levels == pytest.approx([1.0, 3.0], rel=1e-12)  # σ(W*) through an SVD


def test_dynamics_figure_needs_a_history(tmp_path: Path, train_run) -> None:
    _, without = train_run("problem=matrix_completion", "train.max_steps=20")
    _, with_history = train_run(
        "problem=matrix_completion", "train.max_steps=20", "train.singular_value_history=2"
    )
    chosen = arora_dynamics.supports(find_runs(tmp_path))
    assert [r.folder for r in chosen] == [with_history]
    assert without != with_history
