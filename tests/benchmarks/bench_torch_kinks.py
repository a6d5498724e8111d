"""The cost of the Clarke slopes at kinks in the torch ℓ2 KKT check (issue 11; _torch_kinks.py).

Two measurements, each a ratio within one run (the first check of a process also pays torch's
warm-up, so one warm-up check runs before either; every configuration is run ``--repeat`` times
and the minimum is reported):

- **dead units** (issue 11: "a net with dead units costs no more than the same net with those
  units removed, ± 20%"): a bias-free ReLU MLP ``d × m × m × 1`` whose layer-2 units 0–3 have
  incoming weights scaled by 1e-9, every example a candidate, against the same net with those
  units removed; the count of near-kink pairs and the verdict of each are printed (before
  _torch_kinks the dead net reported every example × dead unit as a kink, "undecided");
- **freeing** the slopes: a ReLU MLP ``d × m × 1`` whose hidden units 0 and 1 read only the last
  input coordinate, 0 on half the examples (two exact kinks per such example), every example a
  candidate: the check with the kinks freed against the same check with autograd's slopes
  (``_torch_kinks._MAX_COLUMN_ENTRIES = 0``), with the number of kink columns.

Run: ``python tests/benchmarks/bench_torch_kinks.py`` (``--threads 1`` on a loaded machine).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import torch
from torch import nn

import solvers.nets.kkt._torch_kinks as tk
from solvers import check_kkt


def sequential(Ws) -> nn.Module:
    mods = []
    for i, W in enumerate(Ws):
        lin = nn.Linear(W.shape[1], W.shape[0], bias=False).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
        mods += [lin] + ([nn.ReLU()] if i < len(Ws) - 1 else [])
    return nn.Sequential(*mods)


def timed(Ws, X, y, repeat):
    best, rep = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rep = check_kkt(sequential(Ws), X, y, support_factor=1e6)
        best = min(best, time.perf_counter() - t0)
    return best, rep


def line(label, sec, rep):
    print(f"  {label:22s} {sec:7.2f} s  candidates {rep.n_candidates}, near-kink pairs "
          f"{rep.n_kink_pairs}, freed {rep.extra['clarke_kinks']['n_freed']}, exact "
          f"{rep.exact}, status {rep.status}, ε/||θ̃|| {rep.epsilon_relative:.6g}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--n-dead", type=int, default=400, help="examples, dead-unit net")
    ap.add_argument("--n-free", type=int, default=600, help="examples, kinked net")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    load = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    print(f"torch threads {args.threads}, load average {load:.1f}, best of {args.repeat}")

    # dead units against the same net without them
    n, d, m = args.n_dead, 30, 100
    X = rng.normal(size=(n, d))
    Ws = [rng.normal(size=(m, d)), rng.normal(size=(m, m)), rng.normal(size=(1, m))]
    Ws[1][:4] *= 1e-9
    y = np.sign(sequential(Ws)(torch.from_numpy(X))[:, 0].detach().numpy())
    removed = [Ws[0], Ws[1][4:], Ws[2][:, 4:]]
    timed(removed, X, y, 1)                                      # warm-up
    print(f"[dead units] MLP {d}x{m}x{m}x1, 4 dead units in layer 2, n = {n}")
    t_dead, r_dead = timed(Ws, X, y, args.repeat)
    t_rem, r_rem = timed(removed, X, y, args.repeat)
    line("with dead units", t_dead, r_dead)
    line("units removed", t_rem, r_rem)
    print(f"  ratio dead / removed: {t_dead / t_rem:.2f}")

    # freed slopes against autograd's
    n, d, m = args.n_free, 100, 500
    X = rng.normal(size=(n, d))
    X[: n // 2, -1] = 0.0
    W1 = rng.normal(size=(m, d))
    W1[:2] = 0.0
    W1[0, -1], W1[1, -1] = 1.0, -2.0
    Ws = [W1, rng.normal(size=(1, m))]
    y = np.sign(sequential(Ws)(torch.from_numpy(X))[:, 0].detach().numpy())
    print(f"[freeing] MLP {d}x{m}x1 (P = {d * m + m}), n = {n}, two exact kinks on half the "
          f"examples")
    t_free, r_free = timed(Ws, X, y, args.repeat)
    limit = tk._MAX_COLUMN_ENTRIES
    tk._MAX_COLUMN_ENTRIES = 0
    try:
        t_auto, r_auto = timed(Ws, X, y, args.repeat)
    finally:
        tk._MAX_COLUMN_ENTRIES = limit
    line("slopes freed", t_free, r_free)
    line("autograd's slopes", t_auto, r_auto)
    print(f"  ratio freed / autograd: {t_free / t_auto:.1f} (kinks stage "
          f"{r_free.extra['seconds'].get('kinks', 0.0):.2f} s)")


if __name__ == "__main__":
    main()
