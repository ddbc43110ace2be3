"""Ships ``configs/`` inside the wheel as ``implicit_reg/configs``, so that ``implicit-reg`` and
``python -m implicit_reg`` find their configs from any directory (``implicit_reg/app.py``).
The folder stays at the top of the repository, the one source of the configs; an editable
install reads it there. Everything else is in ``pyproject.toml``."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIGS = Path(__file__).resolve().parent / "configs"


class BuildPyWithConfigs(build_py):
    """``build_py``, then a copy of every ``configs/**/*.yaml`` under the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the package reads the checkout's configs/ itself
            return
        target = Path(self.build_lib) / "implicit_reg" / "configs"
        for source in sorted(CONFIGS.rglob("*.yaml")):
            dest = target / source.relative_to(CONFIGS)
            self.mkpath(str(dest.parent))
            self.copy_file(str(source), str(dest))


setup(cmdclass={"build_py": BuildPyWithConfigs})
