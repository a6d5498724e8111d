"""How often the programs certify with one row or column scaled to the extremes (issue 14.11).

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python tests/benchmarks/bench_scaling_sweep.py
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python tests/benchmarks/bench_scaling_sweep.py --seeds 60

Three families, the same data for every ``k`` (seeded):

* ``max-margin column``: ``hyperplane_data`` with ``n ∈ [6, 16]``, ``d ∈ [2, 5]`` (drawn from the
  seed), column ``seed mod d`` × 10^k for k in {−6, −8, −9, −10, −12, 9, 12}, ℓ1 and ℓ∞;
* ``min-norm row``: ``X`` standard normal of shape ``(n, n + extra)``, ``n ∈ [2, 6]``,
  ``extra ∈ [1, 6]``, row ``seed mod n`` of ``X`` (not ``y``) × 10^k for k in {−12, 12}, ℓ1, ℓ2
  and ℓ∞;
* with ``--wide`` also the ``d > n`` routes (column generation, docs/theory.md §5.8):
  ``hyperplane_data`` 12 × 40 with column ``seed mod 40`` × 10^k, k in {−12, −10, 10, 12}, ℓ1,
  ℓ2, ℓ∞ (``wide max-margin column``), and ``X`` standard normal 8 × 60 with row ``seed mod 8``
  × 10^k, k in {−12, 12}, ℓ1, ℓ2, ℓ∞ (``wide min-norm row``); ≈ 12 s CPU more for 10 seeds.

Every returned answer is checked independently in rational arithmetic
(``tests/test_scaling.py``: weak duality for the margins, the exact residual and gap for
min-norm); prints, per family and k, how many were certified and how many ended in each error.
The figures are in docs/theory.md §5.9. Not part of the test run (≈ 7 s CPU for 30 seeds).
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from solvers.programs import solve_max_margin, solve_min_norm
from tests.strategies import hyperplane_data
from tests.test_scaling import _check_margin_exactly, _check_min_norm_exactly, _scaled

KS = (-6, -8, -9, -10, -12, 9, 12)
KS_MIN_NORM = (-12, 12)
KS_WIDE = (-12, -10, 10, 12)


def _tally(out, key, solve, check, X, y, p):
    try:
        check(X, y, solve(X, y, norm=p), p)
        out[key + ("certified",)] += 1
    except Exception as exc:  # noqa: BLE001 - tallied by type, the point of the sweep
        out[key + (type(exc).__name__,)] += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30, help="number of random data sets (30)")
    ap.add_argument("--wide", action="store_true", help="also the d > n routes")
    args = ap.parse_args()
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    out = collections.Counter()
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        n, d = int(rng.integers(6, 17)), int(rng.integers(2, 6))
        X, y = hyperplane_data(np.random.default_rng(seed), n, d, 0.2)
        for k in KS:
            Xs = _scaled(X, "col", k, seed % d)
            for p in (1.0, np.inf):
                _tally(out, ("max-margin column", k), solve_max_margin, _check_margin_exactly,
                       Xs, y, p)
        rng = np.random.default_rng(seed)
        n, extra = int(rng.integers(2, 7)), int(rng.integers(1, 7))
        X, y = rng.standard_normal((n, n + extra)), rng.standard_normal(n)
        for k in KS_MIN_NORM:
            Xs = _scaled(X, "row", k, seed % n)
            for p in (1.0, 2.0, np.inf):
                _tally(out, ("min-norm row", k), solve_min_norm, _check_min_norm_exactly,
                       Xs, y, p)
        if not args.wide:
            continue
        X, y = hyperplane_data(np.random.default_rng(seed), 12, 40, 0.2)
        for k in KS_WIDE:
            Xs = _scaled(X, "col", k, seed % 40)
            for p in (1.0, 2.0, np.inf):
                _tally(out, ("wide max-margin column", k), solve_max_margin,
                       _check_margin_exactly, Xs, y, p)
        rng = np.random.default_rng(seed)
        X, y = rng.standard_normal((8, 60)), rng.standard_normal(8)
        for k in KS_MIN_NORM:
            Xs = _scaled(X, "row", k, seed % 8)
            for p in (1.0, 2.0, np.inf):
                _tally(out, ("wide min-norm row", k), solve_min_norm, _check_min_norm_exactly,
                       Xs, y, p)
    print(f"{args.seeds} seeds: max-margin {2 * args.seeds} problems per k (ℓ1, ℓ∞), "
          f"min-norm {3 * args.seeds} per k (ℓ1, ℓ2, ℓ∞)")
    families = [("max-margin column", KS), ("min-norm row", KS_MIN_NORM)]
    if args.wide:
        families += [("wide max-margin column", KS_WIDE), ("wide min-norm row", KS_MIN_NORM)]
    for fam, ks in families:
        for k in ks:
            row = ", ".join(f"{what} {c}" for (f, kk, what), c in sorted(out.items())
                            if f == fam and kk == k)
            print(f"{fam} x 1e{k}: {row}")


if __name__ == "__main__":
    main()
