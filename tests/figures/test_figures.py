"""Every figure is drawn from short runs into a temporary folder and is a non-trivial PNG."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from implicit_reg.figures import draw_all, norms, ranks, unobserved
from implicit_reg.figures.__main__ import main as figures_cli
from implicit_reg.record.events import read_scalars
from implicit_reg.record.runs import find_runs


def assert_non_trivial_png(path: Path) -> None:
    assert path.exists() and path.stat().st_size > 20_000
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert np.std(pixels[..., :3]) > 0.05  # not a blank canvas


@pytest.mark.slow
def test_least_squares_figure_from_the_experiment_preset(tmp_path: Path, train_cli) -> None:
    sweep = tmp_path / "sweep"
    train_cli(
        "experiment=least_squares_min_norm", "train.progress=false", "train.max_steps=300",
        f"hydra.sweep.dir={sweep}", quiet=False, cwd=tmp_path, check=True,
    )  # fmt: skip
    written = draw_all(sweep)
    assert [p.name for p in written] == ["least_squares_min_norm.png"]
    assert_non_trivial_png(written[0])


def test_completion_figures_from_short_runs(train_run, tmp_path: Path, capsys) -> None:
    for depth in (2, 3):
        train_run(f"model.depth={depth}", "train.loss_tol=0.05", "train.log_every=200")
    train_run("model.depth=2", "init.det=negative", "train.loss_tol=0.05")
    written = {p.name: p for p in draw_all(tmp_path, tmp_path / "figures")}
    assert set(written) == {"norms_blow_up.png", "ranks_minimized.png", "unobserved_entry.png"}
    for path in written.values():
        assert_non_trivial_png(path)
    # --only: just those; one the runs cannot give is refused, and nothing is written
    assert (
        figures_cli([str(tmp_path), "--only", "ranks_minimized", "--out", str(tmp_path / "a")]) == 0
    )
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["ranks_minimized.png"]
    only = ["--only", "norms_blow_up", "least_squares_min_norm", "run"]
    assert figures_cli([str(tmp_path), *only, "--out", str(tmp_path / "b")]) == 1
    assert not (tmp_path / "b").exists()
    assert "--only least_squares_min_norm run: not drawn" in capsys.readouterr().err


@pytest.mark.slow
def test_training_draws_nothing_and_the_figures_cli_draws_the_run_panel(
    train_run, python_cli
) -> None:
    _, out = train_run("train.loss_tol=0.5")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out))
    events.Reload()
    assert events.Tags()["images"] == []
    assert read_scalars(out)["loss/train"][1][-1] < 0.5
    written = draw_all(out)
    assert written[-1].name == "run.png"  # after the figures a single run supports
    assert_non_trivial_png(written[0])
    imports = python_cli(
        "-c", "import sys, implicit_reg.run; print('matplotlib' in sys.modules)", check=True
    )
    assert imports.stdout.strip() == "False"  # training does not even import matplotlib


def test_a_solved_baseline_is_no_path_in_the_trajectory_figures(train_run, tmp_path: Path) -> None:
    train_run("model.depth=2", "train.loss_tol=0.05", "train.log_every=200")
    train_run("optim=nuclear_norm")  # the 2×2 problem's nuclear-norm minimizer: one point
    runs = find_runs(tmp_path)
    assert sorted(r.has_path for r in runs) == [False, True]
    for figure in (norms, ranks, unobserved):
        assert [r.cfg.optim.name for r in figure.supports(runs)] == ["gd"]
    names = [p.name for p in draw_all(tmp_path, tmp_path / "figures")]
    assert names == ["norms_blow_up.png", "ranks_minimized.png", "unobserved_entry.png"]
    alone = next(r.folder for r in runs if not r.has_path)
    assert [p.name for p in draw_all(alone)] == ["run.png"]  # its own panel, and no crash
