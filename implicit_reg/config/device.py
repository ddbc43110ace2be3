"""Device, dtype and CPU threads: the ``device``, ``dtype`` and ``batch.threads`` config keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

DEVICES = ("auto", "cpu", "cuda")
GPU_MIN_ENTRIES = 1 << 16
"""``device=auto`` takes the GPU only for jobs of at least this many factor entries (runs × entries
a run): below, every step is a few dozen tiny kernels, and their launch costs more than the CPU
takes for the arithmetic (the default 2×2 run was 2.4× slower on an H100 than on its host)."""
DTYPES = {"float32": torch.float32, "float64": torch.float64}
ALL_THREADS = torch.get_num_threads()
"""torch's own intra-op thread count (a core each, or ``OMP_NUM_THREADS``), read when this module
is first imported, before ``run`` sets ``batch.threads``."""


def resolve_device(name: str, entries: int = GPU_MIN_ENTRIES) -> torch.device:
    """``auto`` takes the GPU when there is one and the job (``entries``: factor entries over all
    runs) is large enough to gain from it, else the CPU."""
    if name == "auto":
        big = entries >= GPU_MIN_ENTRIES
        name = "cuda" if torch.cuda.is_available() and big else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda: no CUDA GPU is visible; use device=cpu or device=auto")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be one of {DEVICES}, got {name!r}")
    if name == "cuda":
        # Reproducible float32 numbers: no TF32 shortcuts in matmul (see README, Reproducibility).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(name)


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {name!r}")
    return DTYPES[name]


THREADED_SIDE = 32
"""``batch.threads=auto`` trains on every core when every matrix of a run (the factors and their
product) has both sides at least this long, else on one thread: a product of 32×32 matrices is
the size at which torch splits one matmul between threads; tiny matrices gain little from more
threads and lose ×5–10 when the cores are busy."""


def training_threads(setting: int | str | None, rows: int, cols: int, width: int) -> int | None:
    """The CPU threads a job trains on, from ``batch.threads``: an integer, null (torch's default:
    every core) or ``auto`` (``THREADED_SIDE``) for a product of ``rows``×``cols`` through hidden
    size ``width``."""
    if setting != "auto":
        return setting  # type: ignore[return-value]
    return ALL_THREADS if min(rows, cols, width) >= THREADED_SIDE else 1


@contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``count`` (None: ``ALL_THREADS``) inside, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(count or ALL_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)
