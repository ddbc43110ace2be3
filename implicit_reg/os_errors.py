"""Faults of the machine rather than of the config (a full disk, a read-only folder, a parent
path that is a file, a name too long for the file system), each as one line that says what to do
next, for the commands' last line instead of a traceback."""

from __future__ import annotations

import errno
import sys

NEXT = {
    errno.ENOSPC: "free some space, then run the same command again (a run resumes from its last "
    "checkpoint)",
    errno.EDQUOT: "free some of your quota, then run the same command again (a run resumes from "
    "its last checkpoint)",
    errno.EROFS: "the file system is read-only: write to another folder (hydra.run.dir, "
    "hydra.sweep.dir or --out)",
    errno.EACCES: "no permission to write there: write to another folder (hydra.run.dir, "
    "hydra.sweep.dir or --out)",
    errno.EPERM: "no permission to write there: write to another folder (hydra.run.dir, "
    "hydra.sweep.dir or --out)",
    errno.ENOTDIR: "a part of that path is a file, not a folder: choose another path",
    errno.EEXIST: "a file of that name is in the way: choose another path",
    errno.ENAMETOOLONG: "a name in that path is too long for the file system (at most 255 "
    "bytes a name): choose a shorter one",
}


def describe(error: OSError) -> str:
    """One line for ``error``: what failed, where, and what to do next."""
    where = error.filename if error.filename is not None else "a file"
    reason = error.strerror or type(error).__name__
    line = f"{reason}: {where}"
    if error.errno in NEXT:
        line += f"; {NEXT[error.errno]}"
    return line


def one_line(error: Exception) -> str:
    """The line a command ends with for ``error``: its kind and message, an ``OSError`` as
    ``describe`` words it; only the message's first line."""
    text = describe(error) if isinstance(error, OSError) else str(error)
    lines = text.strip().splitlines() or [""]
    return f"{type(error).__name__}: {lines[0]}"


def console_never_fails() -> None:
    """Let stdout and stderr write any text: a character the console's encoding lacks (``×``
    under ``PYTHONIOENCODING=ascii`` or a C locale) is written as an escape, not raised."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")
