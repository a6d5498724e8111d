"""Parameter sweeps that resume after interruption and scale past one machine.

:func:`run_sweep` evaluates ``fn(**params, seed=seed)`` over the Cartesian product of a grid and a
list of seeds, in parallel with joblib on this machine or on a Dask cluster (``scheduler=``). Each
finished point is appended as one JSON line to the results file *as it finishes* (flushed and
fsynced), so an interrupted sweep resumes without redoing finished points: points whose key is
already in the file are skipped. A torn last line (the process died mid-write) is ignored.

``fn`` must be importable by the workers (a module-level function) and return a JSON-serialisable
dict; its result is stored under ``"result"`` next to ``"params"``, ``"seed"`` and ``"key"``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SweepResult", "grid_points", "point_key", "read_results", "run_sweep"]

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


def read_results(path: str | os.PathLike) -> list[dict]:
    """The finished points recorded in ``path`` (JSON lines).

    A torn line — the last one, or one a later run terminated (it then lacks the final newline
    of a complete record and is followed by new records) — is skipped with a warning: its point
    is recomputed. Any other unreadable line raises ValueError: the file is not a sweep's.
    """
    p = Path(path)
    if not p.exists():
        return []
    out = []
    lines = p.read_text(encoding="utf-8").split("\n")
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if not line.startswith("{") or line.endswith("}"):
                raise ValueError(
                    f"{p}:{lineno} is not a sweep record (not JSON); pass a results file "
                    f"written by run_sweep, or a new path.") from None
            warnings.warn(f"{p}:{lineno}: skipping a torn record (a run died mid-write); "
                          f"its point is recomputed", stacklevel=2)
            continue
        if not (isinstance(rec, dict) and "key" in rec):
            raise ValueError(f"{p}:{lineno} is JSON but not a sweep record (no 'key'); pass a "
                             f"results file written by run_sweep, or a new path.")
        out.append(rec)
    return out


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


def _evaluate(fn: Callable, params: dict, seed: int) -> dict:
    start = time.perf_counter()
    result = fn(**params, seed=seed)
    if not isinstance(result, Mapping):
        raise TypeError(f"sweep function {getattr(fn, '__name__', fn)!r} must return a dict; "
                        f"got {type(result).__name__}.")
    return {"key": point_key(params, seed), "params": params, "seed": seed,
            "result": dict(result), "runtime": time.perf_counter() - start}


def _end_with_newline(path: Path) -> None:
    """Terminate a torn last line (a run died mid-write) so new records start on a fresh line."""
    if path.exists() and path.stat().st_size:
        with path.open("rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")


def _append(path: Path, record: dict) -> None:
    line = json.dumps(record, sort_keys=True, default=str)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


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
        JSON-lines file; created if missing, appended to as points finish.
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
    """
    from solvers._progress import progress as bar

    start = time.perf_counter()
    path = Path(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    points = grid_points(grid, seeds)
    _end_with_newline(path)
    done = {r["key"] for r in read_results(path)}
    todo = [(p, s) for p, s in points if point_key(p, s) not in done]
    n_skipped = len(points) - len(todo)
    if n_skipped:
        log.info("resuming %s: %d of %d points already done", path, n_skipped, len(points))

    pbar = bar(total=len(todo), desc="sweep", enabled=progress)
    try:
        if scheduler is not None or client is not None:
            _run_dask(fn, todo, path, scheduler=scheduler, client=client, pbar=pbar)
        elif n_jobs == 1:
            for p, s in todo:
                _append(path, _evaluate(fn, p, s))
                pbar.update(1)
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
            for rec in par(delayed(_evaluate)(fn, p, s) for p, s in todo):
                _append(path, rec)
                pbar.update(1)
    finally:
        pbar.close()

    by_key = {r["key"]: r for r in read_results(path)}
    records = tuple(by_key[point_key(p, s)] for p, s in points if point_key(p, s) in by_key)
    status = "complete" if len(records) == len(points) else "incomplete"
    return SweepResult(str(path), records, len(todo), n_skipped, time.perf_counter() - start,
                       status)


def _run_dask(fn, todo, path: Path, *, scheduler, client, pbar) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("a Dask scheduler needs dask.distributed: "
                          "pip install 'marginflow[dask]'") from exc
    own = client is None
    if own:
        client = Client(scheduler)
    try:
        futures = [client.submit(_evaluate, fn, p, s, pure=False) for p, s in todo]
        for fut in as_completed(futures):
            _append(path, fut.result())
            pbar.update(1)
    finally:
        if own:
            client.close()
