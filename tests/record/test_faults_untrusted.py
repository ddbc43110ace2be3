"""Nothing in the project unpickles a file it did not make: a crafted ``final.pt`` or
``checkpoint.pt`` whose unpickling would call a function (here ``os.system`` writing a marker
file) is refused in one line and runs nothing, under the pre-2.6 torch default too
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``: ``weights_only=False`` where a call does not say)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import torch

from implicit_reg.figures.__main__ import main as figures
from implicit_reg.record import checkpoint
from implicit_reg.record.run_folder import FolderRefused, inspect
from implicit_reg.record.runs import Run, UnreadableRun

SHORT = (
    "problem=least_squares",
    "problem.n=1",
    "problem.d=2",
    "train.max_steps=50",
    "train.log_every=10",
)


class Payload:
    """Unpickled, it runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture
def crafted(train_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A finished run whose ``final.pt`` is replaced by a crafted one; (folder, marker)."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    _, out = train_run(*SHORT)
    marker = tmp_path / "ran"
    torch.save({"W": Payload(marker), "factors": []}, out / "final.pt")
    return out, marker


def test_reading_a_crafted_final_pt_runs_nothing(crafted: tuple[Path, Path]) -> None:
    """Catches: ``torch.load`` without ``weights_only=True`` in ``record/runs.py``."""
    out, marker = crafted
    with pytest.raises(UnreadableRun, match="cannot be read as tensors only") as refused:
        Run(out).final  # noqa: B018
    assert "\n" not in str(refused.value)
    assert not marker.exists()


def test_figures_refuse_a_crafted_final_pt_in_one_line_and_write_nothing(
    crafted: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    out, marker = crafted
    assert figures([str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.match(r"figures: UnreadableRun: .*final\.pt cannot be read", err[0])
    assert not marker.exists() and not (out / "figures").exists()


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catches: ``checkpoint.read`` without ``weights_only=True``."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "ran"
    torch.save({"step": Payload(marker)}, tmp_path / checkpoint.FILE)
    with pytest.raises(FolderRefused, match=r"checkpoint\.pt is corrupt"):
        inspect(tmp_path)
    assert not marker.exists()


def test_no_torch_load_in_the_project_leaves_weights_only_to_the_default(repo: Path) -> None:
    """Every ``torch.load`` call in the package, the scripts and the tests says
    ``weights_only=True`` (the default before torch 2.6 was False).
    Catches: a new reader that omits it."""
    calls = []
    for path in [
        *repo.glob("implicit_reg/**/*.py"),
        *repo.glob("tests/**/*.py"),
        repo / "train.py",
    ]:
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(", text):
            end = text.find("\n", match.end())
            call = text[match.start() : text.find(")\n", match.start()) + 1 or end]
            if "weights_only=True" not in call and "re.finditer" not in text[match.start() - 40 :]:
                calls.append(f"{path.name}: {call[:60]}")
    assert calls == []


@pytest.mark.slow
def test_the_figures_command_refuses_a_crafted_file_under_old_torch_defaults(
    crafted: tuple[Path, Path], python_cli
) -> None:
    out, marker = crafted
    done = python_cli(
        "-m", "implicit_reg.figures", str(out), env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not marker.exists()
