"""Gunasekar, Woodworth, Bhojanapalli, Neyshabur & Srebro 2017: implicit regularisation in matrix
factorisation (docs/theory.md §5) — a CONJECTURE.

Conjecture 1 of the paper: for matrix sensing ``y_i = ⟨A_i, W*⟩`` with a full-dimensional
factorisation, gradient flow from an initialisation of scale ``σ → 0`` converges to the
minimum-nuclear-norm solution ``argmin {||W||_* : ⟨A_i, W⟩ = y_i}`` (they prove it when the
``A_i`` commute, Theorem 1; Arora et al. 2019 later questioned it in general). Here the flow is
:func:`solvers.flows.sensing_flow` on ``W = W_L ⋯ W_1`` (depth 2 and 3, square factors) and the
reference is the certified program :func:`solvers.programs.solve_min_nuclear_norm`.

What is *reported* (never asserted): the relative gap ``||W_∞ − W_nuc||_F/||W_nuc||_F`` at each
initial scale, its fitted exponent against ``σ``, and the effective ranks of ``W_∞`` and ``W_nuc``.
What is *asserted* — facts that are theorems, so a broken run fails:

* the limit interpolates the measurements (``||A(W_∞) − y|| ≤ INTERP_RTOL ||y||``): the conjecture
  is about interpolating limits, and a run that does not interpolate says nothing about it;
* weak duality: every interpolant has ``||W||_* ≥ ||W_nuc||_*`` (the certified optimum), so the
  flow's limit cannot beat the program (up to the interpolation tolerance).

Since the check asserts these facts, a successful verdict reads ``passed``; the conjecture's
numbers are in the ``reported`` comparisons.
"""

from __future__ import annotations

import numpy as np

from solvers.datasets import make_sensing
from solvers.flows import effective_rank, end_to_end, integrate, sensing_flow
from solvers.programs import solve_min_nuclear_norm

from ..checking import Source, Theorem, Verdict, compare_ge, compare_le, report_value
from ._common import line_figure, loglog_slope, merge

__all__ = ["THEOREMS"]

SOURCE = Source(
    authors="S. Gunasekar, B. Woodworth, S. Bhojanapalli, B. Neyshabur, N. Srebro",
    year=2017,
    title="Implicit regularization in matrix factorization (NeurIPS 2017)",
    arxiv="1705.09280",
    where="Conjecture 1 (Theorem 1 proves it for commuting measurements)",
)

#: Integrator tolerance (LSODA in log-time to t_max).
ODE_RTOL = 1e-10
ODE_ATOL = 1e-12
#: Interpolation: ||A(W_∞) − y|| / ||y||. The last phase of the flow is slow — directions where the
#: factors are still tiny contract at a rate ∝ σ_k(W)^{2−2/L} — so at t_max = 1e7 the residual is
#: measured between 2e-16 and 3e-7 (default instance, depth 2 and 3, σ ∈ {0.1, 0.01, 0.001}), and
#: at 1e-6 … 1e-7 along the way at t = 1e6; 1e-4 sits above it and far below the O(1) residual of
#: an unconverged run.
INTERP_RTOL = 1e-4
#: Weak duality ||W_∞||_* ≥ ||W_nuc||_*, up to what an interpolation error of INTERP_RTOL ||y|| can
#: buy: |Δ||W||_*| ≤ ||ν||·||Δy|| / ||W_nuc||_* with the program's dual ν; a relative slack of
#: 10 · INTERP_RTOL · (1 + ||ν|| ||y|| / ||W_nuc||_*) covers it.
DUALITY_FACTOR = 10.0

DEFAULTS = {
    "seed": 0, "n": 18, "d": 5, "rank": 1, "symmetric": True, "scales": (0.1, 0.01, 0.001),
    "t_max": 1e7,
}


def make_instance(seed: int = 0, **overrides) -> dict:
    """Default: 5×5 symmetric Gaussian sensing of a rank-1 PSD matrix with 18 measurements (the
    nuclear program recovers it), initial scales 0.1, 0.01, 0.001, horizon t = 1e7.

    The depth is the theorem's (2 or 3). Broken variant for tests: ``t_max=1`` (the flow has
    not converged: the interpolation assertion fails).
    """
    return merge({**DEFAULTS, "seed": seed}, overrides)


def _limit(A, y, depth, sigma, t_max, seed):
    d1, d2 = A.shape[1], A.shape[2]
    flow = sensing_flow(A, y, widths=(d2,) + (max(d1, d2),) * (depth - 1) + (d1,))
    direction = np.random.default_rng(seed + 5).standard_normal(flow.size)
    direction /= np.sqrt(max(d1, d2))
    traj = integrate(flow, sigma * direction, (0.0, t_max), log_time=True, rtol=ODE_RTOL,
                     atol=ODE_ATOL)
    return end_to_end(traj)[-1]


def _check(inst: dict, depth: int, theorem_id: str) -> Verdict:
    A, y, W_star = make_sensing(inst["n"], inst["d"], inst["d"], rank=inst["rank"],
                                symmetric=inst["symmetric"], seed=inst["seed"])
    nuc = solve_min_nuclear_norm(A, y)
    W_nuc, nuc_val = nuc.W, float(nuc.value)
    y_norm = float(np.linalg.norm(y))
    slack = DUALITY_FACTOR * INTERP_RTOL * (1.0 + np.linalg.norm(nuc.dual) * y_norm / nuc_val)
    scales = np.asarray(inst["scales"], dtype=float)
    comps, gaps = [], []
    for sigma in scales:
        W = _limit(A, y, depth, sigma, inst["t_max"], inst["seed"])
        res = float(np.linalg.norm(np.einsum("nij,ij->n", A, W) - y) / y_norm)
        comps.append(compare_le(f"σ = {sigma:g}: ||A(W_∞) − y|| / ||y|| (interpolates)", res,
                                INTERP_RTOL, note="the conjecture concerns interpolating limits"))
        nuc_W = float(np.linalg.svd(W, compute_uv=False).sum())
        comps.append(compare_ge(f"σ = {sigma:g}: ||W_∞||_* / ||W_nuc||_* (certificate cross-check)",
                                nuc_W / nuc_val, 1.0, atol=slack,
                                note="no interpolant has a smaller nuclear norm than the certified "
                                     "optimum"))
        gap = float(np.linalg.norm(W - W_nuc) / np.linalg.norm(W_nuc))
        gaps.append(gap)
        comps.append(report_value(f"σ = {sigma:g}: ||W_∞ − W_nuc||_F / ||W_nuc||_F", gap,
                                  theory="→ 0 as σ → 0 (conjectured)"))
        comps.append(report_value(f"σ = {sigma:g}: effective rank of W_∞", effective_rank(W),
                                  theory=f"{effective_rank(W_nuc):.4g} (W_nuc)"))
    gaps = np.asarray(gaps)
    if gaps.size >= 2 and np.all(gaps > 0):
        comps.append(report_value("exponent of the gap vs σ", loglog_slope(scales, gaps),
                                  theory="> 0 (the gap shrinks with the init scale)"))
    comps.append(report_value("||W_nuc − W*||_F / ||W*||_F (does the program recover W*?)",
                              float(np.linalg.norm(W_nuc - W_star) / np.linalg.norm(W_star)),
                              theory="0 when the measurements suffice"))
    fig = line_figure(f"gunasekar_gap_depth{depth}",
                      f"Depth-{depth} factorisation from scale σ: distance to the min-nuclear-norm "
                      f"solution", [(scales, np.maximum(gaps, 1e-16), f"depth {depth}", "o-")],
                      xlabel="initial scale σ", ylabel="||W_∞ − W_nuc|| / ||W_nuc||",
                      xscale="log", yscale="log")
    return Verdict(theorem_id, f"Depth-{depth} factorisation from small init vs min nuclear norm",
                   tuple(comps), (fig,), instance=_summary(inst, depth), kind="conjecture")


def check_depth2(inst: dict) -> Verdict:
    return _check(inst, 2, "gunasekar-nuclear-depth2")


def check_depth3(inst: dict) -> Verdict:
    return _check(inst, 3, "gunasekar-nuclear-depth3")


def _summary(inst, depth) -> dict:
    return {"seed": inst["seed"], "n": inst["n"], "d": inst["d"], "rank": inst["rank"],
            "symmetric": inst["symmetric"], "scales": list(inst["scales"]),
            "t_max": inst["t_max"], "depth": depth}


def strategy():
    """Small random sensing problems (seeds, sizes, ranks)."""
    from hypothesis import strategies as st

    return st.builds(
        lambda seed, d, extra: make_instance(seed, d=d, n=d * (d + 1) // 2 - extra,
                                             scales=(0.1, 0.01)),
        st.integers(0, 2**16), st.integers(3, 5), st.integers(0, 2))


HYPOTHESES = ("matrix sensing y_i = ⟨A_i, W*⟩, Gaussian symmetric A_i",
              "full-dimensional factorisation W = W_L ⋯ W_1 (square factors)",
              "gradient flow on the mean squared loss from scale σ → 0")

THEOREMS = (
    Theorem(
        id="gunasekar-nuclear-depth2",
        title="Depth-2 factorisation from small init approaches the min-nuclear-norm solution "
              "(conjecture)",
        source=SOURCE,
        statement=r"$\lim_{\sigma\to 0} W_\infty(\sigma) = \arg\min\{\|W\|_* : \langle A_i, W"
                  r"\rangle = y_i\}$ (conjectured); asserted: $W_\infty$ interpolates and "
                  r"$\|W_\infty\|_* \ge \|W_{\rm nuc}\|_*$",
        hypotheses=HYPOTHESES, kind="conjecture", make_instance=make_instance,
        check_instance=check_depth2, strategy=strategy, quick=True),
    Theorem(
        id="gunasekar-nuclear-depth3",
        title="Depth-3 factorisation from small init vs the min-nuclear-norm solution "
              "(conjecture)",
        source=SOURCE,
        statement=r"$\lim_{\sigma\to 0} W_\infty(\sigma) \overset{?}{=} W_{\rm nuc}$ for "
                  r"$W = W_3 W_2 W_1$; asserted: interpolation and weak duality",
        hypotheses=HYPOTHESES, kind="conjecture", make_instance=make_instance,
        check_instance=check_depth3, strategy=strategy, quick=False),
)
