"""Benchmark: cost of deriving and compiling gradient flows as a function of depth.

Run from the repository root::

    python tests/benchmarks/bench_derivation.py           # depth scans + entry-wise comparison
    python tests/benchmarks/bench_derivation.py --quick   # one repeat, no entry-wise rows

For each depth: :func:`theory.flows.derive_gradient_flow` (matrix level) then
:func:`theory.codegen.compile_flow` (rhs + Jacobian), median of repeats, each repeat after
clearing sympy's cache. Deep linear net (widths 10, squared loss) and linear chain (d = 1,
logistic loss). Also prints the entry-wise derivation (explicit scalar entries, ``.diff`` per
entry) plus compile at small sizes, for contrast, and the fitted exponent ``t ∝ depth^p``.

Targets (issue 3, §4): derivation cost at most linear in depth; depth 50 (deep linear net) and
depth 100 (chain) derive and compile in under 2 s each.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import numpy as np
import pytest
from sympy.core.cache import clear_cache

from theory.symbolic import compile_flow, deep_linear_net, derive_gradient_flow, linear_chain

TARGET_SECONDS = 2.0
DEPTHS = (2, 5, 10, 20, 50, 100)


def _measure(make_model, loss, repeats, jacobian=True, **kw):
    derive, comp = [], []
    for _ in range(repeats):
        clear_cache()
        t0 = time.perf_counter()
        flow = derive_gradient_flow(make_model(), loss, **kw)
        t1 = time.perf_counter()
        compile_flow(flow, jacobian=jacobian)
        t2 = time.perf_counter()
        derive.append(t1 - t0)
        comp.append(t2 - t1)
    return statistics.median(derive), statistics.median(comp)


def scan(repeats=3):
    # warm-up: sympy's first matrix derivative imports and caches its machinery (~0.3 s once)
    _measure(lambda: deep_linear_net([2, 2, 2]), "squared", 1)
    rows = []
    for name, make, loss in [
        ("deep linear (w=10)", lambda L: deep_linear_net([10] * (L + 1)), "squared"),
        ("chain (d=1)", lambda L: linear_chain(L), "logistic"),
    ]:
        for L in DEPTHS:
            d, c = _measure(lambda L=L, make=make: make(L), loss, repeats)
            rows.append((name, L, d, c, d + c))
    return rows


def entrywise(repeats=1, cases=((2, 2), (2, 3), (3, 2), (3, 3))):
    """Matrix level vs entry-wise (rhs only: the entry-wise Jacobian is far slower still)."""
    rows = []
    for L, w in cases:
        for method, kw in (("matrix", {}), ("entrywise", {"method": "entrywise", "n": 10})):
            d, c = _measure(lambda L=L, w=w: deep_linear_net([w] * (L + 1)), "squared",
                            repeats, jacobian=False, **kw)
            rows.append((method, L, w, d, c, d + c))
    return rows


def _exponent(rows, name):
    L = np.array([r[1] for r in rows if r[0] == name and r[1] >= 10], float)
    t = np.array([r[4] for r in rows if r[0] == name and r[1] >= 10], float)
    return float(np.polyfit(np.log(L), np.log(t), 1)[0])


def print_tables(rows, erows=None):
    print(f"# bench_derivation  {datetime.datetime.now():%Y-%m-%d %H:%M}  {platform.machine()}  "
          "median, sympy cache cleared before each repeat")
    print(f"{'model':20s} {'depth':>5s} {'derive s':>9s} {'compile s':>10s} {'total s':>8s}")
    for name, L, d, c, tot in rows:
        print(f"{name:20s} {L:5d} {d:9.3f} {c:10.3f} {tot:8.3f}")
    verdict = {}
    for name, L_target in (("deep linear (w=10)", 50), ("chain (d=1)", 100)):
        tot = next(r[4] for r in rows if r[0] == name and r[1] == L_target)
        p = _exponent(rows, name)
        verdict[name] = (tot, p)
        ok = "OK" if tot < TARGET_SECONDS else "MISSED"
        print(f"{name}: depth {L_target} total {tot:.2f} s (target < {TARGET_SECONDS} s: {ok}); "
              f"fitted exponent t ~ depth^{p:.2f} over depth >= 10")
    if erows:
        print()
        print(f"{'method':10s} {'depth':>5s} {'width':>5s} {'derive s':>9s} {'compile s':>10s} "
              f"{'total s':>8s}   (deep linear, squared, n = 10, rhs only)")
        for method, L, w, d, c, tot in erows:
            print(f"{method:10s} {L:5d} {w:5d} {d:9.3f} {c:10.3f} {tot:8.3f}")
    return verdict


@pytest.mark.benchmark
def test_derivation_benchmark():
    verdict = print_tables(scan(repeats=1))
    for tot, p in verdict.values():
        assert tot < TARGET_SECONDS
        assert p < 1.5  # linear up to list/printing overheads


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat, no entry-wise rows")
    args = ap.parse_args()
    rows = scan(repeats=1 if args.quick else 3)
    print_tables(rows, None if args.quick else entrywise())
