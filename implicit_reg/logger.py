"""TensorBoard logging of a run's scalars; keeps the last values for metrics.json."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter


class TensorBoardLogger:
    """Writes ``tag → value`` scalars against the gradient step into the run folder's own event
    file (so ``tensorboard --logdir`` on a sweep finds every run). A resumed run passes its
    checkpoint's step as ``purge_step``: TensorBoard then drops whatever the stopped run logged
    from that step on, so the curves continue without duplicated steps."""

    def __init__(
        self, out_dir: Path, purge_step: int = 0, last: dict[str, float] | None = None
    ) -> None:
        self.writer = SummaryWriter(log_dir=str(out_dir), purge_step=purge_step)
        self.last: dict[str, float] = dict(last or {})

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.last = scalars

    def add_figure(self, tag: str, figure: Figure, step: int) -> None:
        self.writer.add_figure(tag, figure, step, close=True)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
