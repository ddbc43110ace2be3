"""A sweep's job folders are named by their number and what varied, from the grid alone."""

from __future__ import annotations

from implicit_reg.summarize import NAME_CHARS, job_folders

GRID = [
    ["model.depth=2", "optim.lr=0.01", "train.max_steps=300"],
    ["model.depth=2", "optim.lr=0.05", "train.max_steps=300"],
    ["model.depth=3", "optim.lr=0.01", "train.max_steps=300"],
]


def test_only_the_overrides_that_vary_name_a_job() -> None:
    """Catches: the fixed train.max_steps in every name, or names by number alone."""
    assert job_folders(GRID) == [
        "0_model.depth=2,optim.lr=0.01",
        "1_model.depth=2,optim.lr=0.05",
        "2_model.depth=3,optim.lr=0.01",
    ]


def test_the_same_grid_gives_the_same_names() -> None:
    """A rerun of the grid (resume) finds each job's folder again."""
    assert job_folders([list(g) for g in GRID]) == job_folders(GRID)


def test_a_slash_makes_no_subfolder_and_long_names_are_cut() -> None:
    grid = [
        ["problem.file=/data/a.csv"],
        ["problem.file=/data/b.csv"],
        ["problem.file=" + "x" * 500],
    ]
    names = job_folders(grid)
    assert "/" not in "".join(names)
    assert names[0] == "0_problem.file=_data_a.csv"
    assert len(names[2]) == len("2_") + NAME_CHARS


def test_a_single_job_names_its_overrides_and_no_overrides_leave_the_number() -> None:
    assert job_folders([["model.depth=2"]]) == ["0_model.depth=2"]
    assert job_folders([[], []]) == ["0", "1"]
