"""Our training loop against the authors' code of Arora, Cohen, Hu & Luo (NeurIPS 2019,
github.com/roosephu/deep_matrix_factorization), side by side in one invocation.

The problem is theirs: 100×100 rank-5 completion from 2,000 observed entries, depth 3, their
GroupRMSprop (lr 1e-3, ε 1e-4 on the mean squared error), float32, end-to-end init scale
‖W(0)‖_F ≈ 1e-3·√n (their ``init_scale`` 1e-3, our ε = 1e-4). Each of ``--repeats`` rounds
times, in turn (alternated, so a change in the machine's load hits every row alike):

- ``theirs``: their ``main.py`` for ``--steps`` iterations (it logs every 1,000);
- then each of ``--rows`` of ours (all by default):
  ``default``: ``train.py experiment=arora2019_completion method=depth3`` as one run with its
  default logging; ``lean``: the same with ``train.log_per_decade=0 train.sharpness_iters=0``;
  ``batch``: 5 draws × ε = 1e-4 … 1e-7 in one stacked run; ``batch_auto``: the batch with
  ``batch.threads=auto`` (every core; the rows above use one). With ``--baseline DIR`` each
  row also runs from that checkout of ours (before/after a change, in the same rounds).

Per step excludes start-up on both sides: theirs is the time between their first and last
``Iter #`` log lines (their logger stamps milliseconds), ours is ``wall_time_s`` of
``metrics.json`` (the training loop, its logs included). A batch's figure is per run-step
(its time over steps × 20). Both use one thread (``OMP_NUM_THREADS=1`` for theirs,
``batch.threads=1`` for ours) unless a row says otherwise. ``--converge`` also trains one
depth-3 run of each to mean squared error 1e-6 on the observations (their stopping rule and
ours under ``train.mse_tol``) and reports the steps and the wall time.

Their code needs one change under NumPy 2: in ``gen_gt.py`` the ground truth is divided by
``np.float32(np.sqrt(r))`` instead of ``np.sqrt(r)`` (a float64 scalar promotes the float32
ground truth to float64). Without it their ``gt.pt`` is float64, and this benchmark refuses
to go on. Their data (``gen_gt.py``, ``gen_obs.py``) is drawn into a temporary folder; ours is
our preset's. Their dependencies beyond ours (coloredlogs, toml, fasteners, wrapt,
tensorboardX) go in a separate folder, given as ``--reference-pythonpath``.

    python benchmarks/arora_reference.py --reference ../deep_matrix_factorization \\
        --reference-pythonpath ../refdeps --steps 3000 --repeats 3 --converge
    python benchmarks/arora_reference.py --reference … --rows default --baseline ../before
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
LOG_EVERY = 1000  # their main.py logs every n_dev_iters = 1,000,000 // 1000 iterations
BATCH_RUNS = 20
OURS = (
    "experiment=arora2019_completion",
    "method=depth3",
    "problem.observed=2000",
    "hydra.mode=RUN",
    "train.progress=false",
)
SINGLE = ("batch.seeds=1", "batch.end_to_end_scales=[1e-4]")
BATCH = ("batch.seeds=5", "batch.end_to_end_scales=[1e-4,1e-5,1e-6,1e-7]")
LEAN = ("train.log_per_decade=0", "train.sharpness_iters=0")
# row name: (overrides, runs per step)
ROWS = {
    "default": ((*SINGLE, "batch.threads=1"), 1),
    "lean": ((*SINGLE, *LEAN, "batch.threads=1"), 1),
    "batch": ((*BATCH, "batch.threads=1"), BATCH_RUNS),
    "batch_auto": ((*BATCH, "batch.threads=auto"), BATCH_RUNS),
}
ITER_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*Iter #(\d+): train = (\S+),")


def _refuse(message: str) -> None:
    sys.exit(f"arora_reference: {message}")


class Reference:
    """The authors' checkout, run by this Python with their extra packages on PYTHONPATH."""

    def __init__(self, checkout: Path, pythonpath: str | None, work: Path) -> None:
        self.checkout, self.work = checkout, work
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if pythonpath:
            self.env["PYTHONPATH"] = pythonpath
        self.runs = 0

    def _python(self, script: str, *args: str) -> str:
        """Their ``script`` run from ``work`` (their data paths are relative to it): its log."""
        command = [sys.executable, str(self.checkout / script), *args]
        done = subprocess.run(
            command, cwd=self.work, env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            _refuse(f"{script} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout + done.stderr

    def config(self, name: str) -> str:
        return str(self.checkout / "configs" / name)

    def make_data(self) -> None:
        """Their ground truth and 2,000 observations (gen_gt.py, gen_obs.py) under ``work``."""
        (self.work / "datasets" / "mat-cmpl").mkdir(parents=True, exist_ok=True)
        logs = str(self.work / "data_logs")
        self._python(
            "gen_gt.py", "--config", self.config("mat-cmpl/gen_gt.toml"), "--log_dir", logs
        )
        gen_obs = ("--config", self.config("mat-cmpl/gen_obs.toml"))
        self._python("gen_obs.py", *gen_obs, "--set", "n_train_samples", "2000", "--log_dir", logs)
        truth = torch.load(self.work / "datasets" / "mat-cmpl" / "gt.pt", weights_only=True)
        if truth.dtype != torch.float32:
            _refuse(
                f"their gen_gt.py wrote a {truth.dtype} ground truth; under NumPy 2 it needs "
                "`/ np.float32(np.sqrt(r))` in place of `/ np.sqrt(r)` (see this file's docstring)"
            )

    def train(self, n_iters: int) -> list[tuple[float, int, float]]:
        """Their depth-3 GroupRMSprop run for at most ``n_iters`` iterations (stopping at train
        MSE ≤ 1e-6): its ``Iter #`` log lines as (seconds, iteration, train MSE)."""
        self.runs += 1
        text = self._python(
            "main.py",
            "--log_dir", str(self.work / "theirs"),
            "--config", self.config("mat-cmpl/run.toml"),
            "--config", self.config("mat-cmpl/2000.toml"),
            "--config", self.config("opt/grouprmsprop.toml"),
            "--set", "depth", "3",
            "--set", "n_iters", str(n_iters),
            "--set", "init_scale", "0.001",
        )  # fmt: skip
        lines = []
        for line in text.splitlines():
            if found := ITER_LINE.match(line):
                stamp = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                lines.append((stamp, int(found[2]), float(found[3])))
        if len(lines) < 2:
            _refuse(f"their main.py logged {len(lines)} `Iter #` lines:\n{text[-2000:]}")
        return lines


def theirs_per_step(reference: Reference, steps: int) -> float:
    """Seconds per step of their loop: first to last log line (iterations 0 and ``steps``)."""
    lines = reference.train(steps + 1)
    (t0, i0, _), (t1, i1, _) = lines[0], lines[-1]
    return (t1 - t0) / (i1 - i0)


def ours(overrides: tuple[str, ...], out: Path, checkout: Path = ROOT) -> dict:
    """``train.py`` of ``checkout`` with ``overrides`` into ``out``: its metrics.json."""
    command = [sys.executable, "train.py", *OURS, *overrides, f"hydra.run.dir={out}"]
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        _refuse(f"train.py {' '.join(overrides)} failed:\n{done.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text())


def ours_per_run_step(row: str, steps: int, out: Path, checkout: Path = ROOT) -> float:
    """Seconds per run-step of our loop in ``row`` (``wall_time_s`` of ``steps`` steps over
    its runs)."""
    overrides, runs = ROWS[row]
    fixed = ("train.loss_tol=0", "train.mse_tol=null", f"train.max_steps={steps}")
    metrics = ours(overrides + fixed, out, checkout)
    if metrics["gradient_evaluations"] != steps * runs:
        _refuse(f"{metrics['gradient_evaluations']} run-steps, not {steps} × {runs}")
    return metrics["wall_time_s"] / (steps * runs)


def converge(reference: Reference, work: Path) -> dict[str, tuple[int, float]]:
    """Steps and seconds to train MSE ≤ 1e-6, one depth-3 run each, one thread."""
    lines = reference.train(1_000_000)
    (t0, _, _), (t1, last, mse) = lines[0], lines[-1]
    if mse > 1e-6:
        _refuse(f"their run stopped at MSE {mse:.3g} after {last} iterations")
    metrics = ours((*SINGLE, "batch.threads=1"), work / "ours_converge")
    if metrics["status"] != "converged":
        _refuse(f"our run ended {metrics['status']} after {metrics['steps']} steps")
    return {"theirs": (last, t1 - t0), "ours": (int(metrics["steps"]), metrics["wall_time_s"])}


def _spread(values: list[float]) -> str:
    """Median (min–max) in ms."""
    ms = [1e3 * v for v in values]
    return f"{statistics.median(ms):.2f} ({min(ms):.2f}–{max(ms):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="their checkout")
    parser.add_argument("--reference-pythonpath", help="PYTHONPATH for their extra packages")
    parser.add_argument("--steps", type=int, default=3000, help="steps per timing (×1000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--baseline", type=Path, help="another checkout of ours, timed alike")
    parser.add_argument("--converge", action="store_true", help="also time MSE ≤ 1e-6")
    parser.add_argument("--json", type=Path, help="write the timings here too")
    args = parser.parse_args()
    if not (args.reference / "main.py").is_file() or not (args.reference / "gen_gt.py").is_file():
        _refuse(f"--reference {args.reference}: no main.py and gen_gt.py there")
    if args.steps < LOG_EVERY or args.steps % LOG_EVERY:
        _refuse(f"--steps {args.steps}: a positive multiple of {LOG_EVERY} (their log interval)")
    if args.baseline is not None and not (args.baseline / "train.py").is_file():
        _refuse(f"--baseline {args.baseline}: no train.py there")
    if args.repeats < 1:
        _refuse(f"--repeats {args.repeats}: at least 1")

    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="arora_reference_") as tmp:
        work = Path(tmp)
        reference = Reference(args.reference.resolve(), args.reference_pythonpath, work)
        reference.make_data()
        checkouts = {"ours": ROOT}
        if args.baseline is not None:
            checkouts["baseline"] = args.baseline.resolve()
        times: dict[str, list[float]] = {"theirs": []}
        for repeat in range(args.repeats):
            times["theirs"].append(theirs_per_step(reference, args.steps))
            print(f"[{repeat}] theirs {1e3 * times['theirs'][-1]:.3f} ms", flush=True)
            for row in args.rows:
                for name, checkout in checkouts.items():
                    label = f"{name}, {row}"
                    out = work / f"{name}_{repeat}_{row}"
                    seconds = ours_per_run_step(row, args.steps, out, checkout)
                    times.setdefault(label, []).append(seconds)
                    print(f"[{repeat}] {label} {1e3 * seconds:.3f} ms", flush=True)
        reached = converge(reference, work) if args.converge else None
    load = os.getloadavg()

    theirs = statistics.median(times["theirs"])
    print(f"\n{args.steps} steps × {args.repeats} alternated rounds; load average at end: {load}")
    print("| ms per run-step, median (min–max) | value | ours/theirs |\n|---|---|---|")
    for label, values in times.items():
        ratio = statistics.median(values) / theirs
        print(f"| {label} | {_spread(values)} | {ratio:.2f} |")
    if reached is not None:
        print("\n| to train MSE ≤ 1e-6, one thread | steps | wall s | ours/theirs |")
        print("|---|---|---|---|")
        for label, (steps, seconds) in reached.items():
            ratio = seconds / reached["theirs"][1]
            print(f"| {label} | {steps} | {seconds:.1f} | {ratio:.2f} |")
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({"times_s": times, "converge": reached, "load": load}))


if __name__ == "__main__":
    main()
