"""Configs that cannot run (seeds past int64, an initial product that under- or overflows, more
memory than the machine has) are refused by ``train.py`` before any folder exists, in one line
naming the key, the value and what is allowed."""

from __future__ import annotations

import pytest

from implicit_reg.config import limits
from implicit_reg.config.validate import ConfigError

SHORT = ("device=cpu", "train.progress=false", "train.max_steps=20")
CASES = [
    # (overrides, start of the message, words of the "allowed" part)
    (["model.depth=10000"], "init.scale=0.01", "0.01^10000 = 1e-20000, which underflows to 0"),
    (["init.scale=1e200"], "init.scale=1e+200", "1e+200^3 = 1e600, which makes the loss overflow"),
    (["dtype=float32", "init.scale=1e-20"], "init.scale=1e-20", "in float32"),
    (["batch.init_scales=[0.1,1e-150]"], "batch.init_scales=1e-150", "underflows to 0"),
    (
        ["dtype=float32", "batch.end_to_end_scales=[1e-3,1e-40]"],
        "batch.end_to_end_scales=1e-40",
        "underflows",
    ),
    (["model.width=50000"], "model.width=50000", "what fits in host memory"),
    (["batch.seeds=1000000000"], "batch.seeds=1000000000", "GiB is available"),
    (["seed=99999999999999999999"], "seed=99999999999999999999", "[0, 2**63 − 1]"),
    (["seed=9223372036854775807", "batch.seeds=2"], "seed=", "2**63 − 2] with batch.seeds=2"),
    (["problem.seed=9223372036854775808"], "problem.seed=", "[0, 2**63 − 1]"),
]


@pytest.mark.parametrize(("overrides", "start", "words"), CASES)
def test_train_py_refuses_before_the_run_folder_exists(
    tmp_path, monkeypatch, overrides, start, words, train_here
):
    with pytest.raises(SystemExit) as refused:
        train_here(*overrides, *SHORT, f"hydra.run.dir={tmp_path / 'run'}")
    message = str(refused.value.code)
    assert message.startswith(f"ConfigError: invalid config: {start}") and words in message
    assert "\n" not in message
    assert not (tmp_path / "run").exists()


def test_the_limits_hold_at_their_edges(compose_bare):
    limits.check(compose_bare("model.depth=150", "init.scale=0.01"))  # 1e-300: a normal float64
    with pytest.raises(ConfigError, match="underflows"):
        limits.check(compose_bare("model.depth=155", "init.scale=0.01"))
    with pytest.raises(ConfigError, match="overflow"):  # W(0) ~ 1e200 is finite, its loss is not
        limits.check(compose_bare("model.depth=1", "init.scale=1e200"))
    limits.check(compose_bare("model.depth=1", "init.scale=1e150"))
    limits.check(compose_bare("seed=9223372036854775807"))


def test_the_memory_limit_prints_the_estimate_and_what_is_available(monkeypatch, compose_bare):
    runs, shapes = 10**6, [(2, 2)] * 3
    need = limits.estimate_bytes(runs, shapes)
    assert need == runs * (12 * limits.BYTES_PER_ENTRY + limits.BYTES_PER_RUN)
    adam = limits.estimate_bytes(runs, shapes, "adam")  # its two moments, and their snapshot
    assert adam == need + runs * 12 * limits.STATE_BYTES_PER_ENTRY["adam"]
    monkeypatch.setattr(limits, "available_host_bytes", lambda: need)
    with pytest.raises(ConfigError) as refused:
        limits.check(compose_bare(f"batch.seeds={runs}", "device=cpu"))
    assert "batch.seeds=1000000" in str(refused.value)
    assert f"need about {(need + limits.BASE_BYTES) / 2**30:.1f} GiB" in str(refused.value)
    monkeypatch.setattr(limits, "available_host_bytes", lambda: need + limits.BASE_BYTES)
    limits.check(compose_bare(f"batch.seeds={runs}", "device=cpu"))
    with pytest.raises(ConfigError, match="need about"):  # Adam's state does not fit there
        limits.check(compose_bare(f"batch.seeds={runs}", "device=cpu", "optim=adam"))


def test_sensing_data_that_cannot_fit_is_refused_naming_measurements(monkeypatch, compose_bare):
    """5,000 measurements of 100×100 are 4·10⁸ B in float64: refused with 0.25 GiB free after the
    process, accepted with 0.5 GiB (the runs themselves need under 0.01 GiB)."""
    cfg = compose_bare("problem=matrix_sensing", "problem.rows=100", "problem.cols=100")
    cfg.problem.measurements = 5000
    assert limits.data_bytes(cfg) == (4 * 10**8, 4 * 10**8)
    monkeypatch.setattr(limits, "available_host_bytes", lambda: limits.BASE_BYTES + (1 << 28))
    with pytest.raises(ConfigError, match=r"problem\.measurements=5000 — allowed: what fits"):
        limits.check(cfg)
    monkeypatch.setattr(limits, "available_host_bytes", lambda: limits.BASE_BYTES + (1 << 29))
    limits.check(cfg)
