"""Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018: the implicit bias of gradient descent on
separable data (docs/theory.md §6).

For a linear model with the exponential or logistic loss on linearly separable data, gradient
flow (and gradient descent with a small step) satisfies ``w(t) = ŵ log t + ρ(t)`` with ``ρ(t)``
bounded, where ``ŵ`` is the hard-margin SVM solution; the direction converges at rate
``O(1/log t)``. The flow is integrated in log-time ``s = log(1 + t)`` to ``t = 1e300``, and ``ŵ`` is
the certified ``solve_max_margin(X, y, norm=2).w``.
"""

from __future__ import annotations

import numpy as np

from solvers.datasets import make_separable
from solvers.flows import integrate, linear_flow
from solvers.programs import solve_max_margin

from ..checking import Source, Theorem, Verdict, compare_le, report_value
from ._common import direction_error, line_figure, loglog_slope, merge

__all__ = ["THEOREMS"]

SOURCE = Source(
    authors="D. Soudry, E. Hoffer, M. S. Nacson, S. Gunasekar, N. Srebro",
    year=2018,
    title="The implicit bias of gradient descent on separable data (JMLR 19)",
    arxiv="1710.10345",
    where="Theorem 3 (bounded residual) and Theorem 5 (convergence rates)",
)

#: The integrator's relative tolerance; every assertion below sits orders of magnitude above it.
ODE_RTOL = 1e-10
#: The direction error decays as O(1/log t) for almost all data sets and never slower than
#: O(log log t / log t) (Soudry et al., Thm. 5), whose local exponent against log t is
#: −1 + 1/log log t. The fitted exponent over the late window t in [t_max^0.3, t_max] must therefore
#: be at most −1 + 1/log log(t_start) + FIT_SLACK, the slack covering the least-squares fit of a
#: curved log-log graph. A wrong limit direction gives an exponent near 0.
#:
#: The O(1/log t) regime is asymptotic: along ``w ≈ ŵ log t`` a non-support vector with margin
#: ``θ_i = y_i⟨ŵ, x_i⟩ > 1`` still pulls on ``ρ(t)`` with weight ``t^{−θ_i}``, so ``ρ(t)`` settles
#: only like ``t^{−(θ_i − 1)}``; until then ``e(t) log t`` is still growing and the fitted exponent
#: is shallower than −1. Over seeds 0–19 of the default family ``θ − 1`` is as small as 0.015
#: (seed 19; t_max = 1e100 gave exponents −0.51 to −0.71 on seeds 13, 14, 19). Hence the horizon
#: ``T_MAX = 1e300`` (log-time makes it as cheap as 1e100): the window then starts at t = 1e90.
T_MAX = 1e300
FIT_WINDOW = 0.3
FIT_SLACK = 0.05
#: ρ(t) is bounded: over [t_mid, t_max] it may move at most this fraction of what ŵ log t moves.
RESIDUAL_DRIFT = 1e-2

DEFAULTS = {
    "n": 40, "d": 5, "gap": 0.2, "seed": 0, "losses": ("logistic", "exp"),
    "t_max": T_MAX, "reference_norm": 2, "reference_scale": 1.0, "X": None, "y": None,
}


def make_instance(seed: int = 0, **overrides) -> dict:
    """Default: n = 40 Gaussian points in d = 5, separable with margin ≥ 0.2, both losses.

    ``reference_norm`` / ``reference_scale`` change the reference ``ŵ`` (for deliberately broken
    instances: the ℓ1 max-margin solution or a rescaled SVM must fail the checks); ``X``, ``y``
    supply your own data.
    """
    return merge({**DEFAULTS, "seed": seed}, overrides)


def _trajectories(inst: dict):
    if inst["X"] is not None:
        X, y = np.asarray(inst["X"], float), np.asarray(inst["y"], float)
    else:
        X, y = make_separable(inst["n"], inst["d"], gap=inst["gap"], seed=inst["seed"])
    svm = solve_max_margin(X, y, norm=inst["reference_norm"])
    w_hat = svm.w * inst["reference_scale"]
    if inst["reference_norm"] != 2:  # compare directions on the ℓ2 SVM's scale
        w_hat = w_hat / np.linalg.norm(w_hat) * np.linalg.norm(
            solve_max_margin(X, y, norm=2).w)
    t_eval = np.logspace(0, np.log10(inst["t_max"]), 101)
    out = {}
    for loss in inst["losses"]:
        flow = linear_flow(X, y, loss=loss)
        traj = integrate(flow, np.zeros(X.shape[1]), (0.0, inst["t_max"]), log_time=True,
                         t_eval=t_eval, rtol=ODE_RTOL)
        out[loss] = traj
    return X, y, w_hat, out


def check_direction(inst: dict) -> Verdict:
    X, y, w_hat, trajs = _trajectories(inst)
    comps, curves = [], []
    for loss, traj in trajs.items():
        t, W = traj.times, traj.states
        err = direction_error(W, w_hat)
        late = t >= t[-1] ** FIT_WINDOW
        slope = loglog_slope(np.log(t[late]), err[late])
        slowest = -1.0 + 1.0 / np.log(np.log(t[late][0]))
        comps.append(compare_le(
            f"{loss}: exponent of the direction error vs log t", slope, slowest, atol=FIT_SLACK,
            note="O(1/log t) generically (exponent −1), never slower than O(log log t/log t) "
                 "(Thm. 5); fitted over t in [t_max^0.3, t_max]"))
        comps.append(report_value(
            f"{loss}: direction error at t = {t[-1]:.0e}", float(err[-1]), theory="→ 0",
            note="the limit itself; its rate is the assertion above"))
        curves.append((t[1:], err[1:], f"{loss} loss"))
    curves.append((t[1:], err[-1] * np.log(t[-1]) / np.log(t[1:]), "C / log t", "k--"))
    fig = line_figure("soudry_direction_error",
                      "Direction error of gradient flow vs the ℓ2 SVM", curves,
                      xlabel="t", ylabel="||w/||w|| − ŵ/||ŵ|| ||", xscale="log", yscale="log")
    return Verdict("soudry-direction", "GF direction → ℓ2 SVM at rate 1/log t", tuple(comps),
                   (fig,), instance=_summary(inst, X), kind="rate")


def check_residual(inst: dict) -> Verdict:
    X, y, w_hat, trajs = _trajectories(inst)
    comps, curves = [], []
    for loss, traj in trajs.items():
        t, W = traj.times, traj.states
        rho = W - np.outer(np.log(t), w_hat)
        mid = int(np.searchsorted(t, np.sqrt(t[-1])))  # t_mid = sqrt(t_max)
        drift = np.linalg.norm(rho[-1] - rho[mid])
        growth = np.linalg.norm(w_hat) * (np.log(t[-1]) - np.log(t[mid]))
        comps.append(compare_le(
            f"{loss}: ||ρ(t_max) − ρ(t_mid)|| / ||ŵ (log t_max − log t_mid)||", drift / growth,
            RESIDUAL_DRIFT,
            note="ρ(t) = w(t) − ŵ log t is bounded (Thm. 3): it must not grow with log t"))
        curves.append((t[1:], np.linalg.norm(rho[1:], axis=1), f"{loss}: ||ρ(t)||"))
    fig = line_figure("soudry_residual", "The residual ρ(t) = w(t) − ŵ log t stays bounded",
                      curves, xlabel="t", ylabel="||ρ(t)||", xscale="log")
    return Verdict("soudry-residual", "w(t) − ŵ log t stays bounded", tuple(comps), (fig,),
                   instance=_summary(inst, X), kind="bound")


def _summary(inst, X) -> dict:
    return {"n": X.shape[0], "d": X.shape[1], "seed": inst["seed"], "t_max": inst["t_max"],
            "losses": list(inst["losses"]), "reference_norm": inst["reference_norm"],
            "reference_scale": inst["reference_scale"]}


def strategy():
    """Random separable instances (small, bounded)."""
    from hypothesis import strategies as st

    return st.builds(
        lambda seed, n, d, gap: make_instance(seed, n=n, d=d, gap=gap, t_max=1e60),
        st.integers(0, 2**16), st.integers(4, 30), st.integers(2, 6), st.floats(0.1, 1.0))


HYPOTHESES = ("linear model f(x) = ⟨w, x⟩", "exp or logistic loss (sum)",
              "data linearly separable through the origin", "gradient flow from w(0) = 0")

THEOREMS = (
    Theorem(
        id="soudry-direction",
        title="Gradient flow converges in direction to the ℓ2 max-margin solution at rate 1/log t",
        source=SOURCE,
        statement=r"$\left\| \frac{w(t)}{\|w(t)\|} - \frac{\hat w}{\|\hat w\|} \right\| "
                  r"= O(1/\log t)$, $\hat w = \arg\min \{\|w\|_2 : y_i \langle w, x_i\rangle "
                  r"\ge 1\}$",
        hypotheses=HYPOTHESES, kind="rate", make_instance=make_instance,
        check_instance=check_direction, strategy=strategy, quick=True),
    Theorem(
        id="soudry-residual",
        title="The residual w(t) − ŵ log t stays bounded",
        source=SOURCE,
        statement=r"$w(t) = \hat w \log t + \rho(t)$ with $\sup_t \|\rho(t)\| < \infty$",
        hypotheses=HYPOTHESES, kind="bound", make_instance=make_instance,
        check_instance=check_residual, strategy=strategy, quick=True),
)
