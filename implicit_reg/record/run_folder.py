"""A run folder holds one run (README § "Robustness").

- A rerun in a folder resumes only an *unfinished* run (``checkpoint.pt`` without a finished
  ``metrics.json``) whose trajectory-defining config (``checkpoint.SAME_RUN_KEYS``) matches. A
  ``metrics.json`` whose results are not all whole (``record/completion.py``) is unfinished.
- A finished run is extended only on request (``train.extend=true``, with a larger
  ``train.max_steps`` or a smaller ``train.loss_tol``); ``metrics.json`` lists every segment.
- Anything else (a finished run rerun, another config, a corrupt checkpoint) is refused before
  any file changes: the ``HoldRunFolder`` Hydra callback checks before Hydra writes ``.hydra/``.
- A lock (``flock`` on ``.lock`` in the folder) is held while the run goes: a second process on
  the folder is refused; the OS drops the lock of a killed process, so a resume is never blocked.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from implicit_reg.config.device import DTYPES
from implicit_reg.config.validate import ConfigError
from implicit_reg.os_errors import one_line
from implicit_reg.record import artifacts, checkpoint, completion, history

log = logging.getLogger(__name__)

LOCK = ".lock"
METRICS = completion.METRICS

_held: dict[Path, int] = {}
"""Folders whose lock this process holds, with the lock file's descriptor."""


class FolderRefused(ConfigError):
    """A run folder that this config may not run in; the message is one line naming it. A
    ``ConfigError``, so that a sweep logs a refused job in one line, as it logs a bad config."""

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        self.key = "hydra.run.dir"


@dataclass
class Folder:
    """What a run folder holds before the run starts."""

    path: Path
    checkpoint: checkpoint.Checkpoint | None
    metrics: dict[str, Any] | None
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return completion.finished(self.path, self.metrics)

    @property
    def incomplete(self) -> list[str]:
        """The results a finishing ``metrics.json`` vouches for that are missing or not whole."""
        if self.metrics is None or self.metrics.get("status", "failed") in completion.UNFINISHED:
            return []
        return completion.missing_results(self.path, self.metrics)

    def write_metrics(self, cfg: DictConfig, result: dict[str, Any]) -> None:
        """Add the segments so far and this one to ``result``; write it as ``metrics.json``, the
        completion record, last: it lists the result files written before it (``results``)."""
        start = self.checkpoint.step if self.checkpoint is not None else 0
        segment = {
            "start_step": start,
            "steps": result["steps"],
            "status": result["status"],
            "max_steps": int(cfg.train.max_steps),
            "loss_tol": float(cfg.train.loss_tol),
        }
        if self.finished and result["status"] == "converged" and result["steps"] == start:
            segment["tolerance_met_at_start"] = True
            log.warning(
                "train.loss_tol=%g was already met at step %s, where this extension started: "
                "the run fell below it earlier (a new run finds the step)",
                cfg.train.loss_tol, f"{start:,}",
            )  # fmt: skip
        result["segments"] = [*self.segments, segment]
        result[completion.RESULTS] = completion.present_results(self.path)
        artifacts.write_json(self.path / METRICS, result)


def inspect(path: Path) -> Folder:
    """Read the folder's checkpoint and ``metrics.json``; refuse (``FolderRefused``) a file that
    cannot be read."""
    ckpt_path, metrics_path = path / checkpoint.FILE, path / METRICS
    try:
        ckpt = checkpoint.read(path)
    except OSError:  # the file system's fault (a name too long, no permission), not the file's
        raise
    except Exception as error:  # truncated, garbage, empty: torch raises many kinds
        raise FolderRefused(
            f"{ckpt_path} is corrupt ({type(error).__name__}); nothing was changed: move it away "
            "to start this run over"
        ) from None
    metrics = None
    if metrics_path.exists():
        try:
            metrics = json.loads(metrics_path.read_text())
            if not isinstance(metrics, dict):
                raise ValueError("not a JSON object")
            segments = metrics.get("segments", [])
            if not (isinstance(segments, list) and all(isinstance(s, dict) for s in segments)):
                raise ValueError("segments is not a list of objects")
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, a wrong shape
            raise FolderRefused(
                f"{metrics_path} is corrupt; nothing was changed: move it away to go on"
            ) from None
    segments = [dict(s) for s in metrics.get("segments", [])] if metrics else []
    folder = Folder(path, ckpt, metrics, segments)
    if folder.incomplete and folder.segments:  # its record outlived its results: done again
        folder.segments[-1]["status"] = "incomplete"
    return folder


def _recorded_identity(folder: Folder) -> dict[str, Any] | None:
    """The trajectory-defining config of the run in the folder: its checkpoint's, or else that
    of ``.hydra/config.yaml`` (a flow run has no checkpoint)."""
    if folder.checkpoint is not None:
        return folder.checkpoint.config
    saved = folder.path / ".hydra" / "config.yaml"
    if not saved.exists():
        return None
    try:
        return checkpoint.identity(OmegaConf.load(saved))
    except Exception:  # a record this code cannot read says nothing about identity
        return None


def check(path: Path, cfg: DictConfig) -> Folder:
    """Refuse (``FolderRefused``) to run ``cfg`` in ``path`` unless it starts a new run there,
    resumes the unfinished run there, or extends the finished one on request (module doc)."""
    folder = inspect(path)
    recorded = _recorded_identity(folder)
    if recorded is not None and (folder.checkpoint is not None or folder.metrics is not None):
        current = checkpoint.identity(cfg)
        differ = [
            k for k in sorted(set(current) | set(recorded)) if current.get(k) != recorded.get(k)
        ]
        if differ:
            shown = ", ".join(
                f"{k}={current.get(k)!r} (the run's: {recorded.get(k)!r})" for k in differ
            )
            raise FolderRefused(
                f"{path} holds another run; these keys differ: {shown}. Use a new hydra.run.dir"
            )
    extend = bool(cfg.train.get("extend", False))
    if folder.finished:
        status, steps = folder.metrics.get("status"), folder.metrics.get("steps")
        what = f"{path} holds a finished run ({status}, {steps} steps)"
        if not extend:
            raise FolderRefused(
                f"{what}, which is never overwritten: train.extend=true with a larger "
                "train.max_steps or a smaller train.loss_tol extends it; a new hydra.run.dir "
                "starts a new run"
            )
        if folder.checkpoint is None:
            raise FolderRefused(f"{what} without {checkpoint.FILE}: it cannot be extended")
        last = folder.segments[-1] if folder.segments else None
        longer = cfg.train.max_steps > folder.checkpoint.step
        tighter = last is not None and cfg.train.loss_tol < last["loss_tol"]
        if not (longer or tighter):
            raise FolderRefused(
                f"{what}: train.extend=true needs train.max_steps > {folder.checkpoint.step} or "
                f"train.loss_tol < {last['loss_tol']:g}"
            )
    ckpt = folder.checkpoint
    if ckpt is not None and cfg.train.singular_value_history > 0:
        problem = history.check(path, ckpt.step, ckpt.history)
        if problem is not None:
            raise FolderRefused(
                f"{problem}; nothing was changed: train.singular_value_history=0 goes on without "
                "it, a new hydra.run.dir starts a new run"
            )
    if folder.checkpoint is not None and folder.checkpoint.step > cfg.train.max_steps:
        raise FolderRefused(
            f"{path} holds a run at step {folder.checkpoint.step:,}: train.max_steps="
            f"{cfg.train.max_steps} is below it"
        )
    return folder


def lock(path: Path) -> bool:
    """Take the folder's lock for this process (``path`` is created if needed); ``False`` if
    this process holds it already. Refuse (``FolderRefused``) if another process holds it."""
    path = path.resolve()
    if path in _held:
        return False
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderRefused(
            f"{path} is in use by another running process (it holds {path / LOCK}); wait for "
            "it to end or use a new hydra.run.dir"
        ) from None
    _held[path] = fd
    return True


def in_use(path: Path) -> bool:
    """Whether another process holds the lock of ``path`` now (creates nothing)."""
    path = path.resolve()
    if path in _held:
        return False
    try:
        fd = os.open(path / LOCK, os.O_RDWR)
    except OSError:  # no lock file: no run there yet
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


def unlock(path: Path) -> None:
    fd = _held.pop(path.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


@contextmanager
def hold(path: Path, cfg: DictConfig) -> Iterator[Folder]:
    """Lock ``path`` for the run, check that ``cfg`` may run there, say so if it resumes, and
    warn of a tolerance the dtype cannot reach; unlock at the end."""
    lock(path)
    try:
        artifacts.remove_stale(path)  # under the lock: no other process writes here
        folder = check(path, cfg)
        if folder.incomplete:
            log.warning(
                "%s: %s says the run ended (%s), but %s is missing or not whole: the run goes "
                "again from %s",
                path, METRICS, folder.metrics.get("status"), ", ".join(folder.incomplete),
                "its checkpoint" if folder.checkpoint is not None else "the start",
            )  # fmt: skip
        if folder.checkpoint is not None:
            verb = "extending" if folder.finished else "resuming"
            log.info("%s %s from step %s", verb, path, f"{folder.checkpoint.step:,}")
        # the loss is ½Σ r²: residuals of unit-size data are resolved to about eps, so ½·eps² is
        # its floor (float64: 2.5e-32; float32: 7.1e-15), not eps (a float64 least-squares run
        # reaches 1e-24)
        floor = torch.finfo(DTYPES[cfg.dtype]).eps ** 2 / 2
        if 0 < cfg.train.loss_tol < floor:
            remedy = "use dtype=float64 or " if cfg.dtype != "float64" else ""
            log.warning(
                "train.loss_tol=%g is below %s's resolution of the loss (½·eps² = %.2g for "
                "unit-size residuals): the loss is unlikely to reach it; %sa larger "
                "train.loss_tol",
                cfg.train.loss_tol, cfg.dtype, floor, remedy,
            )  # fmt: skip
        yield folder
    finally:
        unlock(path)


class HoldRunFolder(Callback):
    """Before Hydra writes ``.hydra/`` into a single run's folder: refuse a config that may not
    run there or a folder that cannot be written, and take the folder's lock (kept until ``run``
    ends). Hydra turns an exception in a callback into a warning and goes on to write the
    folder, so every error exits here (status 1, one line on stderr)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        job = copy.deepcopy(config)
        with read_write(job), open_dict(job):
            del job["hydra"]
        path = Path(str(config.hydra.run.dir))
        try:
            check(path, job)  # refuse before the lock file is made
            if lock(path):
                check(path, job)  # again under the lock: another process may have written
                artifacts.remove_stale(path)
            artifacts.check_writable(path)  # a full disk or a read-only folder: before .hydra/
        except Exception as error:  # any: Hydra would warn and write the folder anyway
            sys.exit(one_line(error))
