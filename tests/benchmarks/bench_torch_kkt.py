"""The full ℓ2 KKT check of Lyu & Li's MNIST CNN, and the cost of its pair Gram (issue 11).

The net is Lyu & Li 2019's architecture ``[Conv 32 5×5 (bias), MaxPool 2, Conv 64 3×3, MaxPool 2,
Linear 1024, Linear 10]`` (1,667,904 parameters). Two instances (``--instance``):

- ``trained`` (the default; the issue's instance): inputs are ``n`` i.i.d. standard Gaussian
  28×28 images (``numpy.random.default_rng(data_seed).normal(size=(n, 1, 28, 28))``, not
  smoothed); labels come from a random *teacher* ``lyu_li_cnn(teacher)`` in float64, as
  ``argmax_j (f_j(x) − μ_j) / σ_j`` with ``μ, σ`` the per-class mean and standard deviation of
  the teacher's outputs on 2,000 calibration images (``default_rng(data_seed + 1)``; without this
  standardisation 92% of the labels fall in two classes). A *student* ``lyu_li_cnn(student)`` is
  trained by :func:`solvers.nets.fit_torch` (Adam, lr 1e-3, batches of 128, float32) until every
  example is fitted (checked in float64), then ``--rollback-steps`` (default 0) float64
  full-batch steps of Lyu & Li's loss-based schedule with roll-back (``lr`` 1e-5 on the summed
  cross-entropy: no step was rolled back at n = 2,000; each step is a float64 pass over the set,
  ~30 s at n = 2,000 on a loaded machine). The trained state dict is cached in
  ``~/.cache/marginflow/bench/`` (``torch.save``; loaded with ``weights_only=True``), keyed by
  ``n``, the seeds and a hash of the recipe, with a JSON of the training figures beside it; the
  class histogram and training times are printed. The two phases are cached separately
  (:func:`trained_instance`), so ``--rollback-steps`` can change without retraining.
- ``random``: the teacher itself at random initialisation, labelled by its own predictions (so
  every example is fitted with a positive margin), on the same Gaussian images.

``support_factor`` is set just above ``max q_n / min q_n`` so every example is a candidate, the
worst case for the check.

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

Run: ``OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_torch_kkt.py --n 10000 --threads 1``
(the issue's instance and size; ``--train-only`` builds and caches the trained instance without
checking it, ``--export DIR`` copies the state dict and a README of the recipe to ``DIR``).
Prints one line per stage and a summary.

Figures (docs/benchmarks.md, "The trained Lyu & Li MNIST-CNN instance"): under load, the student
fits n = 2,000 in 36 epochs and n = 10,000 in 47 (≈ 1 and ≈ 7 minutes on a quiet machine); the
current ℓ2 check on the trained instance needs ≥ 4 working-set rounds at n = 2,000 (> 7 min of
CPU) and was stopped after 15 min at n = 10,000, in its first QP.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pathlib
import resource
import shutil
import time
import warnings

import numpy as np
import torch
from torch import nn

from solvers import check_kkt
from solvers.nets import TorchNet, fit_torch, train_torch
from solvers.nets.kkt import KKTConfig


def lyu_li_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 1024, bias=False), nn.ReLU(),
        nn.Linear(1024, 10, bias=False))


#: The training recipe of the ``trained`` instance; its hash keys the cache (bump on change).
RECIPE = {"version": 1, "inputs": "gaussian 28x28, unsmoothed", "calibration": 2000,
          "labels": "argmax standardised teacher outputs", "optimizer": "adam", "lr": 1e-3,
          "batch_size": 128, "dtype": "float32", "max_epochs": 200, "rollback_lr": 1e-5,
          "rollback_loss": "cross_entropy"}
CACHE = pathlib.Path.home() / ".cache" / "marginflow" / "bench"


def gaussian_images(n: int, data_seed: int) -> np.ndarray:
    """``n`` i.i.d. standard Gaussian 28×28 images, shape ``(n, 1, 28, 28)``."""
    return np.random.default_rng(data_seed).normal(size=(n, 1, 28, 28))


def teacher_labels(X: np.ndarray, teacher: int, data_seed: int) -> np.ndarray:
    """Class indices ``argmax_j (f_j(x) − μ_j)/σ_j`` of the random teacher ``lyu_li_cnn(teacher)``,
    ``μ, σ`` from its outputs on ``RECIPE['calibration']`` images of seed ``data_seed + 1``."""
    t = TorchNet(lyu_li_cnn(teacher))
    F_cal = t.outputs(np.random.default_rng(data_seed + 1).normal(
        size=(RECIPE["calibration"], 1, 28, 28)))
    mu, sd = F_cal.mean(axis=0), F_cal.std(axis=0)
    return ((t.outputs(X) - mu) / sd).argmax(axis=1)


def _cache_path(n, data_seed, teacher, student, rollback_steps) -> pathlib.Path:
    key = json.dumps({**RECIPE, "rollback_steps": rollback_steps}, sort_keys=True)
    h = hashlib.sha1(key.encode()).hexdigest()[:10]
    return CACHE / f"lyu_li_cnn_n{n}_data{data_seed}_teacher{teacher}_student{student}_{h}.pt"


def _rollback_info(rb):
    return None if rb is None else {
        "accepted": int(rb.steps[-1]), "rolled_back": rb.rollbacks,
        "log_loss": [float(rb.log_loss[0]), float(rb.log_loss[-1])],
        "normalized_margin": [float(rb.normalized_margin[0]), float(rb.normalized_margin[-1])],
        "lr": [float(rb.lr[0]), float(rb.lr[-1])], "notes": list(rb.notes)}


def trained_instance(n: int, *, data_seed: int = 0, teacher: int = 1, student: int = 2,
                     rollback_steps: int = 0):
    """The ``trained`` instance: ``(net, X, y, info)``, the student trained (or loaded from the
    cache) on the teacher's labels; ``info`` holds the training figures (JSON-able).

    Two cached stages: the minibatch phase (``fit_torch(..., rollback_steps=0)``, cached as the
    ``rollback_steps=0`` instance), then the float64 roll-back phase on it, the same
    :func:`solvers.nets.train_torch` call that ``fit_torch(..., rollback_steps=k)`` makes, so a
    change of ``--rollback-steps`` does not retrain the minibatch phase."""
    X = gaussian_images(n, data_seed)
    y = teacher_labels(X, teacher, data_seed)
    path = _cache_path(n, data_seed, teacher, student, rollback_steps)
    module = lyu_li_cnn(student).double()
    if path.exists():
        module.load_state_dict(torch.load(path, weights_only=True))
        info = json.loads(path.with_suffix(".json").read_text())
        info["cache"] = f"loaded {path}"
        return TorchNet(module), X, y, info
    info = {"n": n, "data_seed": data_seed, "teacher": teacher, "student": student,
            "recipe": {**RECIPE, "rollback_steps": rollback_steps},
            "class_histogram": np.bincount(y, minlength=10).tolist(),
            "threads": torch.get_num_threads(), "load_average": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rollback": None}
    if rollback_steps == 0:
        run = fit_torch(lyu_li_cnn(student), X, y, batch_size=RECIPE["batch_size"],
                        optimizer=RECIPE["optimizer"], lr=RECIPE["lr"],
                        max_epochs=RECIPE["max_epochs"], dtype=RECIPE["dtype"], seed=0)
        if run.status != "fitted":
            raise SystemExit(f"training did not fit every example: {run.notes}")
        net = run.net
        info.update(epochs=run.epochs, seconds=run.seconds,
                    epoch_fitted=run.epoch_fitted.tolist())
    else:
        fitted, _, _, info0 = trained_instance(n, data_seed=data_seed, teacher=teacher,
                                               student=student, rollback_steps=0)
        t0 = time.perf_counter()
        rb = train_torch(fitted.module, X, y, loss=RECIPE["rollback_loss"],
                         steps=rollback_steps, lr=RECIPE["rollback_lr"], chunk_size=1024,
                         record_every=max(1, rollback_steps // 20))
        if rb.status != "fitted":
            raise SystemExit(f"the roll-back phase lost the fit: {rb.notes}")
        net = rb.net
        info.update(epochs=info0["epochs"], epoch_fitted=info0["epoch_fitted"],
                    seconds={**info0["seconds"], "rollback": time.perf_counter() - t0},
                    rollback=_rollback_info(rb))
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(net.module.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps(info, indent=1))
    info["cache"] = f"saved {path}"
    return net, X, y, info


def export_instance(net, info, directory) -> None:
    """Copy the cached state dict, its JSON and a README of the recipe to ``directory``."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = _cache_path(info["n"], info["data_seed"], info["teacher"], info["student"],
                       info["recipe"]["rollback_steps"])
    name = f"cnn_trained_n{info['n']}"
    shutil.copy(path, d / f"{name}.pt")
    shutil.copy(path.with_suffix(".json"), d / f"{name}.json")
    (d / "README.txt").write_text(
        "Trained Lyu & Li MNIST-CNN instances (issue 11), written by\n"
        "tests/benchmarks/bench_torch_kkt.py --export (branch cnninst).\n"
        "Rebuild X, y and the net:\n\n"
        "    import sys, torch; sys.path.insert(0, 'tests/benchmarks')\n"
        "    from bench_torch_kkt import lyu_li_cnn, gaussian_images, teacher_labels\n"
        "    from solvers.nets import TorchNet\n"
        "    X = gaussian_images(n, 0)            # default_rng(0).normal(size=(n, 1, 28, 28))\n"
        "    y = teacher_labels(X, 1, 0)          # teacher lyu_li_cnn(1), standardised argmax\n"
        "    m = lyu_li_cnn(2).double()\n"
        "    m.load_state_dict(torch.load('cnn_trained_nN.pt', weights_only=True))\n"
        "    net = TorchNet(m)                    # every q_n > 0 (checked in float64)\n\n"
        "teacher_labels: mu, sd = per-class mean/std of teacher outputs on 2000 images of\n"
        "default_rng(1).normal(size=(2000, 1, 28, 28)); y = argmax((f(X) - mu) / sd).\n"
        "The .json beside each .pt has the recipe, class histogram and training figures.\n"
        f"Check it: OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_torch_kkt.py --n N "
        f"--threads 1 --rollback-steps R\n(R from the .json's recipe; it loads "
        f"~/.cache/marginflow/bench/{path.name.replace(str(info['n']), 'N', 1)}\n"
        f"with N, R filled in (hash = the recipe's), or retrains).\n")
    print(f"exported {name}.pt, {name}.json, README.txt to {d}")


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


def run_check(label, net, X, y, sf, config):
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
          f"{rep.extra.get('working_set_rounds')}, sizes {rep.extra.get('working_set_sizes')}, "
          f"support {rep.support.size} examples "
          f"({len(rep.extra.get('support_pairs', []))} pairs)")
    print(f"  {rep.method}")
    print(f"  {rep.verdict}")
    print(f"  solver_status {rep.solver_status}, optimality residual "
          f"{rep.optimality_residual:.1e}, Euler residual {rep.euler_residual:.1e}, "
          f"ε/||θ̃|| {rep.epsilon_relative:.8g}, natural {rep.natural_epsilon_relative:.4g}",
          flush=True)
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--instance", choices=("trained", "random"), default="trained")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--teacher", type=int, default=1)
    ap.add_argument("--student", type=int, default=2)
    ap.add_argument("--rollback-steps", type=int, default=0,
                    help="float64 roll-back steps after the data are fitted (trained instance; "
                         "default 0: the net as soon as every example is fitted)")
    ap.add_argument("--train-only", action="store_true",
                    help="build (or load) the trained instance and stop")
    ap.add_argument("--export", default=None, help="copy the trained instance to this folder")
    ap.add_argument("--baseline", type=int, default=0,
                    help="pairs for the vmap(grad) comparison (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--previous", action="store_true",
                    help="also run with working_set_max_rounds=1 (no pair added), first")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("solvers.nets._torch_training").setLevel(logging.INFO)
    load = os.getloadavg()[0]
    if args.instance == "random":
        net = TorchNet(lyu_li_cnn())
        X = gaussian_images(args.n, args.data_seed)
        y = net.outputs(X).argmax(axis=1)
    else:
        t0 = time.perf_counter()
        net, X, y, info = trained_instance(args.n, data_seed=args.data_seed,
                                           teacher=args.teacher, student=args.student,
                                           rollback_steps=args.rollback_steps)
        rb = info["rollback"]
        print(f"trained instance ({info['cache']}, {time.perf_counter() - t0:.1f} s now): "
              f"classes {info['class_histogram']}; training {info['epochs']} epochs "
              f"{info['seconds']['minibatch']:.1f} s + roll-back "
              f"{info['seconds'].get('rollback', 0.0):.1f} s (threads {info['threads']}, "
              f"load {info['load_average']:.1f}, {info['date']})")
        if rb is not None:
            print(f"  roll-back: {rb['accepted']} accepted, {rb['rolled_back']} rolled back, "
                  f"log 𝓛 {rb['log_loss'][0]:.4g} → {rb['log_loss'][1]:.4g}, normalised margin "
                  f"{rb['normalized_margin'][0]:.3g} → {rb['normalized_margin'][1]:.3g}")
        if args.export:
            export_instance(net, info, args.export)
        if args.train_only:
            return
    q = net.margins(X, y)
    sf = float(q.max() / q.min()) * (1 + 1e-9)
    print(f"P = {net.n_params:,}, n = {args.n}, degree {net.degree}, instance {args.instance}, "
          f"torch threads {args.threads}, load average {load:.1f}; min margin {q.min():.3g}, "
          f"support_factor {sf:.3g} (every example)")

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
