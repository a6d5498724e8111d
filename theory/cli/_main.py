"""The ``marginflow`` command.

argparse, not click/typer: it ships with Python (no extra dependency for a command that must work on
a fresh machine), gives subcommands with their own ``--help`` and examples via ``epilog``, and
its parse errors already exit 2, the status this CLI reserves for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141


def _version() -> str:
    try:
        return metadata.version("marginflow")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``prog: error: ... (see prog --help)``) and exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``marginflow`` with one subparser per command.

    Building it imports no numerical library (each command imports its modules when it runs),
    so ``marginflow --help`` and ``--version`` return at once.
    """
    parser = _Parser(
        prog="marginflow",
        description="Check theorems about the implicit bias of gradient methods.",
        formatter_class=_Formatter,
        epilog="Example:\n  marginflow verify --quick\n\nexit status: 0 ok, 1 a check failed, "
               "2 bad input (one line on stderr; --debug shows the traceback), 130/143 "
               "interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"marginflow {_version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _register_commands(sub)
    return parser


def _register_commands(sub) -> None:
    from ._commands import register_all

    register_all(sub)


# options whose value may start with "-" (argparse would take "-3:-1" for an option)
_VALUE_OPTIONS = ("--seeds", "--seed", "--jobs", "--grid")


def _glue_negative_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if (a in _VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1][:1] == "-"
                and argv[i + 1][1:2].isdigit()):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def _silence_stdout() -> None:
    """After a broken pipe (``marginflow list | head -1``): drop whatever is still buffered."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file (tests)
        pass


def _configure_logging() -> None:
    """Progress and stage lines of marginflow's own loggers go to stderr, one per line (a tqdm bar
    replaces the per-item lines on a terminal); other libraries' logging is left alone."""
    import logging

    class _Stderr(logging.Handler):  # the current sys.stderr at each line, not the one at setup
        def emit(self, record):
            try:
                sys.stderr.write(self.format(record) + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):  # stderr closed: progress is not worth an error
                pass

    for name in ("marginflow", "theory", "solvers"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.Handler) and type(h).__name__ == "_Stderr"
                   for h in logger.handlers):
            handler = _Stderr()
            handler.setFormatter(logging.Formatter("marginflow: %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``marginflow`` console script; returns the exit status.

    Bad input (``ValueError``, ``TypeError``, file errors, :class:`~solvers.errors.MarginflowError`,
    a missing optional dependency) prints one line ``marginflow CMD: error: ...`` on stderr and
    returns 2; ``--debug`` re-raises it with its traceback. A closed output pipe returns 141
    (128 + SIGPIPE) silently. Every command runs under :func:`theory.checking.stop_on_signals`:
    SIGINT returns 130 and SIGTERM 143 (128 + the signal) with one line, after the command's own
    clean-up (workers stopped, temporary report directories removed, finished points kept).
    """
    argv = _glue_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_OK
    from solvers.errors import MarginflowError

    _configure_logging()
    from ..checking import Terminated, interrupt_exit_code, stop_on_signals

    try:
        with stop_on_signals():
            status = int(args.func(args) or EXIT_OK)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as exc:  # SIGINT, or Terminated on SIGTERM
        if args.debug:
            raise
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"marginflow {args.command}: {what}", file=sys.stderr)
        return interrupt_exit_code(exc)
    except (ValueError, TypeError, OSError, ImportError, MarginflowError) as exc:
        if args.debug:
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"marginflow {args.command}: error: {text}", file=sys.stderr)
        return EXIT_BAD_INPUT
