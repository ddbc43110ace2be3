"""Bad input is refused before any work starts, with one message naming key, value and allowed."""

from __future__ import annotations

import re

import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException

from implicit_reg import run
from implicit_reg.config.validate import ConfigError, validate

CASES = [
    # (overrides, key, value as printed, words of the "allowed" part)
    (["init.kind=foo"], "init.kind", "'foo'", "gaussian | identity | balanced | zero"),
    (["model.depth=0"], "model.depth", "0", "an integer ≥ 1"),
    (["model.depth=-2"], "model.depth", "-2", "an integer ≥ 1"),
    (["model.width=0"], "model.width", "0", "an integer ≥ 1"),
    (["init.scale=0"], "init.scale", "0.0", "a number > 0"),
    (["init.scale=-0.1"], "init.scale", "-0.1", "a number > 0"),
    (["init.scale=nan"], "init.scale", "nan", "a number > 0"),
    (["optim.lr=0"], "optim.lr", "0.0", "a number > 0"),
    (["optim.lr=nan"], "optim.lr", "nan", "a number > 0"),
    (["optim.lr=inf"], "optim.lr", "inf", "a number > 0"),
    (["train.max_steps=0"], "train.max_steps", "0", "an integer ≥ 1"),
    (["train.loss_tol=-1e-3"], "train.loss_tol", "-0.001", "a number ≥ 0"),
    (["train.loss_tol=nan"], "train.loss_tol", "nan", "a number ≥ 0"),
    (["train.checkpoint_every=-1"], "train.checkpoint_every", "-1", "an integer ≥ 0"),
    (["problem.mask=[[1,0]]"], "problem.mask", "[[1, 0]]", "a 2×2 list of 0/1"),
    (["problem.mask=[[1,0,1],[1,0,1]]"], "problem.mask", "[[1, 0, 1], [1, 0, 1]]", "a 2×2 list"),
    (["problem.mask=[[0,0],[0,0]]"], "problem.mask", "[[0, 0], [0, 0]]", "at least one observed"),
    (["problem.target=[[null,null]]"], "problem.target", "[[None, None]]", "at least one observed"),
    (["problem=least_squares", "problem.n=0"], "problem.n", "0", "an integer ≥ 1"),
    (["problem=least_squares", "problem.d=0"], "problem.d", "0", "an integer ≥ 1"),
    (["problem.kind=foo"], "problem.kind", "'foo'", "least_squares | matrix_completion"),
    (["problem=matrix_sensing", "problem.rank=11"], "problem.rank", "11", "an integer in [1, 10]"),
    (["problem=matrix_sensing", "problem.cols=3", "problem.rank=4"], "problem.rank", "4", "[1, 3]"),
    (["problem=matrix_sensing", "problem.rank=0"], "problem.rank", "0", "an integer ≥ 1"),
    (["problem=matrix_sensing", "problem.cols=0"], "problem.cols", "0", "an integer ≥ 1"),
    (["problem=matrix_sensing", "problem.measurements=0"], "problem.measurements", "0", "≥ 1"),
    (["problem=matrix_sensing", "problem.measurements=-5"], "problem.measurements", "-5", "≥ 1"),
    (["problem=matrix_sensing", "problem.seed=-1"], "problem.seed", "-1", "an integer ≥ 0"),
    (["+foo=1"], "foo", "1", "a key of the top level: model | init | optim"),
    (["+model.wdith=4"], "model.wdith", "4", "a key of model: depth | width"),
    (["+train.max_step=5"], "train.max_step", "5", "a key of train: max_steps"),
    (["+problem.rnak=2"], "problem.rnak", "2", "a key of problem: name | kind"),
    (["batch.seeds=0"], "batch.seeds", "0", "an integer ≥ 1"),
    (["batch.lrs=[0.1,-1]"], "batch.lrs", "[0.1, -1.0]", "a non-empty list of finite numbers > 0"),
    (["batch.init_scales=[]"], "batch.init_scales", "[]", "a non-empty list"),
    (["batch.check_every=0"], "batch.check_every", "0", "an integer ≥ 1"),
    (["batch.threads=0"], "batch.threads", "0", "auto | an integer ≥ 1 | null"),
    (
        ["optim=flow", "batch.seeds=2"],
        "optim.name",
        "'flow'",
        "gd | momentum | adam | group_rmsprop for a batch",
    ),
]
SIZES = [(), ("batch.seeds=10000",)]  # a single run is a batch of one; and a batch of 10⁴


@pytest.mark.parametrize(("overrides", "key", "value", "allowed"), CASES)
def test_bad_value_is_refused_with_key_value_and_allowed(
    overrides, key, value, allowed, compose_bare
):
    with pytest.raises(ConfigError) as error:
        validate(compose_bare(*overrides))
    message = str(error.value)
    assert error.value.key == key
    assert message.startswith(f"invalid config: {key}={value} — allowed: ")
    assert allowed in message.split(" — allowed: ", 1)[1]


def test_zero_loss_tol_means_run_to_max_steps(tmp_path, compose_bare):
    cfg = compose_bare(
        "train.loss_tol=0", "train.max_steps=7", "train.progress=false", "device=cpu"
    )
    validate(cfg)
    result = run(cfg, tmp_path)
    assert (result["status"], result["steps"]) == ("max_steps", 7)


def test_refused_before_any_work(tmp_path, compose_bare):
    with pytest.raises(ConfigError, match=re.escape("optim.lr=nan")):
        run(compose_bare("optim.lr=nan"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cuda_without_gpu_is_refused(monkeypatch, compose_bare):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as error:
        validate(compose_bare("device=cuda"))
    assert str(error.value) == (
        "invalid config: device='cuda' — allowed: auto | cpu (no CUDA GPU is visible on this "
        "machine)"
    )


def test_unknown_problem_is_refused_by_hydra_listing_the_problems(compose_bare):
    with pytest.raises(MissingConfigException) as error:
        compose_bare("problem=foo")
    message = str(error.value)
    assert "Could not find 'problem/foo'" in message
    options = message.split("Available options in 'problem':", 1)[1].split("Config search")[0]
    assert options.split() == [
        "completion_2x2",
        "least_squares",
        "matrix_completion",
        "matrix_sensing",
        "movielens",
    ]


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("model.foo=1", ["model.foo", "Key 'foo' not in 'ModelSchema'"]),
        ("train.max_steps=nan", ["train.max_steps", "'nan'", "could not be converted to Integer"]),
        ("model.depth=abc", ["model.depth", "'abc'", "could not be converted to Integer"]),
        ("problem=least_squares problem.rows=3", ["problem.rows", "not in 'LeastSquaresSchema'"]),
        ("problem=matrix_sensing problem.observed=3", ["problem.observed", "MatrixSensingSchema"]),
        (
            "problem=matrix_sensing problem.measurements=2.5",
            ["problem.measurements", "'2.5'", "could not be converted to Integer"],
        ),
    ],
)
def test_schema_refuses_unknown_keys_and_wrong_types_at_composition(override, words, compose_bare):
    with pytest.raises(ConfigCompositionException) as error:
        compose_bare(*override.split())
    message = f"{error.value}\n{error.value.__cause__}"
    for word in words:
        assert word in message


@pytest.mark.parametrize("size", SIZES)
def test_train_py_refuses_before_hydra_makes_the_run_folder(
    tmp_path, monkeypatch, size, train_here
):
    with pytest.raises(SystemExit) as refused:
        train_here(*size, "optim.lr=nan", f"hydra.run.dir={tmp_path / 'run'}")
    assert refused.value.code == "ConfigError: invalid config: optim.lr=nan — allowed: a number > 0"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch.seeds=0", "batch.seeds=0 — allowed: an integer ≥ 1"),
        ("batch.lrs=[0.1,-1]", "batch.lrs=[0.1, -1.0] — allowed: null or a non-empty list"),
        ("batch.check_every=0", "batch.check_every=0 — allowed: an integer ≥ 1"),
    ],
)
def test_a_bad_batch_key_is_refused_before_the_run_folder(
    tmp_path, monkeypatch, override, message, train_here
):
    with pytest.raises(SystemExit) as refused:
        train_here(override, f"hydra.run.dir={tmp_path / 'run'}")
    assert f"ConfigError: invalid config: {message}" in str(refused.value.code)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("size", SIZES)
def test_a_refused_resume_leaves_the_runs_record_alone(tmp_path, monkeypatch, size, train_here):
    short = (
        *size,
        "device=cpu",
        "train.progress=false",
        "train.max_steps=10",
        f"hydra.run.dir={tmp_path}",
    )
    train_here(*short)
    record = (tmp_path / ".hydra" / "config.yaml").read_text()
    with pytest.raises(SystemExit) as refused:
        train_here(*short, "seed=3")
    assert str(refused.value.code).startswith(
        f"FolderRefused: {tmp_path} holds another run; these keys differ: seed=3 (the run's: 0)"
    )
    assert (tmp_path / ".hydra" / "config.yaml").read_text() == record
