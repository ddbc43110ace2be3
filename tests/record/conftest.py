"""Fixtures of the record layer's tests: faults planted in the atomic writes of a run folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from implicit_reg.record import artifacts


@pytest.fixture
def hook_writes(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``hook_writes(name, fault, at=1)``: make the ``at``-th atomic write of a file called
    ``name`` call ``fault`` after writing part of it (a full disk raises ENOSPC there, a kill ends
    the process there); if ``fault`` returns, the write goes on. ``monkeypatch.undo()`` removes
    the hook."""

    def hook(name: str, fault: Callable[[], None], at: int = 1) -> None:
        real = artifacts.atomic_write
        seen = 0

        def write(path: Path, body: Callable, mode: str = "w") -> None:
            nonlocal seen
            if path.name == name:
                seen += 1
                if seen == at:

                    def partial(f) -> None:
                        f.write(b"\0" * 10 if "b" in mode else "{")
                        fault()
                        f.seek(0)
                        f.truncate()
                        body(f)

                    return real(path, partial, mode)
            return real(path, body, mode)

        monkeypatch.setattr(artifacts, "atomic_write", write)

    return hook
