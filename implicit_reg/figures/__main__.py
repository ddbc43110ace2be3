"""``python -m implicit_reg.figures <run or sweep folder> [--out DIR]``.

A folder that does not exist or holds no finished run, or runs that no figure uses, is refused
with one line and exit status 1, and nothing is written (not even an empty ``--out`` folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from implicit_reg.figures import FIGURES, draw_all
from implicit_reg.record.runs import find_runs, not_a_folder


def refusal(folder: Path) -> str | None:
    """Why no figure can be drawn from ``folder`` (one line), or None."""
    problem = not_a_folder(folder)
    if problem:
        return problem
    runs = find_runs(folder)
    if not runs:
        return f"{folder} holds no finished run (a folder with .hydra/config.yaml and final.pt)"
    if not any(figure.supports(runs) for figure in FIGURES):
        names = ", ".join(figure.NAME for figure in FIGURES)
        return f"no figure ({names}) is supported by the {len(runs)} runs under {folder}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m implicit_reg.figures", description=__doc__.split("\n")[0]
    )
    parser.add_argument("folder", type=Path, help="a run folder, or a folder of runs (a sweep)")
    parser.add_argument("--out", type=Path, help="where to write the PNGs (default FOLDER/figures)")
    args = parser.parse_args(argv)
    problem = refusal(args.folder)
    if problem:
        print(f"figures: {problem}", file=sys.stderr)
        return 1
    for path in draw_all(args.folder, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
