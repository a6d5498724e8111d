"""The full ℓ2 KKT check of Lyu & Li's MNIST CNN, and the cost of its pair Gram (issue 11).

The net is Lyu & Li 2019's architecture ``[Conv 32 5×5 (bias), MaxPool 2, Conv 64 3×3, MaxPool 2,
Linear 1024, Linear 10]`` (1,667,904 parameters) at random initialisation; the labels are its own
predictions (a teacher labelling its inputs), so every example is fitted with a positive margin.
``support_factor`` is set just above ``max q_n / min q_n`` so every example is a candidate, the
worst case for the check. Inputs are 28×28 Gaussian images. (Training a student on these labels
until every example is fitted is not done here: ``train_torch`` is full-batch gradient descent in
float64, and one step on 10,000 such images is one forward and backward pass of the whole set;
hundreds are needed.)

Measured in one run:

- ``check``: :func:`solvers.check_kkt` end to end, stage by stage (``extra['seconds']``: margins,
  natural multipliers, Gram, QP, certification = ε recomputed by a backward pass + Euler's identity
  + the reduced costs of the candidate pairs outside the working set, kinks), with the peak
  resident memory (``ru_maxrss``) reached by the end of each stage;
- ``--previous`` (optional, before the check): the same check with
  ``KKTConfig(working_set_max_rounds=1)``, which is the previous code's behaviour (the working set
  of maximal competitors, the pairs outside priced but never added: ε an upper bound when they
  violate), for the ratio in the same job; the summary gives the working-set rounds and sizes;
- ``--baseline B`` (optional, after the check): per-example gradients by ``torch.func``
  ``vmap(grad)`` on ``B`` pairs, extrapolated linearly to all pairs, and ``J Jᵀ`` at that size,
  extrapolated quadratically (the full Jacobian is ``n × 1.67M`` floats: 124 GiB at n = 10,000),
  against the layer-structured Gram on the same pairs.

Run: ``python tests/benchmarks/bench_torch_kkt.py --n 10000 --previous`` (the issue's size;
``--threads 1`` on a loaded machine). Prints one line per stage and a summary.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time
import warnings

import numpy as np
import torch
from torch import nn

from solvers import check_kkt
from solvers.nets import TorchNet
from solvers.nets.kkt import KKTConfig


def lyu_li_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 1024, bias=False), nn.ReLU(),
        nn.Linear(1024, 10, bias=False))


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class _StageRSS(logging.Handler):
    """Records the peak RSS at the end of each stage of the check (its INFO log lines)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.rss: dict[str, float] = {}

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("torch KKT check: ") and " done " in msg:
            self.rss[msg[len("torch KKT check: "):msg.index(" done ")]] = peak_gib()


def run_check(label, net, X, y, sf, config) -> None:
    handler = _StageRSS()
    log = logging.getLogger("solvers.nets.kkt._torch")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the status is printed below
        rep = check_kkt(net, X, y, support_factor=sf, max_dense_entries=2 * 10**8,
                        config=config)
    wall = time.perf_counter() - t0
    log.removeHandler(handler)
    print(f"[{label}]")
    for stage, sec in rep.extra["seconds"].items():
        print(f"  {stage:20s} {sec:7.1f} s   peak RSS {handler.rss.get(stage, np.nan):.2f} GiB")
    print(f"check: {wall:.1f} s wall, peak RSS {peak_gib():.2f} GiB; {rep.n_candidates} candidate "
          f"pairs, working set {rep.extra['n_working_set']}, rounds "
          f"{rep.extra.get('working_set_rounds')}, sizes {rep.extra.get('working_set_sizes')}")
    print(f"  {rep.method}")
    print(f"  {rep.verdict}")
    print(f"  solver_status {rep.solver_status}, optimality residual "
          f"{rep.optimality_residual:.1e}, Euler residual {rep.euler_residual:.1e}, "
          f"ε/||θ̃|| {rep.epsilon_relative:.6g}, natural {rep.natural_epsilon_relative:.4g}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--baseline", type=int, default=0,
                    help="pairs for the vmap(grad) comparison (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--previous", action="store_true",
                    help="also run with working_set_max_rounds=1 (no pair added), first")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = TorchNet(lyu_li_cnn())
    X = np.random.default_rng(0).normal(size=(args.n, 1, 28, 28))
    y = net.outputs(X).argmax(axis=1)
    q = net.margins(X, y)
    sf = float(q.max() / q.min()) * (1 + 1e-9)
    load = os.getloadavg()[0]
    print(f"P = {net.n_params:,}, n = {args.n}, degree {net.degree}, torch threads "
          f"{args.threads}, load average {load:.1f}; support_factor {sf:.3g} (every example)")

    runs = [("previous (no pair added)", KKTConfig(working_set_max_rounds=1))] \
        if args.previous else []
    runs.append(("working set", None))
    for label, config in runs:
        run_check(label, net, X, y, sf, config)

    if args.baseline:
        rows, classes = net.competitors(X, y)
        b = min(args.baseline, len(rows))
        t0 = time.perf_counter()
        G = net.pair_gram(X, y, rows[:b], classes[:b])
        t_gram = time.perf_counter() - t0
        t0 = time.perf_counter()
        J = net.pair_gradients(X, y, rows[:b], classes[:b], chunk_size=b)
        t_vmap = time.perf_counter() - t0
        t0 = time.perf_counter()
        GJ = J @ J.T
        t_jj = time.perf_counter() - t0
        err = np.abs(GJ - G).max() / np.abs(G).max()
        m = len(rows)
        print(f"vmap(grad): {b} pairs in {t_vmap:.2f} s → {t_vmap * m / b:.1f} s for {m} "
              f"(extrapolated, linear); J Jᵀ at {b}: {t_jj:.3f} s → "
              f"{t_jj * (m / b) ** 2:.1f} s (extrapolated, quadratic); Jacobian memory at {m}: "
              f"{m * net.n_params * 8 / 2**30:.1f} GiB; layer-structured Gram at {b}: "
              f"{t_gram:.2f} s; agreement {err:.1e} (relative, max entry)")


if __name__ == "__main__":
    main()
