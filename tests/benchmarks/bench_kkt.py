"""Benchmark of solvers.check_kkt at scale, and its QP against scipy.optimize.nnls.

    python tests/benchmarks/bench_kkt.py [--quick] [--support-factor 1e9] [--scale-only]

Baseline side by side: run the same command with ``PYTHONPATH`` pointing at an export of an
older commit (``git archive 7239ee7 | tar -x -C /tmp/kkt_base``), in the same session.

1. Scale: a 2-layer ReLU net, d = 784, width 1000, n = 10,000 (``--quick``: n = 2,000, width 300).
   Data are Gaussian, labelled by the net itself, then each example is rescaled so its margin
   q_i is uniform in [1, q_max] (``--q-max``, default 4; the net is bias-free, so
   f(c x) = c f(x)): about 0.5/(q_max − 1) of the examples are candidates (q_i <= 1.5 q_min).
   Some examples are projected onto a unit's hyperplane so that (example, unit) pairs sit
   exactly at a kink. Reports wall time, peak traced numpy memory
   (tracemalloc) and the process's peak RSS (getrusage; includes the imports and BLAS buffers).
2. Dual solve vs NNLS: at a smaller size (d = 100, width 100, n = 1,000, no kinks) the ε of
   check_kkt with an inactive δ budget equals min_{λ>=0} ||θ̃ − Jᵀλ||, which scipy.optimize.nnls
   solves on the full (n_c, P) candidate Jacobian; both times and both ε are printed.

Prints a table; no assertion on timings (this is not a test).
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
from scipy.optimize import nnls

from solvers.nets import HomogeneousMLP
from solvers.nets.kkt import KKTConfig, check_kkt


def make_instance(n, d, m, *, n_kink_examples, seed, q_range=(1.0, 4.0)):
    rng = np.random.default_rng(seed)
    net = HomogeneousMLP.random([d, m, 1], rng=rng)
    W1 = net.weights[0]
    X = rng.standard_normal((n, d))
    # put n_kink_examples examples exactly on the hyperplane of one unit each
    for i, j in zip(range(n_kink_examples), rng.integers(0, m, n_kink_examples), strict=True):
        w = W1[j]
        X[i] -= (w @ X[i]) / (w @ w) * w
    f = net.forward(X)
    keep = np.abs(f) > 1e-8
    X, f = X[keep], f[keep]
    y = np.sign(f)
    t = rng.uniform(*q_range, size=X.shape[0])
    X *= (t / np.abs(f))[:, None]  # q_i = t_i
    return net, X, y


def measure(fn):
    """``(result, wall s, cpu s, peak traced MiB)``; CPU time (all threads) is the fairer figure
    on shared cores."""
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, dt, dc, peak / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds)")
    ap.add_argument("--q-max", type=float, default=4.0,
                    help="margins uniform in [1, q_max]; the candidate share is 0.5/(q_max - 1) "
                         "(default 4: about 1/6)")
    ap.add_argument("--working-set", choices=["auto", "on", "off"], default="auto",
                    help="check_kkt's working_set (auto: above 500 candidates, abandoned when "
                         "the support exceeds 60%% of them)")
    ap.add_argument("--support-factor", type=float, default=None,
                    help="check_kkt's support_factor (e.g. 1e9: every example a candidate)")
    ap.add_argument("--first-order", choices=["auto", "off"], default="auto",
                    help="off: the interior point on every program (KKTConfig("
                         "first_order_min_variables=10**9)), for a side-by-side baseline")
    ap.add_argument("--dead", type=int, default=0,
                    help="also run the same net with this many dead hidden units appended "
                         "(incoming weights 1e-9 of the layer's, outgoing weights random) and "
                         "compare times")
    ap.add_argument("--dead-out", choices=["random", "zero"], default="random",
                    help="outgoing weights of the dead units: random (their incoming weights "
                         "then have gradients a_j x_i where z > 0: a different program) or zero "
                         "(the same program as without them, up to 1e-9)")
    ap.add_argument("--max-dense", type=float, default=None,
                    help="check_kkt's max_dense_entries (default 6e7; 1.1e8 admits the full "
                         "10,128² Gram matrix, 0.8 GiB)")
    ap.add_argument("--scale-only", action="store_true", help="skip the NNLS comparison")
    ap.add_argument("--gram-only", action="store_true",
                    help="only the layered Gram matrix of a 3-layer net against J Jᵀ from the "
                         "P-wide per-example gradients (n = 600, 784-200-200-1)")
    args = ap.parse_args(argv)
    sf = {} if args.support_factor is None else {"support_factor": args.support_factor}
    if args.max_dense is not None:
        sf["max_dense_entries"] = int(args.max_dense)
    ws = {"auto": None, "on": True, "off": False}[args.working_set]
    if args.gram_only:
        return bench_gram()

    n, d, m = (2000, 784, 300) if args.quick else (10_000, 784, 1000)
    net, X, y = make_instance(n, d, m, n_kink_examples=n // 100, seed=0,
                              q_range=(1.0, args.q_max))
    cfg = KKTConfig() if args.first_order == "auto" else KKTConfig(
        first_order_min_variables=10**9)
    rep, dt, dc, peak = measure(lambda: check_kkt(net, X, y, working_set=ws, config=cfg, **sf))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print("== check_kkt at scale (2-layer ReLU, l2)")
    print(f"{'n':>7} {'d':>5} {'width':>6} {'P':>8} {'cand':>6} {'kinks':>6} {'wall s':>8} "
          f"{'cpu s':>8} "
          f"{'traced MiB':>11} {'peak RSS MiB':>13} {'eps_rel':>10} {'nat eps_rel':>11} status")
    print(f"{X.shape[0]:>7} {d:>5} {m:>6} {net.n_params:>8} {rep.n_candidates:>6} "
          f"{rep.n_kink_pairs:>6} {dt:>8.2f} {dc:>8.2f} {peak:>11.0f} {rss:>13.0f} "
          f"{rep.epsilon_relative:>10.3e} {rep.natural_epsilon_relative:>11.3e} "
          f"{rep.solver_status}")
    print(f"   method: {rep.method}")
    print(f"   support {rep.support.size}; optimality residual {rep.optimality_residual:.2e}; "
          f"working set sizes {rep.extra.get('working_set_sizes')}")
    if args.dead:
        bench_dead(net, X, y, args.dead, ws, cfg, sf, out=args.dead_out,
                   without=(rep, dt, dc, peak))
    if args.scale_only:
        return

    # dual (Gram) solve vs NNLS on the full candidate Jacobian, no kinks, inactive δ budget
    n2, d2, m2 = (500, 50, 50) if args.quick else (1000, 100, 100)
    net2, X2, y2 = make_instance(n2, d2, m2, n_kink_examples=0, seed=1)
    rep2, dt2, dc2, peak2 = measure(lambda: check_kkt(net2, X2, y2, delta_tol=1e6))

    def run_nnls():
        q = y2 * net2.forward(X2)
        tnet = net2.with_flat(net2.flat() / np.sqrt(q.min()))
        cand = q / q.min() <= rep2.support_factor
        J = tnet.per_example_gradients(X2[cand]) * y2[cand, None]
        lam, res = nnls(J.T, tnet.flat(), maxiter=50 * J.shape[0])
        return res / np.linalg.norm(tnet.flat()), int(cand.sum())

    (eps_nnls, nc), dt3, dc3, peak3 = measure(run_nnls)
    print("\n== dual solve (Gram QP) vs scipy.optimize.nnls on the candidate Jacobian")
    print(f"{'method':<28} {'n':>6} {'P':>7} {'cand':>6} {'wall s':>8} {'cpu s':>8} "
          f"{'traced MiB':>11} "
          f"{'eps_rel':>12}")
    print(f"{'check_kkt (Gram QP)':<28} {X2.shape[0]:>6} {net2.n_params:>7} "
          f"{rep2.n_candidates:>6} {dt2:>8.2f} {dc2:>8.2f} {peak2:>11.0f} "
          f"{rep2.epsilon_relative:>12.6e}")
    print(f"{'nnls (full Jacobian)':<28} {X2.shape[0]:>6} {net2.n_params:>7} {nc:>6} "
          f"{dt3:>8.2f} {dc3:>8.2f} {peak3:>11.0f} {eps_nnls:>12.6e}")
    print(f"   |eps difference| / eps = {abs(rep2.epsilon_relative - eps_nnls) / eps_nnls:.2e}")


def bench_dead(net, X, y, n_dead, ws, cfg, sf, seed=3, out="random", without=None):
    """The same net with ``n_dead`` dead hidden units appended (incoming rows 1e-9 of the largest
    row norm, so they are recognised as dead, not exactly zero) against the net without them:
    same data, same margins up to 1e-9 relative; times and ε side by side. ``out``: the dead
    units' outgoing weights, random or zero (see --dead-out). ``without``: the measured run of
    the net without them, ``(report, wall, cpu, traced MiB)``, reused instead of a second run."""
    rng = np.random.default_rng(seed)
    W1, W2 = net.weights
    rows = rng.standard_normal((n_dead, W1.shape[1]))
    rows *= 1e-9 * np.linalg.norm(W1, axis=1).max() / np.linalg.norm(rows, axis=1)[:, None]
    a = (rng.standard_normal((W2.shape[0], n_dead)) if out == "random"
         else np.zeros((W2.shape[0], n_dead)))
    dead = HomogeneousMLP((np.vstack([W1, rows]), np.hstack([W2, a])))
    print(f"\n== dead units: {n_dead} appended to the hidden layer ({out} outgoing weights) vs "
          f"the net without them")
    print(f"{'net':<14} {'P':>8} {'cand':>6} {'kinks':>6} {'dead':>5} {'wall s':>8} {'cpu s':>8} "
          f"{'traced MiB':>11} {'eps_rel':>12} {'support':>8} {'ws sizes':>9} status")
    res = []
    for name, nn in (("without", net), ("with dead", dead)):
        if name == "without" and without is not None:
            rep, dt, dc, peak = without
        else:
            rep, dt, dc, peak = measure(lambda nn=nn: check_kkt(nn, X, y, working_set=ws,
                                                                config=cfg, **sf))
        res.append(dc)
        print(f"{name:<14} {nn.n_params:>8} {rep.n_candidates:>6} {rep.n_kink_pairs:>6} "
              f"{rep.extra['n_dead_units']:>5} {dt:>8.2f} {dc:>8.2f} {peak:>11.0f} "
              f"{rep.epsilon_relative:>12.6e} {rep.support.size:>8} "
              f"{str(rep.extra.get('working_set_sizes', [])[-1:]):>9} {rep.solver_status}")
    print(f"   cpu ratio with/without = {res[1] / res[0]:.2f}")


def bench_gram(n=600, sizes=(784, 200, 200, 1), seed=2):
    """Layered Gram ``Σ_l (D_l D_lᵀ) ∘ (H_{l−1} H_{l−1}ᵀ)`` vs ``J Jᵀ`` with ``J`` the (n, P)
    per-example gradients (the baseline), every example a candidate, same net and data."""
    from solvers.nets.kkt._problem import build_problem

    rng = np.random.default_rng(seed)
    net = HomogeneousMLP.random(list(sizes), rng=rng)
    X = rng.standard_normal((n, sizes[0]))
    f = net.forward(X)
    keep = np.abs(f) > 1e-6 * np.abs(f).max()
    X, y = X[keep], np.sign(f[keep])
    prob = build_problem(net, X, y, p=2.0, loss="logistic", support_factor=1e12, kink_rtol=0.0)
    empty = (np.zeros(0, int),) * 3
    lg, dt1, dc1, pk1 = measure(lambda: prob.layered_gram(prob.slopes, empty))

    def baseline():
        J = prob.net.per_example_gradients(prob.Xc, slopes=prob.slopes, cotangent=prob.U)
        return J @ J.T

    G0, dt2, dc2, pk2 = measure(baseline)
    err = float(np.abs(lg.G - G0).max() / np.abs(G0).max())
    print("== Gram matrix of the candidates' margin gradients (3-layer ReLU, every example)")
    print(f"{'method':<34} {'n_c':>5} {'P':>8} {'wall s':>8} {'cpu s':>8} {'traced MiB':>11}")
    print(f"{'layered Σ_l (DDᵀ)∘(HHᵀ)':<34} {prob.nc:>5} {prob.P:>8} {dt1:>8.2f} {dc1:>8.2f} "
          f"{pk1:>11.0f}")
    print(f"{'J Jᵀ from (n, P) gradients':<34} {prob.nc:>5} {prob.P:>8} {dt2:>8.2f} {dc2:>8.2f} "
          f"{pk2:>11.0f}")
    print(f"   max |G_layered − J Jᵀ| / max |J Jᵀ| = {err:.1e}")


if __name__ == "__main__":
    main()
