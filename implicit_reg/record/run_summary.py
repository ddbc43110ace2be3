"""The short table a run prints when it ends: its status, how far it went and the numbers that
answer its problem's question (a solved baseline: its solver's certificate first), and where its
outputs are.

- Least squares: the loss, ‖β‖ and ‖β − pinv(X)y‖, the distance to the minimum-norm solution
  that gradient descent from β₀ = 0 ends at, and to the closed-form flow β_t = V Σ_tᵀ Uᵀ y.
  A vector's effective rank and distance to rank 1 say nothing and are left out.
- A matrix problem: the loss, the reconstruction error of a planted W* (Arora et al. 2019), the
  effective rank and distance to the infimal rank (Razin & Cohen 2020, § 5), the Frobenius,
  nuclear and spectral norms, and, for a problem of at most :data:`MAX_ENTRIES` entries, the
  tracked entries W_ij (the 2×2 problem's unobserved W₁₁).
- Gradient descent counts steps; a flow run (``optim=flow``) counts its solver's steps, its
  logged steps being only reference steps ⌈t / lr⌉, and both show the flow time reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_ENTRIES = 16
"""A problem with more entries than this shows no ``entries/i_j`` rows: they tell nothing."""

MATRIX_KEYS = {
    "loss/train": "ℓ(W)",
    "error/reconstruction": "‖W − W*‖_F / ‖W*‖_F",
    "rank/effective": "erank(W)",
    "rank/infimal_distance": "D(W, M_r)",
    "norm/fro": "‖W‖_F",
    "norm/nuclear": "‖W‖_*",
    "norm/spectral": "‖W‖₂",
}
VECTOR_KEYS = {
    "loss/train": "ℓ(β) = ‖y − Xβ‖²",
    "norm/l2": "‖β‖",
    "dist/min_norm": "‖β − pinv(X)y‖",
    "dist/flow_closed_form": "‖β − β_t‖, closed-form flow",
}
Row = tuple[str, str, str]


def summary(result: dict[str, Any], out_dir: Path, shape: tuple[int, int]) -> str:
    """The table printed at the end of a run of a problem whose W is ``shape``. A change of sign
    det W (``DetSignMonitor``) is shown at the first logged point that had it: the change
    happened after the logged point before it."""
    rows: list[Row] = [("status", result["status"], "")]
    if "solver_steps" in result:  # a flow run: its logged steps are reference steps
        rows.append(("solver steps", f"{result['solver_steps']:,}", ""))
    else:
        rows.append(("steps", f"{result['steps']:,}", ""))
    rows.append(("flow time", f"{result['flow_time']:.6g}", ""))
    rows += metric_rows(result, entries=shape[0] * shape[1] <= MAX_ENTRIES)
    if (changed := result.get("det_sign_changed_at_step")) is not None:
        when = f"flow time {result['det_sign_changed_at_time']:.6g}"
        rows.append(("det sign changed", f"first logged at step {changed:,} ({when})", ""))
    rows.append(("wall time", f"{result['wall_time_s']:.2f} s on {result['device']}", ""))
    return _table(rows, out_dir)


def metric_rows(result: dict[str, Any], *, entries: bool) -> list[Row]:
    """The problem's headline metrics (module docstring), as (tag, value, meaning); with
    ``entries``, a matrix's tracked entries too."""
    keys = VECTOR_KEYS if "dist/min_norm" in result else MATRIX_KEYS
    rows = [(key, f"{result[key]:.6g}", meaning) for key, meaning in keys.items() if key in result]
    if keys is MATRIX_KEYS and entries:
        rows += [(k, f"{v:.6g}", "") for k, v in result.items() if k.startswith("entries/")]
    return rows


def _table(rows: list[Row], out_dir: Path) -> str:
    rows = [*rows, ("output", str(out_dir), "")]
    width = max(len(name) for name, _, _ in rows)
    values = max(len(value) for _, value, _ in rows[:-1])
    return "\n".join(
        f"  {name:<{width}}  {value:<{values}}  {meaning}".rstrip() for name, value, meaning in rows
    )


def baseline_summary(result: dict[str, Any], out_dir: Path) -> str:
    """The table printed after a solved baseline: the solver's certificate, then the metrics."""
    rows: list[Row] = [("status", result["status"], ""), ("solver", result["solver"], "")]
    if "solver_iterations" in result:
        rows.append(("iterations", str(result["solver_iterations"]), ""))
    for key in ("primal_objective", "duality_gap", "constraint_residual"):
        if key in result:
            rows.append((key.replace("_", " "), f"{result[key]:.6g}", ""))
    rows += metric_rows(result, entries=False)
    rows.append(("wall time", f"{result['wall_time_s']:.2f} s on {result['device']}", ""))
    return _table(rows, out_dir)
