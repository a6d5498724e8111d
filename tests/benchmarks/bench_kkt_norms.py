"""Benchmark of the ℓ1/ℓ∞ KKT check without the explicit (P × N) matrix (issue 11).

    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_kkt_norms.py \
        [--sizes 500x300,2000x300,10000x1000] [--norm 1 inf] [--explicit-up-to 3e7] \
        [--time-limit 900] [--batch 200] [--log] [--baseline DIR]

The instance is bench_kkt's (``make_instance``: a 2-layer ReLU net, d = 784, Gaussian data
labelled by the net, margins uniform in [1, 4], no kink examples), with every example a
candidate (``support_factor=1e9``). For each ``n x width`` and norm it runs ``check_kkt`` by
constraint generation (``max_dense_entries=1``, so the explicit program is never built) and, when
``n · P`` is at most ``--explicit-up-to``, the explicit LP of ``solvers.nets.kkt._lp`` side by
side (the baseline). Each run is in a child process (so its peak RSS is its own) killed after
``--time-limit`` seconds. Prints wall and CPU time, peak RSS, ε/||θ̃||_p, the solver status and
the method text (rounds, coordinates). No assertion on timings (this is not a test).

``--baseline DIR`` also runs the constraint-generation route with ``DIR`` first on ``sys.path`` —
an export of an older commit, e.g. the one before the warm start (``git archive fcf5ca0 | tar -x
-C /tmp/kkt_base``; restricted LPs re-solved from scratch by ``linprog`` every round) — on the
same instance in the same job (route "baseline").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time


def _run(n, m, norm, route, q, baseline=None, batch=None, log=False):
    import logging
    import sys
    from pathlib import Path

    if route == "baseline":
        sys.path.insert(0, str(Path(baseline).resolve()))
        for mod in [k for k in sys.modules if k.split(".")[0] in ("solvers", "theory")]:
            del sys.modules[mod]
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_kkt import make_instance

    from solvers.nets.kkt import check_kkt

    net, X, y = make_instance(n, 784, m, n_kink_examples=0, seed=0)
    import solvers

    assert route != "baseline" or Path(solvers.__file__).resolve().is_relative_to(
        Path(baseline).resolve()), solvers.__file__
    mde = 10**12 if route == "explicit" else 1
    if log:  # per-round progress (coordinates, bounds, simplex iterations) on stderr
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
        logging.getLogger("solvers.nets.kkt._lp_colgen").setLevel(logging.DEBUG)
    if batch and route == "colgen":
        from solvers.nets.kkt import _lp_colgen

        _lp_colgen._BATCH = batch
    t0, c0 = time.perf_counter(), time.process_time()
    rep = check_kkt(net, X, y, norm=norm, support_factor=1e9, max_dense_entries=mde)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put({"wall": dt, "cpu": dc, "rss_mb": rss, "eps": rep.epsilon_relative,
           "status": rep.solver_status, "nc": rep.n_candidates, "P": rep.extra["P"],
           "method": rep.method, "nat": rep.natural_epsilon_relative, "np": np.__version__})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="500x300,2000x300,10000x1000",
                    help="comma-separated n x width (d = 784)")
    ap.add_argument("--norm", nargs="+", default=["1", "inf"])
    ap.add_argument("--explicit-up-to", type=float, default=3e7,
                    help="also run the explicit LP when n * P is at most this")
    ap.add_argument("--time-limit", type=float, default=900.0)
    ap.add_argument("--batch", type=int, default=None,
                    help="coordinates added per round by constraint generation (default 200)")
    ap.add_argument("--log", action="store_true",
                    help="log each generation round on stderr (shows progress of killed runs)")
    ap.add_argument("--baseline", default=None,
                    help="also run constraint generation from this source tree (older commit)")
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    print("| n | width | P | norm | route | wall s | CPU s | peak RSS MB | ε/‖θ̃‖_p | status "
          "| method |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, m = (int(s) for s in size.split("x"))
        P = 784 * m + m
        for norm in args.norm:
            routes = (["colgen"] + (["baseline"] if args.baseline else [])
                      + (["explicit"] if n * P <= args.explicit_up_to else []))
            for route in routes:
                q = ctx.Queue()
                pr = ctx.Process(target=_run, args=(n, m, norm, route, q, args.baseline,
                                                           args.batch, args.log))
                t0 = time.perf_counter()
                pr.start()
                pr.join(args.time_limit)
                if pr.is_alive():
                    pr.kill()
                    pr.join()
                    print(f"| {n} | {m} | {P} | {norm} | {route} | > {args.time_limit:.0f} "
                          f"(killed) | | | | | |", flush=True)
                    continue
                if q.empty():
                    print(f"| {n} | {m} | {P} | {norm} | {route} | failed after "
                          f"{time.perf_counter() - t0:.0f} s (exit {pr.exitcode}) | | | | | |",
                          flush=True)
                    continue
                r = q.get()
                print(f"| {n} | {m} | {P} | {norm} | {route} | {r['wall']:.1f} | {r['cpu']:.1f} "
                      f"| {r['rss_mb']:.0f} | {r['eps']:.6g} | {r['status']} | "
                      f"{r['method'][:400]} |", flush=True)


if __name__ == "__main__":
    main()
