"""SIGINT (Ctrl-C) and SIGTERM (what SLURM sends before it kills a job) as a request to stop.

Inside ``with StopRequest() as stop:`` the first such signal only sets ``stop()``; the training
loop sees it before its next step, and the run then writes a checkpoint, flushes TensorBoard and
writes ``metrics.json`` with status ``interrupted``. A second signal stops at once
(``StopNow``, a ``KeyboardInterrupt``, which ``train.py`` reports in one line); the last
checkpoint is then where a rerun resumes.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopNow(KeyboardInterrupt):
    """A second SIGINT/SIGTERM: stop at once. ``signum`` is the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise StopNow(signum)
        self.signum = signum
        log.warning("%s: stopping after this step (send it again to stop now)", self.name)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # signals reach it alone
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
