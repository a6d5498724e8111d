"""The CLI's subcommands: each module named here exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to a callable ``func(args) -> exit status``. Modules are imported lazily,
so ``marginflow --help`` stays fast."""

from __future__ import annotations

import importlib

COMMAND_MODULES: tuple[str, ...] = (
    "theory.cli._verify", "theory.cli._derive", "theory.cli._kkt", "theory.cli._sweep",
)


def register_all(sub) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
