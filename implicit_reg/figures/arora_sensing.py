"""Arora, Cohen, Hu & Luo (2019), appendix: Figure 2's comparison on matrix sensing, from
Gaussian measurements ⟨Aₖ, W*⟩ instead of observed entries (drawn as ``arora_completion``)."""

from __future__ import annotations

from matplotlib.figure import Figure

from implicit_reg.figures import arora_completion
from implicit_reg.record.runs import Run

NAME = "arora2019_sensing"
PROBLEM = "matrix_sensing"


def supports(runs: list[Run]) -> list[Run]:
    return arora_completion.supported(runs, PROBLEM)


def draw(runs: list[Run]) -> Figure:
    return arora_completion.draw_recovery(runs, "measurements", "measurements", "Matrix sensing")
