"""The short table a run prints when it ends: its status, steps and main metrics (a solved
baseline: its solver's certificate), and where its outputs are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SUMMARY_KEYS = (
    "loss/train",
    "norm/fro",
    "norm/nuclear",
    "norm/spectral",
    "rank/effective",
    "rank/infimal_distance",
    "error/reconstruction",
)


def summary(result: dict[str, Any], out_dir: Path) -> str:
    """The short table printed at the end of a run. A change of sign det W (``DetSignMonitor``)
    is shown at the first logged point that had it: the change happened after the logged point
    before it."""
    rows = [
        ("status", result["status"]),
        ("steps", f"{result['steps']:,}"),
        ("flow time", f"{result['flow_time']:.6g}"),
        *((key, f"{result[key]:.6g}") for key in SUMMARY_KEYS if key in result),
        *((k, f"{v:.6g}") for k, v in result.items() if k.startswith("entries/")),
    ]
    if (changed := result.get("det_sign_changed_at_step")) is not None:
        when = f"flow time {result['det_sign_changed_at_time']:.6g}"
        rows.append(("det sign changed", f"first logged at step {changed:,} ({when})"))
    rows.append(("wall time", f"{result['wall_time_s']:.2f} s on {result['device']}"))
    return _table(rows, out_dir)


def _table(rows: list[tuple[str, str]], out_dir: Path) -> str:
    rows = [*rows, ("output", str(out_dir))]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def baseline_summary(result: dict[str, Any], out_dir: Path) -> str:
    """The table printed after a solved baseline: the solver's certificate, then the metrics."""
    rows = [("status", result["status"]), ("solver", result["solver"])]
    if "solver_iterations" in result:
        rows.append(("iterations", str(result["solver_iterations"])))
    for key in ("primal_objective", "duality_gap", "constraint_residual"):
        if key in result:
            rows.append((key.replace("_", " "), f"{result[key]:.6g}"))
    rows += [(key, f"{result[key]:.6g}") for key in SUMMARY_KEYS if key in result]
    rows.append(("wall time", f"{result['wall_time_s']:.2f} s on {result['device']}"))
    return _table(rows, out_dir)
