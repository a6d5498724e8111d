"""Benchmark of the overparameterized (d > n) and general-p routes of solvers.programs (issue 9).

Run from the repository root::

    python tests/benchmarks/bench_programs_wide.py              # every group (long: see timeouts)
    python tests/benchmarks/bench_programs_wide.py --quick      # small sizes only
    python tests/benchmarks/bench_programs_wide.py --groups l2,p3 --timeout 300
    python tests/benchmarks/bench_programs_wide.py --groups l1l_inf,bp --timeout 300  # issue 9

Every measurement runs in its own subprocess (one BLAS thread; a route suffixed ``@2`` runs
with two, the machine's cores), so a competitor that runs away is stopped at ``--timeout``
seconds (or fails at the ``--mem-gib`` address-space cap) and is reported as such, and each
row's peak RSS is that process's own (data included). "CPU s" is the process's CPU time, which a
loaded machine inflates less than the wall-clock "seconds". The baseline ``main`` rows run the
same call with ``PYTHONPATH`` set to ``--baseline`` (default ``/work/main``, the code before
these routes), in the same run, on the same data. Margins are recomputed here from each route's
``w`` as ``min_i y_i <w, x_i> / ||w||_p`` and compared with the best in the group. Not part of
the tests.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from bench_programs import separable_data  # noqa: E402  (the same data as bench_programs.py)


def _pnorm(v, p):
    return float(np.linalg.norm(v, ord=p))


# ------------------------------------------------------------------ one measurement (child)
def run_one(route: str, n: int, d: int, p: float) -> dict:
    """One measurement; a route ending in ``@k`` runs with ``k`` BLAS threads (default 1)."""
    route, _, threads = route.partition("@")
    threads = int(threads or 1)
    import cvxpy  # noqa: F401  (imports outside the timed region)
    import scipy.optimize  # noqa: F401
    import sklearn.svm  # noqa: F401
    from threadpoolctl import threadpool_limits

    from solvers.programs import solve_max_margin

    if route.endswith("-bp"):
        return run_basis_pursuit(route, n, d)
    if route.endswith("-inf"):
        return run_min_norm_inf(route, n, d)
    if route.endswith("-nuc"):
        return run_nuclear(route, n, d, int(p))
    X, y = separable_data(n, d, 0)
    G = None
    with threadpool_limits(threads):
        t0, c0 = time.perf_counter(), time.process_time()  # CPU: all threads, comparable under load
        if route.startswith("solve_max_margin"):
            method = route.split(":", 1)[1] if ":" in route else "auto"
            sol = solve_max_margin(X, y, norm=p, method=method)
            w, label = sol.w, sol.solver
        elif route == "cvxpy-clarabel":
            import cvxpy as cp

            wv = cp.Variable(d)
            obj = 0.5 * cp.sum_squares(wv) if p == 2 else cp.pnorm(wv, p)
            prob = cp.Problem(cp.Minimize(obj), [cp.multiply(y, X @ wv) >= 1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prob.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
            w, label = np.asarray(wv.value), f"status {prob.status}"
        elif route == "svc-mirrored":
            from sklearn.svm import SVC

            Xm = np.vstack([X, -X])
            ym = np.concatenate([y, -y])
            clf = SVC(kernel="linear", C=1e10, tol=1e-8).fit(Xm, ym)
            w, label = clf.coef_.ravel(), "libsvm"
        elif route == "linprog-full":
            import scipy.optimize as so
            import scipy.sparse as sp

            G = y[:, None] * X
            opts = {"primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9}
            if np.isinf(p):
                c = np.zeros(d + 1)
                c[-1] = -1.0
                res = so.linprog(c, A_ub=np.hstack([-G, np.ones((n, 1))]), b_ub=np.zeros(n),
                                 bounds=[(-1, 1)] * d + [(None, None)], method="highs",
                                 options=opts)
                w = res.x[:d]
            else:
                c = np.zeros(2 * d + 1)
                c[-1] = -1.0
                A = sp.vstack([sp.csr_matrix(np.hstack([-G, G, np.ones((n, 1))])),
                               sp.csr_matrix(np.concatenate([np.ones(2 * d), [0.0]])[None])])
                res = so.linprog(c, A_ub=A, b_ub=np.concatenate([np.zeros(n), [1.0]]),
                                 bounds=[(0, None)] * (2 * d) + [(None, None)], method="highs",
                                 options=opts)
                w = res.x[:d] - res.x[d:2 * d]
            label = res.message[:30]
        else:
            raise ValueError(route)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    G = y[:, None] * X if G is None else G
    margin = float(np.min(G @ w) / _pnorm(w, p))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"seconds": dt, "cpu": cpu, "margin": margin, "label": label, "rss_gib": rss}


def run_basis_pursuit(route: str, n: int, d: int) -> dict:
    """min ||w||_1 s.t. X w = y for Gaussian X and a 20-sparse ground truth w0 (seed 0)."""
    import cvxpy as cp
    from threadpoolctl import threadpool_limits

    from solvers.programs import solve_min_norm

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    w0 = np.zeros(d)
    w0[rng.choice(d, 20, replace=False)] = rng.standard_normal(20)
    y = X @ w0
    with threadpool_limits(1):
        t0, c0 = time.perf_counter(), time.process_time()
        if route == "solve_min_norm-bp":
            sol = solve_min_norm(X, y, norm=1)
            w, label = sol.w, sol.solver
        elif route == "linprog-full-bp":  # w = a - b, min 1^T(a + b), [X, -X][a; b] = y
            import scipy.optimize as so

            opts = {"primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9}
            res = so.linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None),
                             method="highs", options=opts)
            w, label = res.x[:d] - res.x[d:], res.message[:30]
        else:  # cvxpy-clarabel-bp
            wv = cp.Variable(d)
            prob = cp.Problem(cp.Minimize(cp.norm1(wv)), [X @ wv == y])
            prob.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
            w, label = np.asarray(wv.value), f"status {prob.status}"
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    # "margin" column: ||w0||_1 / ||w||_1 (1 when w0 is recovered; the larger the better)
    return {"seconds": dt, "cpu": cpu, "margin": float(np.abs(w0).sum() / np.abs(w).sum()),
            "label": label, "rss_gib": rss, "err": float(np.abs(w - w0).max())}


def run_min_norm_inf(route: str, n: int, d: int) -> dict:
    """min ||w||_∞ s.t. X w = y for Gaussian X and y (seed 0); "margin" column: 1 / ||w||_∞."""
    import cvxpy as cp
    from threadpoolctl import threadpool_limits

    from solvers.programs import solve_min_norm

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    with threadpool_limits(1):
        c0 = time.process_time()
        t0 = time.perf_counter()
        if route == "solve_min_norm-inf":
            sol = solve_min_norm(X, y, norm="inf")
            w, label = sol.w, sol.solver
        elif route == "full-lp-inf":  # today's route: the full (d + 1)-column LP, HiGHS
            sol = solve_min_norm(X, y, norm="inf", method="highs")
            w, label = sol.w, sol.solver
        else:  # cvxpy-clarabel-inf
            wv = cp.Variable(d)
            prob = cp.Problem(cp.Minimize(cp.norm_inf(wv)), [X @ wv == y])
            prob.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
            w, label = np.asarray(wv.value), f"status {prob.status}"
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res = float(np.linalg.norm(X @ w - y) / np.linalg.norm(y))
    return {"seconds": dt, "cpu": cpu, "margin": float(1.0 / np.abs(w).max()),
            "label": f"{label}; rel. residual {res:.0e}", "rss_gib": rss}


def run_nuclear(route: str, n: int, d: int, rank: int) -> dict:
    """min ||W||_* s.t. <A_i, W> = y_i: Gaussian A of shape (n, d, d), planted rank-``rank`` W0."""
    import cvxpy as cp
    from threadpoolctl import threadpool_limits

    from solvers.programs import solve_min_nuclear_norm

    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, d, d))
    W0 = rng.standard_normal((d, rank)) @ rng.standard_normal((rank, d))
    y = np.tensordot(A, W0, axes=2)
    with threadpool_limits(1):
        t0 = time.perf_counter()
        if route.startswith("solve_min_nuclear_norm"):
            method = route[:-4].split(":", 1)[1] if ":" in route else "auto"
            sol = solve_min_nuclear_norm(A, y, method=method)
            W, label = sol.W, f"{sol.solver}, certified"
        else:  # cvxpy-clarabel-nuc: the full program, as the library's CVXPY route states it
            Wv = cp.Variable((d, d))
            prob = cp.Problem(cp.Minimize(cp.normNuc(Wv)),
                              [A.reshape(n, d * d) @ cp.vec(Wv, order="C") == y])
            prob.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
            W, label = np.asarray(Wv.value), f"status {prob.status}"
        dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    nuc = float(np.linalg.svd(W, compute_uv=False).sum())
    # "margin" column: ||W0||_* / ||W||_* (1 when W0 is recovered; the larger the better)
    return {"seconds": dt, "margin": float(np.linalg.svd(W0, compute_uv=False).sum() / nuc),
            "label": label, "rss_gib": rss,
            "err": float(np.linalg.norm(W - W0) / np.linalg.norm(W0))}


# ----------------------------------------------------------------------------- the driver
GROUPS = {
    # name: (program, p, [(n, d)], routes); "main:" rows run on the baseline checkout
    "l2": ("ℓ2 SVM", 2.0, [(2000, 20000), (500, 100000)],
           ["solve_max_margin", "solve_max_margin@2", "main:solve_max_margin", "svc-mirrored",
            "cvxpy-clarabel"]),
    "l1l_inf": ("ℓ1/ℓ∞ margin", None, [(5000, 100), (200, 2000), (2000, 20000)],
                ["solve_max_margin", "main:solve_max_margin", "linprog-full"]),
    "p3": ("p = 3 margin", 3.0, [(200000, 50)],
           ["solve_max_margin", "main:solve_max_margin", "cvxpy-clarabel"]),
    "tall": ("n ≫ d (regression)", None, [(5000, 100)],
             ["solve_max_margin", "main:solve_max_margin"]),
    "bp": ("basis pursuit", 1.0, [(1000, 20000)],
           ["solve_min_norm-bp", "main:solve_min_norm-bp", "linprog-full-bp",
            "cvxpy-clarabel-bp"]),
    "inf_minnorm": ("ℓ∞ min norm", np.inf, [(100, 3000), (300, 6000)],
                    ["solve_min_norm-inf", "full-lp-inf", "cvxpy-clarabel-inf"]),
}
# nuclear: (n, d) with d1 = d2 = d, "p" = the planted rank
GROUPS["nuclear"] = ("min nuclear norm", 3.0, [(200, 30), (800, 60), (2000, 100)],
                     ["solve_min_nuclear_norm:colgen-nuc", "solve_min_nuclear_norm-nuc",
                      "cvxpy-clarabel-nuc"])
QUICK = {"l2": [(300, 3000)], "l1l_inf": [(500, 50), (100, 1000)], "p3": [(20000, 20)],
         "tall": [(1000, 50)], "bp": [(100, 2000)], "inf_minnorm": [(50, 1000)],
         "nuclear": [(60, 10)]}


def measure(route, n, d, p, timeout, baseline, mem_gib):
    env = dict(os.environ)
    if route.startswith("main:"):
        env["PYTHONPATH"] = baseline
        route = route[5:]
    else:
        env["PYTHONPATH"] = ROOT
    cmd = [sys.executable, os.path.abspath(__file__), "--one", route, str(n), str(d), str(p),
           "--mem-gib", str(mem_gib)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": float("inf"), "margin": float("nan"), "label": "timed out",
                "rss_gib": float("nan"), "cpu": float("nan")}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        if "MemoryError" in out.stderr or "Unable to allocate" in out.stderr:
            last = f"MemoryError at the {mem_gib:g} GiB cap"
        return {"seconds": float("nan"), "margin": float("nan"), "label": f"error: {last[:80]}",
                "rss_gib": float("nan"), "cpu": float("nan")}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--one", nargs=4, metavar=("ROUTE", "N", "D", "P"), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--baseline", default="/work/main")
    ap.add_argument("--sizes", default="",
                    help="override the groups' sizes, e.g. 5000x100,200x2000")
    ap.add_argument("--mem-gib", type=float, default=6.0,
                    help="address-space limit of each measurement (GiB; 0 = none)")
    args = ap.parse_args()
    if args.one:
        if args.mem_gib:  # address-space cap: a runaway competitor fails instead of swapping
            lim = int(args.mem_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        route, n, d, p = args.one
        print(json.dumps(run_one(route, int(n), int(d), float(p))))
        return
    import numpy
    import scipy
    load = os.getloadavg()[0]
    try:
        base = subprocess.run(["git", "-C", args.baseline, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        base = "?"

    print(f"Run: `bench_programs_wide  {datetime.date.today()}  python "
          f"{platform.python_version()}  numpy {numpy.__version__}  scipy {scipy.__version__}` "
          f"(BLAS threads: 1; timeout {args.timeout:g} s; load average at start {load:.1f} "
          f"on {os.cpu_count()} cores)\n")
    print("| program | (n, d) | route | seconds | CPU s | × ours | peak RSS GiB "
          "| rel. margin diff vs best |")
    print("|---|---|---|---|---|---|---|---|")
    for g in args.groups.split(","):
        prog, p0, sizes, routes = GROUPS[g]
        if args.quick:
            sizes = QUICK[g]
        if args.sizes:
            sizes = [tuple(int(v) for v in sz.split("x")) for sz in args.sizes.split(",")]
        norms = [p0] if p0 is not None else [2.0, np.inf, 1.0] if g == "tall" else [np.inf, 1.0]
        for n, d in sizes:
            for p in norms:
                rows = [(r, measure(r, n, d, p, args.timeout, args.baseline, args.mem_gib))
                        for r in routes]
                best = max((m["margin"] for _, m in rows if np.isfinite(m["margin"])),
                           default=float("nan"))
                ours = rows[0][1]["seconds"]
                pname = (prog if g in ("bp", "inf_minnorm") else
                         {1.0: "ℓ1", np.inf: "ℓ∞"}.get(p, prog))
                for r, m in rows:
                    sec = m["seconds"]
                    ts = f"> {args.timeout:g}" if np.isinf(sec) else f"{sec:.2f}"
                    ratio = "" if not np.isfinite(sec) else f"{sec / ours:.1f}x"
                    diff = abs(m["margin"] - best) / best if np.isfinite(m["margin"]) else None
                    name = r.replace("main:", f"main {base}: ").replace("@2", " (2 threads)")
                    cpu = m.get("cpu", float("nan"))
                    print(f"| {pname} | ({n}, {d}) | {name} [{m['label']}] | {ts} | "
                          f"{'' if not np.isfinite(cpu) else f'{cpu:.2f}'} | {ratio} | "
                          f"{m['rss_gib']:.2f} | {'n/a' if diff is None else f'{diff:.1e}'} |",
                          flush=True)


if __name__ == "__main__":
    main()
