"""Recompute a sweep's final metrics from its ``final.pt`` files with NumPy alone, and compare
them with what the runs wrote (``runs.csv`` for a batch, ``metrics.json`` for a single run such as
the nuclear-norm minimizer). Nothing of ``implicit_reg`` is used for the numbers: the product
W_L ⋯ W_1 in float64, ℓ = ½Σ_Ω(W_ij − b_ij)², ‖W − W*‖_F/‖W*‖_F, the singular values, ‖W‖_*,
erank = exp(H(σ/Σσ)) (Roy & Vetterli 2007) and D(W, M_r) = √(Σ_{i>r} σᵢ²).

    python benchmarks/recompute_finals.py outputs/experiments/arora2019_completion/<time>

Prints, per job, the largest relative difference of each metric over its runs; float32 runs
agree to ~1e-6 (the product and the SVD in float32 against float64).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch

COLUMNS = (
    "loss/train",
    "error/reconstruction",
    "norm/nuclear",
    "norm/fro",
    "rank/effective",
    "rank/infimal_distance",
)


def recompute(final: dict, rank: int) -> dict[str, np.ndarray]:
    """The metrics of every run in a ``final.pt`` (a batch's or a single run's)."""
    if "factors" in final:
        factors = [np.asarray(f, dtype=np.float64) for f in final["factors"]]
        factors = [f if f.ndim == 3 else f[None] for f in factors]
        W = factors[0]
        for f in factors[1:]:
            W = np.einsum("kij,kjl->kil", f, W)
    else:  # the nuclear-norm minimizer: W alone
        W = np.asarray(final["W"], dtype=np.float64)[None]
    truth = np.asarray(final["ground_truth"], dtype=np.float64)
    if "mask" in final:
        mask = np.asarray(final["mask"], dtype=bool)
        loss = 0.5 * ((W - np.asarray(final["target"], dtype=np.float64))[:, mask] ** 2).sum(-1)
    else:
        loss = np.full(len(W), np.nan)  # sensing: A is rebuilt from the config, not saved
    s = np.linalg.svd(W, compute_uv=False)
    p = s / s.sum(-1, keepdims=True)
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(-1)
    return {
        "loss/train": loss,
        "error/reconstruction": np.linalg.norm(W - truth, axis=(1, 2)) / np.linalg.norm(truth),
        "norm/nuclear": s.sum(-1),
        "norm/fro": np.sqrt((s**2).sum(-1)),
        "rank/effective": np.exp(entropy),
        "rank/infimal_distance": np.sqrt((s[:, rank:] ** 2).sum(-1)),
    }


def written(job: Path) -> dict[str, np.ndarray]:
    """What the job wrote for the same metrics, run by run."""
    if (job / "runs.csv").exists():
        with (job / "runs.csv").open() as f:
            rows = list(csv.DictReader(f))
        return {c: np.array([float(r[c]) for r in rows]) for c in COLUMNS if c in rows[0]}
    metrics = json.loads((job / "metrics.json").read_text())
    return {c: np.array([metrics[c]]) for c in COLUMNS if c in metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--rank", type=int, default=5, help="r of D(W, M_r)")
    args = parser.parse_args()
    print(f"| job | runs | {' | '.join(COLUMNS)} |")
    print("|---|---:|" + "---:|" * len(COLUMNS))
    jobs = sorted(args.sweep.glob("*/final.pt"), key=lambda p: int(p.parent.name.split("_")[0]))
    for final_pt in jobs:  # job folders are N or N_key=value,…
        final = torch.load(final_pt, weights_only=True)
        mine, theirs = recompute(final, args.rank), written(final_pt.parent)
        cells = []
        for c in COLUMNS:
            if c not in theirs or np.isnan(mine[c]).all():
                cells.append("–")
                continue
            rel = np.abs(mine[c] - theirs[c]) / np.maximum(np.abs(mine[c]), 1e-30)
            cells.append(f"{rel.max():.1e}")
        print(f"| {final_pt.parent.name} | {len(mine['norm/fro'])} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
