"""Benchmark: solve_min_potential (dual Newton, certified) against CVXPY + Clarabel on the same
program (min D_ψ(w, w₀) s.t. Xw = y), for the potentials CVXPY can represent.

Usage::

    python tests/benchmarks/bench_potential.py [n d [newton-only]]   # default 200 4000
    python tests/benchmarks/bench_potential.py 1000 20000 newton-only    # the issue's size

Prints one line per potential: Newton time and iterations, CVXPY time, the ratio, and the
relative distance between the two answers (CVXPY's own accuracy is ~√solver_eps). Measured
times depend on the machine's load; the ratio within one run is what counts.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from solvers.programs import Potential, solve_min_potential
from solvers.programs._potential import _route_cvxpy


def main(n: int = 200, d: int = 4000, cvxpy: bool = True) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    beta[: max(1, n // 20)] = rng.standard_normal(max(1, n // 20))
    y = X @ beta
    Xp = np.abs(X)
    yp = Xp @ rng.uniform(0.5, 1.5, d)
    cases = [("entropy", Potential.entropy(), Xp, yp), ("lp(1.5)", Potential.lp(1.5), X, y),
             ("Q_alpha(1e-3)", Potential.woodworth(1e-3), X, y)]
    print(f"n = {n}, d = {d}")
    for name, pot, XX, yy in cases:
        t = time.perf_counter()
        sol = solve_min_potential(XX, yy, pot, method="newton")
        tn = time.perf_counter() - t
        line = (f"{name:14s} newton {tn:8.2f} s ({sol.iterations} it, "
                f"{sol.certificate.status})")
        if cvxpy and pot.cvxpy is not None:
            w0 = np.full(d, pot.minimiser)
            t = time.perf_counter()
            out = _route_cvxpy(XX, yy, pot, w0, pot.grad(w0), "CLARABEL")
            tc = time.perf_counter() - t
            dist = np.linalg.norm(out.w - sol.w) / np.linalg.norm(sol.w)
            line += f"  cvxpy {tc:8.2f} s [{out.solver_status}]  ratio {tc / tn:6.1f}x  " \
                    f"rel. dist {dist:.1e}"
        elif cvxpy:
            line += "  (no CVXPY form)"
        print(line, flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]), cvxpy="newton-only" not in sys.argv[3:])
