"""Sweep throughput on the 2×2 completion problem (seed eq. 9), depth 3, plain GD, a fixed
number of steps per run (loss_tol=0): one process per run in sequence (what a multirun with
Hydra's basic launcher costs: each job pays Python, torch and Hydra start-up) versus one batched
run of all the runs stacked (autograd, and the opt-in fused gradient). Prints run-steps per
second for each and the ratios, all measured side by side in this one invocation: end to end
(the whole process: start-up, init, training, logging, writing) and in the GD loop alone (with
the default TensorBoard logging, and once with no logs between the first and last step).

    python benchmarks/sweep_throughput.py       # 1000 runs × 20000 steps batched, 3 × 2000 alone
    python benchmarks/sweep_throughput.py --runs 10000 --dtype float32
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(out: Path, *overrides: str) -> tuple[float, dict]:
    """Run ``train.py`` in a fresh process; wall time of the whole process and its metrics."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={out}", *overrides],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    return wall, json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs in the batched sweep")
    parser.add_argument("--steps", type=int, default=20000, help="GD steps per batched run")
    parser.add_argument("--process-steps", type=int, default=2000, help="… per process run")
    parser.add_argument("--process-runs", type=int, default=3, help="runs timed one per process")
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    args = parser.parse_args()
    common = [
        "problem=completion_2x2",
        "model.depth=3",
        "train.loss_tol=0",
        "train.progress=false",
        "device=cpu",
        f"dtype={args.dtype}",
    ]
    results: list[tuple[str, float, float]] = []  # name, run-steps/s end to end, in the loop
    with tempfile.TemporaryDirectory() as tmp:
        walls, loops = [], []
        for k in range(args.process_runs):
            wall, metrics = train(
                Path(tmp) / f"single{k}",
                *common,
                f"train.max_steps={args.process_steps}",
                f"seed={k}",
            )
            walls.append(wall)
            loops.append(metrics["wall_time_s"])
        per_run = sum(walls) / len(walls)
        steps = args.process_steps
        results.append(("one process per run", steps / per_run, steps * len(loops) / sum(loops)))
        quiet = [f"train.log_every={args.steps}", "train.log_per_decade=0"]
        for name, fused, logs in (
            ("batched, autograd", "false", []),
            ("batched, fused", "true", []),
            ("batched, fused, no logs", "true", quiet),  # sustained: first and last step only
        ):
            wall, metrics = train(
                Path(tmp) / name.replace(", ", "_").replace(" ", "_"),
                *common,
                *logs,
                f"train.max_steps={args.steps}",
                f"batch.seeds={args.runs}",
                f"batch.fused={fused}",
            )
            assert metrics["runs/max_steps"] == args.runs, metrics
            results.append((name, args.runs * args.steps / wall, metrics["run_steps_per_s"]))

    print(
        f"2×2 completion, depth 3, plain GD, {args.dtype}; batched: {args.runs} runs × "
        f"{args.steps} steps in one process; unbatched: {args.process_runs} runs × "
        f"{args.process_steps} steps, one process each ({args.runs} such runs: "
        f"≈{per_run * args.runs / 60:.0f} min)"
    )
    print(f"{'':24}{'run-steps/s (process)':>24}{'run-steps/s (GD loop)':>24}")
    for name, end_to_end, loop in results:
        print(f"{name:24}{end_to_end:>24.3g}{loop:>24.3g}")
    base_e2e, base_loop = results[0][1], results[0][2]
    for name, end_to_end, loop in results[1:]:
        print(
            f"{name} vs one process per run: ×{end_to_end / base_e2e:,.0f} end to end "
            f"(×{loop / base_loop:,.0f} GD loop vs GD loop)"
        )


if __name__ == "__main__":
    main()
