"""``python -m implicit_reg [overrides]``: the same app as ``python train.py`` (README)."""

from implicit_reg.app import cli

cli()
