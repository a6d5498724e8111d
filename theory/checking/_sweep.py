"""Parameter sweeps that resume after interruption and scale past one machine.

:func:`run_sweep` evaluates ``fn(**params, seed=seed)`` over the Cartesian product of a grid and a
list of seeds, in parallel with joblib on this machine or on a Dask cluster (``scheduler=``). Each
finished point is appended as one JSON line to the results file *as it finishes* (flushed and
fsynced), so an interrupted sweep resumes without redoing finished points: points whose key is
already in the file are skipped. A torn last line (the process was killed mid-write) is cut off
once, by the next run. The file starts with a header line (:data:`RESULTS_HEADER`); a sweep
refuses, before writing a byte, any file that is not a results file, and refuses a second sweep on
a file that another one is writing (an exclusive lock). SIGINT and SIGTERM stop the workers and
keep every finished point.

``fn`` must be importable by the workers (a module-level function) and return a JSON-serialisable
dict; its result is stored under ``"result"`` next to ``"params"``, ``"seed"`` and ``"key"``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from solvers.errors import MarginflowError

from ._signals import deferred_signals, prepare_worker, stop_on_signals

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None

__all__ = ["RESULTS_HEADER", "ResultsFileLockedError", "SweepResult", "grid_points", "point_key",
           "read_results", "run_sweep"]

log = logging.getLogger(__name__)


def grid_points(grid: Mapping[str, Sequence], seeds: Sequence[int]) -> list[tuple[dict, int]]:
    """The Cartesian product of ``grid`` (in key order) and ``seeds``, as ``(params, seed)``."""
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a mapping name -> list of values; got {type(grid).__name__}.")
    keys = list(grid)
    for k in keys:
        if isinstance(grid[k], (str, bytes)) or not isinstance(grid[k], Sequence) or not grid[k]:
            raise ValueError(f"grid[{k!r}] must be a non-empty list of values; got {grid[k]!r}.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; pass at least one seed, e.g. seeds=[0].")
    combos = itertools.product(*(grid[k] for k in keys)) if keys else [()]
    return [(dict(zip(keys, c, strict=True)), s) for c in combos for s in seeds]


def point_key(params: Mapping, seed: int) -> str:
    """A canonical key for one point: sorted JSON of the parameters plus the seed."""
    return json.dumps({"params": dict(sorted(params.items())), "seed": int(seed)},
                      sort_keys=True, default=str)


#: The first line of every results file run_sweep creates: it marks the file as ours, so a sweep
#: never appends to a file it did not write. Files written before the header existed start with a
#: record instead (see :func:`_is_record`) and are accepted too.
RESULTS_HEADER = {"format": "marginflow-sweep-results", "version": 1}


class ResultsFileLockedError(MarginflowError):
    """Another process is writing the same results file (it holds the file's lock)."""


def _is_header(rec) -> bool:
    return (isinstance(rec, dict) and rec.get("format") == RESULTS_HEADER["format"]
            and isinstance(rec.get("version"), int))


def _is_record(rec) -> bool:
    """A sweep record: ``key``, ``params``, ``seed`` and ``result``, the key matching the point."""
    if not (isinstance(rec, dict) and isinstance(rec.get("params"), dict)
            and isinstance(rec.get("seed"), int) and "result" in rec):
        return False
    return rec.get("key") == point_key(rec["params"], rec["seed"])


@dataclass(frozen=True)
class _Parsed:
    records: list
    has_header: bool
    #: byte offset just past the last complete line; ``size`` when the file ends with a newline
    end_of_complete: int
    size: int
    #: the unterminated last line, if it is a whole record (a run died before the newline)
    complete_tail: bool


def _not_ours(path, why: str) -> ValueError:
    return ValueError(
        f"{path} is not a marginflow sweep results file ({why}); it was left unchanged. Pass a "
        f"new path, or a file written by run_sweep / `marginflow sweep`.")


def _parse(data: bytes, path) -> _Parsed:
    """Read a results file's bytes; raise ValueError (touching nothing) if it is not ours.

    The first line must be :data:`RESULTS_HEADER` or (files from before the header) a complete
    sweep record. An unterminated last line is a torn record: reported through ``end_of_complete``
    so the writer can cut it off once. A torn line in the middle (left by a run before torn
    tails were cut off) is skipped with a warning: its point is recomputed.
    """
    if not data:
        return _Parsed([], False, 0, 0, False)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_ours(path, "not UTF-8 text") from None
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    end_of_complete = len(data) - len(tail.encode("utf-8"))
    if not lines:
        raise _not_ours(path, "no complete first line")
    try:
        first = json.loads(lines[0])
    except json.JSONDecodeError:
        raise _not_ours(path, "its first line is not JSON") from None
    if not (_is_header(first) or _is_record(first)):
        raise _not_ours(path, "its first line is neither a sweep header nor a sweep record")
    has_header = _is_header(first)
    if has_header and first["version"] > RESULTS_HEADER["version"]:
        raise ValueError(f"{path} was written by a newer marginflow (results format version "
                         f"{first['version']}); upgrade marginflow or pass a new path.")
    out = [] if has_header else [first]
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if line.startswith("{") and not line.rstrip().endswith("}"):
                warnings.warn(f"{path}:{lineno}: skipping a torn record (a run died mid-write); "
                              f"its point is recomputed", stacklevel=3)
                continue
            raise ValueError(f"{path}:{lineno} is not a sweep record (not JSON); the file was "
                             f"left unchanged.") from None
        if not _is_record(rec):
            raise ValueError(f"{path}:{lineno} is JSON but not a sweep record (needs key, params, "
                             f"seed, result); the file was left unchanged.")
        out.append(rec)
    complete_tail = False
    if tail:
        try:
            complete_tail = _is_record(json.loads(tail))
        except json.JSONDecodeError:
            complete_tail = False
        if complete_tail:
            out.append(json.loads(tail))
    return _Parsed(out, has_header, end_of_complete, len(data), complete_tail)


def read_results(path: str | os.PathLike) -> list[dict]:
    """The finished points recorded in ``path`` (JSON lines after a header line).

    Reads only; never changes the file. A torn last line (a run died mid-write) is skipped with
    a warning (its point is recomputed; the next :func:`run_sweep` on the file cuts it off).

    Raises
    ------
    ValueError
        The file is not a marginflow results file.
    """
    p = Path(path)
    if not p.exists():
        return []
    if p.is_dir():
        raise ValueError(f"results path {str(p)!r} is a directory; pass a file path such as "
                         f"{str(p / 'results.jsonl')!r}.")
    parsed = _parse(p.read_bytes(), p)
    if parsed.end_of_complete < parsed.size and not parsed.complete_tail:
        warnings.warn(f"{p}: skipping a torn last record (a run died mid-write); its point is "
                      f"recomputed", stacklevel=2)
    return parsed.records


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did.

    Attributes
    ----------
    path : str
        The results file (JSON lines).
    records : tuple of dict
        Every finished point in the file after the sweep (earlier runs' and this run's), in grid
        order.
    n_computed : int
        Points computed by this call (the rest were already in the file).
    n_skipped : int
        Points found in the file and not recomputed.
    runtime : float
    status : str
    """

    path: str
    records: tuple
    n_computed: int
    n_skipped: int
    runtime: float
    status: str = "complete"

    def to_dict(self) -> dict:
        return {"path": self.path, "n_points": len(self.records), "n_computed": self.n_computed,
                "n_skipped": self.n_skipped, "runtime": self.runtime, "status": self.status,
                "records": list(self.records)}


def _evaluate_in_worker(fn: Callable, params: dict, seed: int, parent_pid: int) -> dict:
    prepare_worker(parent_pid)
    return _evaluate(fn, params, seed)


def _evaluate(fn: Callable, params: dict, seed: int) -> dict:
    start = time.perf_counter()
    result = fn(**params, seed=seed)
    if not isinstance(result, Mapping):
        raise TypeError(f"sweep function {getattr(fn, '__name__', fn)!r} must return a dict; "
                        f"got {type(result).__name__}.")
    return {"key": point_key(params, seed), "params": params, "seed": seed,
            "result": dict(result), "runtime": time.perf_counter() - start}


class _ResultsWriter:
    """The open, locked results file of one sweep: checked, repaired once, then appended to.

    ``open`` takes an exclusive ``flock`` on the file itself (released when the file is closed,
    also when the process dies), so a second sweep on the same file is refused instead of
    computing every point again. The lock is advisory and POSIX-only; on a system without
    :mod:`fcntl` (Windows) no lock is taken.
    """

    def __init__(self, path: Path):
        self.path = path
        self.fd = -1

    def open(self) -> list[dict]:
        """Lock and check the file (before writing a byte); repair a torn tail; return records."""
        path = self.path
        if path.is_dir():
            raise ValueError(f"results path {str(path)!r} is a directory; pass a file path such "
                             f"as {str(path / 'results.jsonl')!r}.")
        if path.exists() and not path.is_file():
            raise ValueError(f"results path {str(path)!r} is not a regular file (a device or a "
                             f"pipe); pass a file path.")
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:  # read-only file or directory, missing permission
            raise ValueError(f"cannot open results file {str(path)!r} for appending: "
                             f"{exc.strerror}; pass a writable path.") from None
        try:
            self._lock()
            size = os.fstat(self.fd).st_size
            data = os.pread(self.fd, size, 0) if size else b""
            parsed = _parse(data, path)  # raises before any byte is written
            with deferred_signals():
                if parsed.size == 0:
                    self._write(json.dumps(RESULTS_HEADER, sort_keys=True) + "\n")
                elif parsed.complete_tail:  # a whole record whose newline was never written
                    self._write("\n")
                elif parsed.end_of_complete < parsed.size:
                    os.ftruncate(self.fd, parsed.end_of_complete)
                    os.fsync(self.fd)
                    warnings.warn(f"{path}: cut off a torn last record (a run died mid-write, "
                                  f"{parsed.size - parsed.end_of_complete} bytes); its point is "
                                  f"recomputed", stacklevel=3)
        except BaseException:
            self.close()
            raise
        return parsed.records

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResultsFileLockedError(
                f"results file {str(self.path)!r} is in use by another sweep (it holds the "
                f"file's lock); wait for that sweep to finish, or pass another --results file."
            ) from None

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        os.lseek(self.fd, 0, os.SEEK_END)
        while data:
            data = data[os.write(self.fd, data):]
        os.fsync(self.fd)

    def append(self, record: dict) -> None:
        """Append one record as a line and fsync it; a signal waits until the line is written."""
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        with deferred_signals():
            self._write(line)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the lock
            self.fd = -1


def run_sweep(fn: Callable[..., dict], grid: Mapping[str, Sequence], *, seeds: Sequence[int] = (0,),
              results: str | os.PathLike, n_jobs: int = 1, scheduler: str | None = None,
              client=None, progress: bool | None = None) -> SweepResult:
    """Evaluate ``fn(**params, seed=seed)`` over ``grid × seeds``, resuming from ``results``.

    Parameters
    ----------
    fn : callable
        Module-level function returning a JSON-serialisable dict.
    grid : mapping of str to sequence
        Parameter values; the sweep runs over their Cartesian product.
    seeds : sequence of int
    results : path
        JSON-lines results file; created (with a header line) if missing, appended to as points
        finish. An existing file must be a marginflow results file; anything else is refused
        before a byte is written. The file is locked while the sweep runs.
    n_jobs : int
        Local worker processes (joblib/loky) when no scheduler is given; 1 runs in-process.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``); the points then run on that cluster
        through ``dask.distributed``. Requires ``marginflow[dask]``.
    client : dask.distributed.Client, optional
        An existing client (e.g. on a ``LocalCluster``), instead of ``scheduler``.
    progress : bool, optional
        Show a progress bar (default: only on a terminal).

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        ``results`` is a directory or a file that is not a marginflow results file.
    ResultsFileLockedError
        Another sweep is writing ``results``.
    KeyboardInterrupt
        On SIGINT, or :class:`Terminated` on SIGTERM (in the main thread): the local workers
        are stopped (joblib's are killed; Dask futures are cancelled) and every point finished
        so far stays in ``results``; rerunning the sweep resumes from there.
    """
    from solvers import progress as bar

    start = time.perf_counter()
    path = Path(results)
    points = grid_points(grid, seeds)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _ResultsWriter(path)
    with stop_on_signals():
        try:
            done = {r["key"] for r in writer.open()}
            todo = [(p, s) for p, s in points if point_key(p, s) not in done]
            n_skipped = len(points) - len(todo)
            if n_skipped:
                log.info("resuming %s: %d of %d points already done", path, n_skipped,
                         len(points))
            pbar = bar(total=len(todo), desc="sweep", enabled=progress)
            try:
                if scheduler is not None or client is not None:
                    _run_dask(fn, todo, writer, scheduler=scheduler, client=client, pbar=pbar)
                elif n_jobs == 1:
                    for p, s in todo:
                        writer.append(_evaluate(fn, p, s))
                        pbar.update(1)
                else:
                    _run_joblib(fn, todo, writer, n_jobs=n_jobs, pbar=pbar)
            finally:
                pbar.close()
        finally:
            writer.close()

    by_key = {r["key"]: r for r in read_results(path)}
    records = tuple(by_key[point_key(p, s)] for p, s in points if point_key(p, s) in by_key)
    status = "complete" if len(records) == len(points) else "incomplete"
    return SweepResult(str(path), records, len(todo), n_skipped, time.perf_counter() - start,
                       status)


def _run_joblib(fn, todo, writer: _ResultsWriter, *, n_jobs: int, pbar) -> None:
    from joblib import Parallel, delayed

    outputs = None
    try:
        par = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        me = os.getpid()
        outputs = par(delayed(_evaluate_in_worker)(fn, p, s, me) for p, s in todo)
        for rec in outputs:
            writer.append(rec)
            pbar.update(1)
    except BaseException:
        # closing the generator makes joblib abort: the loky backend kills its worker processes
        # (kill_workers=True) instead of letting them finish their points as orphans
        if outputs is not None:
            outputs.close()
        raise


def _run_dask(fn, todo, writer: _ResultsWriter, *, scheduler, client, pbar) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("a Dask scheduler needs dask.distributed: "
                          "pip install 'marginflow[dask]'") from exc
    own = client is None
    if own:
        client = Client(scheduler)
    futures = []
    try:
        futures = [client.submit(_evaluate_in_worker, fn, p, s, os.getpid(), pure=False)
                   for p, s in todo]
        for fut in as_completed(futures):
            writer.append(fut.result())
            pbar.update(1)
    except BaseException:
        # stop the points not yet finished; a point already running on a worker thread finishes
        # there (Dask cannot kill a thread) but its result is dropped
        with contextlib.suppress(Exception):  # a lost connection must not hide the cause
            client.cancel(futures)
        raise
    finally:
        if own:
            client.close()
