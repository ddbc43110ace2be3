"""``debug=default``: a few steps on the CPU, anomaly detection, DEBUG logging, own folder."""

from __future__ import annotations

import importlib

import pytest
import torch

from implicit_reg import run

run_module = importlib.import_module("implicit_reg.run")


def test_debug_config_is_a_short_cpu_run_with_anomaly_detection(
    tmp_path, monkeypatch, compose_bare
):
    cfg = compose_bare(
        "debug=default", "problem=least_squares"
    )  # wins over the preset's 100000 steps
    assert (cfg.device, cfg.train.max_steps, cfg.train.detect_anomaly) == ("cpu", 100, True)
    seen = []
    real = run_module.descend

    def spy(*args, **kwargs):
        seen.append(torch.is_anomaly_enabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "descend", spy)
    result = run(cfg, tmp_path)
    assert seen == [True] and not torch.is_anomaly_enabled()
    assert result["steps"] == 100


@pytest.mark.slow
def test_debug_run_logs_verbosely_into_its_own_folder(tmp_path, train_cli):
    done = train_cli("debug=default", "train.max_steps=5", quiet=False, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "outputs" / "debug" / "runs").glob("*/*")
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["debug"]
    log = (folder / "train.log").read_text()
    assert "[implicit_reg.run][DEBUG] - step 5:" in log
    assert (folder / "metrics.json").exists()
