"""The end-to-end flow of seed eq. (14) in analytic-SVD coordinates (Lemma 3, eq. 15–16).

Under balanced init the product W = W_L ⋯ W_1 follows eq. (14). Write W = U diag(σ) Vᵀ with U
(d×m), V (d′×m) orthonormal and σᵢ = εᵢ e^{rᵢ} signed, εᵢ = ±1 fixed: the state is (U, V, r).
With Ĝ = Uᵀ∇ℓ(W)V, aᵢ = |σᵢ|^{2/L} and ⊥ the projection off the span of U (of V):

    ṙᵢ   = −L εᵢ |σᵢ|^{1−2/L} Ĝᵢᵢ                                        (eq. 16 divided by σᵢ)
    U̇    = U A − ⊥ ∇ℓ V diag(εᵢ|σᵢ|^{1−2/L}),   A_ik = (Ĝ_ik σ_k + Ĝ_ki σᵢ)/(aᵢ − a_k)
    V̇    = V B − ⊥ ∇ℓᵀ U diag(εᵢ|σᵢ|^{1−2/L}),  B_ik = (Ĝ_ik σᵢ + Ĝ_ki σ_k)/(aᵢ − a_k)

(from Uᵀ Ẇ V = A S + Ṡ − S B and eq. 14 in the SVD basis, where Σⱼ aᵢ^{j−1} a_k^{L−j} =
(σᵢ² − σ_k²)/(aᵢ − a_k)). A singular value never reaches zero, so for square W the sign of
det W = Πεᵢ · sign det U · sign det V (both +1 at the start) is exact: no rounding of O(1)
entries can flip it (Lemma 5). The rotations are singular where two |σᵢ| meet; ``check``
reports near-crossings.

**Keeping U and V orthonormal.** The exact flow stays on the orthonormal manifold, but nothing
in the equations above pulls a numerical state back to it. Late in a flow the solver's implicit
steps are h ≈ 10⁹ against a fastest rate λ ≈ L σ₁^{2−2/L} ≈ 10⁴ (h·λ ≈ 10¹³), and each linear
solve leaves errors of order 10⁻¹⁶·h·λ in U and V; at depth 2 they accumulated until a column
of V shrank through zero, det V flipped, ṙ₂ changed sign and r₂ overflowed. The field therefore
adds −(κ/2) Q (QᵀQ − I) to U̇ and V̇ (a Baumgarte-style stabilization, κ = ``ORTHONORMAL_RATE``):
zero on the manifold, so the flow is unchanged there, and a decay at rate κ of any drift off it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor

from implicit_reg import metrics
from implicit_reg.dynamics.loss_gradient import loss_gradient
from implicit_reg.init import balanced_factors
from implicit_reg.problems import Problem

NEAR_CROSSING = 1e-6
"""Relative gap min |aᵢ − a_k| / max(aᵢ, a_k) below which the rotation rates are flagged."""

ORTHONORMAL_RATE = 1.0
"""κ: the rate (per unit flow time) at which drift of U, V off the orthonormal manifold decays.
Any κ > 0 keeps the exact solution; at h·κ ≫ 1 the implicit solver removes the drift within a
step, and at early times (h ≪ 1) there is no drift to remove."""


class SvdCoordinates:
    """The state vector (U, V, r) of one run and what the solver loop needs from it."""

    def __init__(self, problem: Problem, W0: Tensor, depth: int) -> None:
        if depth < 2:
            raise ValueError("svd coordinates need model.depth ≥ 2 (eq. 14)")
        self.problem, self.depth = problem, depth
        U, s, Vh = torch.linalg.svd(W0, full_matrices=False)
        if (s <= 0).any() or _relative_gap(s.log().cpu().numpy() * (2 / depth)) == 0:
            raise ValueError(
                f"svd coordinates need distinct nonzero singular values, W(0) has {s.tolist()}"
            )
        V, eps = Vh.mT.clone(), torch.ones_like(s)
        if W0.shape[0] == W0.shape[1]:  # det U = det V = +1, so that sign(det W) = Πεᵢ
            for Q in (U, V):
                if torch.linalg.det(Q) < 0:
                    Q[:, -1] *= -1
                    eps[-1] *= -1
        self.eps = eps
        self.shapes = (U.shape, V.shape)
        self.y0 = torch.cat([U.flatten(), V.flatten(), s.log()])
        self.min_gap = math.inf
        self.near_crossing_at: float | None = None

    def split(self, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(U, V, r) exactly as the solver integrates them."""
        (d, m), (e, _) = self.shapes
        return y[: d * m].view(d, m), y[d * m : d * m + e * m].view(e, m), y[d * m + e * m :]

    def unpack(self, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(U, V, σ) with U, V put back on the orthonormal manifold to first order in the drift
        of the integrated state (one Newton–Schulz step towards the polar factor)."""
        U, V, r = self.split(y)
        return _orthonormal(U), _orthonormal(V), self.eps * r.exp()

    def matrix(self, y: Tensor) -> Tensor:
        U, V, sigma = self.unpack(y)
        return (U * sigma) @ V.mT

    def field(self, y: Tensor) -> Tensor:
        """ẏ: the right-hand side above (written with torch ops only, so autograd gives its
        Jacobian)."""
        U, V, sigma = self.unpack(y)
        grad = loss_gradient(self.problem, (U * sigma) @ V.mT)
        G = U.mT @ grad @ V
        magnitude = sigma.abs()
        a = magnitude.pow(2 / self.depth)
        eye = torch.eye(len(a), dtype=a.dtype, device=a.device)
        gap = a[:, None] - a[None, :] + eye  # aᵢ − a_k off the diagonal (the diagonal is unused)
        A = (G * sigma[None, :] + G.mT * sigma[:, None]) / gap * (1 - eye)
        B = (G * sigma[:, None] + G.mT * sigma[None, :]) / gap * (1 - eye)
        scale = self.eps * magnitude.pow(1 - 2 / self.depth)  # |σ|^{2−2/L} / σ
        dU = U @ A - _off_span(U, grad @ V) * scale
        dV = V @ B - _off_span(V, grad.mT @ U) * scale
        dr = -self.depth * scale * G.diagonal()
        U_raw, V_raw, _ = self.split(y)
        dU = dU - _drift(U_raw, eye)
        dV = dV - _drift(V_raw, eye)
        return torch.cat([dU.flatten(), dV.flatten(), dr])

    def exact(self, y: Tensor) -> dict[str, Tensor]:
        """Scalars the coordinates know better than W's entries do: the singular values (the
        smallest may be far below the rounding of the largest, and below the smallest double:
        ``log_singular_values/<i>`` = rᵢ keeps what σᵢ = 0 would hide), the ranks computed
        from them, and det W: its sign Πεᵢ · sign det U · sign det V from the integrated U and
        V, and ``det/log_abs`` = Σrᵢ = log|det W|."""
        U, V, r = self.split(y)
        order = r.argsort(descending=True)
        s = r[order].exp()
        out = {f"singular_values/{i + 1}": s[i] for i in range(len(s))}
        out.update({f"log_singular_values/{i + 1}": r[k] for i, k in enumerate(order)})
        out["rank/effective"] = metrics.effective_rank_from_singular_values(s)
        out["rank/infimal_distance"] = metrics.infimal_distance_from_singular_values(
            s, self.problem.infimal_rank
        )
        if self.shapes[0][0] == self.shapes[1][0]:
            sign = self.eps.prod() * torch.linalg.det(U).sign() * torch.linalg.det(V).sign()
            out["det/sign"] = sign
            out["det/value"] = sign * r.sum().exp()
            out["det/log_abs"] = r.sum()
        return out

    def factors(self, y: Tensor, shapes: list[tuple[int, int]]) -> list[Tensor]:
        """A balanced factorization of W(y) (``init.balanced_factors``: W_1 = diag(|σᵢ|^{1/L})
        diag(εᵢ) Vᵀ, W_j = diag(|σᵢ|^{1/L}), W_L = U diag(|σᵢ|^{1/L}), zero-padded to the hidden
        width; the factor flow's own factors differ from these by rotations of the hidden
        spaces)."""
        U, V, sigma = self.unpack(y)
        return balanced_factors(U, sigma.abs(), self.eps[:, None] * V.mT, shapes)

    def check(self, y: np.ndarray, t: float) -> None:
        """Track the smallest relative gap between the aᵢ = |σᵢ|^{2/L} = e^{2rᵢ/L}; warn once
        below ``NEAR_CROSSING``, where the rotation rates (1/(aᵢ − a_k)) are about to blow up."""
        gap = _relative_gap(y[-len(self.eps) :] * (2 / self.depth))
        self.min_gap = min(self.min_gap, gap)
        if gap < NEAR_CROSSING and self.near_crossing_at is None:
            self.near_crossing_at = t
            warnings.warn(
                f"flow.coordinates=svd: singular values nearly cross at flow time {t:.6g} "
                f"(relative gap {gap:.3g}); the SVD rotations are ill-conditioned there "
                "(see metrics.json svd_near_crossing_at_time); flow.coordinates=factors "
                "integrates through crossings",
                RuntimeWarning,
                stacklevel=2,
            )

    def record(self) -> dict[str, str | float | None]:
        return {
            "flow_coordinates": "svd",
            "svd_min_gap": self.min_gap,
            "svd_near_crossing_at_time": self.near_crossing_at,
        }


def _orthonormal(Q: Tensor) -> Tensor:
    return Q @ (1.5 * torch.eye(Q.shape[-1], dtype=Q.dtype, device=Q.device) - 0.5 * Q.mT @ Q)


def _drift(Q: Tensor, eye: Tensor) -> Tensor:
    """(κ/2) Q (QᵀQ − I): minus the stabilizing pull towards orthonormal columns (module doc)."""
    return (0.5 * ORTHONORMAL_RATE) * Q @ (Q.mT @ Q - eye)


def _off_span(Q: Tensor, X: Tensor) -> Tensor:
    """(I − QQᵀ) X: zero for square Q, the out-of-span rotation for a rectangular W."""
    return X - Q @ (Q.mT @ X)


def _relative_gap(log_a: np.ndarray) -> float:
    """min over i ≠ k of |aᵢ − a_k| / max(aᵢ, a_k) = 1 − e^{−|log aᵢ − log a_k|}, from log a (no
    underflow when the smallest σᵢ is far below the largest)."""
    if len(log_a) < 2:
        return math.inf
    diff = np.abs(log_a[:, None] - log_a[None, :])
    np.fill_diagonal(diff, math.inf)
    return float(-np.expm1(-diff.min()))
