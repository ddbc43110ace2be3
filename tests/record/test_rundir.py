"""Two runs or sweeps started in the same second (here: the same folder name) never share a
folder; a fixed folder name is reused, which is how a run resumes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from implicit_reg.record.rundir import claim


def test_claim_gives_each_caller_its_own_new_folder(tmp_path):
    name = str(tmp_path / "12-00-00-000000_run")
    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda _: claim(name), range(32)))
    assert len(set(claimed)) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["12-00-00-000000_run"] + [f"12-00-00-000000_run-{n}" for n in range(1, 32)]
    )


def test_two_runs_and_two_sweeps_with_the_same_timestamp_get_two_folders(
    tmp_path, monkeypatch, read_metrics, train_here
):
    """${now:%Y} is the same for both: without the claim they would share a folder."""
    short = ("device=cpu", "train.progress=false", "train.max_steps=20", "train.log_per_decade=0")
    for _ in "ab":
        train_here(*short, f"hydra.run.dir={tmp_path}/run_${{now:%Y}}")
        train_here("-m", *short, "seed=0,1", f"hydra.sweep.dir={tmp_path}/sw_${{now:%Y}}")
    folders = sorted(p.name for p in tmp_path.iterdir())
    year = folders[0].split("_")[1]
    assert folders == [f"run_{year}", f"run_{year}-1", f"sw_{year}", f"sw_{year}-1"]
    for folder in (f"run_{year}", f"run_{year}-1"):
        assert read_metrics(tmp_path / folder)["steps"] == 20
    for folder in (f"sw_{year}", f"sw_{year}-1"):
        jobs = ("0_seed=0", "1_seed=1")  # job folders: number, then what varied
        assert [read_metrics(tmp_path / folder / job)["seed"] for job in jobs] == [0, 1]
