"""The command line: `python train.py` with overrides writes the output contract."""

import json
from pathlib import Path

import pytest
import torch

from implicit_reg.record.events import read_scalars

COMMON_TAGS = {
    "loss/train",
    "norm/fro",
    "norm/nuclear",
    "norm/spectral",
    "rank/effective",
    "rank/infimal_distance",
    "singular_values/1",
    "time/flow",
}
COMMON_KEYS = {"status", "steps", "flow_time", "wall_time_s", "device", "seed"}


pytestmark = pytest.mark.slow  # python train.py in a subprocess


@pytest.mark.parametrize(
    ("overrides", "tags", "saved"),
    [
        (
            ["train.loss_tol=0.5"],
            {"singular_values/2", "entries/1_1", "det/value", "det/sign"},
            {"W", "target", "mask"},
        ),
        (
            ["problem=least_squares", "train.max_steps=300"],
            {"beta/1", "norm/l2", "dist/min_norm", "dist/flow_closed_form"},
            {"beta", "X", "y"},
        ),
    ],
    ids=["completion_2x2", "least_squares"],
)
def test_train_writes_events_metrics_and_final_state(
    tmp_path: Path, train_cli, overrides: list[str], tags: set[str], saved: set[str]
) -> None:
    out = tmp_path / "run"
    result = train_cli(
        "train.progress=false", f"hydra.run.dir={out}", "device=cpu", *overrides,
        quiet=False, cwd=tmp_path, check=True,
    )  # fmt: skip
    assert "status" in result.stdout + result.stderr  # the closing summary

    logged = read_scalars(out)
    assert COMMON_TAGS | tags <= set(logged)
    steps = logged["loss/train"][0].tolist()
    assert steps == sorted(set(steps)) and steps[0] == 0

    metrics = json.loads((out / "metrics.json").read_text())
    assert COMMON_KEYS | COMMON_TAGS | tags <= set(metrics)
    assert metrics["device"] == "cpu"
    assert metrics["steps"] == steps[-1]
    assert metrics["loss/train"] == pytest.approx(logged["loss/train"][1][-1], rel=1e-6)
    lr = 0.1 if "problem=least_squares" in overrides else 1e-2
    assert metrics["flow_time"] == pytest.approx(metrics["steps"] * lr)

    final = torch.load(out / "final.pt", weights_only=True)
    assert saved | {"factors"} <= set(final)
    assert (out / ".hydra" / "config.yaml").exists()


def test_multirun_sweeps_depth_and_scale(tmp_path: Path, train_cli) -> None:
    sweep = tmp_path / "sweep"
    train_cli(
        "-m",
        "train.progress=false",
        f"hydra.sweep.dir={sweep}",
        "model.depth=1,2",
        "init.scale=1e-3,1e-2",
        "train.max_steps=50",
        "train.loss_tol=0",
        quiet=False,
        cwd=tmp_path,
        check=True,
    )
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(runs) == 4
    configs = [(r / ".hydra" / "overrides.yaml").read_text() for r in runs]
    assert sum("model.depth=2" in c and "init.scale=0.001" in c for c in configs) == 1
    assert {json.loads((r / "metrics.json").read_text())["steps"] for r in runs} == {50}
