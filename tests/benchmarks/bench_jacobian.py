"""Benchmark: per-example Jacobians of homogeneous MLPs (issue 4, §5).

Compares, on the CPU and in float64, for bias-free ReLU nets of 2 and 3 layers:

- ``numpy``: :meth:`solvers.HomogeneousMLP.per_example_gradients` (one vectorised backward
  pass, blocks written straight into the ``(n, P)`` output);
- ``torch.func``: ``vmap(jacrev(f))`` over examples (PyTorch's recommended per-example gradients);
- ``loop``: one backward pass per example (numpy, ``n`` calls on single rows), timed on the first
  ``min(n, 200)`` examples and extrapolated linearly to ``n`` (marked ``*``).

Also the matrix-free products ``Jᵀu`` (``vjp``) and ``Jv`` (``jvp``) against forming ``J`` first.
Every timed Jacobian is checked against torch's (max relative difference printed), so the table
compares equal work. Times are the best of ``--repeat`` runs. Threads are pinned (default 1 for
both numpy's BLAS and torch) so that the ratio compares implementations, not thread counts.

Usage::

    python tests/benchmarks/bench_jacobian.py [--quick] [--threads N] [--repeat R]

Target (issue 4): numpy within 1.5× of torch.func.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (a few seconds)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:  # must happen before numpy / torch load their thread pools
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from solvers.nets import HomogeneousMLP  # noqa: E402

D_IN = 32
FULL = [  # (L, n, width)
    (2, 1000, 100), (2, 5000, 100), (2, 1000, 1000), (2, 5000, 1000),
    (3, 1000, 100), (3, 5000, 100), (3, 1000, 300),
]
QUICK = [(2, 1000, 100), (2, 1000, 1000), (3, 1000, 100)]
LOOP_EXAMPLES = 200


def _best(repeat, fn, *args, **kwargs):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best, out


def _loop(net, X):
    """One backward pass per example (the baseline the vectorised pass replaces)."""
    return [net.per_example_gradients(X[i:i + 1]) for i in range(X.shape[0])]


def _torch_model(net, torch):
    layers = []
    for l, W in enumerate(net.weights):
        lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W.copy()))
        layers.append(lin)
        if l < net.degree - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _torch_func_jacobian(model, Xt, torch):
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, x):
        return functional_call(model, p, (x[None, :],))[0, 0]

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, Xt)
    return torch.cat([jac[k].reshape(Xt.shape[0], -1) for k in params], dim=1)


def run(configs, repeat, threads):
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    header = (f"{'L':>2} {'n':>6} {'width':>6} {'P':>9} {'J MiB':>7} | {'numpy s':>8} "
              f"{'torch.func s':>12} {'loop s':>9} | {'np/torch':>8} {'loop/np':>8} | "
              f"{'vjp s':>8} {'jvp s':>8} {'J·v s':>8} | {'max rel diff':>12}")
    print(f"per-example Jacobian, float64, CPU, d_0 = {D_IN}, threads = {threads}, "
          f"best of {repeat}; numpy {np.__version__}, torch {torch.__version__}")
    print(header)
    print("-" * len(header))
    rows = []
    for L, n, width in configs:
        sizes = (D_IN,) + (width,) * (L - 1) + (1,)
        net = HomogeneousMLP.random(sizes, rng=rng)
        X = rng.standard_normal((n, D_IN))
        P = net.n_params
        out = np.empty((n, P))
        t_np, J = _best(repeat, net.per_example_gradients, X, out=out)
        model = _torch_model(net, torch)
        Xt = torch.as_tensor(X)
        _torch_func_jacobian(model, Xt[:8], torch)  # warm-up (tracing, allocator)
        t_tf, Jt = _best(repeat, _torch_func_jacobian, model, Xt, torch)
        Jt = Jt.numpy()
        diff = float(np.abs(J - Jt).max() / max(np.abs(Jt).max(), 1e-300))
        del Jt
        m = min(n, LOOP_EXAMPLES)
        t_loop_m, _ = _best(1, _loop, net, X[:m])
        t_loop = t_loop_m * n / m
        u, v = rng.standard_normal(n), rng.standard_normal(P)
        t_vjp, _ = _best(repeat, net.vjp, X, u)
        t_jvp, _ = _best(repeat, net.jvp, X, v)
        t_Jv, _ = _best(repeat, np.dot, J, v)
        star = "*" if m < n else " "
        row = (f"{L:>2} {n:>6} {width:>6} {P:>9} {n * P * 8 / 2**20:>7.0f} | {t_np:>8.3f} "
               f"{t_tf:>12.3f} {t_loop:>8.2f}{star} | {t_np / t_tf:>8.2f} {t_loop / t_np:>8.1f} | "
               f"{t_vjp:>8.4f} {t_jvp:>8.4f} {t_Jv:>8.4f} | {diff:>12.1e}")
        print(row, flush=True)
        rows.append(dict(L=L, n=n, width=width, P=P, numpy=t_np, torch_func=t_tf, loop=t_loop,
                         ratio=t_np / t_tf, max_rel_diff=diff))
        del J, out
    worst = max(r["ratio"] for r in rows)
    print(f"\nworst numpy/torch.func ratio: {worst:.2f} (target <= 1.5); "
          f"* = loop timed on {LOOP_EXAMPLES} examples and extrapolated to n")
    return rows


if __name__ == "__main__":
    run(QUICK if ARGS.quick else FULL, ARGS.repeat, ARGS.threads)
