"""The scalars a run logs, by TensorBoard tag, computed from the end-to-end matrix W.

Tags (the output contract; ``metrics.json`` uses the same names):
``loss/train``, ``norm/{fro,nuclear,spectral,schatten_0.5}``, ``rank/effective``,
``rank/infimal_distance``, ``singular_values/<i>`` (1-based, descending), ``det/value`` and
``det/sign`` (square problems), ``error/reconstruction`` (where the problem's ground truth W* is
known: random completion, sensing), ``time/flow``, plus each problem's own: ``entries/<i>_<j>`` for
the unobserved entries of a completion, ``loss/test`` where its ground truth is known;
``beta/<i>``, ``norm/l2``, ``dist/min_norm``, ``dist/flow_closed_form`` for least squares;
with ``alignment``, the ``alignment/*`` tags of ``implicit_reg.alignment`` (|Uᵀ∇ℓ(W)V|).
"""

from __future__ import annotations

import torch
from torch import Tensor

from implicit_reg import metrics
from implicit_reg.alignment import gradient_alignment
from implicit_reg.problems import Problem


def compute(
    problem: Problem,
    W: Tensor,
    *,
    flow_time: float,
    W0: Tensor | None = None,
    max_tracked: int = 16,
    alignment: bool = False,
) -> dict[str, Tensor]:
    """Every logged scalar at W ``(*runs, rows, cols)``, each a tensor of shape ``runs``;
    ``alignment`` adds those of |Uᵀ∇ℓ(W)V| (a matrix problem's ``Problem.gradient``)."""
    with torch.no_grad():
        s = metrics.singular_values(W)
        out = {
            "loss/train": problem.loss(W),
            "norm/fro": s.square().sum(-1).sqrt(),
            "norm/nuclear": s.sum(-1),
            "norm/spectral": s[..., 0],
            "norm/schatten_0.5": metrics.schatten_from_singular_values(s, 0.5),
            "rank/effective": metrics.effective_rank_from_singular_values(s),
            "rank/infimal_distance": metrics.infimal_distance_from_singular_values(
                s, problem.infimal_rank
            ),
        }
        for i in range(min(s.shape[-1], max_tracked)):
            out[f"singular_values/{i + 1}"] = s[..., i]
        if W.shape[-1] == W.shape[-2]:
            det = torch.linalg.det(W)
            out["det/value"] = det
            out["det/sign"] = torch.sign(det)
        if problem.ground_truth is not None:
            out["error/reconstruction"] = metrics.reconstruction_error(W, problem.ground_truth)
        out.update(problem.scalars(W, flow_time, W0))
        if alignment:
            out.update(gradient_alignment(W, problem.gradient(W)))
        out["time/flow"] = torch.full_like(s[..., 0], flow_time)
    return out


def compute_runs(
    problem: Problem,
    W: Tensor,
    flow_times: Tensor,
    W0: Tensor | None,
    max_tracked: int,
    alignment: bool = False,
) -> dict[str, Tensor]:
    """``compute`` for runs ``(K, rows, cols)`` at their own flow times ``(K,)``, each tag
    ``(K,)``. Only the closed-form flow of depth 1 (W0 given) depends on the time; there the runs
    are evaluated in groups of equal time. Runs with non-finite entries get NaN (the SVD cannot
    take them)."""
    bad = ~torch.isfinite(W).flatten(1).all(1)
    W = torch.where(bad[:, None, None], 0.0, W)
    if W0 is None:
        values = compute(problem, W, flow_time=0.0, max_tracked=max_tracked, alignment=alignment)
    else:
        values = {}
        for t in flow_times.unique().tolist():
            runs = flow_times == t
            part = compute(problem, W[runs], flow_time=t, W0=W0[runs], max_tracked=max_tracked,
                           alignment=alignment)  # fmt: skip
            for tag, value in part.items():
                values.setdefault(tag, value.new_empty(W.shape[0]))[runs] = value
    values = {tag: torch.where(bad, torch.nan, value) for tag, value in values.items()}
    values["time/flow"] = flow_times.to(W.dtype)
    return values
