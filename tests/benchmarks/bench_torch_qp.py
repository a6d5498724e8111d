"""The torch ℓ2 KKT check's QP stage alone on recorded working-set programs (issue 11).

Record the programs first (one ``qp_<round>.npz`` per round: the pair Gram ``G``, ``b``, the
budget row and budget, the warm start), e.g.
``OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_torch_ws.py --n 2000 --threads 1
--trained /tmp/rs4/instances/cnn_trained_n2000.pt --dump-qp /tmp/qp``, then run
``OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_torch_qp.py /tmp/qp/qp_*.npz``.

Each program is solved by GPCG (:mod:`solvers.nets.kkt._gpcg`, symmetric BLAS products) and by
projected Newton (:mod:`solvers.nets.kkt._active_set`, Cholesky face solves), as
``KKTConfig.explicit_qp`` selects in the check, in one process (so their ratio is measured under
the same load); every result is certified by :func:`cone_optimality` exactly as in the check and
the objectives are compared. Prints CPU and wall seconds, iterations, products, factorisations.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from solvers.nets.kkt._active_set import solve_cone_qp_newton
from solvers.nets.kkt._gpcg import solve_cone_qp_gpcg
from solvers.nets.kkt._qp import ConeStructure, cone_optimality
from solvers.nets.kkt._solve import KKTConfig, _symmetric_product
from solvers.tolerances import TOLERANCES


def run(path: str, methods) -> None:
    d = np.load(path)
    G, b, R = d["G"], d["b"], float(d["R"])
    r, budget, x0 = d["budget_row"], float(d["budget"]), d["x0"]
    N = G.shape[0]
    cone = ConeStructure(N, np.zeros(0, dtype=int), 0.0)
    cs = np.sqrt(np.maximum(np.diag(G), 1e-300))
    tol, max_iter = TOLERANCES.kkt_working_set_rtol, KKTConfig().first_order_max_iter
    for m in methods:
        t0, w0 = time.process_time(), time.perf_counter()
        if m == "gpcg":
            res = solve_cone_qp_gpcg(_symmetric_product(G), np.diag(G), b, cone, col_scale=cs,
                                     obj_scale=R, tol=tol, budget_row=r, budget=budget, x0=x0,
                                     max_iter=max_iter)
            counts = f"{res.matvecs} products"
        else:
            res = solve_cone_qp_newton(G, b, col_scale=cs, obj_scale=R, tol=tol, budget_row=r,
                                       budget=budget, x0=x0, max_iter=max_iter,
                                       matvec=_symmetric_product(G))
            counts = (f"{res.matvecs} products, {res.factorizations} factorisations "
                      f"({res.regularized} regularised)")
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        viol, comp = cone_optimality(G, b, res.nu, cone, cs, R, budget_row=r, budget=budget,
                                     eta=res.eta)
        obj = 0.5 * float(res.nu @ (G @ res.nu)) - float(b @ res.nu)
        cert = "certified" if max(viol, comp) <= TOLERANCES.kkt_optimality_rtol else "NOT certified"
        print(f"{os.path.basename(path)} N = {N} {m:6s}: {cpu:6.1f} s CPU {wall:6.1f} s wall, "
              f"{res.iterations} it., {counts}; {cert} (violation {viol:.1e}, complementarity "
              f"{comp:.1e}), objective {obj:.12e}, η {res.eta:.4g}, support "
              f"{int(np.sum(res.nu > 0))}, δ/budget {float(r @ res.nu) / budget:.4f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("programs", nargs="+", help="qp_<round>.npz from bench_torch_ws.py --dump-qp")
    ap.add_argument("--methods", nargs="+", default=["gpcg", "newton"],
                    choices=["gpcg", "newton"])
    args = ap.parse_args()
    print(f"OPENBLAS_NUM_THREADS {os.environ.get('OPENBLAS_NUM_THREADS')}, load average "
          f"{os.getloadavg()[0]:.1f}")
    for p in args.programs:
        run(p, args.methods)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
