"""Issue 9's program targets, one workload per call, in this process (for a quiet machine).

Run from the repository root:

    python tests/benchmarks/bench_quiet_programs.py l2     # ℓ2, 2000×20000 and 500×100000
    python tests/benchmarks/bench_quiet_programs.py 1      # ℓ1 max margin, 2000×20000
    python tests/benchmarks/bench_quiet_programs.py inf    # ℓ∞ max margin, 2000×20000
    python tests/benchmarks/bench_quiet_programs.py bp     # basis pursuit, 1000×20000, 20-sparse

The data are those of ``bench_programs_wide.py`` (``bench_programs.separable_data(n, d, 0)``; for
basis pursuit Gaussian ``X`` and a 20-sparse Gaussian ``w0``, seed 0). BLAS threads are the
environment's (``OPENBLAS_NUM_THREADS``). The competitors (SVC, CVXPY, ``linprog`` on the full LP)
run in ``bench_programs_wide.py``, each in its own subprocess with a timeout. Not part of the tests.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_programs import separable_data  # noqa: E402

from solvers.programs import solve_max_margin, solve_min_norm  # noqa: E402


def _tail() -> str:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return (f"rss {rss:.2f} GiB, load {os.getloadavg()[0]:.1f}, "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")


def main(which: str) -> None:
    if which == "l2":
        for n, d in [(2000, 20000), (500, 100000)]:
            X, y = separable_data(n, d, 0)
            solve_max_margin(X, y, norm=2)  # warm-up (imports, allocation)
            walls = []
            for _ in range(3):
                t0 = time.perf_counter()
                s = solve_max_margin(X, y, norm=2)
                walls.append(time.perf_counter() - t0)
            walls.sort()
            print(f"l2 {n}x{d}: wall best {walls[0]:.2f} s, median {walls[1]:.2f} s, {s.solver}, "
                  f"certified {s.certificate.verified}; {_tail()}", flush=True)
    elif which in ("1", "inf"):
        X, y = separable_data(2000, 20000, 0)
        t0, c0 = time.perf_counter(), time.process_time()
        s = solve_max_margin(X, y, norm=float(which))
        print(f"l{which} 2000x20000: wall {time.perf_counter() - t0:.1f} s, cpu "
              f"{time.process_time() - c0:.1f} s, {s.solver}, certified {s.certificate.verified}, "
              f"margin {s.margin:.10g}; {_tail()}", flush=True)
    elif which == "bp":
        rng = np.random.default_rng(0)
        n, d = 1000, 20000
        X = rng.standard_normal((n, d))
        w0 = np.zeros(d)
        w0[rng.choice(d, 20, replace=False)] = rng.standard_normal(20)
        t0, c0 = time.perf_counter(), time.process_time()
        s = solve_min_norm(X, X @ w0, norm=1)
        print(f"basis pursuit 1000x20000: wall {time.perf_counter() - t0:.1f} s, cpu "
              f"{time.process_time() - c0:.1f} s, {s.solver}, certified {s.certificate.verified}, "
              f"max|w - w0| {np.abs(s.w - w0).max():.1e}; {_tail()}", flush=True)
    else:
        raise SystemExit(f"unknown workload {which!r}: use l2, 1, inf or bp")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "l2")
