"""Initialization of the factors: Gaussian, scaled identity, balanced, or zero, for a stack of runs.

``init.scale`` is the per-factor scale: the entry std of a Gaussian factor, the diagonal of an
identity factor, and for balanced init the factors of a product scale^L·G (G Gaussian) split
evenly (Arora et al. 2018, Theorem 1 / seed Theorem 2). ``init.det`` resamples until the product's
determinant has the requested sign (Theorem 1 assumes det W(0) > 0).

Every run draws from its own counter-based stream (``implicit_reg.rng``) keyed by its seed, in
chunks of runs, on the device: run k of a batch with seeds ``seed + k`` starts exactly where the
single run with that seed starts, and 10⁶ starts take a fraction of a second.
"""

from __future__ import annotations

import torch
from torch import Tensor

from implicit_reg import rng
from implicit_reg.factorization import product

KINDS = ("gaussian", "identity", "balanced", "zero")
DET_SIGNS = ("any", "positive", "negative")
MAX_TRIES = 1000
TRIES = 2
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
    ``(runs, d_j, d_{j−1})`` in float64 on the seeds' device."""
    parts = [
        _sample(kind, scales[i : i + CHUNK], det, shapes, seeds[i : i + CHUNK])
        for i in range(0, len(seeds), CHUNK)
    ]
    return [torch.cat([p[j] for p in parts]) for j in range(len(shapes))]


def _sample(
    kind: str, scales: Tensor, det: str, shapes: list[tuple[int, int]], seeds: Tensor
) -> list[Tensor]:
    """Draw 0 for every run; a run whose det has the wrong sign takes its first draw 1, 2, …
    that has the right one. Redraws go ``TRIES`` at a time, so a chunk needs few rounds."""
    factors = _draw(kind, scales, shapes, seeds, torch.zeros_like(seeds))
    if det == "any":
        return factors
    want = 1.0 if det == "positive" else -1.0
    wrong = (_det_sign(factors) != want).nonzero().view(-1)
    attempt = 1
    while len(wrong) > 0:
        if attempt >= MAX_TRIES:
            raise RuntimeError(
                f"init.det={det}: no draw of {kind} init had that sign in {MAX_TRIES} tries"
            )
        n = len(wrong)
        idx = wrong.repeat(TRIES)
        draws = attempt + torch.arange(TRIES, device=seeds.device).repeat_interleave(n)
        again = _draw(kind, scales[idx], shapes, seeds[idx], draws)
        good = (_det_sign(again) == want).view(TRIES, n)
        found = good.any(0)
        pick = (good.to(torch.int8).argmax(0) * n + torch.arange(n, device=seeds.device))[found]
        for f, g in zip(factors, again, strict=True):
            f[wrong[found]] = g[pick]
        wrong, attempt = wrong[~found], attempt + TRIES
    return factors


def _det_sign(factors: list[Tensor]) -> Tensor:
    return torch.sign(_det(product(factors)))


def _det(W: Tensor) -> Tensor:
    """det W, written out for 2×2 (LAPACK's batched LU costs ~10× more there)."""
    if W.shape[-2:] == (2, 2):
        return W[..., 0, 0] * W[..., 1, 1] - W[..., 0, 1] * W[..., 1, 0]
    return torch.linalg.det(W)


def _draw(
    kind: str, scales: Tensor, shapes: list[tuple[int, int]], seeds: Tensor, attempt: int
) -> list[Tensor]:
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
        if len(shapes) == 1:
            return [G * scale]
        return balanced_split(G * scale ** len(shapes), shapes)
    raise ValueError(f"init.kind must be one of {KINDS}, got {kind!r}")


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
    (``optim/svd_flow.py`` writes its final factors this way too)."""
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
