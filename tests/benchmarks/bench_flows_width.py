"""Flows at width (issue 9.3): integrators on the generated deep-linear flow of ``marginflow
derive`` (widths w^6, squared loss, t = 200, rtol 1e-10, atol 1e-12, the settings of
theory/reports/_derivation.py), side by side.

Each case runs in its own interpreter so that its peak RSS is its own. Methods: ``LSODA`` (with
the dense generated Jacobian), ``DOP853``, ``BDF-Krylov``, ``BDF-Krylov+GN`` (preconditioned by
``solvers.flows.layerwise_gauss_newton``), ``auto``. Inits: ``orthogonal`` (the derive report's
``initial_state``: layers σ·Q, σ = 1) or ``gauss`` (the old 0.3 x N(0, 1) entries, seed 1).

    # DENSE_JACOBIAN_LIMIT: LSODA vs DOP853 vs BDF-Krylov at P = 125 ... 2000
    python tests/benchmarks/bench_flows_width.py --limit
    # the issue's instance (50^6), all methods
    python tests/benchmarks/bench_flows_width.py 50
    # the stiff old init on a short span
    python tests/benchmarks/bench_flows_width.py 50 --init gauss \\
        --methods BDF-Krylov,BDF-Krylov+GN --t-end 0.5 --timeout 600

Set OPENBLAS_NUM_THREADS=1 on a shared machine (passed on to each case): with threaded BLAS on
2 oversubscribed cores the small dot products of GMRES were measured ~50x slower (2026-11-29).
Each row reports wall and CPU seconds; under load, compare CPU seconds and ratios in one run.
Results (with the date and the machine load) go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("LSODA", "DOP853", "BDF-Krylov", "BDF-Krylov+GN", "auto")
#: --limit: widths w^6 with P = 5 w^2 = 125, 245, 500, 980, 2000 around DENSE_JACOBIAN_LIMIT.
LIMIT_WIDTHS = (5, 7, 10, 14, 20)

CASE = r"""
import json, resource, sys, time
import numpy as np
from theory import compile_flow, derive_gradient_flow, get_loss
from theory.reports._derivation import (ODE_ATOL, ODE_MAX_STEPS, ODE_RTOL, DerivationSpec, _data,
                                        build_model, initial_state)
from solvers.flows import integrate, layerwise_gauss_newton

width, method, init, t_end = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
spec = DerivationSpec(model="deep-linear", widths=(width,) * 6)
model = build_model(spec)
flow = derive_gradient_flow(model, get_loss("squared"))
data = _data(spec, model, np.random.default_rng(0))
bound = compile_flow(flow).bind(**data)
if init == "gauss":
    y0 = 0.3 * np.random.default_rng(1).standard_normal(flow.size)
else:
    y0 = initial_state(spec, flow, data, np.random.default_rng(1))[0]
pre = layerwise_gauss_newton(data["X"], spec.widths) if method == "BDF-Krylov+GN" else None
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu0, start = time.process_time(), time.perf_counter()
traj = integrate(bound, y0, (0.0, t_end), method=method.replace("+GN", ""), rtol=ODE_RTOL,
                 atol=ODE_ATOL, t_eval=np.linspace(0.0, t_end, 401), jac=bound.jac,
                 throw=False, max_steps=ODE_MAX_STEPS, preconditioner=pre)
wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
E = traj.states[-1]
ref = np.linalg.lstsq(data["X"], data["Y"], rcond=None)[0].T
Ws = flow.unpack(E)
P = np.eye(width)
for k in sorted(Ws, key=lambda k: int(k[1:])):
    P = Ws[k] @ P
print(json.dumps({"widths": f"{width}^6", "P": flow.size, "init": init, "requested": method,
                  "used": traj.method, "status": traj.status, "t_reached": traj.times[-1],
                  "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "steps": traj.n_steps,
                  "nfev": traj.nfev,
                  "rss_growth_MiB": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                           - before) / 1024),
                  "final_grad_norm": float(np.linalg.norm(bound(0.0, E))),
                  "limit_rel_err": float(np.linalg.norm(P - ref) / np.linalg.norm(ref))}))
"""


def run(width: int, method: str, init: str, t_end: float, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    head = {"widths": f"{width}^6", "init": init, "requested": method}
    try:
        out = subprocess.run([sys.executable, "-c", CASE, str(width), method, init, str(t_end)],
                             capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**head, "status": f"timed out ({timeout:g} s)"}
    if out.returncode:
        return {**head, "status": "crashed", "error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("widths", nargs="*", type=int, help="widths w (instance w^6); default 5 10 50")
    ap.add_argument("--limit", action="store_true",
                    help=f"widths {LIMIT_WIDTHS} with LSODA, DOP853, BDF-Krylov "
                         "(re-measures DENSE_JACOBIAN_LIMIT)")
    ap.add_argument("--methods", default=None, help=f"comma-separated, from {METHODS}")
    ap.add_argument("--init", choices=("orthogonal", "gauss"), default="orthogonal")
    ap.add_argument("--t-end", type=float, default=200.0)
    ap.add_argument("--timeout", type=float, default=600.0, help="per case, seconds")
    args = ap.parse_args()
    widths = list(LIMIT_WIDTHS) if args.limit else (args.widths or [5, 10, 50])
    default = ("LSODA", "DOP853", "BDF-Krylov") if args.limit else METHODS
    methods = tuple(args.methods.split(",")) if args.methods else default
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"--methods: unknown {bad}; choose from {METHODS}")
    print(f"load average at start: {os.getloadavg()}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}", flush=True)
    for width in widths:
        for method in methods:
            if method == "LSODA" and 5 * width * width > 5000:
                continue                                  # a dense P x P Jacobian: > 200 MiB
            print(json.dumps(run(width, method, args.init, args.t_end, args.timeout)), flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
