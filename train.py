"""Entry point: ``python train.py [overrides]`` trains one run; ``-m`` sweeps. See README.

The same app is ``python -m implicit_reg`` and, once installed, ``implicit-reg``
(``implicit_reg/app.py``)."""

from implicit_reg.app import cli

if __name__ == "__main__":
    cli()
