"""Matrix sensing (Arora et al. 2019, App. on matrix sensing): recover a rank-r W* ∈ ℝ^{m×n}
from K linear measurements yₖ = ⟨Aₖ, W*⟩,

ℓ(W) = ½ Σₖ (⟨Aₖ, W⟩ − yₖ)²,   ∇ℓ(W) = Σₖ rₖ Aₖ,   rₖ = ⟨Aₖ, W⟩ − yₖ.

Matrix completion (seed eq. 7) is the case where each Aₖ is one indicator eᵢeⱼᵀ; here the Aₖ are
dense Gaussian. The measurements are held flattened, A ∈ ℝ^{K×mn}, so that ⟨Aₖ, W⟩ for a stack of
runs is one matrix product.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from implicit_reg.problems.ground_truth import low_rank


class MatrixSensing:
    def __init__(
        self,
        A: Tensor,
        y: Tensor,
        ground_truth: Tensor,
        infimal_rank: int,
        name: str = "matrix_sensing",
    ) -> None:
        """``A`` the measurement matrices ``(K, rows, cols)``, ``y`` the measurements ``(K,)``,
        ``ground_truth`` the W* they were taken of."""
        self.name = name
        self.shape = (int(A.shape[1]), int(A.shape[2]))
        self.A = A.reshape(A.shape[0], -1)  # (K, rows·cols): row k is vec Aₖ (row-major)
        self.y = y
        self.ground_truth: Tensor | None = ground_truth
        self.infimal_rank = infimal_rank

    def residual(self, W: Tensor) -> Tensor:
        """rₖ = ⟨Aₖ, W⟩ − yₖ, ``(..., K)`` for W ``(..., rows, cols)``."""
        return W.flatten(-2) @ self.A.T - self.y

    def loss(self, W: Tensor) -> Tensor:
        return 0.5 * self.residual(W).square().sum(-1)

    def gradient(self, W: Tensor) -> Tensor:
        """∇ℓ(W) = Σₖ rₖ Aₖ, per leading run index."""
        return (self.residual(W) @ self.A).unflatten(-1, self.shape)

    def numpy_closed_form(
        self,
    ) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], float]]:
        """(∇ℓ, ℓ) on one float64 ``ndarray`` W, for the flow's NumPy right-hand side (``dot``
        only, so that it also takes the complex W of a complex-step derivative)."""
        A, y, shape = self.A.cpu().numpy(), self.y.cpu().numpy(), self.shape

        def loss(W: np.ndarray) -> float:
            residual = A.dot(W.reshape(-1)) - y
            return 0.5 * float(residual.dot(residual))

        return lambda W: (A.dot(W.reshape(-1)) - y).dot(A).reshape(shape), loss

    def linear_measurements(self) -> tuple[Tensor, Tensor]:
        """(A ``(K, rows, cols)``, y ``(K,)``): the fit is ⟨Aₖ, W⟩ = yₖ for every k."""
        return self.A.unflatten(-1, self.shape), self.y

    def scalars(self, W: Tensor, flow_time: float, W0: Tensor | None) -> dict[str, Tensor]:
        """None of its own: ``error/reconstruction`` comes with every known ground truth
        (``implicit_reg.scalars``)."""
        return {}

    def data(self) -> dict[str, Tensor]:
        """y alone: A (K·rows·cols numbers, 400 MB in float64 at the paper's 100×100 with 5,000
        measurements) is rebuilt bit for bit by ``build_problem`` from the saved config, as it is
        drawn on the CPU from ``problem.seed``; ``ground_truth`` is saved beside y."""
        return {"y": self.y.cpu()}


def random_data(
    rows: int, cols: int, rank: int, measurements: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """(A, y, W*) as in Arora et al.'s released ``gen_obs.py``, for any m×n: W* of
    ``ground_truth.low_rank`` (‖W*‖_F = √(mn)), then Aₖ of i.i.d. N(0, 1/(mn)) entries (1/n² at
    their n×n), so that given W* each yₖ = ⟨Aₖ, W*⟩ ~ N(0, ‖W*‖²_F/(mn)) = N(0, 1): measurements
    of RMS 1, independent across k. Float64, on the CPU, from ``generator`` alone."""
    truth = low_rank(rows, cols, rank, generator)
    A = torch.randn(measurements, rows, cols, generator=generator, dtype=torch.float64)
    A /= (rows * cols) ** 0.5
    y = (A.flatten(1) @ truth.flatten()).contiguous()
    return A, y, truth
