"""MovieLens 100K (Harper & Konstan 2015) as a completion problem: the real-data row of Arora et
al. (2019), Fig. 3. W is users × items (943 × 1682) and Ω the rated pairs, b their ratings (1 to
5, not centred, as in the authors' code, which also trains on all 100,000 ratings); there is no
ground truth, so no reconstruction error or test loss.

The data cannot be shipped: the user downloads ``ml-100k.zip`` from ``URL`` and passes the path
of its ``u.data`` (``problem.path``): one rating a line, ``user id<TAB>item id<TAB>rating<TAB>
timestamp``, ids from 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from implicit_reg.problems.matrix_completion import MatrixCompletion

URL = "https://grouplens.org/datasets/movielens/100k/"
WHERE = f"the path of MovieLens 100K's u.data (download ml-100k.zip from {URL} and unzip it)"
"""What ``problem.path`` must be, for its refusal."""


class RatingsError(ValueError):
    """A ``u.data`` that cannot be read; the message says where and why, in one line."""


def read_ratings(path: str | Path, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(index ``(K, 2)`` of 0-based (user, item), ratings ``(K,)`` float64) from a ``u.data``
    file, in file order. Refused: a line without four tab-separated fields, a non-integer id, an
    id outside 1 … ``rows`` (users) or 1 … ``cols`` (items), a non-finite rating, a pair rated
    twice, an empty file."""
    path = Path(path)
    if not path.is_file():
        raise RatingsError(f"{path} is not a file")
    pairs, ratings, seen = [], [], set()
    with path.open() as f:
        for number, line in enumerate(f, start=1):
            fields = line.rstrip("\n").split("\t")
            where = f"{path}, line {number}"
            if len(fields) != 4:
                raise RatingsError(f"{where}: {len(fields)} tab-separated fields, not 4")
            try:
                user, item, rating = int(fields[0]), int(fields[1]), float(fields[2])
            except ValueError as error:
                raise RatingsError(f"{where}: {error}") from None
            if not (1 <= user <= rows and 1 <= item <= cols):
                raise RatingsError(f"{where}: (user, item) = ({user}, {item}) outside "
                                   f"1…{rows} × 1…{cols}")  # fmt: skip
            if not np.isfinite(rating):
                raise RatingsError(f"{where}: rating {fields[2]} is not a finite number")
            if (user, item) in seen:
                raise RatingsError(f"{where}: (user, item) = ({user}, {item}) rated twice")
            seen.add((user, item))
            pairs.append((user - 1, item - 1))
            ratings.append(rating)
    if not ratings:
        raise RatingsError(f"{path} holds no rating")
    return np.array(pairs, dtype=np.int64), np.array(ratings, dtype=np.float64)


def movielens_problem(
    path: str | Path,
    rows: int,
    cols: int,
    infimal_rank: int,
    device: torch.device,
    dtype: torch.dtype,
    name: str = "movielens",
    max_tracked: int = 16,
) -> MatrixCompletion:
    """The completion of the ``rows`` × ``cols`` users × items matrix from the ratings of
    ``path`` (ℓ(W) = ½ Σ_Ω (W_ui − r_ui)², seed eq. 7)."""
    index, ratings = read_ratings(path, rows, cols)
    target = torch.zeros(rows, cols, dtype=torch.float64)
    mask = torch.zeros(rows, cols, dtype=torch.bool)
    users, items = torch.from_numpy(index[:, 0]), torch.from_numpy(index[:, 1])
    target[users, items] = torch.from_numpy(ratings)
    mask[users, items] = True
    return MatrixCompletion(
        target.to(device, dtype), mask.to(device), infimal_rank=infimal_rank, name=name,
        truth_known=False, max_tracked=max_tracked,
    )  # fmt: skip
