"""Matrix completion (seed eq. 7): fit the observed entries Ω of a d×d′ target.

ℓ(W) = ½ Σ_{(i,j)∈Ω} (W_ij − b_ij)².
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from implicit_reg.problems.ground_truth import low_rank


class MatrixCompletion:
    def __init__(
        self,
        target: Tensor,
        mask: Tensor,
        infimal_rank: int,
        name: str = "matrix_completion",
        truth_known: bool = False,
        max_tracked: int = 16,
    ) -> None:
        """``target`` holds b on Ω (and the ground truth elsewhere when ``truth_known``);
        ``mask`` is True on Ω."""
        self.name = name
        self.target = target
        self.mask = mask.to(torch.bool)
        self.weight = self.mask.to(target.dtype)
        self.shape = (int(target.shape[0]), int(target.shape[1]))
        self.infimal_rank = infimal_rank
        self.truth_known = truth_known
        self.ground_truth: Tensor | None = target if truth_known else None
        """W* where every entry is known (a random target, a full target with a mask), else None."""
        self.unobserved: list[tuple[int, int]] = [
            (int(i), int(j)) for i, j in (~self.mask).nonzero().tolist()
        ]
        self.tracked = self.unobserved[:max_tracked]
        self.observed: list[tuple[int, int]] = [
            (int(i), int(j)) for i, j in self.mask.nonzero().tolist()
        ]
        self._observed_values = [float(target[i, j]) for i, j in self.observed]

    def loss(self, W: Tensor) -> Tensor:
        return 0.5 * ((W - self.target) * self.weight).square().sum((-2, -1))

    def entry_loss(self, W: list[list[Tensor | None]]) -> Tensor:
        """ℓ from W given entry by entry (``W[i][j]`` a ``(runs,)`` vector; only Ω's are read),
        summed over Ω in row-major order: the entry-wise step's loss, with no stacking of W."""
        return self.entry_gradient(W)[0]

    def entry_gradient(
        self, W: list[list[Tensor | None]]
    ) -> tuple[Tensor, list[list[Tensor | None]]]:
        """ℓ (as ``entry_loss``) and ∇ℓ = P_Ω(W − b) (seed eq. 7) entry by entry, its entries off
        Ω None (zero): the hand-written entry-wise step's."""
        G: list[list[Tensor | None]] = [[None] * self.shape[1] for _ in range(self.shape[0])]
        for (i, j), b in zip(self.observed, self._observed_values, strict=True):
            G[i][j] = W[i][j] - b  # type: ignore[operator]
        terms = [G[i][j].square() for i, j in self.observed]  # type: ignore[union-attr]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return 0.5 * total, G

    def gradient(self, W: Tensor) -> Tensor:
        """∇ℓ(W) = P_Ω(W − b) (seed eq. 7), per leading run index."""
        return (W - self.target) * self.weight

    def numpy_closed_form(
        self,
    ) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], float]]:
        """(∇ℓ, ℓ) on one float64 ``ndarray`` W, for the flow's NumPy right-hand side."""
        target, weight = self.target.cpu().numpy(), self.weight.cpu().numpy()

        def loss(W: np.ndarray) -> float:
            residual = (W - target) * weight
            return 0.5 * float(np.vdot(residual, residual))

        return lambda W: (W - target) * weight, loss

    def test_loss(self, W: Tensor) -> Tensor:
        """½ Σ over the unobserved entries against the ground truth (when it is known)."""
        return 0.5 * ((W - self.target) * (1 - self.weight)).square().sum((-2, -1))

    def scalars(self, W: Tensor, flow_time: float, W0: Tensor | None) -> dict[str, Tensor]:
        out = {f"entries/{i + 1}_{j + 1}": W[..., i, j] for i, j in self.tracked}
        if self.truth_known and self.unobserved:
            out["loss/test"] = self.test_loss(W)
        return out

    def linear_measurements(self) -> tuple[Tensor, Tensor]:
        """Ω as ⟨A_k, W⟩ = W_ij = b_ij: A_k = e_i e_jᵀ for the k-th observed (i, j) in row-major
        order, as a sparse COO ``(K, rows, cols)`` (dense it would be K·rows·cols numbers);
        y ``(K,)`` the observed b_ij in the same order."""
        K = len(self.observed)
        index = torch.tensor([[k, i, j] for k, (i, j) in enumerate(self.observed)]).T
        ones = torch.ones(K, dtype=self.target.dtype)
        A = torch.sparse_coo_tensor(index, ones, (K, *self.shape), check_invariants=True).coalesce()
        return A.to(self.target.device), self.target[self.mask]

    def data(self) -> dict[str, Tensor]:
        return {"target": self.target.cpu(), "mask": self.mask.cpu()}


def parse_entries(entries: Sequence[Sequence[float | None]]) -> tuple[Tensor, Tensor]:
    """Target and mask from a nested list in which ``None`` marks an unobserved entry (the * of
    seed eq. 9); unobserved entries of the target are set to 0."""
    mask = torch.tensor([[v is not None for v in row] for row in entries])
    target = torch.tensor(
        [[0.0 if v is None else float(v) for v in row] for row in entries], dtype=torch.float64
    )
    return target, mask


def random_low_rank(
    rows: int, cols: int, rank: int, observed: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """The rank-``rank`` target W* of ``ground_truth.low_rank`` (‖W*‖_F = √(rows·cols): entries
    of RMS exactly 1, as in Arora et al. 2019) and a mask of ``observed`` entries drawn uniformly
    without replacement, after W* from the same ``generator``."""
    target = low_rank(rows, cols, rank, generator)
    chosen = torch.randperm(rows * cols, generator=generator)[:observed]
    mask = torch.zeros(rows * cols, dtype=torch.bool)
    mask[chosen] = True
    return target, mask.view(rows, cols)
