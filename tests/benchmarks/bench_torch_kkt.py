"""Cost of the multi-class KKT Gram matrix on Lyu & Li's MNIST CNN (issue 11).

The net is Lyu & Li 2019's architecture ``[Conv 32 5×5 (bias), MaxPool 2, Conv 64 3×3, MaxPool 2,
Linear 1024, Linear 10]`` (1,667,904 parameters) at random initialisation; the labels are its own
predictions (a teacher labelling its inputs), so every example is fitted with a positive margin and
every example is a candidate, the worst case for the check. Inputs are 28×28 Gaussian images.

Measured side by side, in one run:

- ``gram``: :meth:`TorchNet.pair_gram` (layer structure: outer products for the dense layers,
  unfold for the convolutions), for every (example, competitor) pair;
- ``vmap(grad)``: per-example gradients by ``torch.func`` on a subset of ``--baseline`` examples,
  extrapolated linearly to ``n`` (the full Jacobian is ``n × 1.67M`` floats: 133 GB at n = 10,000),
  and the cost of its Gram ``J Jᵀ`` at that subset size, extrapolated quadratically;
- peak resident memory (``ru_maxrss``) of the whole run.

Run: ``python tests/benchmarks/bench_torch_kkt.py --n 2000`` (``--n 10000`` for the issue's size).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from torch import nn

from solvers.nets import TorchNet


def lyu_li_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 1024, bias=False), nn.ReLU(),
        nn.Linear(1024, 10, bias=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--baseline", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = TorchNet(lyu_li_cnn())
    X = np.random.default_rng(0).normal(size=(args.n, 1, 28, 28))
    y = net.outputs(X).argmax(axis=1)
    print(f"P = {net.n_params:,}, n = {args.n}, degree {net.degree}, threads {args.threads}")

    t0 = time.perf_counter()
    rows, classes = net.competitors(X, y)
    q = net.margins(X, y)
    G = net.pair_gram(X, y, rows, classes)
    t_gram = time.perf_counter() - t0
    print(f"gram: {len(rows)} pairs, {t_gram:.1f} s (margins, competitors and Gram); "
          f"min margin {q.min():.3g} > 0")

    b = min(args.baseline, len(rows))
    t0 = time.perf_counter()
    J = net.pair_gradients(X, y, rows[:b], classes[:b], chunk_size=b)
    t_vmap = time.perf_counter() - t0
    t0 = time.perf_counter()
    GJ = J @ J.T
    t_jj = time.perf_counter() - t0
    err = np.abs(GJ - G[:b, :b]).max() / np.abs(G[:b, :b]).max()
    m = len(rows)
    print(f"vmap(grad): {b} pairs in {t_vmap:.2f} s → {t_vmap * m / b:.1f} s for {m} "
          f"(extrapolated, linear); J Jᵀ at {b}: {t_jj:.3f} s → {t_jj * (m / b) ** 2:.1f} s "
          f"(extrapolated, quadratic); Jacobian memory at {m}: "
          f"{m * net.n_params * 8 / 2**30:.1f} GiB")
    print(f"agreement of the two Grams on the subset: {err:.1e} (relative, max entry)")
    print(f"ratio gram / vmap-extrapolated: {t_gram / (t_vmap * m / b):.2f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
