"""The end-of-run table shows the numbers that answer the problem's question: least squares its
distance to pinv(X)y and ‖β‖; a flow run its solver steps; a large matrix no entries."""

from __future__ import annotations

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from implicit_reg.app import config_dir
from implicit_reg.record.run_summary import MAX_ENTRIES, baseline_summary, summary

BASE = {"status": "converged", "steps": 1_082_532, "flow_time": 43.6, "wall_time_s": 1.0,
        "device": "cpu", "loss/train": 1e-3}  # fmt: skip
MATRIX = {**BASE, "error/reconstruction": 4.5e-3, "rank/effective": 5.04, "norm/fro": 100.0,
          "norm/nuclear": 221.2, "norm/spectral": 60.0, "rank/infimal_distance": 0.1,
          "entries/1_1": 0.25, "entries/1_2": -0.5}  # fmt: skip


def rows(text: str) -> dict[str, str]:
    """Row name → its value (the first word after the name's column)."""
    out = {}
    for line in text.splitlines():
        name, _, rest = line.strip().partition("  ")
        out[name] = rest.split()[0] if rest.strip() else ""
    return out


def test_least_squares_shows_its_distance_to_the_minimum_norm_solution(train_run) -> None:
    """The table's ‖β − pinv(X)y‖ and ‖β‖ are those of final.pt's β against NumPy's pinv, and a
    vector's erank and infimal distance are not shown. Catches: the matrix table on a vector
    (its headline, dist/min_norm, left out)."""
    metrics, out = train_run("problem=least_squares", "train.max_steps=20", "train.loss_tol=0")
    text = rows(summary(metrics, out, (40, 1)))
    assert "rank/effective" not in text and "rank/infimal_distance" not in text
    final = torch.load(out / "final.pt", weights_only=True)
    X, y = final["X"].double().numpy(), final["y"].double().numpy()
    beta = final["beta"].double().numpy().reshape(-1)
    dist = np.linalg.norm(beta - np.linalg.pinv(X) @ y)
    assert dist > 1e-2  # 20 steps: still on its way to pinv(X)y
    assert abs(float(text["dist/min_norm"]) - dist) <= 1e-5 * dist  # 6 digits shown
    assert float(text["norm/l2"]) == float(f"{np.linalg.norm(beta):.6g}")


def test_a_flow_run_shows_solver_steps_not_reference_steps(tmp_path) -> None:
    """Catches: ``steps`` (reference steps ⌈t/lr⌉, 1,082,532 here) shown for a flow run."""
    text = rows(summary({**BASE, "solver_steps": 606}, tmp_path, (2, 2)))
    assert text["solver steps"] == "606" and "steps" not in text
    assert text["flow time"] == "43.6"
    assert rows(summary(BASE, tmp_path, (2, 2)))["steps"] == "1,082,532"


def test_entries_only_for_a_small_problem(tmp_path) -> None:
    """A 4×4 problem (16 entries) lists its tracked entries; a 5×5 or 100×100 one does not, and
    at any size the reconstruction error, erank, norms and loss are shown. Catches: 16
    entries/i_j rows on a 100×100 table, or the cut made by the number of tracked entries."""
    small = rows(summary(MATRIX, tmp_path, (4, MAX_ENTRIES // 4)))
    assert small["entries/1_2"] == "-0.5"
    for shape in ((5, 5), (100, 100)):
        large = rows(summary(MATRIX, tmp_path, shape))
        assert not any(name.startswith("entries/") for name in large)
        assert large["error/reconstruction"] == "0.0045"
        assert large["rank/effective"] == "5.04"
        assert large["norm/nuclear"] == "221.2" and large["norm/fro"] == "100"
        assert large["loss/train"] == "0.001"


def test_a_baseline_shows_its_certificate_and_no_entries(tmp_path) -> None:
    result = {**MATRIX, "solver": "CLARABEL", "duality_gap": 1e-9}
    text = rows(baseline_summary(result, tmp_path))
    assert text["solver"] == "CLARABEL" and text["duality gap"] == "1e-09"
    assert "entries/1_1" not in text and text["norm/nuclear"] == "221.2"


def test_flow_and_gd_runs_get_distinct_folder_names() -> None:
    """The default run folder names the optimizer: a flow run and a GD run started in the same
    microsecond would still differ. Catches: ``…_completion_2x2_L3`` for both."""
    names = []
    for optim in ("gd", "flow"):
        with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
            cfg = compose("train", overrides=[f"optim={optim}"], return_hydra_config=True)
        names.append(OmegaConf.select(cfg, "hydra.run.dir").rsplit("_", 2)[-2:])
    assert names == [["L3", "gd"], ["L3", "flow"]]
