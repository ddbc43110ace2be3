"""|Uᵀ∇ℓ(W)V| (``implicit_reg.alignment``, Arora et al. 2019, Fig. 3): against numpy's SVD, zero
off the diagonal where the gradient shares W's singular vectors, and recorded by a run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from implicit_reg.alignment import TAGS, gradient_alignment
from implicit_reg.problems import MatrixCompletion
from implicit_reg.record import history
from implicit_reg.record.events import read_scalars


def numpy_alignment(W: np.ndarray, G: np.ndarray, transpose_v: bool = False) -> np.ndarray:
    """(diag mean, diag std, off-diagonal mean, off-diagonal std) of |Uᵀ G V| from numpy's
    SVD W = U S Vh, V = Vhᵀ (``transpose_v``: the planted bug V = Vh)."""
    U, _, Vh = np.linalg.svd(W, full_matrices=False)
    M = np.abs(U.T @ G @ (Vh if transpose_v else Vh.T))
    diag = np.diag(M)
    off = M[~np.eye(len(M), dtype=bool)]
    return np.array([diag.mean(), diag.std(ddof=1), off.mean(), off.std(ddof=1)])


def orthonormal(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((n, k)))[0]


@pytest.mark.parametrize("shape", [(7, 5), (5, 7), (6, 6)])
def test_equals_numpys_svd_for_every_run_of_a_batch(shape) -> None:
    rng = np.random.default_rng(0)
    W, G = rng.standard_normal((2, 3, *shape))
    got = gradient_alignment(torch.from_numpy(W), torch.from_numpy(G))
    assert list(got) == list(TAGS)
    for run in range(3):
        want = numpy_alignment(W[run], G[run])
        np.testing.assert_allclose([got[t][run].item() for t in TAGS], want, rtol=1e-10)


def test_a_gradient_in_ws_singular_basis_has_no_off_diagonal() -> None:
    """All entries observed and W* = U D Vᵀ with W = U S Vᵀ: ∇ℓ(W) = W − W* = U (S − D) Vᵀ,
    so Uᵀ∇ℓ V = S − D. Transposing V (V ≠ Vᵀ here) leaves off-diagonal entries of O(1)."""
    rng = np.random.default_rng(1)
    U, V = orthonormal(rng, 6, 4), orthonormal(rng, 4, 4)
    S, D = np.array([5.0, 3.0, 2.0, 0.5]), np.array([4.0, 3.5, 0.0, 0.0])
    W, truth = U @ np.diag(S) @ V.T, U @ np.diag(D) @ V.T
    problem = MatrixCompletion(
        torch.from_numpy(truth), torch.ones(6, 4, dtype=torch.bool), infimal_rank=2,
        truth_known=True,
    )  # fmt: skip
    Wt = torch.from_numpy(W)
    got = gradient_alignment(Wt, problem.gradient(Wt))
    assert got["alignment/offdiag_mean"].item() == pytest.approx(0.0, abs=1e-13)
    assert got["alignment/offdiag_std"].item() == pytest.approx(0.0, abs=1e-13)
    gap = np.abs(S - D)  # |Uᵀ∇ℓ V|'s diagonal, whatever signs the SVD picks for U and V
    assert got["alignment/diag_mean"].item() == pytest.approx(gap.mean(), rel=1e-12)
    assert got["alignment/diag_std"].item() == pytest.approx(gap.std(ddof=1), rel=1e-12)
    wrong = numpy_alignment(W, W - truth, transpose_v=True)  # the setup tells V from Vᵀ
    assert wrong[2] > 0.1


def test_a_run_records_the_alignment_of_its_final_w(train_run) -> None:
    _, out = train_run(
        "problem=matrix_completion", "problem.rows=6", "problem.cols=5", "problem.rank=2",
        "problem.observed=18", "init.det=any", "batch.seeds=2", "train.max_steps=300",
        "train.log_every=50", "train.singular_value_history=2",
    )  # fmt: skip
    saved = history.read(out)
    assert saved["alignment"].shape == (len(saved["step"]), 2, 4)
    final = torch.load(out / "final.pt", weights_only=True)
    W, target, mask = (final[k].double().numpy() for k in ("W", "target", "mask"))
    for run in range(2):  # ∇ℓ(W) = P_Ω(W − b), recomputed from final.pt
        want = numpy_alignment(W[run], (W[run] - target) * mask)
        np.testing.assert_allclose(saved["alignment"][-1, run], want, rtol=1e-9)
    scalars = read_scalars(out)
    for tag in TAGS:
        steps, _ = scalars[f"{tag}/median"]
        np.testing.assert_array_equal(steps, saved["step"][: len(steps)])


def test_no_alignment_without_the_history(train_run) -> None:
    _, out = train_run("problem=matrix_completion", "train.max_steps=50")
    assert not [t for t in read_scalars(out) if t.startswith("alignment/")]


def _dynamics_job(folder, problem: str, depth: int, eps: float, runs: int, T: int, seed: int):
    """A run folder whose ``singular_values.npz`` holds planted σ and alignment records."""
    import io

    from omegaconf import OmegaConf

    (folder / ".hydra").mkdir(parents=True)
    cfg = {
        "problem": {"kind": "matrix_completion", "name": problem, "target": None, "observed": 9},
        "optim": {"name": "gd", "lr": 0.1},
        "model": {"depth": depth},
        "init": {"scale": eps ** (1 / depth), "kind": "identity", "det": "any"},
        "batch": {"end_to_end_scales": [eps]},
    }
    OmegaConf.save(OmegaConf.create(cfg), folder / ".hydra" / "config.yaml")
    scales = torch.full((runs,), eps ** (1 / depth), dtype=torch.float64)
    torch.save({"init_scale": scales}, folder / "final.pt")
    rng = np.random.default_rng(seed)
    planted = {
        "values": rng.lognormal(size=(T, runs, 2)),
        "alignment": rng.lognormal(size=(T, runs, 4)) * np.array([1.0, 10.0, 100.0, 1000.0]),
    }
    t = np.tile(np.arange(T, dtype=float)[:, None], (1, runs))
    buffer = io.BytesIO()
    np.savez(buffer, step=np.arange(T) * 10, flow_time=t, **planted)
    (folder / history.FILE).write_bytes(buffer.getvalue())
    return planted


def test_dynamics_figure_draws_the_alignment_below_the_singular_values(tmp_path) -> None:
    from implicit_reg.figures import arora_dynamics
    from implicit_reg.record.runs import find_runs

    planted = {
        (problem, depth): _dynamics_job(tmp_path / f"{problem}{depth}", problem, depth, 1e-3, 3, 5,
                                        seed=depth + 10 * (problem == "movielens"))
        for problem in ("matrix_completion", "movielens") for depth in (1, 2)
    }  # fmt: skip
    fig = arora_dynamics.draw(arora_dynamics.supports(find_runs(tmp_path)))
    axes = np.array(fig.axes).reshape(4, 2)  # per problem: σ row, then alignment row
    for r, problem in ((0, "matrix_completion"), (2, "movielens")):
        for c, depth in enumerate((1, 2)):
            title = f"depth {depth}, ε = 1e-03" + (", movielens" if problem == "movielens" else "")
            assert axes[r, c].get_title() == title
            assert axes[r + 1, c].get_title().startswith(title + ": gradient")
            sv, align = planted[(problem, depth)]["values"], planted[(problem, depth)]["alignment"]
            line = _label(axes[r, c], "σ2")
            np.testing.assert_allclose(line.get_ydata(), np.median(sv[:, :, 1], axis=1))
            for name, column in (("diagonal mean", 0), ("off-diagonal mean", 2)):
                line = _label(axes[r + 1, c], name)
                np.testing.assert_allclose(line.get_xdata(), np.arange(5.0))
                np.testing.assert_allclose(line.get_ydata(), np.median(align[:, :, column], 1))


def _label(ax, label: str):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line
