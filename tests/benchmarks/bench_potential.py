"""Benchmark: solve_min_potential (dual Newton, certified) against CVXPY + Clarabel on the same
program (min D_ψ(w, w₀) s.t. Xw = y), for the potentials CVXPY can represent.

Usage::

    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_potential.py [n d [options]]
    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_potential.py 1000 20000 cvxpy-timeout=600

Flow mode (issue 12's flow target: the diagonal-net flow to within 1e-6 of the certified argmin
Q_α at n = 50, d = 200, α = 1e-4 … 1e2; ``woodworth2020.flow_limit`` in its mirror form, log-time,
and optionally the (u, v) form integrated in linear time as before)::

    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_potential.py flow [seeds=0,1,2] [uv]

Options: ``newton-only`` (skip CVXPY), ``cvxpy-timeout=S`` (default 600: CVXPY runs in a child
process that is stopped after S seconds; the line then says ``> S s`` and the ratio is a lower
bound), ``no-pcg-baseline`` (skip the run with the preconditioned-CG reuse switched off).

Prints one line per potential: Newton time, iterations and Hessians formed; the same solve with the
CG reuse switched off (the previous algorithm: one Hessian per iteration); CVXPY's time, the ratio
and the relative distance between the two answers (CVXPY's own accuracy is ~√solver_eps).
Measured times depend on the machine's load; the ratios within one run are what count.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import re
import sys
import time

import numpy as np

from solvers.programs import Potential, solve_min_potential
from solvers.programs import _potential as _pot


class _Count(logging.Handler):
    """Captures the ``dual Newton: k iterations, m Hessians formed`` debug line."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.hessians = None

    def emit(self, record):
        m = re.search(r"(\d+) Hessians formed", record.getMessage())
        if m:
            self.hessians = int(m.group(1))


def _cases(n, d):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    beta[: max(1, n // 20)] = rng.standard_normal(max(1, n // 20))
    y = X @ beta
    Xp = np.abs(X)
    yp = Xp @ rng.uniform(0.5, 1.5, d)
    return [("entropy", Potential.entropy(), Xp, yp), ("lp(1.5)", Potential.lp(1.5), X, y),
            ("Q_alpha(1e-3)", Potential.woodworth(1e-3), X, y)]


def _cvxpy_child(n, d, k, queue):
    name, pot, XX, yy = _cases(n, d)[k]
    w0 = np.full(d, pot.minimiser)
    t = time.perf_counter()
    out = _pot._route_cvxpy(XX, yy, pot, w0, pot.grad(w0), "CLARABEL")
    queue.put((time.perf_counter() - t, out.w, out.solver_status))


def _newton(pot, XX, yy, pcg: bool):
    saved = _pot._PCG_MAXITER
    if not pcg:
        _pot._PCG_MAXITER = 0
    h = _Count()
    lg = logging.getLogger(_pot.__name__)
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    try:
        t = time.perf_counter()
        sol = solve_min_potential(XX, yy, pot, method="newton")
        return time.perf_counter() - t, sol, h.hessians
    finally:
        _pot._PCG_MAXITER = saved
        lg.removeHandler(h)


def main(n: int = 200, d: int = 4000, cvxpy: bool = True, timeout: float = 600.0,
         baseline: bool = True) -> None:
    print(f"n = {n}, d = {d}", flush=True)
    for k, (name, pot, XX, yy) in enumerate(_cases(n, d)):
        tn, sol, hess = _newton(pot, XX, yy, pcg=True)
        line = (f"{name:14s} newton {tn:7.2f} s ({sol.iterations} it, {hess} Hessians, "
                f"{sol.certificate.status})")
        if baseline:
            tb, solb, hb = _newton(pot, XX, yy, pcg=False)
            line += (f"  no-PCG {tb:7.2f} s ({solb.iterations} it, {hb} Hessians) "
                     f"speed-up {tb / tn:4.2f}x")
        if cvxpy and pot.cvxpy is not None:
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            p = ctx.Process(target=_cvxpy_child, args=(n, d, k, q))
            t0 = time.perf_counter()
            p.start()
            p.join(timeout)
            if p.is_alive():
                p.terminate()
                p.join()
                line += f"  cvxpy > {timeout:.0f} s (stopped)  ratio > {timeout / tn:6.1f}x"
            else:
                tc, wc, st = q.get() if not q.empty() else (time.perf_counter() - t0, None, "?")
                dist = (np.linalg.norm(wc - sol.w) / np.linalg.norm(sol.w)
                        if wc is not None else np.nan)
                line += (f"  cvxpy {tc:7.2f} s [{st}]  ratio {tc / tn:6.1f}x  "
                         f"rel. dist {dist:.1e}")
        elif cvxpy:
            line += "  (no CVXPY form)"
        print(line, flush=True)


def flow(seeds=(0,), uv: bool = False) -> None:
    from theory.catalogue import woodworth2020 as W

    alphas = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)
    for seed in seeds:
        X, y = W._data(W.make_instance(seed, n=50, d=200, sparsity=5))
        for a in alphas:
            ref = solve_min_potential(X, y, Potential.woodworth(a)).w
            line = f"seed {seed} alpha {a:7.0e}"
            for form in ("mirror", "uv") if uv else ("mirror",):
                t = time.perf_counter()
                if form == "mirror":
                    beta, T = W.flow_limit(X, y, a, (1e12,), form="mirror")
                else:
                    beta, T = W.flow_limit(X, y, a, W.HORIZONS, form="uv")
                el = time.perf_counter() - t
                dist = np.linalg.norm(beta - ref) / np.linalg.norm(ref)
                line += f"  {form} {el:6.2f} s (T = {T:8.2e}, rel. dist {dist:.1e})"
            print(line, flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["flow"]:
        sd = [a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("seeds=")]
        flow(tuple(int(x) for x in sd[-1].split(",")) if sd else (0,), uv="uv" in sys.argv[2:])
        sys.exit(0)
    nums = [int(a) for a in sys.argv[1:] if a.isdigit()]
    opts = [a for a in sys.argv[1:] if not a.isdigit()]
    tmo = [float(a.split("=", 1)[1]) for a in opts if a.startswith("cvxpy-timeout=")]
    main(*nums[:2], cvxpy="newton-only" not in opts, timeout=tmo[-1] if tmo else 600.0,
         baseline="no-pcg-baseline" not in opts)
