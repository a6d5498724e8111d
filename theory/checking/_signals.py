"""SIGINT and SIGTERM as exceptions, so long commands stop cleanly.

Python turns SIGINT into :class:`KeyboardInterrupt`, but SIGTERM (what ``kill PID``, a batch
scheduler or ``timeout`` send) kills the process at once: no ``finally`` runs, so worker processes
are orphaned and temporary directories are left behind. Inside :func:`stop_on_signals`, SIGTERM
raises :class:`Terminated` (a :class:`KeyboardInterrupt`, so every ``except KeyboardInterrupt``
and ``finally`` that cleans up runs for it too), and either signal can be held back during a
short critical section with :func:`deferred_signals`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

__all__ = ["Terminated", "deferred_signals", "interrupt_exit_code", "prepare_worker",
           "stop_on_signals"]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives inside :func:`stop_on_signals`."""

    signum = signal.SIGTERM


_state = {"depth": 0, "pending": None}


def _raise_for(signum: int) -> None:
    if signum == signal.SIGTERM:
        raise Terminated("terminated by SIGTERM")
    raise KeyboardInterrupt


def _handler(signum, frame) -> None:
    if _state["depth"]:
        if _state["pending"] is None:
            _state["pending"] = signum
        return
    _raise_for(signum)


@contextlib.contextmanager
def stop_on_signals():
    """Turn SIGINT into :class:`KeyboardInterrupt` and SIGTERM into :class:`Terminated`.

    The previous handlers are restored on exit. Outside the main thread (where Python cannot set
    handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred_signals():
    """Hold back SIGINT/SIGTERM (under :func:`stop_on_signals`) until the block ends.

    For a few statements that must not be cut in half (appending a record, swapping a directory
    into place). A signal that arrived meanwhile is raised when the outermost block exits.
    """
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        pending = _state["pending"]
        if not _state["depth"] and pending is not None:
            _state["pending"] = None
            _raise_for(pending)


def interrupt_exit_code(exc: BaseException) -> int:
    """The shell's status for a process stopped by the signal behind ``exc``: 128 + signal."""
    return 128 + int(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def prepare_worker(parent_pid: int) -> None:
    """Make a worker process safe to kill: call at the start of work sent to a worker.

    A stopped sweep or verify kills its worker processes. tqdm's default lock (created by the
    first bar, even a silent one, e.g. in :func:`solvers.train`) is a multiprocessing semaphore
    that a killed worker cannot release; the resource tracker then removes it and prints "There
    appear to be N leaked semaphore objects" at exit. Bars within one worker process need only a
    thread lock, which this installs. ``parent_pid`` is the process that sent the work
    (``os.getpid()`` there): when the work runs in that very process (joblib's sequential
    fallback) nothing changes. Does nothing when tqdm's lock already exists.
    """
    if os.getpid() == parent_pid:
        return
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return
    if "_lock" not in vars(tqdm):
        tqdm.set_lock(threading.RLock())
