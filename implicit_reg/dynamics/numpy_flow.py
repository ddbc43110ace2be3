"""The flow's right-hand side and its Jacobian in NumPy, for the problems whose ∇ℓ has a closed
form (matrix completion, least squares): ``flow.field=auto`` uses them.

On the small matrices of the seed's experiments every torch call is per-op overhead: one torch
field evaluation costs about as much as a whole gradient-descent step, one autograd Jacobian
n of them, and the stiff solver asks for thousands. Here the same formulas run on the solver's
own float64 vectors with 2-D ``ndarray.dot`` (NumPy's cheapest product on tiny matrices), with no
tensor conversions. The Jacobian is the complex-step derivative J e_k = Im f(y + i h e_k) / h of
the same code (Squire & Trapp 1998): no difference is taken, so h can be tiny and J is exact to
rounding. That needs f to be real-analytic in y, which both coordinate systems are once |σᵢ| is
written e^{rᵢ} (``svd_flow``). The torch coordinates stay the reference:
``tests/test_numpy_flow.py`` holds field and Jacobian equal to torch and autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from implicit_reg.dynamics.factor_flow import FactorCoordinates
from implicit_reg.dynamics.svd_flow import ORTHONORMAL_RATE, SvdCoordinates
from implicit_reg.problems import Problem

STEP = 1e-100
"""The complex step h: far below the rounding of any entry of y, far above the smallest double."""

Gradient = Callable[[np.ndarray], np.ndarray]
Field = Callable[[np.ndarray], np.ndarray]
Pair = tuple[np.ndarray, np.ndarray]


class NumpyFlow:
    """ẏ = ``field(y)``, its Jacobian and the loss of one run, on NumPy vectors (``field`` and
    ``matrix`` take real or complex y)."""

    def __init__(
        self,
        field: Field,
        matrix: Field,
        loss: Callable[[np.ndarray], float],
    ) -> None:
        self.field, self.matrix, self._loss = field, matrix, loss

    def jacobian(self, y: np.ndarray) -> np.ndarray:
        """∂ẏ/∂y, column k from one evaluation at y + i h e_k (the complex step)."""
        J = np.empty((len(y), len(y)))
        probe = y.astype(complex)
        for k in range(len(y)):
            probe[k] += 1j * STEP
            J[:, k] = self.field(probe).imag / STEP
            probe[k] = y[k]
        return J

    def loss(self, y: np.ndarray) -> float:
        return self._loss(self.matrix(y))


def numpy_flow(coordinates: object, problem: Problem) -> NumpyFlow | None:
    """The NumPy twin of ``coordinates`` (``FactorCoordinates`` or ``SvdCoordinates``) on
    ``problem``, or None where there is none (a problem without a closed-form gradient)."""
    closed_form = _closed_form(problem)
    if closed_form is None:
        return None
    gradient, loss = closed_form
    if isinstance(coordinates, FactorCoordinates):
        factors = _FactorField(coordinates.shapes, gradient)
        return NumpyFlow(factors, factors.matrix, loss)
    if isinstance(coordinates, SvdCoordinates):
        svd = _SvdField(coordinates, gradient)
        return NumpyFlow(svd, svd.matrix, loss)
    return None


def _closed_form(problem: Problem) -> tuple[Gradient, Callable[[np.ndarray], float]] | None:
    """(∇ℓ, ℓ) in NumPy, from the problem (completion: seed eq. 7; least squares: eq. 4)."""
    closed_form = getattr(problem, "numpy_closed_form", None)
    return closed_form() if closed_form is not None else None


class _FactorField:
    """``factor_flow.FactorCoordinates.field``: y = (vec W_1, …, vec W_L)."""

    def __init__(self, shapes: Sequence[tuple[int, int]], gradient: Gradient) -> None:
        ends = np.cumsum([0] + [rows * cols for rows, cols in shapes]).tolist()
        self.slices = [
            (slice(a, b), shape) for a, b, shape in zip(ends[:-1], ends[1:], shapes, strict=True)
        ]
        self.gradient = gradient

    def factors(self, y: np.ndarray) -> list[np.ndarray]:
        return [y[part].reshape(shape) for part, shape in self.slices]

    def matrix(self, y: np.ndarray) -> np.ndarray:
        factors = self.factors(y)
        W = factors[0]
        for factor in factors[1:]:
            W = factor.dot(W)
        return W

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Ẇⱼ = −(W_L ⋯ W_{j+1})ᵀ ∇ℓ(W) (W_{j−1} ⋯ W_1)ᵀ (seed Theorem 2)."""
        factors = self.factors(y)
        below, W = [], factors[0]  # below[j−1] = W_{j−1} ⋯ W_1 for j ≥ 2
        for factor in factors[1:]:
            below.append(W)
            W = factor.dot(W)
        above = -self.gradient(W)  # −(W_L ⋯ W_{j+1})ᵀ ∇ℓ(W), from j = L down
        out = np.empty_like(y)
        for j in range(len(factors) - 1, 0, -1):
            out[self.slices[j][0]] = above.dot(below[j - 1].T).ravel()
            above = factors[j].T.dot(above)
        out[self.slices[0][0]] = above.ravel()
        return out


class _SvdField:
    """``svd_flow.SvdCoordinates.field`` (eq. 16) with |σᵢ| = e^{rᵢ}: y = (vec U, vec V, r)."""

    def __init__(self, coordinates: SvdCoordinates, gradient: Gradient) -> None:
        (d, m), (e, _) = coordinates.shapes
        self.U, self.V = (d, m), (e, m)
        self.split = (d * m, (d + e) * m)
        self.eps, self.depth = coordinates.eps.cpu().numpy(), coordinates.depth
        self.eye, self.off = np.eye(m), 1 - np.eye(m)
        self.pull = 0.5 * ORTHONORMAL_RATE
        self.gradient = gradient

    def parts(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(U, V, r), U and V after one Newton–Schulz step towards orthonormality."""
        (U, _), (V, _), r = self._split(y)
        return U, V, r

    def _split(self, y: np.ndarray) -> tuple[Pair, Pair, np.ndarray]:
        """((U, U D_U), (V, V D_V), r) with D_Q = QᵀQ − I of the integrated Q: U, V after one
        Newton–Schulz step, Q(1.5I − 0.5QᵀQ) = Q − ½ Q D_Q, and Q D_Q for the stabilizing pull."""
        u, v = self.split
        out = []
        for Q in (y[:u].reshape(self.U), y[u:v].reshape(self.V)):
            drift = Q.dot(Q.T.dot(Q) - self.eye)
            out.append((Q - 0.5 * drift, drift))
        return out[0], out[1], y[v:]

    def matrix(self, y: np.ndarray) -> np.ndarray:
        U, V, r = self.parts(y)
        return (U * (self.eps * np.exp(r))).dot(V.T)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        (U, drift_U), (V, drift_V), r = self._split(y)
        sigma = self.eps * np.exp(r)
        grad = self.gradient((U * sigma).dot(V.T))
        grad_V, grad_U = grad.dot(V), grad.T.dot(U)
        G = U.T.dot(grad_V)
        a = np.exp(r * (2 / self.depth))  # |σᵢ|^{2/L}
        gap = a[:, None] - a[None, :] + self.eye  # aᵢ − a_k off the diagonal
        A = (G * sigma + G.T * sigma[:, None]) / gap * self.off
        B = (G * sigma[:, None] + G.T * sigma) / gap * self.off
        scale = self.eps * np.exp(r * (1 - 2 / self.depth))  # |σ|^{2−2/L} / σ
        dU = U.dot(A) - (grad_V - U.dot(U.T.dot(grad_V))) * scale
        dV = V.dot(B) - (grad_U - V.dot(V.T.dot(grad_U))) * scale
        dU -= self.pull * drift_U  # svd_flow.ORTHONORMAL_RATE
        dV -= self.pull * drift_V
        return np.concatenate([dU.ravel(), dV.ravel(), -self.depth * scale * G.diagonal()])
