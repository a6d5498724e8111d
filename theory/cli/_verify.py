"""``marginflow list`` and ``marginflow verify``: the theorem catalogue from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from ._checks import check_output_dir, positive_int, seed_int

__all__ = ["register", "run_list", "run_verify", "run_checks"]

_log = logging.getLogger("marginflow.progress")

EXAMPLE_VERIFY = """examples:
  marginflow verify                      # every theorem on its built-in instance
  marginflow verify --quick              # the fastest subset (under 30 s)
  marginflow verify soudry-direction lyu-li-kkt --report out/ --seed 3
  marginflow verify --json > verdicts.json
  marginflow verify --plugin mypkg.theorems       # add a module's THEOREMS to the catalogue
  marginflow verify my-theorem --plugin ./my_theorems.py
exit status: 0 all passed, 1 some check failed, 2 bad input.

--plugin imports a Python module: this RUNS THE MODULE'S CODE (as pytest does for plugins).
Only pass modules you trust. Installed packages add theorems through the entry-point group
"marginflow.theorems"; a plugin that fails to import is reported in one line and skipped."""

PLUGIN_HELP = ("import MODULE_OR_PATH (package.module or file.py) and add its THEOREMS; "
               "repeatable. Runs that module's code: only use modules you trust.")


def _add_plugin_option(p) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_PATH",
                   help=PLUGIN_HELP)


def _load_plugins(args) -> None:
    """Load ``--plugin`` modules, then print one line per plug-in that failed to load."""
    import warnings

    from ..catalogue import PluginWarning, load_plugin, plugin_errors

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        for target in getattr(args, "plugin", []) or []:
            load_plugin(target)
        from ..catalogue import catalogue

        catalogue()  # entry points too
    for line in plugin_errors():
        print(f"marginflow {args.command}: warning: {line}", file=sys.stderr)


def register(sub) -> None:
    p = sub.add_parser("list", help="list the theorem catalogue with sources",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  marginflow list --json")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_plugin_option(p)
    p.set_defaults(func=run_list)

    p = sub.add_parser("verify", help="check theorems on built-in instances",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=EXAMPLE_VERIFY)
    p.add_argument("ids", nargs="*", metavar="ID",
                   help="theorem ids or source modules (default: all); see `marginflow list`")
    p.add_argument("--quick", action="store_true", help="run only the fastest subset")
    p.add_argument("--report", metavar="DIR", help="write a report (md, tex, json, figures) to DIR")
    p.add_argument("--force", action="store_true", help="replace an existing report directory")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--seed", type=seed_int, default=0,
                   help="seed of the built-in instances, in [0, 2**32) (default 0)")
    p.add_argument("--jobs", type=positive_int("--jobs"), default=1,
                   help="run checks in N >= 1 processes (joblib; default 1)")
    _add_plugin_option(p)
    p.set_defaults(func=run_verify)


def run_list(args) -> int:
    from ..catalogue import catalogue, theorem_origin

    _load_plugins(args)
    theorems = catalogue()
    if args.json:
        print(json.dumps([{**t.to_dict(), "origin": theorem_origin(t.id)} for t in theorems],
                         indent=2, ensure_ascii=False))
        return 0
    rows = [(t.id, t.kind, "quick" if t.quick else "", t.source.short(), t.title[:60])
            for t in theorems]
    headers = ("id", "kind", "quick", "source", "title")
    origins = [theorem_origin(t.id) for t in theorems]
    if any(not o.startswith("built-in") for o in origins):  # plug-ins: say where each is from
        rows = [(*r, "built-in" if o.startswith("built-in") else o)
                for r, o in zip(rows, origins, strict=True)]
        headers = (*headers, "from")
    _print_table(headers, rows)
    return 0


def _check_one(theorem_id: str, seed: int, plugins: tuple = ()):
    from ..catalogue import get_theorem, load_plugin

    for target in plugins:  # a worker process (--jobs N) loads the plug-ins again
        load_plugin(target)
    return get_theorem(theorem_id).check(seed=seed)


def run_checks(theorems, *, seed: int = 0, jobs: int = 1, progress: bool | None = None,
               plugins: tuple = ()):
    """Check each theorem on its default instance for ``seed``; returns the verdicts in order.

    A check that raises is turned into a verdict with status ``error`` (and the message), so one
    broken check does not hide the others' results; it still counts as a failure.
    """
    from solvers import progress as bar

    from ..checking import Verdict

    parent_pid = os.getpid()

    def safe(tid, title, kind):  # plain arguments: a plug-in's theorem may not pickle
        if jobs and jobs > 1:  # in a worker process, which a signal may kill
            from ..checking import prepare_worker

            prepare_worker(parent_pid)
        start = time.perf_counter()
        try:
            return _check_one(tid, seed, tuple(plugins))
        except Exception as exc:  # reported as an error verdict, never as a pass
            return Verdict(tid, title, (), runtime=time.perf_counter() - start, kind=kind,
                           error=f"{type(exc).__name__}: {exc}")

    if jobs and jobs > 1:
        from joblib import Parallel, delayed

        # starting the workers (each imports the catalogue) takes seconds before the first check
        _log.info("verify: %d checks in %d worker processes (starting them)", len(theorems), jobs)
        ordered = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(safe)(t.id, t.title, t.kind) for t in theorems)
        return list(bar(ordered, total=len(theorems), desc=f"verify ({jobs} jobs)",
                        enabled=progress))
    return [safe(t.id, t.title, t.kind) for t in bar(theorems, desc="verify", enabled=progress)]


def _claim_text(v) -> tuple[str, str]:
    """Theory vs measured for the table: the first comparison that failed, else the first one."""
    if v.error:
        return "—", v.error[:60]
    if not v.comparisons:
        return "—", "—"
    c = next((c for c in v.comparisons if not c.passed), v.comparisons[0])

    def fmt(x):
        return f"{x:.3g}" if isinstance(x, float) else str(x)

    return f"{fmt(c.theory)}", f"{fmt(c.measured)} ({c.reads.split()[1]})"


def run_verify(args) -> int:
    if args.report:  # before the catalogue is even imported
        check_output_dir(args.report, "--report", force=args.force)
    from ..checking import Terminated, interrupt_exit_code, stop_on_signals

    try:
        with stop_on_signals():
            return _run_verify(args)
    except KeyboardInterrupt as exc:  # SIGINT, or Terminated on SIGTERM; workers are stopped
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (SIGINT)"
        report = f"; no report written to {args.report}" if args.report else ""
        print(f"marginflow verify: {what}{report}.", file=sys.stderr)
        return interrupt_exit_code(exc)


def _run_verify(args) -> int:
    from ..catalogue import catalogue, select

    _load_plugins(args)
    theorems = select(args.ids, quick=args.quick)
    if not theorems:
        raise ValueError("no theorem selected; drop --quick or name ids from `marginflow list`.")
    verdicts = run_checks(theorems, seed=args.seed, jobs=args.jobs,
                          plugins=tuple(getattr(args, "plugin", []) or []))
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=2, ensure_ascii=False))
    else:
        rows = []
        for v in verdicts:
            theory, measured = _claim_text(v)
            rows.append((v.theorem_id, v.title[:44], theory, measured, v.status.upper(),
                         f"{v.runtime:.2f}"))
        _print_table(("id", "claim", "theory", "measured", "verdict", "time (s)"), rows)
        n_ok = sum(v.status in ("passed", "reported") for v in verdicts)
        total = sum(v.runtime for v in verdicts)
        print(f"\n{n_ok}/{len(verdicts)} checks passed or reported, {total:.1f} s of checks.")
    if args.report:
        from ..reports import verify_report, write_report

        _log.info("verify: writing the report (markdown, LaTeX, JSON, figures) to %s",
                  args.report)
        path = write_report(verify_report(verdicts, catalogue()), args.report, force=args.force)
        print(f"report written to {path}", file=sys.stderr)
    failed = [v for v in verdicts if v.status in ("failed", "error")]
    return 1 if failed else 0


def _print_table(headers, rows) -> None:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
