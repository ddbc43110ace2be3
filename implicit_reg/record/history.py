"""Each run's top singular values over training: ``singular_values.npz`` in the run folder
(``train.singular_value_history=k``; Arora et al. 2019, Fig. 3 plots them against time).

At every logged step it records, for every run of the batch, σ₁ ≥ … ≥ σ_k of the end-to-end
W and the run's flow time lr × steps (a stopped run keeps its final values and time), and, where
the logs carry them (a matrix problem: ``implicit_reg.alignment``), the mean and standard
deviation of the diagonal and off-diagonal of |Uᵀ∇ℓ(W)V|. The file holds ``step (T,)``,
``flow_time (T, runs)``, ``values (T, runs, k)`` and ``alignment (T, runs, 4)`` (columns in the
order of ``ALIGNMENT_COLUMNS``; ``(T, runs, 0)`` without them); it is rewritten atomically at
every checkpoint, before the checkpoint itself, and at the end, so a reader never sees half of
it and a killed run loses what it logged after its last checkpoint, as its TensorBoard curves
do. A resumed run keeps the records before its checkpoint step and logs on from there. The
checkpoint counts those records (``before``): a file that holds fewer (written by another run,
truncated, or older than the checkpoint) is refused when the run resumes (``check``), never
silently continued with a gap.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from torch import Tensor

from implicit_reg.alignment import TAGS as ALIGNMENT_COLUMNS
from implicit_reg.record import artifacts

FILE = "singular_values.npz"
MAX_RUNS = 65536
"""Runs a batch may record: above this a batch logs a sample of its runs (``run.LOG_SAMPLE``)."""


class SingularValueHistory:
    def __init__(self, k: int, steps: list[int] | None = None, rows: list[np.ndarray] | None = None,
                 times: list[np.ndarray] | None = None,
                 alignment: list[np.ndarray] | None = None) -> None:  # fmt: skip
        self.k = k
        self.steps: list[int] = steps or []
        self.values: list[np.ndarray] = rows or []
        self.times: list[np.ndarray] = times or []
        self.alignment: list[np.ndarray] = alignment or []

    @classmethod
    def resume(cls, out_dir: Path, k: int, start_step: int) -> SingularValueHistory:
        """The records of ``out_dir`` before ``start_step`` (none for a new run)."""
        path = out_dir / FILE
        if start_step == 0 or not path.exists():
            return cls(k)
        with np.load(path) as saved:
            keep = saved["step"] < start_step
            return cls(
                k,
                saved["step"][keep].tolist(),
                list(saved["values"][keep]),
                list(saved["flow_time"][keep]),
                list(saved["alignment"][keep]) if "alignment" in saved else None,
            )

    def before(self, step: int) -> int:
        """How many records precede ``step``: what a resume from ``step`` keeps."""
        return sum(1 for s in self.steps if s < step)

    def append(self, step: int, values: dict[str, Tensor]) -> None:
        """Record one logged step from the scalars of every run (``scalars.compute_runs``)."""
        tags = [f"singular_values/{i + 1}" for i in range(self.k)]
        present = [t for t in tags if t in values]
        self.steps.append(step)
        self.values.append(np.stack([values[t].double().cpu().numpy() for t in present], axis=-1))
        self.times.append(values["time/flow"].double().cpu().numpy())
        columns = [values[t].double().cpu().numpy() for t in ALIGNMENT_COLUMNS if t in values]
        runs = len(self.times[-1])
        self.alignment.append(np.stack(columns, -1) if columns else np.zeros((runs, 0)))

    def write(self, out_dir: Path) -> None:
        """``singular_values.npz``, atomically."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            step=np.asarray(self.steps, dtype=np.int64),
            flow_time=np.stack(self.times) if self.times else np.zeros((0, 0)),
            values=np.stack(self.values) if self.values else np.zeros((0, 0, self.k)),
            alignment=_stack_padded(self.alignment),
        )
        artifacts.atomic_write(out_dir / FILE, lambda f: f.write(buffer.getvalue()), mode="wb")


def check(folder: Path, step: int, records: int | None) -> str | None:
    """Why the run in ``folder`` cannot resume its history at checkpoint ``step``, whose
    checkpoint counts ``records`` records before it (None: a checkpoint that does not count
    them), in one line; None if it can."""
    path = folder / FILE
    if not path.exists():
        if not records:
            return None
        return f"{path} is missing ({records} records before step {step:,})"
    try:
        with np.load(path) as saved:
            kept = int((saved["step"] < step).sum())
    except Exception as error:  # truncated, garbage, empty: NumPy and zipfile raise many kinds
        return f"{path} is corrupt ({type(error).__name__})"
    if records is not None and kept != records:
        return (
            f"{path} holds {kept} records before step {step:,}, its checkpoint {records}: the "
            "two were not written together"
        )
    return None


def read(folder: Path) -> dict[str, np.ndarray]:
    """``step``, ``flow_time``, ``values`` and ``alignment`` (``(T, runs, 0)`` when not recorded)
    of a run folder's ``singular_values.npz``."""
    with np.load(folder / FILE) as saved:
        out = {key: saved[key] for key in ("step", "flow_time", "values")}
        shape = (*out["flow_time"].shape, 0)
        out["alignment"] = saved["alignment"] if "alignment" in saved else np.zeros(shape)
        return out


def _stack_padded(rows: list[np.ndarray]) -> np.ndarray:
    """``(T, runs, c)`` from rows ``(runs, c_t)``, NaN where a row has fewer columns (records
    of a run resumed from a file written before the alignment was recorded)."""
    if not rows:
        return np.zeros((0, 0, 0))
    width = max(row.shape[-1] for row in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[-1])), constant_values=np.nan) for r in rows]
    return np.stack(padded)
