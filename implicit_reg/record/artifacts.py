"""Files a run leaves behind, each written atomically (temporary file, then rename), so a reader
never sees half a file. Their mode follows the user's umask, as ``open`` would give them (0644
under umask 022), not ``mkstemp``'s 0600, so group members can read results."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporary files (``.<name>.<random>.tmp``) that a write killed before its
    rename left in ``folder``; call it only where no other process writes (under the run
    folder's lock). Returns what was removed."""
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()] if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


CHECK_BYTES = 1 << 20
"""What ``check_writable`` writes: more than ``.hydra/`` and a first checkpoint of a small run."""


def check_writable(folder: Path) -> None:
    """Raise the ``OSError`` that writing into ``folder`` would (full disk, read-only file
    system, no permission) by writing, syncing and removing ``CHECK_BYTES`` there."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(CHECK_BYTES))
            f.flush()
            os.fsync(f.fileno())
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, data: dict[str, Any]) -> None:
    """JSON with non-finite floats written as null (JSON has no NaN)."""
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()
    }
    atomic_write(path, lambda f: json.dump(clean, f, indent=2, sort_keys=True))


def save_torch(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), mode="wb")
