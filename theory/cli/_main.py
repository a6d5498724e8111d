"""The ``marginflow`` command.

argparse, not click/typer: it ships with Python (no extra dependency for a command that must work on
a fresh machine), gives subcommands with their own ``--help`` and examples via ``epilog``, and
its parse errors already exit 2, the status this CLI reserves for bad input.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _version() -> str:
    try:
        return metadata.version("marginflow")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``marginflow`` with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="marginflow",
        description="Check theorems about the implicit bias of gradient methods.",
        formatter_class=_Formatter,
        epilog="Example:\n  marginflow verify --quick\n",
    )
    parser.add_argument("--version", action="version", version=f"marginflow {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register_commands(sub)
    return parser


def _register_commands(sub) -> None:
    from ._commands import register_all

    register_all(sub)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``marginflow`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_OK
    from solvers.errors import MarginflowError

    try:
        return int(args.func(args) or EXIT_OK)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, MarginflowError) as exc:
        print(f"marginflow {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
