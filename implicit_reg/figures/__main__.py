"""``python -m implicit_reg.figures <run or sweep folder> [--out DIR] [--only NAME …]``.

A folder that does not exist or holds no finished run, runs that no figure uses, or an ``--only``
figure they cannot give, is refused with one line and exit status 1, and nothing is written (not
even an empty ``--out`` folder). A run whose files cannot be read is left out with one line; one
whose ``final.pt`` cannot be read as tensors only (``record/runs.py``) stops the figures in one
line, before any is written; so does a folder that cannot be written (exit status 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from implicit_reg.figures import FIGURES, RUN_PANEL, draw_all, has_run_panel
from implicit_reg.os_errors import console_never_fails, one_line
from implicit_reg.record.runs import Run, UnreadableRun, find_runs, not_a_folder

SHOWN = 5
"""Runs left out that are named one by one; the rest are counted."""


def refusal(
    folder: Path, only: list[str] | None = None, runs: list[Run] | None = None
) -> str | None:
    """Why the figures (those named in ``only``, if given) cannot be drawn from ``folder`` (or
    from its ``runs``, if found already) in one line, or None."""
    problem = not_a_folder(folder)
    if problem:
        return problem
    runs = find_runs(folder) if runs is None else runs
    if not runs:
        return f"{folder} holds no finished run (a folder with .hydra/config.yaml and final.pt)"
    supported = [figure.NAME for figure in FIGURES if figure.supports(runs)]
    supported += [RUN_PANEL] if has_run_panel(folder, runs) else []
    if not supported:
        names = ", ".join(figure.NAME for figure in FIGURES)
        return f"no figure ({names}) is supported by the {len(runs)} runs under {folder}"
    missing = [name for name in only or [] if name not in supported]
    if missing:
        return (
            f"--only {' '.join(missing)}: not drawn from the {len(runs)} runs under {folder}; "
            f"they give: {', '.join(supported)}"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m implicit_reg.figures", description=__doc__.split("\n")[0]
    )
    parser.add_argument("folder", type=Path, help="a run folder, or a folder of runs (a sweep)")
    parser.add_argument("--out", type=Path, help="where to write the PNGs (default FOLDER/figures)")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", choices=[f.NAME for f in FIGURES] + [RUN_PANEL],
        help="draw only these figures (default: every one the runs support)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    skipped: list[str] = []
    runs = find_runs(args.folder, skipped) if args.folder.is_dir() else []
    for line in skipped[:SHOWN]:
        print(f"figures: left out: {line}", file=sys.stderr)
    if len(skipped) > SHOWN:
        print(f"figures: left out {len(skipped) - SHOWN} more runs", file=sys.stderr)
    problem = refusal(args.folder, args.only, runs)
    if problem:
        print(f"figures: {problem}", file=sys.stderr)
        return 1
    try:
        paths = draw_all(args.folder, args.out, set(args.only) if args.only else None, runs)
    except (UnreadableRun, OSError) as error:
        print(f"figures: {one_line(error)}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    console_never_fails()
    sys.exit(main())
