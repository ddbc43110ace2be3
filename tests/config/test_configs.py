"""Every config group option composes through Hydra's compose API and builds a problem."""

from pathlib import Path

import pytest
import torch

from implicit_reg.problems import build_problem

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

OPTIONS = [
    (group.name, option.stem)
    for group in sorted(CONFIGS.iterdir())
    if group.is_dir() and group.name != "hydra"
    for option in sorted(group.glob("*.yaml"))
]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_config_option_composes(compose_cfg, tmp_path, group: str, option: str) -> None:
    extra = []
    if (group, option) == ("problem", "movielens"):  # the user's file: one rating of u.data
        (tmp_path / "u.data").write_text("3\t2\t4\t881250949\n")
        extra = [f"problem.path={tmp_path / 'u.data'}"]
    cfg = compose_cfg(f"{group}={option}", *extra)
    problem = build_problem(cfg.problem, torch.device("cpu"), torch.float64)
    assert problem.loss(torch.zeros(problem.shape, dtype=torch.float64)).item() > 0


def test_default_is_the_papers_experiment(compose_cfg) -> None:
    cfg = compose_cfg()
    assert cfg.problem.name == "completion_2x2"
    assert cfg.model.depth == 3
    assert cfg.init.det == "positive"
    assert cfg.optim.name == "gd"


def test_hydra_output_root_is_outputs() -> None:
    text = (CONFIGS / "hydra" / "default.yaml").read_text()
    assert "dir: outputs/runs/" in text and "dir: outputs/multirun/" in text
    assert Path(CONFIGS.parent / "outputs" / "README.md").exists()
