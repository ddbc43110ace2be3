"""The planted ground truth of the random problems (Arora et al. 2019, §5 and App. on matrix
sensing; their released ``gen_gt.py``): a rank-r matrix of entries with root mean square 1.

W* = √(m n) · U Vᵀ / ‖U Vᵀ‖_F with U ∈ ℝ^{m×r}, V ∈ ℝ^{n×r} of i.i.d. N(0, 1) entries, so that
‖W*‖_F = √(m n) exactly: the RMS of the m n entries is 1, not just 1 in expectation (for the
paper's 100×100 targets, ‖W*‖_F = 100).
"""

from __future__ import annotations

import torch
from torch import Tensor


def low_rank(rows: int, cols: int, rank: int, generator: torch.Generator) -> Tensor:
    """W* (float64, on the CPU) from U then V drawn from ``generator``."""
    U = torch.randn(rows, rank, generator=generator, dtype=torch.float64)
    V = torch.randn(cols, rank, generator=generator, dtype=torch.float64)
    W = U @ V.T
    return W * ((rows * cols) ** 0.5 / torch.linalg.matrix_norm(W))
