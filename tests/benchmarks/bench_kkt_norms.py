"""Benchmark of the ℓ1/ℓ∞ KKT check without the explicit (P × N) matrix (issue 11).

    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_kkt_norms.py \
        [--sizes 500x300,2000x300,10000x1000] [--norm 1 inf] [--explicit-up-to 3e7] \
        [--time-limit 900]

The instance is bench_kkt's (``make_instance``: a 2-layer ReLU net, d = 784, Gaussian data
labelled by the net, margins uniform in [1, 4], no kink examples), with every example a
candidate (``support_factor=1e9``). For each ``n x width`` and norm it runs ``check_kkt`` by
constraint generation (``max_dense_entries=1``, so the explicit program is never built) and, when
``n · P`` is at most ``--explicit-up-to``, the explicit LP of ``solvers.nets.kkt._lp`` side by
side (the baseline). Each run is in a child process (so its peak RSS is its own) killed after
``--time-limit`` seconds. Prints wall and CPU time, peak RSS, ε/||θ̃||_p, the solver status and
the method text (rounds, coordinates). No assertion on timings (this is not a test).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time


def _run(n, m, norm, route, q):
    import sys
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_kkt import make_instance

    from solvers.nets.kkt import check_kkt

    net, X, y = make_instance(n, 784, m, n_kink_examples=0, seed=0)
    mde = 1 if route == "colgen" else 10**12
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
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    print("| n | width | P | norm | route | wall s | CPU s | peak RSS MB | ε/‖θ̃‖_p | status "
          "| method |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, m = (int(s) for s in size.split("x"))
        P = 784 * m + m
        for norm in args.norm:
            routes = ["colgen"] + (["explicit"] if n * P <= args.explicit_up_to else [])
            for route in routes:
                q = ctx.Queue()
                pr = ctx.Process(target=_run, args=(n, m, norm, route, q))
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
                      f"{r['method'][:160]} |", flush=True)


if __name__ == "__main__":
    main()
