"""Initialization of the factors: Gaussian, scaled identity, balanced, or zero, for a stack of runs.

``init.scale`` is the per-factor scale: the entry std of a Gaussian factor, the diagonal of an
identity factor, and for balanced init the factors of a product scale^L·G (G Gaussian) split
evenly (Arora et al. 2018, Theorem 1 / seed Theorem 2). ``init.det`` resamples until the product's
determinant has the requested sign (Theorem 1 assumes det W(0) > 0).

Every run draws from its own counter-based stream (``implicit_reg.rng``) keyed by its seed, in
chunks of runs, on the device: run k of a batch with seeds ``seed + k`` starts exactly where the
single run with that seed starts. ``run.py`` draws on every core: 10⁶ balanced 2×2 starts took
0.6–0.75 s on two cores, 0.9–1.0 s on one (``benchmarks/RESULTS.md``), with the same bits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from implicit_reg import rng
from implicit_reg.factorization import product

KINDS = ("gaussian", "identity", "balanced", "zero")
DET_SIGNS = ("any", "positive", "negative")
MAX_TRIES = 1000
CHUNK = 32768
"""Runs drawn at a time: their temporaries stay small (whole-batch draws were ×3–5 slower on
this CPU: memory traffic, and intra-op threads waiting for busy cores)."""


def sample_factors(
    kind: str, scale: float, det: str, shapes: list[tuple[int, int]], seed: int
) -> list[Tensor]:
    """One run's factors [W_1, …, W_L] in float64 on the CPU: run 0 of ``sample_batch``."""
    seeds = torch.tensor([seed], dtype=torch.int64)
    scales = torch.tensor([scale], dtype=torch.float64)
    return [f[0] for f in sample_batch(kind, scales, det, shapes, seeds)]


def sample_batch(
    kind: str, scales: Tensor, det: str, shapes: list[tuple[int, int]], seeds: Tensor
) -> list[Tensor]:
    """The factors of runs with these ``seeds`` and ``scales`` ``(runs,)``, each factor
    ``(runs, d_j, d_{j−1})`` in float64 on the seeds' device.

    Every run takes draw 0; with ``det`` positive or negative, a run whose det has the wrong
    sign takes its first draw 1, 2, … that has the right one. A draw is decided on its raw
    numbers (``_raw``), and made into factors once, for the draw each run keeps."""
    want = None if det == "any" else 1.0 if det == "positive" else -1.0
    raw, good = _draws(kind, scales, shapes, seeds, 0, want)
    wrong, attempt = (~good).nonzero().view(-1), 1
    while len(wrong) > 0:
        if attempt >= MAX_TRIES:
            raise RuntimeError(
                f"init.det={det}: no draw of {kind} init had that sign in {MAX_TRIES} tries"
            )
        again, found = _draws(kind, scales[wrong], shapes, seeds[wrong], attempt, want)
        for r, a in zip(raw, again, strict=True):
            r[wrong[found]] = a[found]
        wrong, attempt = wrong[~found], attempt + 1
    return _chunked(lambda s: _factors(kind, [r[s] for r in raw], shapes), len(seeds))


def _draws(
    kind: str,
    scales: Tensor,
    shapes: list[tuple[int, int]],
    seeds: Tensor,
    attempt: int,
    want: float | None,
) -> tuple[list[Tensor], Tensor]:
    """Draw ``attempt`` of these runs, raw, and whether its det has the sign ``want`` (None:
    any sign will do)."""

    def part(runs: slice) -> list[Tensor]:
        raw = _raw(kind, scales[runs], shapes, seeds[runs], attempt)
        if want is None:
            return [*raw, torch.ones(len(raw[0]), dtype=torch.bool, device=seeds.device)]
        return [*raw, _det_sign(kind, raw, shapes) == want]

    *raw, good = _chunked(part, len(seeds))
    return raw, good


def _chunked(part: Callable[[slice], list[Tensor]], runs: int) -> list[Tensor]:
    """``part`` of runs ``CHUNK`` at a time, gathered into tensors of all ``runs``."""
    out: list[Tensor] = []
    for i in range(0, runs, CHUNK):
        pieces = part(slice(i, i + CHUNK))
        out = out or [p.new_empty(runs, *p.shape[1:]) for p in pieces]
        for whole, piece in zip(out, pieces, strict=True):
            whole[i : i + CHUNK] = piece
    return out


SURE = 1e-6
"""A balanced draw's det sign is that of the drawn W = scale^L·G where |det W| > SURE·‖W‖_F^d
(d×d): the split and its product move W by a few ulps of ‖W‖_F, far less than that."""
TINY = 1e-280
"""... and |det W| above this (its products far from underflow)."""


def _det_sign(kind: str, raw: list[Tensor], shapes: list[tuple[int, int]]) -> Tensor:
    """sign det(W_L ⋯ W_1) of the factors that ``_factors`` makes of these raw draws. A balanced
    draw far from det 0 is decided on W itself (no split); the others are split and
    multiplied, exactly as their factors will be."""
    if kind != "balanced" or len(shapes) == 1:
        return torch.sign(_det(product(raw)))
    (W,) = raw
    det = _det(W)
    bound = SURE * W.square().sum((-2, -1)) ** (W.shape[-1] / 2)
    sure = (det.abs() > bound) & (det.abs() > TINY) & torch.isfinite(bound)
    sign = torch.sign(det)
    unsure = (~sure).nonzero().view(-1)
    if len(unsure) > 0:
        sign[unsure] = torch.sign(_det(product(balanced_split(W[unsure], shapes))))
    return sign


def _det(W: Tensor) -> Tensor:
    """det W, written out for 2×2 (LAPACK's batched LU costs ~10× more there)."""
    if W.shape[-2:] == (2, 2):
        return W[..., 0, 0] * W[..., 1, 1] - W[..., 0, 1] * W[..., 1, 0]
    return torch.linalg.det(W)


def _raw(
    kind: str, scales: Tensor, shapes: list[tuple[int, int]], seeds: Tensor, attempt: int
) -> list[Tensor]:
    """What a draw is before it becomes factors: balanced (depth > 1), its product
    W = scale^L·G; every other kind, its factors."""
    runs, device = len(seeds), seeds.device
    scale = scales.to(device, torch.float64).view(-1, 1, 1)
    if kind == "gaussian":
        z = rng.normals(seeds, attempt, sum(r * c for r, c in shapes))
        return [scale * f.view(runs, *s) for f, s in zip(_split(z, shapes), shapes, strict=True)]
    if kind == "identity":
        return [
            scale * torch.eye(*s, dtype=torch.float64, device=device).expand(runs, *s)
            for s in shapes
        ]
    if kind == "zero":
        return [torch.zeros(runs, *s, dtype=torch.float64, device=device) for s in shapes]
    if kind == "balanced":
        rows, cols = shapes[-1][0], shapes[0][1]
        G = rng.normals(seeds, attempt, rows * cols).view(runs, rows, cols)
        return [G * scale ** len(shapes)] if len(shapes) > 1 else [G * scale]
    raise ValueError(f"init.kind must be one of {KINDS}, got {kind!r}")


def _factors(kind: str, raw: list[Tensor], shapes: list[tuple[int, int]]) -> list[Tensor]:
    if kind == "balanced" and len(shapes) > 1:
        return balanced_split(raw[0], shapes)
    return raw


def _split(z: Tensor, shapes: list[tuple[int, int]]) -> list[Tensor]:
    return list(z.split([r * c for r, c in shapes], dim=-1))


def balanced_split(W: Tensor, shapes: list[tuple[int, int]]) -> list[Tensor]:
    """Balanced factors of W ``(runs, rows, cols)``: W_{j+1}ᵀW_{j+1} = W_j W_jᵀ (seed Theorem 2)
    and W_L ⋯ W_1 = W. With W = U S Vᵀ (k = min(rows, cols, width) leading triplets):
    W_1 = S^{1/L} Vᵀ, W_j = S^{1/L}, W_L = U S^{1/L}, zero-padded to the hidden width."""
    U, s, Vh = svd_2x2(W) if W.shape[-2:] == (2, 2) else torch.linalg.svd(W, full_matrices=False)
    return balanced_factors(U, s, Vh, shapes)


def balanced_factors(
    U: Tensor, s: Tensor, Vh: Tensor, shapes: list[tuple[int, int]]
) -> list[Tensor]:
    """The balanced split of U diag(s) Vh (``s ≥ 0``; any leading run dimensions) into factors of
    ``shapes``: W_1 = S^{1/L} Vh, W_j = S^{1/L}, W_L = U S^{1/L}, zero-padded to the hidden width
    (``dynamics/svd_flow.py`` writes its final factors this way too)."""
    depth = len(shapes)
    k = min(s.shape[-1], shapes[0][0])
    root = torch.exp(torch.log(s[..., :k]) / depth)  # s^{1/L}; see svd_2x2 on kernels
    lead = s.shape[:-1]
    factors = []
    for j, shape in enumerate(shapes):
        factor = s.new_zeros(*lead, *shape)
        if j == 0:
            factor[..., :k, :] = root[..., :, None] * Vh[..., :k, :]
        elif j == depth - 1:
            factor[..., :, :k] = U[..., :, :k] * root[..., None, :]
        else:
            factor[..., :k, :k] = torch.diag_embed(root)
        factors.append(factor)
    return factors


def svd_2x2(W: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """U, s, Vᵀ of 2×2 matrices ``(..., 2, 2)`` in closed form (batched LAPACK takes ~2 µs a
    matrix). W = R(φ) diag(q + r, q − r) R(θ) with rotations R, φ = (α₂ + α₁)/2 and
    θ = (α₂ − α₁)/2 for the angles α₁ of (f, g) and α₂ of (e, h) below; a negative q − r
    (det W < 0) moves its sign into the second row of Vᵀ, so that s ≥ 0, descending. The half
    angles come from ``atan``, the norms from ``sqrt`` and the roots of ``balanced_factors`` from
    ``exp``/``log``: ``atan2``, ``hypot`` and ``pow`` round differently in their vectorized and
    scalar kernels, which would make a run's start depend on its place in the batch."""
    a, b, c, d = W[..., 0, 0], W[..., 0, 1], W[..., 1, 0], W[..., 1, 1]
    e, f, g, h = (a + d) / 2, (a - d) / 2, (c + b) / 2, (c - b) / 2
    q, r = torch.sqrt(e * e + h * h), torch.sqrt(f * f + g * g)
    half1, half2 = _half_angle(g, f, r), _half_angle(h, e, q)
    theta, phi = half2 - half1, half2 + half1
    low = q - r
    sign = torch.where(low < 0, -1.0, 1.0).to(W.dtype)
    U = _rotation(phi)
    Vh = _rotation(theta) * torch.stack([torch.ones_like(sign), sign], -1)[..., :, None]
    return U, torch.stack([q + r, low.abs()], -1), Vh


def _half_angle(y: Tensor, x: Tensor, norm: Tensor) -> Tensor:
    """atan2(y, x) / 2 = atan(tan of the half angle): y / (‖(x, y)‖ + x) for x ≥ 0, and the
    same number as (‖(x, y)‖ − x) / y for x < 0, where the first would cancel; 0 at the origin."""
    tangent = torch.where(x >= 0, y / (norm + x), (norm - x) / y)
    return torch.where(norm > 0, torch.atan(tangent), 0.0)


def _rotation(angle: Tensor) -> Tensor:
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
