"""TensorBoard logging of a run's scalars; keeps their history for the end-of-run figure and the
last values for metrics.json."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter


class TensorBoardLogger:
    """Writes ``tag → value`` scalars against the gradient step into the run folder's own event
    file (so ``tensorboard --logdir`` on a sweep finds every run)."""

    def __init__(self, out_dir: Path) -> None:
        self.writer = SummaryWriter(log_dir=str(out_dir))
        self.last: dict[str, float] = {}
        self.history: dict[str, list[float]] = defaultdict(list)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
            self.history[tag].append(value)
        self.last = scalars

    def add_figure(self, tag: str, figure: Figure, step: int) -> None:
        self.writer.add_figure(tag, figure, step, close=True)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
