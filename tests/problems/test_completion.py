"""Deep matrix factorization on the 2×2 problem of seed eq. (9) and on random completions."""

import math

import pytest
import torch

from implicit_reg.init import sample_factors
from implicit_reg.record.events import read_scalars


def test_default_2x2_norms_grow_rank_falls_det_stays_positive(train_run) -> None:
    metrics, out = train_run("train.loss_tol=1e-2")
    logged = read_scalars(out)
    assert metrics["status"] == "converged"
    assert metrics["loss/train"] < 1e-2
    assert abs(metrics["entries/1_1"]) > 5
    # eq. (20): on the det > 0 branch |W11| ≥ 1/√(2ℓ) − 2 + √(2ℓ)
    root = math.sqrt(2 * metrics["loss/train"])
    assert abs(metrics["entries/1_1"]) >= 1 / root - 2 + root
    erank = logged["rank/effective"][1]
    assert erank[-1] < 1 + 1e-3 < max(erank)
    assert (logged["det/sign"][1] > 0).all()
    assert metrics["norm/nuclear"] >= metrics["norm/fro"] >= metrics["norm/spectral"] > 5
    assert metrics["rank/infimal_distance"] < 0.1
    final = torch.load(out / "final.pt", weights_only=True)
    W = final["W"]
    assert torch.allclose(W, final["factors"][2] @ final["factors"][1] @ final["factors"][0])
    assert torch.equal(final["mask"], torch.tensor([[False, True], [True, True]]))


def test_depth_one_completion_does_not_touch_the_unobserved_entry(train_run) -> None:
    metrics, _ = train_run(
        "model.depth=1", "train.max_steps=2000", "train.loss_tol=0", "optim.lr=0.1"
    )
    (start,) = sample_factors("balanced", 1e-2, "positive", [(2, 2)], seed=0)
    # depth 1: ∇ℓ is zero on the unobserved entry, so W11 keeps its initial value
    assert metrics["entries/1_1"] == start[0, 0].item()
    assert metrics["status"] == "max_steps"
    assert metrics["loss/train"] < 1e-20


def test_random_low_rank_completion_finds_a_low_rank_fit(train_run) -> None:
    metrics, out = train_run(
        "problem=matrix_completion",
        "problem.rows=6",
        "problem.cols=6",
        "problem.rank=1",
        "problem.observed=24",
        "model.depth=2",
        "init.scale=1e-3",
        "optim.lr=0.05",
        "train.loss_tol=1e-6",
        "train.max_steps=20000",
    )
    final = torch.load(out / "final.pt", weights_only=True)
    assert int(final["mask"].sum()) == 24
    assert torch.linalg.matrix_rank(final["target"]).item() == 1
    assert metrics["status"] == "converged"
    assert metrics["rank/effective"] < 1.1
    # recovery of the unobserved entries (Arora et al. 2019): far better than the zero guess
    unobserved = ~final["mask"]
    zero_guess = 0.5 * final["target"][unobserved].square().sum().item()
    assert metrics["loss/test"] < 0.05 * zero_guess
    # the random target is the ground truth: saved, and its relative error logged
    assert torch.equal(final["ground_truth"], final["target"])
    truth = final["ground_truth"]
    expected = ((final["W"] - truth).norm() / truth.norm()).item()
    assert metrics["error/reconstruction"] == pytest.approx(expected, rel=1e-9)
