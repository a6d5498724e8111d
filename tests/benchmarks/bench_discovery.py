"""Benchmark: discovery of conservation laws (issue 10, §Speed).

Run from the repository root::

    python tests/benchmarks/bench_discovery.py

Rows: :func:`theory.symbolic.find_conserved` up to degree 2 on ``UVᵀ`` with ``U, V ∈ R^{3×2}``
(D = 12; target < 10 s, including the completeness count) and
:func:`theory.symbolic.count_conserved` on deep linear nets of growing D up to D = 50
(target < 30 s each), then ``derive`` on a user model against the built-in model of the same
size (target within 2×). Median of 3 repeats, sympy's cache cleared before each. Each row also
prints the number of laws, checked against the known value (entries of UᵀU − VᵀV; one
``d_l × d_l`` symmetric balancedness matrix per hidden layer), so a fast wrong answer shows.
"""

from __future__ import annotations

import datetime
import platform
import statistics
import time

from sympy.core.cache import clear_cache

from theory.symbolic import Model, count_conserved, deep_linear_net, find_conserved

FIND_TARGET, COUNT_TARGET = 10.0, 30.0


def _time(fn, repeats=3):
    out, ts = None, []
    for _ in range(repeats):
        clear_cache()
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return out, statistics.median(ts)


def main() -> None:
    print(f"# bench_discovery  {datetime.date.today()}  python {platform.python_version()}")
    uv = Model.from_expression("uv", {"U": (3, 2), "V": (3, 2)}, lambda U, V, x: U * V.T * x,
                               input_dim=3)
    res, t = _time(lambda: find_conserved(uv, 2))
    ok = len(res.laws) == 3 and res.complete
    print(f"find_conserved UVᵀ 3×2 (D=12), degree ≤ 2: {t:.2f} s  laws={len(res.laws)} "
          f"complete={res.complete}  {'OK' if ok else 'WRONG'}  target < {FIND_TARGET} s")
    print(f"{'widths':>16} {'D':>4} {'laws':>5} {'known':>6} {'count s':>8}")
    for widths in ([2, 3, 2], [2, 3, 3, 2], [3, 4, 4, 2], [3, 4, 4, 4, 2], [4, 5, 5, 1]):
        model = deep_linear_net(widths)
        c, t = _time(lambda m=model: count_conserved(m))
        known = sum(h * (h + 1) // 2 for h in widths[1:-1])
        flag = "OK" if c.n_laws == known else "WRONG"
        print(f"{str(widths):>16} {c.n_params:>4} {c.n_laws:>5} {known:>6} {t:>8.2f}  {flag}")

    derive_user_vs_builtin()


def derive_user_vs_builtin() -> None:
    """``derive`` on a user model (D = 12) against the built-in model of the same size
    (target: ratio within 2×). Minimum of 2 repeats."""
    from theory.reports import DerivationSpec, derive_report, derive_user_report

    for numerical in (False, True):
        ts = {"builtin": [], "user": []}
        for _ in range(2):
            clear_cache()
            t0 = time.perf_counter()
            derive_report(DerivationSpec(model="deep-linear", widths=(2, 3, 2)),
                          numerical=numerical)
            ts["builtin"].append(time.perf_counter() - t0)
            clear_cache()
            t0 = time.perf_counter()
            m = Model.from_expression("dl", {"W1": (3, 2), "W2": (2, 3)},
                                      lambda W1, W2, x: W2 * W1 * x, input_dim=2)
            derive_user_report(m, numerical=numerical)
            ts["user"].append(time.perf_counter() - t0)
        b, u = min(ts["builtin"]), min(ts["user"])
        print(f"derive deep-linear (2,3,2) {'with' if numerical else 'without'} numerics: "
              f"built-in {b:.2f} s, user model {u:.2f} s, ratio {u / b:.2f} (target 0.5–2)")


if __name__ == "__main__":
    main()
