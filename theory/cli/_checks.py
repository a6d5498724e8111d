"""Checks of command-line arguments that must fail before any work starts (issue 14.9).

Each raises :class:`CLIInputError` (a ``ValueError``) with one line that names the option, the
value and the fix; ``marginflow``'s main wrapper prints it and exits 2. Only the standard library
is imported here, so building the parser stays fast.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["CLIInputError", "positive_int", "seed_int", "check_output_dir", "check_output_file",
           "check_scheduler", "MAX_POINT_ELEMENTS", "SIZE_PARAMETERS", "check_grid_sizes"]

#: Grid parameters that are sizes (examples, features, hidden units, depth): positive integers.
SIZE_PARAMETERS = ("n", "d", "m", "width", "depth")

#: Largest product of the size parameters of one sweep point (``n * d * width * ...``): 5e7
#: float64 entries, 400 MB, which a 2-core, few-GB machine can hold for one point. Override
#: with ``marginflow sweep --max-elements``.
MAX_POINT_ELEMENTS = 50_000_000


class CLIInputError(ValueError):
    """A command-line argument is unusable (exit status 2, one line, no traceback)."""


def positive_int(option: str):
    """An ``argparse`` type: an integer >= 1, else a message naming ``option``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option} takes a positive integer; got {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{option} must be at least 1; got {v}")
        return v
    return parse


def seed_int(text: str) -> int:
    """An ``argparse`` type for ``--seed``: an integer in ``[0, 2**32)`` (numpy's seed range)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed takes an integer; got {text!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(
            f"--seed must be in [0, 2**32) (a numpy seed); got {v}")
    return v


def _probe_writable(directory: Path, option: str, target: Path) -> None:
    if not directory.exists():
        raise CLIInputError(
            f"{option} {str(target)!r}: the directory {str(directory)!r} does not exist; "
            f"create it first (mkdir -p) or choose another path.")
    if not directory.is_dir():
        raise CLIInputError(
            f"{option} {str(target)!r}: {str(directory)!r} is not a directory.")
    try:  # os.access is wrong for root and on read-only file systems: really try
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise CLIInputError(
            f"{option} {str(target)!r}: cannot write in {str(directory)!r} "
            f"({exc.strerror or exc}); choose a writable location.") from None


def check_output_dir(path: str, option: str, *, force: bool) -> None:
    """A report directory: absent (or replaceable with ``--force``) in a writable parent."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise CLIInputError(
                f"{option} {path!r} exists and is not a directory; choose another {option} DIR.")
        if not force:
            raise CLIInputError(
                f"report directory {path!r} exists; pass --force to replace it or choose "
                f"another {option} DIR.")
        from ..reports import check_replaceable  # --force replaces only a report

        try:
            check_replaceable(p)
        except FileExistsError as exc:
            raise CLIInputError(str(exc)) from None
    _probe_writable(p.absolute().parent, option, p)


def check_output_file(path: str, option: str) -> None:
    """A file appended to: not a directory, in a writable directory, writable if it exists."""
    p = Path(path)
    if p.is_dir() or str(path).endswith(os.sep):
        raise CLIInputError(
            f"{option} {path!r} is a directory; give a file name, e.g. {option} "
            f"{os.path.join(path, 'results.jsonl')}.")
    _probe_writable(p.absolute().parent, option, p)
    if p.exists() and not os.access(p, os.W_OK):
        raise CLIInputError(f"{option} {path!r} is not writable; choose another file.")


def check_scheduler(address: str, timeout: float) -> None:
    """Connect to the Dask scheduler's TCP port once, within ``timeout`` seconds."""
    if not timeout > 0:
        raise CLIInputError(f"--scheduler-timeout must be positive; got {timeout}.")
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if parts.scheme not in ("tcp", "tls") or not host or port is None:
        raise CLIInputError(
            f"--scheduler {address!r} is not an address like tcp://host:8786.")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError | socket.timeout) else \
            (exc.strerror or str(exc)).lower()
        raise CLIInputError(
            f"--scheduler {address!r} is unreachable ({why} after at most {timeout:g} s); start "
            f"it (dask scheduler) or fix the address; --scheduler-timeout S waits longer."
        ) from None


def check_grid_sizes(grid: dict, max_elements: int) -> dict:
    """Size parameters must be positive integers whose product per point is bounded.

    Returns the grid with integral floats (``1e3``) turned into ints.
    """
    out = {}
    for name, values in grid.items():
        if name not in SIZE_PARAMETERS:
            out[name] = values
            continue
        vals = []
        for v in values:
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise CLIInputError(
                    f"--grid {name}: {v!r} is not a positive integer ({name} is a size).")
            vals.append(v)
        out[name] = vals
    sizes = [max(out[k]) for k in SIZE_PARAMETERS if k in out]
    largest = 1
    for s in sizes:
        largest *= s
    if largest > max_elements:
        names = "·".join(k for k in SIZE_PARAMETERS if k in out)
        raise CLIInputError(
            f"--grid: the largest point has {names} = {largest:.3g} elements, above the limit of "
            f"{max_elements:.3g} (--max-elements); shrink the grid or raise the limit.")
    return out
