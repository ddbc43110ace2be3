"""How the loss gradient sits in the singular basis of W: the diagonal and the off-diagonal of
|Uᵀ ∇ℓ(W) V|, with W = U S Vᵀ the (reduced) SVD (Arora, Cohen, Hu & Luo 2019, Fig. 3).

The diagonal drives the singular values: σ̇ᵣ = −L (σᵣ²)^{1−1/L} ⟨∇ℓ(W), uᵣ vᵣᵀ⟩ (Arora et al.
2019, Theorem 3; seed eq. 16), and ⟨∇ℓ(W), uᵣ vᵣᵀ⟩ = (Uᵀ ∇ℓ(W) V)ᵣᵣ. The off-diagonal entries
(Uᵀ ∇ℓ V)ᵣᵣ′, r ≠ r′, turn the singular vectors (their § 3, the dynamics of U and V): where
they are small against the diagonal, the gradient is nearly diagonal in W's singular basis and
mostly moves the singular values. Their code logs the mean and the standard deviation of each
part over its entries (``diag/mean``,
``diag/std``, ``off_diag/mean``, ``off_diag/std``), for the gradient of their mean squared error
(completion: ours divided by the number of observations K, as their gradient of W is the
residual over K; the ratio of the two parts is the same). Here ∇ℓ is that of the loss being
trained, ``Problem.gradient``.
"""

from __future__ import annotations

import torch
from torch import Tensor

TAGS = (
    "alignment/diag_mean",
    "alignment/diag_std",
    "alignment/offdiag_mean",
    "alignment/offdiag_std",
)
"""The logged tags, in the order ``gradient_alignment`` returns them."""


def gradient_alignment(W: Tensor, gradient: Tensor) -> dict[str, Tensor]:
    """Mean and standard deviation (Bessel-corrected, as ``torch.std``) of the k diagonal and
    the k² − k off-diagonal entries of |Uᵀ G V|, k = min(rows, cols), for W ``(*runs, rows,
    cols)`` and its loss gradient G of the same shape; each ``(*runs,)``. An entry set of one
    number has no standard deviation (NaN), and a 1×k W no off-diagonal (NaN)."""
    U, _, Vh = torch.linalg.svd(W, full_matrices=False)
    M = (U.mT @ gradient @ Vh.mT).abs()
    k = M.shape[-1]
    diag = M.diagonal(dim1=-2, dim2=-1)
    off = M[..., ~torch.eye(k, dtype=torch.bool, device=M.device)]  # (*runs, k² − k)
    parts = (diag.mean(-1), diag.std(-1), off.mean(-1), off.std(-1))
    return dict(zip(TAGS, parts, strict=True))
