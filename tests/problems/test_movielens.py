"""``problem=movielens``: MovieLens 100K's ``u.data`` read as a completion problem (Arora et al.
2019, Fig. 3, bottom row), on small files written in the same format; bad paths and files are
refused with one line naming ``problem.path``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from implicit_reg.config.validate import ConfigError, validate
from implicit_reg.problems import build_problem
from implicit_reg.record import history

RATINGS = [  # user, item, rating (ids from 1), as in u.data
    (1, 1, 5), (1, 7, 3), (2, 3, 4), (3, 2, 1), (3, 7, 2), (4, 4, 5), (5, 6, 3), (5, 1, 4),
    (2, 5, 2), (4, 2, 1),
]  # fmt: skip


def write_u_data(folder: Path, lines: list[str] | None = None) -> Path:
    """A ``u.data``: tab-separated user id, item id, rating and a timestamp per line."""
    path = folder / "u.data"
    if lines is None:
        lines = [f"{u}\t{i}\t{r}\t{881250949 + k}" for k, (u, i, r) in enumerate(RATINGS)]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def small(path: Path) -> tuple[str, ...]:
    return ("problem=movielens", f"problem.path={path}", "problem.rows=5", "problem.cols=7",
            "problem.infimal_rank=2")  # fmt: skip


def test_the_ratings_are_the_observed_entries(tmp_path: Path, compose_cfg) -> None:
    cfg = compose_cfg(*small(write_u_data(tmp_path)))
    validate(cfg)
    problem = build_problem(cfg.problem, torch.device("cpu"), torch.float64)
    want_target, want_mask = np.zeros((5, 7)), np.zeros((5, 7), dtype=bool)
    for u, i, r in RATINGS:  # users are rows, items columns, ids from 1
        want_target[u - 1, i - 1], want_mask[u - 1, i - 1] = r, True
    np.testing.assert_array_equal(problem.mask.numpy(), want_mask)
    np.testing.assert_array_equal((problem.target * problem.weight).numpy(), want_target)
    assert problem.ground_truth is None and problem.name == "movielens"
    zero = torch.zeros(5, 7, dtype=torch.float64)
    assert problem.loss(zero).item() == 0.5 * sum(r * r for _, _, r in RATINGS)
    assert "loss/test" not in problem.scalars(zero, 0.0, None)


def test_the_default_shape_is_943_users_by_1682_items(compose_cfg) -> None:
    cfg = compose_cfg("problem=movielens")
    assert (cfg.problem.rows, cfg.problem.cols) == (943, 1682)


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (["1\t1\t5"], "3 tab-separated fields, not 4"),
        (["1 1 5 881250949"], "1 tab-separated fields"),
        (["1\tx\t5\t881250949"], "line 1: invalid literal"),
        (["1\t1\t5\t0", "6\t1\t5\t0"], r"line 2: \(user, item\) = \(6, 1\) outside 1…5 × 1…7"),
        (["0\t1\t5\t0"], "outside"),
        (["1\t8\t5\t0"], "outside"),
        (["1\t1\t5\t0", "1\t1\t4\t0"], "line 2: .* rated twice"),
        (["1\t1\tnan\t0"], "not a finite number"),
        ([], "holds no rating"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_line(tmp_path: Path, compose_cfg, lines, why):
    cfg = compose_cfg(*small(write_u_data(tmp_path, lines)))
    with pytest.raises(ConfigError, match=f"problem.path=.*{why}") as refused:
        validate(cfg)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("path", [None, "no/such/u.data"])
def test_a_missing_file_says_where_to_download_it(compose_cfg, path) -> None:
    cfg = compose_cfg("problem=movielens", *([f"problem.path={path}"] if path else []))
    with pytest.raises(ConfigError, match=r"problem\.path") as refused:
        validate(cfg)
    message = str(refused.value)
    assert "https://grouplens.org/datasets/movielens/100k/" in message and "\n" not in message


def test_a_run_on_the_ratings_records_singular_values_and_alignment(tmp_path, train_run):
    """Arora et al.'s Fig. 3 run on the ratings, cut down: identity init, plain GD."""
    _, out = train_run(
        *small(write_u_data(tmp_path)), "model.depth=2", "init.kind=identity",
        "batch.end_to_end_scales=[1e-3]", "optim.lr=0.05", "train.max_steps=400",
        "train.singular_value_history=3",
    )  # fmt: skip
    saved = history.read(out)
    assert saved["values"].shape[1:] == (1, 3) and saved["alignment"].shape[1:] == (1, 4)
    assert saved["values"][-1, 0, 0] > 10 * saved["values"][0, 0, 0]  # σ₁ grew from 1e-3
