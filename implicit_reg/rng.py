"""A counter-based random stream: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
as 1, 2, 3", SC 2011) written with integer tensor ops, so that it runs vectorized on any device.

The numbers of run k depend only on (its seed, the draw, the element), never on which other runs
are drawn beside it: run k of a batch with seeds ``seed, seed+1, …`` gets exactly the numbers of
a single run with seed ``seed + k`` (same device and dtype). ``torch.Generator`` is sequential,
so one generator per run would need a Python loop over the runs.

32-bit words are held in int64 tensors; a 32×32-bit product wraps modulo 2⁶⁴, whose low 64 bits
are exact, and the masks below take its two halves.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MASK = 0xFFFFFFFF
MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
WEYL = (0x9E3779B9, 0xBB67AE85)  # the key schedule's increments
ROUNDS = 10


def philox(counter: list[Tensor], key: list[Tensor]) -> list[Tensor]:
    """Philox4x32-10 of four 32-bit counter words under two 32-bit key words (broadcastable
    int64 tensors holding values in [0, 2³²)); returns four words.

    Each round: (hi, lo) of M0·c0 and M1·c2, then c ← (hi₁ ⊕ c1 ⊕ k0, lo₁, hi₀ ⊕ c3 ⊕ k1, lo₀),
    with the round's key k + r·(Weyl increment). The lo words are kept as the whole 64-bit
    product and masked where they are used; each new word is built in place (one buffer)."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    c0, c2 = torch.broadcast_tensors(c0, c2, c1, c3, k0, k1)[:2]  # the in-place ops' shape
    for r in range(ROUNDS):  # the key words need no mask: only the low 32 bits of c0, c2 stay
        p0, p1 = c0 * MULTIPLIERS[0], c2 * MULTIPLIERS[1]
        c0 = (p1 >> 32).bitwise_xor_(c1).bitwise_xor_(k0 + r * WEYL[0]).bitwise_and_(MASK)
        c2 = (p0 >> 32).bitwise_xor_(c3).bitwise_xor_(k1 + r * WEYL[1]).bitwise_and_(MASK)
        c1, c3 = p1, p0
    return [c0, c1 & MASK, c2, c3 & MASK]


def normals(seeds: Tensor, draw: Tensor | int, count: int, stream: int = 0) -> Tensor:
    """``count`` standard normal float64 numbers per seed, ``(len(seeds), count)``.

    Element i of seed s, draw d (a retry counter: resampling uses d + 1) comes from the Philox
    block (i // 2, d, stream, 0) under key s: two 53-bit uniforms from its four words, then
    Box–Muller (cosine for even i, sine for odd i)."""
    seeds = seeds.to(torch.int64).view(-1, 1)
    key = [seeds & MASK, (seeds >> 32) & MASK]
    blocks = torch.arange((count + 1) // 2, device=seeds.device, dtype=torch.int64).view(1, -1)
    draw = torch.as_tensor(draw, device=seeds.device, dtype=torch.int64).view(-1, 1)
    zero = torch.zeros((), device=seeds.device, dtype=torch.int64)
    words = philox([blocks, draw & MASK, zero + stream, zero], key)
    u1 = _uniform(words[0], words[1])
    u2 = _uniform(words[2], words[3])
    radius = torch.sqrt(-2.0 * torch.log1p(-u1))  # 1 − u1 ∈ (0, 1]: the log is finite
    angle = (2 * math.pi) * u2
    pairs = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], -1)
    return pairs.flatten(-2)[:, :count]


def _uniform(high: Tensor, low: Tensor) -> Tensor:
    """A float64 in [0, 1) from the top 27 + 26 bits of two words (all 53 mantissa bits)."""
    bits = (high >> 5) * (1 << 26) + (low >> 6)
    return bits.to(torch.float64) * 2.0**-53
