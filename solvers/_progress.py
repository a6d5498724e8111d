"""A progress bar that shows on a terminal and stays quiet elsewhere (CI, pipes, logs)."""

from __future__ import annotations

import sys

__all__ = ["progress"]


def progress(iterable=None, *, total=None, desc=None, enabled=None, **kwargs):
    """Wrap ``iterable`` in a tqdm bar when stderr is a terminal, else return a silent one.

    Parameters
    ----------
    iterable : iterable, optional
    total : int, optional
    desc : str, optional
    enabled : bool, optional
        Force the bar on or off; by default it is on only when ``sys.stderr.isatty()``.
    """
    from tqdm import tqdm  # the terminal bar: tqdm.auto warns without ipywidgets

    if enabled is None:
        enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False, **kwargs)
