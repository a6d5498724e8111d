"""The ``marginflow`` command (``theory.cli:main``): one private module per subcommand, imported
only when the command runs so that ``marginflow --help`` stays fast."""

from __future__ import annotations

from ._main import build_parser, main

__all__ = ["main", "build_parser", "run_checks"]


def __getattr__(name: str):
    if name == "run_checks":  # the verify runner; importing it loads the catalogue
        from ._verify import run_checks

        return run_checks
    raise AttributeError(f"module 'theory.cli' has no attribute {name!r}")
