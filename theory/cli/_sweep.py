"""``marginflow sweep``: run a theorem check or a training trial over a grid × seeds, resumably,
on local processes (joblib) or a Dask cluster (``--scheduler``)."""

from __future__ import annotations

import argparse
import functools
import json
import sys

from ._checks import (
    MAX_POINT_ELEMENTS,
    SIZE_PARAMETERS,
    check_grid_sizes,
    check_output_file,
    check_scheduler,
    positive_int,
)

__all__ = ["register", "run", "theorem_trial", "TRIALS"]

EXAMPLES = """examples:
  marginflow sweep song-width --grid n=16,32,64 --grid width=8,16,32 --grid d=10 \\
      --seeds 0:8 --results song.jsonl --jobs 2
  marginflow sweep soudry-direction --grid n=10,40 --grid d=3,5 --seeds 0:4 --results s.jsonl
  marginflow sweep song-width --grid n=16 --grid width=8 --grid d=10 --seeds 0:100 \\
      --results big.jsonl --scheduler tcp://scheduler:8786
A rerun with the same --results skips the points already in the file. Ctrl-C or SIGTERM stops the
workers and keeps every finished point (exit 130/143); a second sweep on a --results file that
another sweep is writing is refused (exit 2), and so is a file that is not a sweep's."""

#: Named training trials (module path, function) that are not theorem checks.
TRIALS = {"song-width": ("theory.catalogue.song2021", "width_trial"),
          "woodworth-alpha": ("theory.catalogue.woodworth2020", "alpha_trial")}


def theorem_trial(*, theorem_id: str, seed: int, **overrides) -> dict:
    """Check ``theorem_id`` on its instance for ``seed`` with ``overrides``: one sweep point."""
    from ..catalogue import get_theorem

    theorem = get_theorem(theorem_id)
    verdict = theorem.check(theorem.make_instance(seed, **overrides))
    return {"status": verdict.status, "passed": verdict.passed, "runtime": verdict.runtime,
            "comparisons": [{k: c[k] for k in ("name", "theory", "measured", "passed")}
                            for c in verdict.to_dict()["comparisons"]]}


def _target(name: str):
    import importlib

    if name in TRIALS:
        module, fn = TRIALS[name]
        return getattr(importlib.import_module(module), fn)
    from ..catalogue import get_theorem

    get_theorem(name)  # a clear error listing the known ids
    return functools.partial(theorem_trial, theorem_id=name)


def _value(text: str):
    """A grid value: JSON when it parses (numbers, true/false, null), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _grid_arg(text: str) -> tuple[str, list]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"--grid takes NAME=V1,V2,...; got {text!r} (e.g. --grid n=16,32)")
    name, values = text.split("=", 1)
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(
            f"--grid {text!r}: {name!r} is not a parameter name (e.g. --grid n=16,32)")
    parts = values.split(",")
    if "" in parts:
        raise argparse.ArgumentTypeError(
            f"--grid {name}: empty value at position {parts.index('') + 1} in {values!r}; "
            f"separate values with single commas (e.g. --grid {name}=1,2)")
    vals = [_value(v) for v in parts]
    for v in vals:
        if isinstance(v, float) and v != v or v in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"--grid {name}: {v!r} is not a finite value")
    if name in SIZE_PARAMETERS:
        for raw, v in zip(parts, vals, strict=True):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise argparse.ArgumentTypeError(
                    f"--grid {name}: {raw!r} is not a number ({name} is a size, a positive "
                    f"integer)")
    return name, vals


def _seeds_arg(text: str) -> list[int]:
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            seeds = list(range(int(a), int(b)))
        else:
            seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds takes START:STOP or a comma list; got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds {text!r} selects no seed")
    if min(seeds) < 0 or max(seeds) >= 2**32:
        raise argparse.ArgumentTypeError(
            f"--seeds {text!r}: seeds must lie in [0, 2**32) (numpy seeds)")
    return seeds


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a check or trial over a parameter grid (resumable)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    p.add_argument("target", help="a theorem id (see `marginflow list`) or a trial: "
                                  + ", ".join(TRIALS))
    p.add_argument("--grid", type=_grid_arg, action="append", default=[], metavar="NAME=V1,V2",
                   help="a parameter and its values (repeat for more parameters)")
    p.add_argument("--seeds", type=_seeds_arg, default=[0], help="START:STOP or a list (default 0)")
    p.add_argument("--results", required=True, metavar="FILE",
                   help="JSON-lines results file, appended to and resumed from")
    p.add_argument("--jobs", type=positive_int("--jobs"), default=1,
                   help="local worker processes, >= 1 (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (needs marginflow[dask]); checked before the "
                        "sweep starts")
    p.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the scheduler to answer (default 10)")
    p.add_argument("--max-elements", type=positive_int("--max-elements"),
                   default=MAX_POINT_ELEMENTS, metavar="N",
                   help="largest product of the size parameters (" + ", ".join(SIZE_PARAMETERS)
                        + f") of one point (default {MAX_POINT_ELEMENTS:.0e})")
    p.set_defaults(func=run)


def run(args) -> int:
    grid = dict(args.grid)
    if len(grid) != len(args.grid):
        raise ValueError("a --grid parameter is given twice; list all its values in one --grid.")
    grid = check_grid_sizes(grid, args.max_elements)
    check_output_file(args.results, "--results")
    if args.scheduler is not None:
        check_scheduler(args.scheduler, args.scheduler_timeout)
    from ..checking import interrupt_exit_code, stop_on_signals

    try:
        with stop_on_signals():
            return _run(args, grid)
    except KeyboardInterrupt as exc:  # SIGINT, or Terminated on SIGTERM: workers are stopped
        print(f"marginflow sweep: {_interrupted(exc, args.results)}", file=sys.stderr)
        return interrupt_exit_code(exc)


def _interrupted(exc: KeyboardInterrupt, results: str) -> str:
    import warnings

    from ..checking import Terminated, read_results

    what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (SIGINT)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kept = f"finished points saved in {results}: {len(read_results(results))}"
    except (OSError, ValueError):
        kept = f"no readable results in {results}"
    return f"{what}; workers stopped; {kept}; rerun the same command to resume."


def _run(args, grid) -> int:
    from ..checking import run_sweep

    fn = _target(args.target)
    result = run_sweep(fn, grid, seeds=args.seeds, results=args.results, n_jobs=args.jobs,
                       scheduler=args.scheduler)
    print(f"{result.n_computed} points computed, {result.n_skipped} resumed from "
          f"{result.path}; {len(result.records)} in all ({result.status}), "
          f"{result.runtime:.1f} s", file=sys.stderr)
    for rec in result.records:
        res = rec["result"]
        summary = res.get("status", "") if isinstance(res, dict) else ""
        print(json.dumps({"params": rec["params"], "seed": rec["seed"], "status": summary}))
    return 0
