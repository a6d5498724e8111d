"""Benchmark: the generated right-hand side of :func:`theory.codegen.compile_flow` against a
hand-written vectorised numpy right-hand side of the same deep-linear-net gradient flow.

Run from the repository root::

    python tests/benchmarks/bench_codegen.py           # widths 10 and 50, depths 2, 5, 10, 20
    python tests/benchmarks/bench_codegen.py --quick   # fewer repeats

Per call median (``timeit``, best of several batches) on the same state and data, for the squared
(regression, k = width) and logistic (classification, k = 1) losses. Prints the ratio
generated / hand-written and the relative agreement ``||f_gen - f_hand|| / ||f_hand||``.

Targets (issue 3, §4): ratio <= 1.5 and agreement <= 1e-12 for widths 10 and 50, depth 2-20.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import timeit

import numpy as np
import pytest
from scipy.special import expit

from theory.symbolic import compile_flow, deep_linear_net, derive_gradient_flow

N_EXAMPLES = 100
RATIO_TARGET = 1.5
AGREEMENT_TARGET = 1e-12


def hand_rhs(t, y, params, shapes, loss):
    """Hand-written vectorised numpy: W_l' = -(W_L..W_{l+1})^T G (W_{l-1}..W_1)^T."""
    X = params["X"]
    n = X.shape[0]
    Ws, o = [], 0
    for r, c in shapes:
        Ws.append(y[o : o + r * c].reshape(r, c))
        o += r * c
    prefix = [Ws[0]]
    for W in Ws[1:]:
        prefix.append(W @ prefix[-1])
    F = X @ prefix[-1].T
    if loss == "squared":
        G = (F - params["Y"]).T @ X / n
    else:
        lab = params["y"].reshape(-1, 1)
        G = (-lab * expit(-lab * F)).T @ X
    out = np.empty(o)
    L = len(Ws)
    left = G  # (W_L..W_{l+1})^T G, built from the top
    for l in range(L - 1, -1, -1):
        r, c = shapes[l]
        g = left @ prefix[l - 1].T if l > 0 else left
        o -= r * c
        out[o : o + r * c] = -g.ravel()
        left = Ws[l].T @ left
    return out


def _time_pair(f, fargs, g, gargs, repeats):
    """Per-call minimum over interleaved batches (the 2 cores are shared: alternate the two
    candidates so that background load hits both alike)."""
    tf, tg = timeit.Timer(lambda: f(*fargs)), timeit.Timer(lambda: g(*gargs))
    number = max(tf.autorange()[0], tg.autorange()[0])
    best_f = best_g = float("inf")
    for _ in range(repeats):
        best_f = min(best_f, tf.timeit(number) / number)
        best_g = min(best_g, tg.timeit(number) / number)
    return best_f, best_g


def run(widths=(10, 50), depths=(2, 5, 10, 20), losses=("squared", "logistic"), repeats=7):
    rng = np.random.default_rng(0)
    rows = []
    for loss in losses:
        for w in widths:
            for L in depths:
                k = w if loss == "squared" else 1
                m = deep_linear_net([w] * L + [k])
                cf = compile_flow(derive_gradient_flow(m, loss), jacobian=False)
                X = rng.standard_normal((N_EXAMPLES, w))
                if loss == "squared":
                    params = {"X": X, "Y": rng.standard_normal((N_EXAMPLES, k))}
                else:
                    params = {"X": X, "y": rng.choice([-1.0, 1.0], size=N_EXAMPLES)}
                f = cf.bind(**params)
                # near-orthogonal layers keep the product O(1) at depth 20
                y = np.concatenate(
                    [np.linalg.qr(rng.standard_normal((max(s), max(s))))[0][: s[0], : s[1]].ravel()
                     for s in cf.blocks.values()]
                )
                shapes = list(cf.blocks.values())
                ref = hand_rhs(0.0, y, f.params, shapes, loss)
                got = f(0.0, y)
                agree = np.linalg.norm(got - ref) / np.linalg.norm(ref)
                t_gen, t_hand = _time_pair(cf.rhs, (0.0, y, f.params),
                                           hand_rhs, (0.0, y, f.params, shapes, loss), repeats)
                rows.append((loss, w, L, t_gen, t_hand, t_gen / t_hand, agree))
    return rows


def print_table(rows):
    print(f"# bench_codegen  {datetime.datetime.now():%Y-%m-%d %H:%M}  {platform.processor()}  "
          f"n = {N_EXAMPLES}  numpy {np.__version__}")
    print(f"{'loss':9s} {'width':>5s} {'depth':>5s} {'generated µs':>13s} {'hand µs':>9s} "
          f"{'ratio':>6s} {'rel. agreement':>15s}")
    for loss, w, L, tg, th, r, a in rows:
        print(f"{loss:9s} {w:5d} {L:5d} {tg * 1e6:13.1f} {th * 1e6:9.1f} {r:6.2f} {a:15.2e}")
    worst = max(r[5] for r in rows)
    worst_a = max(r[6] for r in rows)
    print(f"worst ratio {worst:.2f} (target <= {RATIO_TARGET}), worst agreement {worst_a:.1e} "
          f"(target <= {AGREEMENT_TARGET:.0e})")
    return worst, worst_a


@pytest.mark.benchmark
def test_codegen_benchmark():
    worst, worst_a = print_table(run(repeats=5))
    assert worst_a <= AGREEMENT_TARGET
    assert worst <= RATIO_TARGET


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    args = ap.parse_args()
    print_table(run(repeats=3 if args.quick else 7))
