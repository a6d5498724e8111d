"""How often ℓ1/ℓ∞ ``solve_max_margin`` certifies when one column is scaled down (issue 14.11).

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python tests/benchmarks/bench_scaling_sweep.py
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python tests/benchmarks/bench_scaling_sweep.py --seeds 60

For each seed: ``hyperplane_data`` with ``n ∈ [6, 16]``, ``d ∈ [2, 5]`` (drawn from the seed),
column ``seed mod d`` × 10^k for k in {−6, −8, −9, −10, −12}, ℓ1 and ℓ∞. Every returned answer
is checked by weak duality in rational arithmetic (``tests/test_scaling.py``); prints, per k,
how many were certified and how many ended in each error. The figures are in docs/theory.md
§5.9. Not part of the test run (≈ 6 s CPU for 30 seeds).
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from solvers.programs import solve_max_margin
from tests.strategies import hyperplane_data
from tests.test_scaling import _check_margin_exactly, _scaled

KS = (-6, -8, -9, -10, -12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30, help="number of random data sets (30)")
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
                try:
                    sol = solve_max_margin(Xs, y, norm=p)
                    _check_margin_exactly(Xs, y, sol, p)
                    out[(k, "certified")] += 1
                except Exception as exc:  # noqa: BLE001 - tallied by type, the point of the sweep
                    out[(k, type(exc).__name__)] += 1
    print(f"{2 * args.seeds} problems per k (ℓ1 and ℓ∞)")
    for k in KS:
        row = ", ".join(f"{what} {c}" for (kk, what), c in sorted(out.items()) if kk == k)
        print(f"column x 1e{k}: {row}")


if __name__ == "__main__":
    main()
