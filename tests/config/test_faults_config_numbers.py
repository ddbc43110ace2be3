"""Every number a config can hold is refused or honoured before any folder exists: budgets past
int64, a flow time whose steps do not fit, and data too large for memory (least squares'
X, counted by ``config/limits.py`` as matrix sensing's Aₖ are)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from implicit_reg import theory
from implicit_reg.config import limits
from implicit_reg.config.validate import ConfigError, validate
from implicit_reg.run import run, step_budget, steps_within


def test_a_step_budget_past_int64_is_refused_naming_the_key(compose_cfg) -> None:
    """Catches: 10²⁰ passing validation and overflowing in ``torch.full_like`` after the folder
    was made."""
    allowed = r"train\.max_steps=100000000000000000000 — allowed: an integer in \[1, 2\*\*63 − 1\]"
    with pytest.raises(ConfigError, match=allowed):
        validate(compose_cfg("train.max_steps=100000000000000000000"))
    validate(compose_cfg(f"train.max_steps={2**63 - 1}"))  # the largest is honoured


@pytest.mark.parametrize("max_time", [1e300, 1e30, float(2**62) * 0.1])
def test_a_flow_time_whose_steps_do_not_fit_sets_no_limit(max_time: float, compose_cfg) -> None:
    """Catches: the float-to-int conversion of max_time / lr overflowing to a negative budget
    (the run then took 0 steps and said ``max_steps``)."""
    cfg = compose_cfg("train.max_steps=100", f"train.max_time={max_time}")
    lr = torch.tensor([0.1, 0.05], dtype=torch.float64)
    assert step_budget(cfg, lr).tolist() == [100, 100]
    assert (steps_within(max_time, lr) > 0).all()


def test_a_run_with_an_endless_flow_time_takes_its_max_steps(tmp_path: Path, compose_cfg) -> None:
    result = run(compose_cfg("train.max_steps=30", "train.loss_tol=0", "train.max_time=1e300"),
                 tmp_path)  # fmt: skip
    assert (result["status"], result["steps"]) == ("max_steps", 30)


def test_least_squares_data_that_cannot_fit_is_refused_naming_n(
    monkeypatch: pytest.MonkeyPatch,
    compose_cfg,
) -> None:
    """n = 10⁹ samples of d = 40: X alone is 320 GB in float64. Catches: the memory check
    counting only matrix sensing's data (the run failed allocating after its folder existed)."""
    cfg = compose_cfg("problem=least_squares", "problem.n=1000000000")
    host, device = limits.data_bytes(cfg)
    n, d = 10**9, 40
    assert host == 8 * (4 * n * d + n) and device == 8 * (n * d + n + 2 * n)
    monkeypatch.setattr(limits, "available_host_bytes", lambda: 64 << 30)
    with pytest.raises(ConfigError, match=r"problem\.n=1000000000 — allowed: what fits in host"):
        limits.check(cfg)
    limits.check(compose_cfg("problem=least_squares", "problem.n=1000"))  # 0.3 MB: honoured


def test_the_least_squares_flow_without_the_n_by_n_basis_is_the_full_formula() -> None:
    """β_t from the reduced SVD equals seed eq. (6) evaluated with the full one (U n×n, V d×d),
    β₀ included, for n < d and n > d. Catches: the null-space part of β₀ dropped or decayed."""
    gen = torch.Generator().manual_seed(0)
    for n, d in [(3, 7), (9, 4)]:
        X = torch.randn(n, d, generator=gen, dtype=torch.float64)
        y = torch.randn(n, generator=gen, dtype=torch.float64)
        beta0 = torch.randn(2, d, generator=gen, dtype=torch.float64)
        U, s, Vh = torch.linalg.svd(X, full_matrices=True)
        t = 0.3
        sigma_t = torch.zeros(d, n, dtype=torch.float64)  # (Σ_t)ᵢᵢ = (1 − e^{−2tσᵢ²})/σᵢ
        decay = torch.ones(d, dtype=torch.float64)
        for i in range(len(s)):
            sigma_t[i, i] = (1 - torch.exp(-2 * t * s[i] ** 2)) / s[i]
            decay[i] = torch.exp(-2 * t * s[i] ** 2)
        full = Vh.T @ sigma_t @ U.T @ y + beta0 @ (Vh.T @ torch.diag(decay) @ Vh).T
        torch.testing.assert_close(
            theory.least_squares_flow(X, y, t, beta0), full, rtol=1e-10, atol=1e-12
        )
