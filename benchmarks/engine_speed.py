"""Speed of the one engine (issue 10), measured side by side in one invocation. Parts
(``--parts``, default all but ``mid``):

- ``single``: one run, per step: the single-run loop as it was before the engine (kept below as
  ``old_single_run_loop``: 2-D factors, ``loss.item()`` every step, ``_foreach_add_``) against
  the engine's loop on a batch of one (``descend`` + ``MatmulStepper``), same start, same steps,
  alternated ``--repeats`` times (median µs per step);
- ``loops``: 2×2 completion, depth 3, ``--runs`` × ``--steps`` (loss_tol 0, so every run takes
  every step) in the engine's loop with each of ``--steppers`` (batched ``@``, entry by entry,
  the fused hand-written gradient both ways, the issue's reference step);
- ``processes``: the same as ``python train.py batch.seeds=<runs> …`` processes (start-up,
  init, logging, runs.csv included): run-steps per second of the whole process and of its loop;
- ``fused``: the entry-wise loop by hand against autograd's, alternated ``--repeats`` times;
- ``init``: ``sample_batch`` of ``--inits`` balanced starts with det > 0 (and with any det,
  which redraws nothing), each in a fresh process, on every core (as a run draws them) and on
  ``--threads``;
- ``mid``: ``--mid-runs`` runs of ``--mid-size``² completion at depth 3 as a process: run-steps/s,
  TFLOP/s and the fraction of ``--peak-tflops``.

``--baseline DIR`` times the processes and the init of another checkout beside this one's, in
the same invocation (before/after a change). ``--compile`` adds the entry-wise loss under
``torch.compile`` (compile time included) to ``loops``.

    python benchmarks/engine_speed.py                       # CPU, the numbers in RESULTS.md
    bash benchmarks/device_check.sh                         # GPU: the issue's sizes, in parts
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from implicit_reg.dynamics.gd import Runs, descend  # noqa: E402
from implicit_reg.dynamics.steppers import (  # noqa: E402
    EntryStepper,
    FusedEntryStepper,
    FusedStepper,
    MatmulStepper,
)
from implicit_reg.factorization import DeepFactorization, factor_shapes  # noqa: E402
from implicit_reg.init import sample_batch  # noqa: E402
from implicit_reg.problems import MatrixCompletion  # noqa: E402
from implicit_reg.problems.matrix_completion import parse_entries  # noqa: E402
from implicit_reg.record.schedule import LogSchedule  # noqa: E402

SHAPES = factor_shapes(2, 2, 3, 2)


def problem(device: torch.device, dtype: torch.dtype) -> MatrixCompletion:
    target, mask = parse_entries([[None, 1.0], [1.0, 0.0]])
    return MatrixCompletion(target.to(device, dtype), mask.to(device), infimal_rank=1)


def starts(runs: int, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    scales = torch.full((runs,), 1e-2, dtype=torch.float64, device=device)
    seeds = torch.arange(runs, device=device)
    return [f.to(dtype) for f in sample_batch("balanced", scales, "positive", SHAPES, seeds)]


def old_single_run_loop(model: DeepFactorization, prob, lr: float, steps: int) -> None:
    """The GD loop of ``implicit_reg/dynamics/gd.py`` before the engine, without its logging and
    checkpoint hooks (a log every 1000 steps costs the same on both sides)."""
    params = list(model.parameters())
    for step in range(steps + 1):
        W = model()
        loss = prob.loss(W).sum()
        value = loss.item()
        if not math.isfinite(value) or value < 0.0 or step == steps:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)


def engine_loop(stepper, runs: int, lr: float, steps: int, device, dtype, check_every=100):
    descend(
        stepper,
        torch.full((runs,), lr, dtype=dtype, device=device),
        Runs.start(runs, device),
        max_steps=torch.full((runs,), steps, dtype=torch.long, device=device),
        loss_tol=0.0,
        schedule=LogSchedule(steps, every=10**9, per_decade=0),
        on_log=lambda step, W, loss: None,
        check_every=check_every,
    )


def issue_reference_loop(factors: list[torch.Tensor], lr: float, steps: int) -> None:
    """The issue's hand-written reference for 2×2, depth 3: each factor entry a vector over the
    runs, only the three observed entries of W, eager autograd, ``_foreach_add_``; no stopping,
    no logging (what the engine's ``EntryStepper`` is measured against)."""
    params = [e.clone().requires_grad_(True) for f in factors for e in f.flatten(1).T]
    for _ in range(steps):
        a, b, c, d, e, f, g, h, i, j, k, m = params
        p00, p01, p10, p11 = e * a + f * c, e * b + f * d, g * a + h * c, g * b + h * d
        w01, w10, w11 = i * p01 + j * p11, k * p00 + m * p10, k * p01 + m * p11
        loss = 0.5 * ((w01 - 1) ** 2 + (w10 - 1) ** 2 + w11**2)
        grads = torch.autograd.grad(loss.sum(), params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def single_run(args, device, dtype) -> None:
    prob, start = problem(device, dtype), starts(1, device, dtype)
    old, new = [], []
    for _ in range(args.repeats):  # alternated, so load changes hit both alike
        model = DeepFactorization([f[0] for f in start])
        old.append(timed(lambda m=model: old_single_run_loop(m, prob, 0.01, args.single_steps)))
        stepper = MatmulStepper(start, prob)
        new.append(
            timed(lambda s=stepper: engine_loop(s, 1, 0.01, args.single_steps, device, dtype))
        )
    old_us = statistics.median(old) / args.single_steps * 1e6
    new_us = statistics.median(new) / args.single_steps * 1e6
    print(f"\n## One run, {args.single_steps} steps, median of {args.repeats} (µs per step)\n")
    print("| loop | µs/step |\n|---|---:|")
    print(f"| before the engine (2-D, `loss.item()` every step) | {old_us:.1f} |")
    print(f"| engine, batch of one | {new_us:.1f} |")
    print(f"| **ratio engine / before** | **{new_us / old_us:.3f}** |")


STEPPERS = {
    "matmul": ("batched `@` (MatmulStepper)", MatmulStepper),
    "entry": ("entry by entry (EntryStepper, the default here)", EntryStepper),
    "fused": ("fused gradient, batched `@` (FusedStepper)", FusedStepper),
    "fused_entry": (
        "fused gradient, entry by entry (FusedEntryStepper, `batch.fused=true` here)",
        FusedEntryStepper,
    ),
}


def loops(args, device, dtype) -> None:
    """The engine's loop with each of ``--steppers``, the issue's reference step and, with
    ``--compile``, the entry-wise loss compiled."""
    prob = problem(device, dtype)
    print(f"\n## {args.runs} runs × {args.steps} steps, {args.dtype}, loops (run-steps/s)\n")
    print("| path | run-steps/s |\n|---|---:|")
    for key in args.steppers:
        if key == "reference":
            start = starts(args.runs, device, dtype)
            seconds = timed(lambda s=start: issue_reference_loop(s, 0.01, args.steps))
            name = "the issue's reference step alone (entry by entry, no stopping)"
        else:
            name, cls = STEPPERS[key]
            seconds = loop_seconds(cls, args, device, dtype)
            name = f"loop, {name}"
        print(f"| {name} | {args.runs * args.steps / seconds:.3g} |")
    if args.compile:  # the loss (forward and, through AOTAutograd, backward) compiled
        stepper = EntryStepper(starts(args.runs, device, dtype), prob)
        stepper._entry_loss = torch.compile(prob.entry_loss)
        seconds = timed(lambda: engine_loop(stepper, args.runs, 0.01, args.steps, device, dtype))
        print(f"| loop, entry by entry, compiled loss (compile included) | "
              f"{args.runs * args.steps / seconds:.3g} |")  # fmt: skip


def processes(args) -> None:
    """``python train.py batch.seeds=<runs> …`` as a process (alternated with the baseline
    checkout, if given), and the same with ``batch.fused=true``."""
    print(f"\n## {args.runs} runs × {args.steps} steps, {args.dtype}, end to end (run-steps/s)\n")
    print("| process | run-steps/s |\n|---|---:|")
    grid = (f"batch.seeds={args.runs}", f"train.max_steps={args.steps}")
    trees = {"": ROOT, **({" (baseline)": Path(args.baseline)} if args.baseline else {})}
    for label, tree in trees.items():
        rate, loop = end_to_end(args, tree, *grid)
        print(f"| end to end{label}, `python train.py batch.seeds={args.runs}` (whole process) | "
              f"{rate:.3g} |")  # fmt: skip
        print(f"| … its training loop alone{label} (metrics.json `run_steps_per_s`) | "
              f"{loop:.3g} |")  # fmt: skip
    rate, loop = end_to_end(args, ROOT, *grid, "batch.fused=true")
    print(f"| end to end, the same with `batch.fused=true` (whole process) | {rate:.3g} |")
    print(f"| … its training loop alone | {loop:.3g} |")


def mid_size(args) -> None:
    """``--mid-runs`` runs of ``--mid-size``² completion (rank 5, a quarter of the entries seen)
    at depth 3, batched, as a process: run-steps/s and the arithmetic rate of its loop. A step
    of autograd costs 3× the forward products' flops (each product C = AB has dA = dC Bᵀ and
    dB = Aᵀ dC): 3 · 2 · n · (n·n + n·n) = 12 n³ a run at depth 3, width n. Logged at the first
    and last step only, with no stability guard: each log's SVDs of every run would otherwise
    weigh as much as the steps."""
    n, runs, steps = args.mid_size, args.mid_runs, args.mid_steps
    overrides = (
        "problem=matrix_completion", f"problem.rows={n}", f"problem.cols={n}", "problem.rank=5",
        f"problem.observed={n * n // 4}", "model.depth=3", f"batch.seeds={runs}",
        f"train.max_steps={steps}", "train.sharpness_iters=0", f"train.log_every={steps + 1}",
        "train.log_per_decade=0",
    )  # fmt: skip
    rate, loop = end_to_end(args, ROOT, *overrides)
    tflops = loop * 12 * n**3 / 1e12
    print(f"\n## Mid-size: {runs} runs of {n}×{n} completion, depth 3, {steps} steps, "
          f"{args.dtype} on {args.device}\n")  # fmt: skip
    print("| | |\n|---|---:|")
    print(f"| run-steps/s, whole process | {rate:.3g} |")
    print(f"| run-steps/s, training loop (`run_steps_per_s`) | {loop:.3g} |")
    print(f"| TFLOP/s in the loop (12 n³ a run-step) | {tflops:.3g} |")
    if args.peak_tflops:
        print(f"| fraction of the card's {args.peak_tflops:g} TFLOP/s peak | "
              f"{tflops / args.peak_tflops:.1%} |")  # fmt: skip


def end_to_end(args, tree: Path, *overrides: str) -> tuple[float, float]:
    """Run-steps per second of ``python train.py overrides…`` of checkout ``tree`` as a process
    (loss_tol 0: every run takes every step), and of its training loop (``run_steps_per_s``)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, str(tree / "train.py"), f"hydra.run.dir={tmp}", f"device={args.device}",
            f"dtype={args.dtype}", "train.loss_tol=0", "train.progress=false", *overrides,
        ]  # fmt: skip
        seconds = timed(lambda: subprocess.run(cmd, cwd=tree, env=python_path(tree), check=True,
                                               capture_output=True))  # fmt: skip
        metrics = json.loads((Path(tmp) / "metrics.json").read_text())
    return metrics["gradient_evaluations"] / seconds, metrics["run_steps_per_s"]


def python_path(tree: Path) -> dict[str, str]:
    """The environment with checkout ``tree`` first on ``PYTHONPATH`` (what was there stays:
    on the device machine, the carried Hydra wheels)."""
    rest = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), *([rest] if rest else [])])}


INIT = (
    "import sys, time, torch; torch.set_num_threads({threads} or torch.get_num_threads()); "
    "from implicit_reg.factorization import factor_shapes; "
    "from implicit_reg.init import sample_batch; "
    "n, d = {inits}, torch.device('{device}'); "
    "s, k = torch.full((n,), 1e-2, dtype=torch.float64, device=d), torch.arange(n, device=d); "
    "t = time.perf_counter(); sample_batch('balanced', s, '{det}', factor_shapes(2, 2, 3, 2), k); "
    "print(time.perf_counter() - t)"
)


def loop_seconds(cls: type, args, device, dtype) -> float:
    """Seconds of the engine's loop with a fresh ``cls`` stepper over ``--runs`` × ``--steps``."""
    stepper = cls(starts(args.runs, device, dtype), problem(device, dtype))
    return timed(lambda: engine_loop(stepper, args.runs, 0.01, args.steps, device, dtype))


def fused_ratio(args, device, dtype) -> None:
    """The entry-wise loop by hand (``FusedEntryStepper``) against autograd's (``EntryStepper``),
    alternated ``--repeats`` times in this process, ``--runs`` × ``--steps``: the median ratio."""
    rates: dict[type, list[float]] = {EntryStepper: [], FusedEntryStepper: []}
    for _ in range(args.repeats):
        for cls, seen in rates.items():
            seen.append(args.runs * args.steps / loop_seconds(cls, args, device, dtype))
    autograd, fused = (statistics.median(r) for r in rates.values())
    print(f"\n## Entry by entry, by hand against autograd: {args.runs} runs × {args.steps} steps, "
          f"median of {args.repeats} alternated (run-steps/s)\n")  # fmt: skip
    print("| loop | run-steps/s |\n|---|---:|")
    print(f"| autograd (`EntryStepper`) | {autograd:.3g} |")
    print(f"| by hand (`FusedEntryStepper`) | {fused:.3g} |")
    print(f"| **ratio** | **{fused / autograd:.2f}** |")


def init_speed(args, device) -> None:
    """``sample_batch`` of ``--inits`` balanced starts, each in a fresh process (of this checkout
    and of the baseline's, alternated): det > 0, and det of any sign (no redraws); on every core
    (as ``run.py`` draws them) and on ``--threads``."""
    print(f"\n## Init: {args.inits} balanced 2×2 depth-3 starts (s)\n")
    print("| checkout, threads | det > 0 | any det |\n|---|---:|---:|")
    trees = {"this": ROOT, **({"baseline": Path(args.baseline)} if args.baseline else {})}
    for (name, tree), threads in itertools.product(trees.items(), (0, args.threads)):
        seconds = []
        for det in ("positive", "any"):
            code = INIT.format(threads=threads, inits=args.inits, device=device, det=det)
            out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=python_path(tree),
                                 check=True, capture_output=True, text=True)  # fmt: skip
            seconds.append(float(out.stdout))
        label = "all cores" if threads == 0 else f"{threads}"
        print(f"| {name}, {label} | {seconds[0]:.2f} | {seconds[1]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--single-steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inits", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (batch.threads)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile the loss")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["single", "loops", "processes", "fused", "init", "mid"],
        default=["single", "loops", "processes", "fused", "init"],
        help="which parts to run (default: all but mid)",
    )
    parser.add_argument(
        "--steppers",
        nargs="+",
        choices=[*STEPPERS, "reference"],
        default=[*STEPPERS, "reference"],
        help="the loops to time (default: all)",
    )
    parser.add_argument("--mid-size", type=int, default=100)
    parser.add_argument("--mid-runs", type=int, default=1000)
    parser.add_argument("--mid-steps", type=int, default=200)
    parser.add_argument("--peak-tflops", type=float, help="the card's fp32 peak (mid: fraction)")
    parser.add_argument(
        "--baseline", help="another checkout (e.g. `git worktree add /tmp/base <commit>`): its "
        "end to end and init are timed beside this one's",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} thread(s)")
    parts = {
        "single": lambda: single_run(args, device, dtype),
        "loops": lambda: loops(args, device, dtype),
        "processes": lambda: processes(args),
        "fused": lambda: fused_ratio(args, device, dtype),
        "init": lambda: init_speed(args, device),
        "mid": lambda: mid_size(args),
    }
    for name in args.parts:
        parts[name]()


if __name__ == "__main__":
    main()
