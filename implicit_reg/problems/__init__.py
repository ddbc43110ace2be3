"""Problems: least squares, matrix completion (the 2×2 problem of seed eq. 9 is a preset),
matrix sensing, and the completion of MovieLens 100K's ratings."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from implicit_reg.problems.base import Problem
from implicit_reg.problems.least_squares import LeastSquares
from implicit_reg.problems.least_squares import random_data as least_squares_data
from implicit_reg.problems.matrix_completion import (
    MatrixCompletion,
    parse_entries,
    random_low_rank,
)
from implicit_reg.problems.matrix_sensing import MatrixSensing
from implicit_reg.problems.matrix_sensing import random_data as sensing_data
from implicit_reg.problems.movielens import movielens_problem

__all__ = ["LeastSquares", "MatrixCompletion", "MatrixSensing", "Problem", "build_problem"]

KINDS = ("least_squares", "matrix_completion", "matrix_sensing", "movielens")


def build_problem(
    cfg: DictConfig, device: torch.device, dtype: torch.dtype, max_tracked: int = 16
) -> Problem:
    """The problem a ``problem`` config node describes; its data come from ``problem.seed``
    alone, so changing the init or its seed keeps the same problem."""
    generator = torch.Generator().manual_seed(int(cfg.seed))
    if cfg.kind == "least_squares":
        X, y = least_squares_data(int(cfg.n), int(cfg.d), generator)
        return LeastSquares(
            X.to(device, dtype), y.to(device, dtype), name=cfg.name, max_tracked=max_tracked
        )
    if cfg.kind == "matrix_completion":
        return _completion(cfg, generator, device, dtype, max_tracked)
    if cfg.kind == "matrix_sensing":
        A, y, truth = sensing_data(
            int(cfg.rows), int(cfg.cols), int(cfg.rank), int(cfg.measurements), generator
        )
        return MatrixSensing(
            A.to(device, dtype),
            y.to(device, dtype),
            truth.to(device, dtype),
            infimal_rank=int(cfg.rank),
            name=cfg.name,
        )
    if cfg.kind == "movielens":  # the user's file: no data seed
        return movielens_problem(
            cfg.path, int(cfg.rows), int(cfg.cols), int(cfg.infimal_rank), device, dtype,
            name=cfg.name, max_tracked=max_tracked,
        )  # fmt: skip
    raise ValueError(f"problem.kind must be one of {KINDS}, got {cfg.kind!r}")


def _completion(
    cfg: DictConfig,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
    max_tracked: int,
) -> MatrixCompletion:
    if cfg.get("target") is not None:
        target, known = parse_entries(OmegaConf.to_container(cfg.target))
        if cfg.get("mask") is not None:
            mask = torch.tensor(OmegaConf.to_container(cfg.mask)).to(torch.bool)
            truth_known = bool(known.all())
        else:
            mask, truth_known = known, False
        rank = cfg.infimal_rank
    else:
        target, mask = random_low_rank(
            int(cfg.rows), int(cfg.cols), int(cfg.rank), int(cfg.observed), generator
        )
        truth_known = True
        # Infimal rank of a random completion problem: the rank of the generated target.
        # Enough observed entries make it the smallest rank that fits them (Arora et al. 2019).
        rank = cfg.infimal_rank if cfg.get("infimal_rank") is not None else cfg.rank
    return MatrixCompletion(
        target.to(device, dtype),
        mask.to(device),
        infimal_rank=int(rank),
        name=cfg.name,
        truth_known=truth_known,
        max_tracked=max_tracked,
    )
