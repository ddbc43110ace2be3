"""A progress bar. A run stopped by ``train.loss_tol`` counts decades of loss, from its first
logged loss down to the tolerance (its step count is not known in advance); any other counts
steps. The postfix shows the loss, the first unobserved entry (|W11| on the 2×2 problem) or ‖β‖
and the effective rank; a batch shows how many runs are going, converged and diverged."""

from __future__ import annotations

import math
import sys

from tqdm.auto import tqdm

DECADES = "{l_bar}{bar}| {n:.2f}/{total:.2f} decades of loss [{elapsed}<{remaining}{postfix}]"


class Progress:
    def __init__(
        self, max_steps: int, loss_tol: float, enabled: bool, *, single: bool, initial: int = 0
    ) -> None:
        self.by_loss = single and loss_tol > 0
        self.loss_tol = loss_tol
        self.first: float | None = None  # log10 of the first loss seen
        self.bar = tqdm(
            total=1.0 if self.by_loss else max_steps,
            initial=0 if self.by_loss else initial,
            unit="step",
            bar_format=DECADES if self.by_loss else None,
            disable=not enabled,
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=0.5,
        )

    def update(
        self, step: int, scalars: dict[str, float], counts: dict[str, int] | None = None
    ) -> None:
        if self.by_loss:
            loss = scalars["loss/train"]
            if math.isfinite(loss) and loss > 0:
                if self.first is None:
                    self.first = math.log10(loss)
                    self.bar.total = max(self.first - math.log10(self.loss_tol), 1e-9)
                done = min(max(self.first - math.log10(loss), 0.0), self.bar.total)
                self.bar.update(done - self.bar.n)
            postfix = {"step": f"{step:,}", **headline(scalars)}
        else:
            self.bar.update(step - self.bar.n)
            postfix = headline(scalars) if counts is None else counts
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        self.bar.close()


def headline(scalars: dict[str, float]) -> dict[str, str]:
    """The few numbers worth watching while a run goes."""
    out = {"loss": f"{scalars['loss/train']:.3e}"}
    entry = next((t for t in scalars if t.startswith("entries/")), None)
    if entry is not None:
        out[f"|W{entry.removeprefix('entries/').replace('_', '')}|"] = f"{abs(scalars[entry]):.4g}"
    elif "norm/l2" in scalars:
        out["‖β‖"] = f"{scalars['norm/l2']:.4g}"
    out["erank"] = f"{scalars['rank/effective']:.4f}"
    return out
