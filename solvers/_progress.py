"""Progress of long work: a tqdm bar on a terminal, log lines elsewhere (CI logs, pipes).

On a terminal (``sys.stderr.isatty()``) :func:`progress` is a tqdm bar. Elsewhere it logs one
line per finished item to the ``marginflow.progress`` logger at INFO level (``"verify: 3/17
done, 4.2 s"``), at most one every ``min_interval`` seconds (5) when there are many items, and
always the last one. A library caller sees these lines only if it configures logging; the
``marginflow`` command does (to stderr).
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["progress", "LOGGER_NAME"]

LOGGER_NAME = "marginflow.progress"
_log = logging.getLogger(LOGGER_NAME)

#: Above this many items, log lines are spaced by ``_MANY_INTERVAL`` seconds (training steps,
#: sweeps of many points): at most ~5 s of silence in a CI log (issue 14.13).
_MANY_ITEMS = 200
_MANY_INTERVAL = 5.0


class _LogProgress:
    """The part of tqdm's interface marginflow uses (iteration, update, close), as log lines."""

    def __init__(self, iterable, total, desc, min_interval):
        self.iterable = iterable
        if total is None:
            try:
                total = len(iterable)
            except TypeError:
                total = None
        self.total = total
        self.desc = desc or "progress"
        self.n = 0
        self.start = self.last = time.perf_counter()
        if min_interval is None:
            min_interval = _MANY_INTERVAL if total is None or total > _MANY_ITEMS else 0.0
        self.min_interval = min_interval

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if self.n == self.total or now - self.last >= self.min_interval:
            self.last = now
            of = f"/{self.total}" if self.total is not None else ""
            _log.info("%s: %d%s done, %.1f s", self.desc, self.n, of, now - self.start)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress(iterable=None, *, total=None, desc=None, enabled=None, min_interval=None,
             **kwargs):
    """Wrap ``iterable`` in a tqdm bar on a terminal, else in a logger of finished items.

    Parameters
    ----------
    iterable : iterable, optional
    total : int, optional
    desc : str, optional
        The prefix of the bar or of each log line.
    enabled : bool, optional
        ``True``: the tqdm bar even off a terminal; ``False``: neither bar nor log lines; default
        (``None``): the bar on a terminal (``sys.stderr.isatty()``), log lines elsewhere.
    min_interval : float, optional
        Seconds between two log lines (default 0 for up to 200 items, else 5).
    """
    if enabled is None:
        enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
        if not enabled:
            return _LogProgress(iterable if iterable is not None else (), total, desc,
                                min_interval)
    from tqdm import tqdm  # the terminal bar: tqdm.auto warns without ipywidgets

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False, **kwargs)
