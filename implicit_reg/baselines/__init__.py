"""Baselines that are not gradient methods: the certified nuclear-norm minimizer
(``optim=nuclear_norm``, ``implicit_reg.baselines.nuclear_norm``), needing the optional extra
``pip install -e ".[baselines]"`` (cvxpy, Clarabel)."""

NAMES = ("nuclear_norm",)
"""``optim`` values that solve for W directly: their runs have an end point and no path."""
