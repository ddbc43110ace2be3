"""A progress bar showing the loss, the first unobserved entry (|W11| on the 2×2 problem) or ‖β‖,
and the effective rank."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class Progress:
    def __init__(self, total: int, enabled: bool, unit: str = "step", initial: int = 0) -> None:
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit=unit,
            disable=not enabled,
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=0.5,
        )
        self.position = initial

    def update(self, position: int, scalars: dict[str, float]) -> None:
        self.bar.update(position - self.position)
        self.position = position
        self.bar.set_postfix(headline(scalars), refresh=False)

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
