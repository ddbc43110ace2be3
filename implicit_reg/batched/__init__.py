"""Batched runs: a grid of seeds × init scales × learning rates trained as one stacked tensor in
one process (README § "Sweeps")."""

from implicit_reg.batched.grid import RunSpec, grid, grid_size
from implicit_reg.batched.run import run_batched

__all__ = ["RunSpec", "grid", "grid_size", "run_batched"]
