"""``python -m implicit_reg.figures <run or sweep folder> [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from implicit_reg.figures import draw_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m implicit_reg.figures", description=__doc__)
    parser.add_argument("folder", type=Path, help="a run folder, or a folder of runs (a sweep)")
    parser.add_argument("--out", type=Path, help="where to write the PNGs (default FOLDER/figures)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    written = draw_all(args.folder, args.out)
    if not written:
        print(f"no figure is supported by the runs under {args.folder}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
