"""The torch ℓ2 KKT check's example-level working set on Lyu & Li's MNIST CNN (issue 11).

The check (:func:`solvers.check_kkt`, every example a candidate: ``support_factor`` just above
``max q_n / min q_n``) is run stage by stage (``extra['seconds']``: margins, natural
multipliers, Gram, QP, certification = ε recomputed by a backward pass, the reduced costs of the
candidate pairs outside the working set by a forward-mode pass and Euler's identity, kinks) with
the peak resident memory (``ru_maxrss``) at the end of each stage, for one or more sizes of the
first working set (``KKTConfig.working_set_initial``), in one process (so their ratios are
measured under the same load).

Instances:

- default: the architecture ``[Conv 32 5×5 (bias), MaxPool 2, Conv 64 3×3, MaxPool 2,
  Linear 1024, Linear 10]`` (1,667,904 parameters) at random initialisation (seed 0) labelling
  its own ``n`` Gaussian 28×28 inputs (the instance of ``bench_torch_kkt.py``);
- ``--trained S.pt``: the trained instance of ``bench_torch_kkt.py`` (``--export``; e.g.
  ``/tmp/rs4/instances/cnn_trained_n10000.pt``): its state dict, with ``X`` and ``y`` rebuilt by
  that file's ``gaussian_images(n, 0)`` and ``teacher_labels(X, 1, 0)``;
- ``--data D.npz --state S.pt``: any trained instance, ``X`` and ``y`` (class indices) from
  ``D.npz`` and the state dict of the same architecture from ``S.pt`` (``--n`` then takes the
  first ``n`` examples; every one must be fitted).

Run: ``OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_torch_ws.py --n 10000 --threads 1
--trained /tmp/rs4/instances/cnn_trained_n10000.pt`` (without ``--trained``: the random
instance; add ``--initial 500 1000 2000`` to compare first sizes). Prints one line per stage and
a summary per run.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from bench_torch_kkt import gaussian_images, lyu_li_cnn, run_check, teacher_labels

from solvers.nets import TorchNet
from solvers.nets.kkt import KKTConfig


def _dump_programs(folder: str) -> None:
    """Wrap the check's QP stage so that each call first saves its program."""
    from solvers.nets.kkt import _torch

    os.makedirs(folder, exist_ok=True)
    solve, count = _torch._solve_qp, [0]

    def dumping(G, b, nc, R, budget_row, budget, x0, cfg, **kw):
        count[0] += 1
        np.savez(os.path.join(folder, f"qp_{count[0]}.npz"),
                 G=G if isinstance(G, np.ndarray) else G.dense(), b=b, R=R,
                 budget_row=budget_row, budget=budget, x0=x0)
        return solve(G, b, nc, R, budget_row, budget, x0, cfg, **kw)
    _torch._solve_qp = dumping


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--initial", type=int, nargs="+", default=[KKTConfig().working_set_initial],
                    help="KKTConfig.working_set_initial values, one run each")
    ap.add_argument("--max-rounds", type=int, default=KKTConfig().working_set_max_rounds,
                    help="KKTConfig.working_set_max_rounds (1: the passes over n without the "
                         "rounds that grow the working set)")
    ap.add_argument("--data", help="npz with X (n, 1, 28, 28) and y (class indices)")
    ap.add_argument("--state", help="state dict of the architecture (with --data)")
    ap.add_argument("--trained", help="state dict exported by bench_torch_kkt.py --export")
    ap.add_argument("--qp", nargs="+", default=[KKTConfig().explicit_qp],
                    choices=["newton", "gpcg"], help="KKTConfig.explicit_qp values, one run each")
    ap.add_argument("--dump-qp", metavar="DIR",
                    help="save each round's working-set QP (G, b, budget row, budget, warm start) "
                         "to DIR/qp_<round>.npz, for bench_torch_qp.py")
    args = ap.parse_args()
    if args.dump_qp:
        _dump_programs(args.dump_qp)
    torch.set_num_threads(args.threads)
    if args.trained:
        X = gaussian_images(args.n, 0)
        y = teacher_labels(X, 1, 0)
        module = lyu_li_cnn().double()
        module.load_state_dict(torch.load(args.trained, map_location="cpu", weights_only=True))
        net, what = TorchNet(module), f"trained ({args.trained})"
    elif args.data:
        d = np.load(args.data)
        X, y = np.asarray(d["X"][:args.n], dtype=np.float64), np.asarray(d["y"][:args.n])
        module = lyu_li_cnn().double()          # the saved parameters' precision is kept
        module.load_state_dict(torch.load(args.state, map_location="cpu", weights_only=True))
        net, what = TorchNet(module), f"trained ({args.data})"
    else:
        net = TorchNet(lyu_li_cnn())
        X = np.random.default_rng(0).normal(size=(args.n, 1, 28, 28))
        y = net.outputs(X).argmax(axis=1)
        what = "random, self-labelled"
    q = net.margins(X, y)
    sf = float(q.max() / q.min()) * (1 + 1e-9)
    print(f"{what}: P = {net.n_params:,}, n = {len(y)}, degree {net.degree}, torch threads "
          f"{args.threads}, OPENBLAS_NUM_THREADS {os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"load average {os.getloadavg()[0]:.1f}; support_factor {sf:.3g} (every example)")
    for qp in args.qp:
        for k in args.initial:
            run_check(f"working_set_initial={k}, explicit_qp={qp}", net, X, y, sf,
                      KKTConfig(working_set_initial=k, working_set_max_rounds=args.max_rounds,
                                explicit_qp=qp))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
