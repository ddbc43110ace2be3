"""Reading a run's TensorBoard scalars back from its event files."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# TensorBoard's reader logs its bookkeeping to this logger: "No path found after <file>" (INFO,
# at the end of every read), "Directory watcher advancing …" and, for a resumed run whose event
# file starts again at its checkpoint step, "Detected out of order event.step likely caused by a
# TensorFlow restart. Purging …" (WARNING): the purge is what a resume wants, not a fault.
TENSORBOARD_LOGGER = "tensorboard"


def read_scalars(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar series in the event files directly inside ``folder``:
    ``tag → (steps, values)``, in step order."""
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    with _quiet_tensorboard():
        acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        out[tag] = (
            np.array([e.step for e in events], dtype=np.int64),
            np.array([e.value for e in events], dtype=np.float64),
        )
    return out


@contextmanager
def _quiet_tensorboard() -> Iterator[None]:
    """Keep TensorBoard's reader messages below ERROR out of the console while reading."""
    logger = logging.getLogger(TENSORBOARD_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
