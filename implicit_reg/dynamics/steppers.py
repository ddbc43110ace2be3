"""How a stack of runs computes its loss and takes a gradient step: the same arithmetic per run,
laid out for the size at hand. Every stepper holds the factors of K runs, evaluates ℓ_k at them
(seed eqs. 3/7 on W = W_L ⋯ W_1, eq. 8) with the gradient, and takes x ← x − η_k ∇ℓ_k (eq. 1).

- ``MatmulStepper``: factors ``(K, d_j, d_{j−1})``, batched ``@``, autograd. Any size; a single
  run (K = 1) is fastest here.
- ``EntryStepper``: each entry of each factor a ``(K,)`` vector, products written out entry by
  entry, autograd. For small matrices and many runs: on 2×2 factors a batched ``@`` of tiny
  matrices is mostly overhead, while each op here is one long vectorized loop.
- ``FusedStepper`` (``batch.fused=true``): factors ``(K, d_j, d_{j−1})``, gradient by hand from
  the problem's closed-form ∇ℓ (``Problem.gradient``) and the chain rule ∂ℓ/∂W_j =
  (W_L⋯W_{j+1})ᵀ ∇ℓ (W_{j−1}⋯W_1)ᵀ; tested against autograd.
- ``FusedEntryStepper`` (``batch.fused=true`` where ``EntryStepper`` would be chosen): the same
  chain rule written entry by entry, skipping the entries of ∇ℓ that are zero (completion's
  unobserved ones), each sum of products by ``addcmul``: no autograd graph, and about two
  thirds of ``EntryStepper``'s ops at 2×2, depth 3.

The loss of the stack is the sum of the runs' losses, so run k's gradient is its own: runs never
mix, and a non-finite run cannot reach the others. On the CPU the two autograd steppers give the
same bits for 2×2 factors (a batched ``@`` of tiny matrices sums its products in order, as
written out here); the hand-written ones agree with them to rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from implicit_reg.factorization import chain_rule, product
from implicit_reg.problems import Problem

ENTRY_MAX_SIZE = 16
"""``EntryStepper`` for factors of at most this many entries (4×4)."""
ENTRY_MIN_RUNS = 64
"""... and at least this many runs (below, per-op overhead decides, and ``@`` has fewer ops)."""


class Stepper(Protocol):
    def loss(self) -> Tensor:
        """ℓ_k at the current factors ``(K,)``; keeps ∇ℓ_k for ``step``."""
        ...

    def step(self, lr: Tensor | float) -> None:
        """x_k ← x_k − lr_k ∇ℓ_k(x_k) with the gradient of the last ``loss()`` (a float: one
        run's lr)."""
        ...

    def end_to_end(self) -> Tensor:
        """W_k at the factors of the last ``loss()``, ``(K, rows, cols)``."""
        ...

    def factors(self) -> list[Tensor]:
        """Copies of the factors, ``(K, d_j, d_{j−1})`` each."""
        ...

    def load(self, factors: list[Tensor], runs: Tensor | None = None) -> None:
        """Set the factors of the runs where ``runs`` (bool ``(K,)``) is True, or of all."""
        ...


def make_stepper(
    factors: list[Tensor], problem: Problem, fused: bool = False, entries: bool | None = None
) -> Stepper:
    """The stepper for these factors ``(K, d_j, d_{j−1})``: entry by entry for small factors and
    many runs (``entries`` forces the choice), by hand if ``fused``, else by autograd."""
    if entries is None:
        entries = entry_layout(factors)
    if fused:
        return (FusedEntryStepper if entries else FusedStepper)(factors, problem)
    return (EntryStepper if entries else MatmulStepper)(factors, problem)


def entry_layout(factors: list[Tensor]) -> bool:
    """Whether runs of these factors ``(K, d_j, d_{j−1})`` go entry by entry: small factors,
    many runs."""
    small = max(f.shape[1] * f.shape[2] for f in factors) <= ENTRY_MAX_SIZE
    return small and factors[0].shape[0] >= ENTRY_MIN_RUNS


def to_entries(factors: list[Tensor]) -> list[Tensor]:
    """The entries ``(K,)`` of factors ``(K, d_j, d_{j−1})``: factor by factor, each row by row
    (``EntryStepper``'s layout; views, not copies)."""
    return [e for f in factors for e in f.flatten(1).T]


def from_entries(entries: list[Tensor], shapes: list[tuple[int, ...]]) -> list[Tensor]:
    """The inverse of ``to_entries``: copies ``(K, d_j, d_{j−1})`` of factors of ``shapes``."""
    flat = torch.stack(entries, -1)
    out, i = [], 0
    for rows, cols in shapes:
        out.append(flat[:, i : i + rows * cols].reshape(-1, rows, cols).clone())
        i += rows * cols
    return out


class MatmulStepper:
    """Factors ``(K, d_j, d_{j−1})``; a single run holds them 2-D, as plain matrices (a 2-D
    product is the fastest step there; BLAS may fuse its multiply-adds, so it can round an ulp
    away from a batched one)."""

    def __init__(self, factors: list[Tensor], problem: Problem) -> None:
        self.problem = problem
        self.single = factors[0].shape[0] == 1
        self.params = [
            (f[0] if self.single else f).detach().clone().requires_grad_(True) for f in factors
        ]
        self._grads: tuple[Tensor, ...] = ()
        self._W = torch.empty(0)

    def _runs(self, t: Tensor) -> Tensor:
        return t.unsqueeze(0) if self.single else t

    def loss(self) -> Tensor:
        W = product(self.params)
        loss = self.problem.loss(W)
        self._grads = torch.autograd.grad(loss.sum(), self.params)
        self._W = W  # made into (K, rows, cols) only when asked: most steps never look at it
        return self._runs(loss.detach())

    def step(self, lr: Tensor | float) -> None:
        # p + (−1)·(g·lr_k): per run the rounding of p − lr·g
        with torch.no_grad():
            if isinstance(lr, float):  # one run's scalar lr: one op fewer
                torch._foreach_add_(self.params, self._grads, alpha=-lr)
            else:
                lr = lr.view(1, 1) if self.single else lr.view(-1, 1, 1)
                torch._foreach_addcmul_(
                    self.params, self._grads, [lr] * len(self.params), value=-1.0
                )

    def end_to_end(self) -> Tensor:
        return self._runs(self._W.detach())

    def factors(self) -> list[Tensor]:
        return [self._runs(p.detach()).clone() for p in self.params]

    def load(self, factors: list[Tensor], runs: Tensor | None = None) -> None:
        with torch.no_grad():
            for p, f in zip(self.params, factors, strict=True):
                f = f[0] if self.single else f
                if runs is not None:
                    f = torch.where(runs.view(1, 1) if self.single else runs.view(-1, 1, 1), f, p)
                p.copy_(f)


class EntryStepper:
    """Factor j as a list of its entries, ``entries[j][a][b]`` of shape ``(K,)``. A problem with
    ``entry_loss`` reads only the entries ``observed`` of W: the others are left out of the
    step (fewer ops, fewer temporaries) and computed, the same way, when W is asked for."""

    def __init__(self, factors: list[Tensor], problem: Problem) -> None:
        self.problem = problem
        self.shapes = [tuple(f.shape[1:]) for f in factors]
        self.params = [e.detach().clone().requires_grad_(True) for e in to_entries(factors)]
        self._grads: tuple[Tensor, ...] = ()
        self._entries: Tensor | list[list[Tensor | None]] = torch.empty(0)
        self._versions: list[int] = []
        self._entry_loss = getattr(problem, "entry_loss", None)
        seen = getattr(problem, "observed", None) if self._entry_loss is not None else None
        rows, cols = self.shapes[-1][0], self.shapes[0][1]
        self._needed = [[seen is None or (a, b) in seen for b in range(cols)] for a in range(rows)]

    def _matrices(self, flat: list[Tensor]) -> list[list[list[Tensor]]]:
        out, i = [], 0
        for rows, cols in self.shapes:
            out.append([flat[i + a * cols : i + (a + 1) * cols] for a in range(rows)])
            i += rows * cols
        return out

    def _product(self, flat: list[Tensor], needed: list[list[bool]]) -> list[list[Tensor | None]]:
        """The entries of W = W_L ⋯ W_1 that are ``needed`` (None elsewhere)."""
        return _partial_products(self._matrices(flat), needed)[-1]

    def graph(self) -> Tensor:
        """ℓ_k at the current factors ``(K,)``, with its autograd graph (no gradient taken)."""
        W = self._product(self.params, self._needed)
        if self._entry_loss is not None:
            self._entries = [[None if e is None else e.detach() for e in row] for row in W]
            return self._entry_loss(W)
        stacked = torch.stack([torch.stack(row, -1) for row in W], -2)
        self._entries = stacked.detach()
        return self.problem.loss(stacked)

    def loss(self) -> Tensor:
        loss = self.graph()
        # an entry the loss never sees (W_11 at depth 1) has gradient 0
        self._grads = torch.autograd.grad(loss.sum(), self.params, materialize_grads=True)
        self._versions = [p._version for p in self.params]
        return loss.detach()

    def step(self, lr: Tensor | float) -> None:
        lr = torch.as_tensor(lr, dtype=self.params[0].dtype, device=self.params[0].device)
        with torch.no_grad():
            torch._foreach_addcmul_(self.params, self._grads, [lr] * len(self.params), value=-1.0)

    def end_to_end(self) -> Tensor:
        if isinstance(self._entries, list):
            W = self._entries
            if any(e is None for row in W for e in row):  # those the loss left out, as it would
                if self._versions != [p._version for p in self.params]:
                    raise RuntimeError("EntryStepper.end_to_end: the factors moved since loss()")
                with torch.no_grad():
                    missing = [[e is None for e in row] for row in W]
                    rest = self._product([p.detach() for p in self.params], missing)
                W = [
                    [r if e is None else e for e, r in zip(*rows, strict=True)]
                    for rows in zip(W, rest, strict=True)
                ]
            self._entries = torch.stack([torch.stack(row, -1) for row in W], -2)
        return self._entries

    def factors(self) -> list[Tensor]:
        return from_entries([p.detach() for p in self.params], self.shapes)

    def load(self, factors: list[Tensor], runs: Tensor | None = None) -> None:
        with torch.no_grad():
            for p, v in zip(self.params, to_entries(factors), strict=True):
                p.copy_(v if runs is None else torch.where(runs, v, p))


def _dot(left: list[Tensor], right: list[Tensor]) -> Tensor:
    """Σ_c left_c · right_c, summed in order (as a batched ``@`` of small matrices does)."""
    total = left[0] * right[0]
    for a, b in zip(left[1:], right[1:], strict=True):
        total = total + a * b
    return total


class FusedStepper:
    """Factors ``(K, d_j, d_{j−1})``; gradient by the chain rule (``factorization.chain_rule``,
    which the factor flow uses too) from the problem's closed-form ∇ℓ."""

    def __init__(self, factors: list[Tensor], problem: Problem) -> None:
        self.problem = problem
        self.params = [f.detach().clone() for f in factors]
        self._grads: list[Tensor] = []
        self._W = torch.empty(0)

    def loss(self) -> Tensor:
        self._W, self._grads = chain_rule(self.params, self.problem.gradient)
        return self.problem.loss(self._W)

    def step(self, lr: Tensor | float) -> None:
        lr = torch.as_tensor(lr, dtype=self.params[0].dtype, device=self.params[0].device)
        lr = lr.view(-1, 1, 1)
        torch._foreach_addcmul_(self.params, self._grads, [lr] * len(self.params), value=-1.0)

    def end_to_end(self) -> Tensor:
        return self._W

    def factors(self) -> list[Tensor]:
        return [p.clone() for p in self.params]

    def load(self, factors: list[Tensor], runs: Tensor | None = None) -> None:
        for p, f in zip(self.params, factors, strict=True):
            p.copy_(f if runs is None else torch.where(runs.view(-1, 1, 1), f, p))


def _fused_dot(left: list[Tensor], right: list[Tensor]) -> Tensor:
    """Σ_c left_c · right_c by ``addcmul`` (one op a term after the first; it may round as a
    fused multiply-add): the hand-written step's, which no other stepper needs to match bit for
    bit."""
    total = left[0] * right[0]
    for a, b in zip(left[1:], right[1:], strict=True):
        total = torch.addcmul(total, a, b)
    return total


class FusedEntryStepper(EntryStepper):
    """``EntryStepper``'s layout, gradient by hand: the products W_j ⋯ W_1 going up, ∇ℓ(W) (from
    ``entry_gradient`` where the problem has one, with its zero entries None), then ∂ℓ/∂W_j =
    A_j (W_{j−1} ⋯ W_1)ᵀ with A_L = ∇ℓ(W), A_{j−1} = W_jᵀ A_j going down: ``FusedStepper``'s
    chain rule (seed Theorem 2), with every product by a zero entry left out."""

    def __init__(self, factors: list[Tensor], problem: Problem) -> None:
        super().__init__(factors, problem)
        self.params = [p.detach() for p in self.params]
        self._entry_gradient = getattr(problem, "entry_gradient", None)
        if self._entry_gradient is None:  # ∇ℓ of the stacked W: every entry of W is needed
            self._needed = [[True] * len(row) for row in self._needed]

    def loss(self) -> Tensor:
        factors = self._matrices(self.params)
        below = _partial_products(factors, self._needed, _fused_dot)  # W_{j+1} ⋯ W_1
        W = below[-1]
        if self._entry_gradient is not None:
            loss, above = self._entry_gradient(W)
        else:
            stacked = torch.stack([torch.stack(row, -1) for row in W], -2)  # type: ignore[misc]
            loss, G = self.problem.loss(stacked), self.problem.gradient(stacked)
            above = [list(row.unbind(-1)) for row in G.unbind(-2)]
        grads = []
        for j in range(len(factors) - 1, 0, -1):
            grads.append(_matmul(above, _transpose(below[j - 1])))
            above = _matmul(_transpose(factors[j]), above)
        grads.append(above)
        self._grads = tuple(  # an entry that no loss term reaches has gradient 0
            torch.zeros_like(self.params[0]) if e is None else e
            for g in grads[::-1]
            for row in g
            for e in row
        )
        self._entries = W
        self._versions = [p._version for p in self.params]
        return loss


def _partial_products(
    factors: list[list[list[Tensor]]],
    needed: list[list[bool]],
    dot: Callable[[list[Tensor], list[Tensor]], Tensor] = _dot,
) -> list[list[list[Tensor | None]]]:
    """W_1, W_2 W_1, …, W_L ⋯ W_1 entry by entry, each entry a ``dot``; of the last, only the
    ``needed`` entries (None elsewhere)."""
    out: list[list[list[Tensor | None]]] = [factors[0]]  # type: ignore[list-item]
    for j, A in enumerate(factors[1:], 2):  # W ← A W, entry by entry
        W = out[-1]
        out.append([
            [dot([A[a][c] for c in range(len(W))], [W[c][b] for c in range(len(W))])
             if j < len(factors) or needed[a][b] else None
             for b in range(len(W[0]))]
            for a in range(len(A))
        ])  # fmt: skip
    return out


def _transpose(M: list[list[Tensor | None]]) -> list[list[Tensor | None]]:
    return [list(column) for column in zip(*M, strict=True)]


def _matmul(
    A: list[list[Tensor | None]], B: list[list[Tensor | None]]
) -> list[list[Tensor | None]]:
    """A B entry by entry, None standing for a zero entry: its products are left out, and an
    entry with no product left is None."""
    out = []
    for row in A:
        out_row: list[Tensor | None] = []
        for b in range(len(B[0])):
            pairs = [
                (a, B[c][b]) for c, a in enumerate(row) if a is not None and B[c][b] is not None
            ]
            out_row.append(_fused_dot(*map(list, zip(*pairs, strict=True))) if pairs else None)
        out.append(out_row)
    return out
