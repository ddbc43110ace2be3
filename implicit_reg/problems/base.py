"""What every problem provides to the training loop, the logger and the output writer."""

from __future__ import annotations

from typing import Protocol

from torch import Tensor


class Problem(Protocol):
    """A loss on an end-to-end matrix W, ``(rows, cols)`` or a batch ``(..., rows, cols)``.

    Optional methods, looked up with ``getattr``: ``numpy_closed_form()`` (∇ℓ and ℓ in NumPy, for
    ``flow.field=numpy``) and, where the observations are linear in W (completion, sensing),
    ``linear_measurements() -> (A, y)``: A ``(K, rows, cols)`` and y ``(K,)`` such that a zero
    loss means ⟨Aₖ, W⟩ = yₖ for every k.
    """

    name: str
    shape: tuple[int, int]
    infimal_rank: int
    """r in D(W, M_r): the smallest rank the set of zero-loss solutions approaches."""
    ground_truth: Tensor | None
    """The planted W* where it is known (random completion, sensing), else None; every run then
    logs ``error/reconstruction`` = ‖W − W*‖_F / ‖W*‖_F and saves it in ``final.pt``."""

    def loss(self, W: Tensor) -> Tensor:
        """The objective at W, one value per leading index."""
        ...

    def gradient(self, W: Tensor) -> Tensor:
        """∇ℓ(W) in closed form, one per leading index (the opt-in fused step, the flow)."""
        ...

    def scalars(self, W: Tensor, flow_time: float, W0: Tensor | None) -> dict[str, Tensor]:
        """Problem-specific TensorBoard scalars. ``W0`` is the start when W follows its own flow
        (depth 1), else None."""
        ...

    def linear_measurements(self) -> tuple[Tensor, Tensor]:
        """The observations as linear equations ⟨A_k, W⟩ = y_k, k = 1 … K: ``A`` ``(K, rows,
        cols)`` (dense, or a sparse COO tensor where each A_k has few nonzeros, as completion's
        e_i e_jᵀ) and ``y`` ``(K,)``; ``optim=nuclear_norm`` fits them exactly. Matrix problems
        only: least squares fits a vector β, and that baseline refuses it."""
        ...

    def data(self) -> dict[str, Tensor]:
        """The problem data saved in ``final.pt`` so that any metric can be recomputed."""
        ...
