"""Flows at width (issue 9.3): the integrator that ``integrate(method='auto')`` picks for the
generated deep-linear flow of ``marginflow derive`` (squared loss, t = 200, rtol 1e-10,
atol 1e-12, 0.3 x Gaussian init; the same settings as theory/reports/_derivation.py), side by
side with LSODA + the dense generated Jacobian (today's choice) and DOP853.

Each case runs in its own interpreter so that its peak RSS is its own. Plain script:

    python tests/benchmarks/bench_flows_width.py            # widths 5, 10 (all methods), 50 (auto)
    python tests/benchmarks/bench_flows_width.py 20         # one width, all methods
    python tests/benchmarks/bench_flows_width.py 50 BDF-Krylov 600   # one width, one method,
                                                            # per-case time-out in seconds

Under load on a shared machine set OPENBLAS_NUM_THREADS=1 (passed on to each case): with
threaded BLAS on 2 oversubscribed cores, the small dot products of GMRES were measured ~50x
slower (2026-11-29).

Results (with the date and the machine load) go to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CASE = r"""
import json, resource, sys, time
import numpy as np
from theory import compile_flow, derive_gradient_flow, get_loss
from theory.reports._derivation import ODE_ATOL, ODE_RTOL, DerivationSpec, _data, build_model
from solvers.flows import integrate

width, method = int(sys.argv[1]), sys.argv[2]
spec = DerivationSpec(model="deep-linear", widths=(width,) * 6)
model = build_model(spec)
flow = derive_gradient_flow(model, get_loss("squared"))
bound = compile_flow(flow).bind(**_data(spec, model, np.random.default_rng(0)))
y0 = 0.3 * np.random.default_rng(1).standard_normal(flow.size)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
traj = integrate(bound, y0, (0.0, 200.0), method=method, rtol=ODE_RTOL, atol=ODE_ATOL,
                 t_eval=np.linspace(0.0, 200.0, 401), jac=bound.jac, throw=False)
wall = time.perf_counter() - start
grad = float(np.linalg.norm(bound(0.0, traj.states[-1])))
print(json.dumps({"widths": f"{width}^6", "P": flow.size, "requested": method,
                  "used": traj.method, "status": traj.status, "t_reached": traj.times[-1],
                  "wall_s": round(wall, 1), "steps": traj.n_steps, "nfev": traj.nfev,
                  "rss_growth_MiB": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                           - before) / 1024),
                  "final_grad_norm": grad}))
"""


def run(width: int, method: str, timeout: float = 3600.0) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        out = subprocess.run([sys.executable, "-c", CASE, str(width), method],
                             capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"widths": f"{width}^6", "requested": method, "status": f"timed out ({timeout:g} s)"}
    if out.returncode:
        return {"widths": f"{width}^6", "requested": method, "status": "crashed",
                "error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    methods = ("LSODA", "DOP853", "BDF-Krylov")
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 3600.0
    if len(sys.argv) > 2:
        cases = [(int(sys.argv[1]), sys.argv[2])]
    elif len(sys.argv) > 1:
        cases = [(int(sys.argv[1]), m) for m in methods]
    else:
        cases = [(w, m) for w in (5, 10) for m in methods] + [(50, "auto")]
    print(f"load average at start: {os.getloadavg()}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    for width, method in cases:
        print(json.dumps(run(width, method, timeout)), flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
