"""Banburski, Liao, Miranda, Rosasco, De La Torre, Hidary & Poggio 2019 ("Theory III"):
balancedness under exponential-type losses, margin growth of the normalised dynamics, and
minimum-norm fixed points by Halpern iteration (docs/theory.md §3, §9).

* **Balance is preserved** while the weights grow without bound: on separable data with the
  exponential loss, gradient flow on a deep linear net keeps ``||W_{l+1}||_F² − ||W_l||_F²`` fixed
  (the trace of the Arora–Du balancedness matrix) as ``ρ = ||θ|| → ∞``; integrated in log-time to
  ``t = 1e30``.
* **Normalised dynamics increase the margin of v**: with ``θ = ρ v``, ``||v|| = 1``,
  ``ρ̇ = −⟨v, ∇𝓛⟩``, ``v̇ = −ρ (I − vvᵀ)∇𝓛`` (:func:`solvers.flows.normalized_flow`). This is gradient
  flow preconditioned by ``vvᵀ + ρ²(I − vvᵀ)``; the Lyu & Li argument (radial part plus Euler's
  identity ``⟨θ, −∇𝓛⟩ = L Σ e^{−q_i} q_i ≥ L 𝓛 log(1/𝓛)``) carries over unchanged, so once
  ``𝓛 < 1`` the smoothed margin ``γ̃ = log(1/𝓛)/ρ^L`` of ``v`` is non-decreasing. The flow starts
  where plain gradient flow has fitted the data.
* **Halpern / NMGD**: ``θ_{k+1} = β_k θ_a + (1 − β_k)(θ_k − η∇𝓛)``, ``β_k = 1/(k+2)``
  (:func:`solvers.halpern_least_squares`) converges on least squares to the minimum-norm
  fixed point ``X⁺y`` (anchor 0) from any ``θ_0``, at the tight rate ``O(1/k)``; plain gradient
  descent converges to the projection of ``θ_0`` instead.
"""

from __future__ import annotations

import warnings

import numpy as np

from solvers.datasets import make_separable, make_underdetermined
from solvers.flows import (
    deep_linear_flow,
    halpern_least_squares,
    integrate,
    layer_imbalance,
    margins_along,
    normalized_flow,
)
from solvers.programs import solve_max_margin, solve_min_norm
from theory.symbolic import gunasekar_projection

from ..checking import (
    Source,
    Theorem,
    Verdict,
    compare_ge,
    compare_in_band,
    compare_le,
    compare_nondecreasing,
    report_value,
)
from ._common import ScaledBlocks, line_figure, loglog_slope, merge

__all__ = ["THEOREMS"]

SOURCE = Source(
    authors="A. Banburski, Q. Liao, B. Miranda, L. Rosasco, F. De La Torre, J. Hidary, T. Poggio",
    year=2019,
    title="Theory III: dynamics and generalization in deep networks",
    arxiv="1903.04991",
    where="main claims (balance preserved by gradient flow; normalised dynamics and the margin; "
          "NMGD / Halpern iteration); theorem numbers not confirmed",
)

#: Integrator tolerances (LSODA, log-time).
ODE_RTOL = 1e-10
ODE_ATOL = 1e-12
#: Layer balance drift relative to 1 + max ||W_l||_F²: integration at rtol 1e-10 over a few hundred
#: log-time steps gives ~1e-9; 1e-7 sits above it.
INVARIANT_RTOL = 1e-7
#: The weights must grow (ρ → ∞): ||θ(t_max)||² / ||θ(0)||² at least this factor, so that a
#: conserved difference of O(1) is not conserved trivially.
GROWTH_MIN = 2.0
#: Smoothed margin along the normalised flow: a step may fall by at most this (relative) — the
#: integrator's error on γ̃ (rtol 1e-10, accumulated over the run) is far below it.
MONOTONE_RTOL = 1e-7
#: Halpern's error to X⁺y decays as 1/k (Lieder 2021: tight): fitted exponent of the error against k
#: in this band. A wrong anchor converges elsewhere: exponent ≈ 0.
HALPERN_RATE_BAND = (-1.1, -0.9)

DEFAULTS = {
    "seed": 0,
    # separable data, deep linear net
    "n": 20, "d": 3, "gap": 0.3, "hidden": 3, "init_scale": 0.5, "t_fit": 1e2, "t_max": 1e30,
    "tamper": None,
    # Halpern
    "ls_n": 4, "ls_d": 9, "iters": (500, 1000, 2000, 4000), "init_scales": (0.0, 1.0, 10.0),
    "anchor_scale": 0.0,
}


def make_instance(seed: int = 0, **overrides) -> dict:
    """Default: 20 separable points in d = 3, a (3, 3, 1) deep linear net; a (4, 9) least-squares
    problem for Halpern.

    Broken variants: ``tamper="speed_first_layer"`` (GF with W_1's velocity doubled),
    ``tamper="ascend_direction"`` (the tangential v-dynamics reversed), ``anchor_scale > 0``
    (a random nonzero anchor: Halpern then converges to its projection, not to ``X⁺y``).
    """
    inst = merge({**DEFAULTS, "seed": seed}, overrides)
    if inst["tamper"] not in (None, "speed_first_layer", "ascend_direction"):
        raise ValueError("tamper must be None, 'speed_first_layer' or 'ascend_direction'; "
                         f"got {inst['tamper']!r}.")
    return inst


def _data(inst):
    X, y = make_separable(inst["n"], inst["d"], gap=inst["gap"], seed=inst["seed"])
    return X, y, (inst["d"], inst["hidden"], 1)


def _fitted_start(inst, X, y, widths):
    """Plain gradient flow (exp loss) from a random init until t_fit: the data are fitted."""
    gf = deep_linear_flow(X, y, widths=widths, loss="exp")
    rng = np.random.default_rng(inst["seed"] + 1)
    y0 = inst["init_scale"] * rng.standard_normal(gf.size)
    if inst["t_fit"] <= 0:
        return gf, y0, y0
    return gf, y0, integrate(gf, y0, (0.0, inst["t_fit"]), log_time=True, rtol=ODE_RTOL,
                             atol=ODE_ATOL).states[-1]


# -------------------------------------------------------------------------------------------
def check_balance(inst: dict) -> Verdict:
    X, y, widths = _data(inst)
    gf = deep_linear_flow(X, y, widths=widths, loss="exp")
    rng = np.random.default_rng(inst["seed"] + 1)
    y0 = inst["init_scale"] * rng.standard_normal(gf.size)
    rhs = ScaledBlocks(gf, ("W1",), 2.0) if inst["tamper"] == "speed_first_layer" else gf
    t = np.logspace(-2, np.log10(inst["t_max"]), 61)
    traj = integrate(rhs, y0, (0.0, inst["t_max"]), log_time=True, t_eval=t, rtol=ODE_RTOL,
                     atol=ODE_ATOL)
    tr = np.array([np.trace(D, axis1=1, axis2=2) for D in layer_imbalance(traj)]).T  # (T, L−1)
    sq = np.sum(traj.states ** 2, axis=1)
    drift = np.abs(tr - tr[0]).max() / (1.0 + sq.max())
    comps = (
        compare_le("max_t |(||W_{l+1}||² − ||W_l||²)(t) − (…)(0)| / (1 + max ||θ||²)",
                   float(drift), INVARIANT_RTOL,
                   note="balance is preserved by gradient flow (exact); tolerance above the "
                        "integrator's error"),
        compare_ge("||θ(t_max)||² / ||θ(0)||² (the weights grow without bound)",
                   float(sq[-1] / sq[0]), GROWTH_MIN,
                   note="ρ → ∞ on separable data; the conserved difference stays O(1)"),
    )
    fig = line_figure("banburski_balance",
                      "Layer balance ||W_2||² − ||W_1||² vs the growing ||θ||² (exp loss)",
                      [(t, tr[:, 0], "||W_2||² − ||W_1||²"), (t, sq, "||θ||²", "--")],
                      xlabel="t", ylabel="value", xscale="log")
    return Verdict("banburski-balance", "Balance is preserved while the weights diverge", comps,
                   (fig,), instance=_summary(inst, "flow"), kind="identity")


# -------------------------------------------------------------------------------------------
def check_normalised_margin(inst: dict) -> Verdict:
    X, y, widths = _data(inst)
    L = len(widths) - 1
    gf, _, theta_fit = _fitted_start(inst, X, y, widths)
    nf = normalized_flow(X, y, model="deep_linear", widths=widths, loss="exp")
    rho0 = float(np.linalg.norm(theta_fit))
    z0 = np.concatenate([theta_fit / rho0, [rho0]])                  # blocks v…, then rho
    blocks_v = tuple(k for k in nf.blocks if k != "rho")
    rhs = ScaledBlocks(nf, blocks_v, -1.0) if inst["tamper"] == "ascend_direction" else nf
    t = np.concatenate([[0.0], np.logspace(-3, np.log10(inst["t_max"]), 80)])
    # throw=False: the tampered flow drives ρ to 0 and stalls the step control; what it reached
    # is compared (and the horizon it reached is a comparison of its own)
    traj = integrate(rhs, z0, (0.0, inst["t_max"]), log_time=True, t_eval=t, rtol=ODE_RTOL,
                     atol=ODE_ATOL, throw=False)
    Z = traj.states
    t = t[:Z.shape[0]]
    rho = Z[:, -1] * np.linalg.norm(Z[:, :-1], axis=1)               # ||θ||, with ||v|| ≈ 1
    log_loss = np.array([nf.log_loss(z) for z in Z])
    q = margins_along(traj, X, y)                                        # margins of θ = ρ v
    with np.errstate(divide="ignore", invalid="ignore"):   # the tampered flow drives ρ to 0
        smoothed = -log_loss / rho ** L
        normalised = q.min(axis=1) / rho ** L
    svm = solve_max_margin(X, y, norm=2)
    # ||θ||² ≥ L ||β||^{2/L} (AM–GM over the L factors), so ||θ||^L ≥ L^{L/2} ||β|| and
    # q_min/||θ||^L ≤ q_min(β)/(L^{L/2} ||β||) ≤ γ_2 / L^{L/2}
    bound = 1.0 / (L ** (L / 2) * np.linalg.norm(svm.w))
    comps = (
        compare_le("log 𝓛 at the start of the normalised flow", float(log_loss[0]), 0.0,
                   note="hypothesis: the data are fitted (𝓛 < 1 for the exp loss)"),
        compare_nondecreasing("smoothed margin log(1/𝓛)/ρ^L of v along the normalised flow",
                              smoothed, atol=0.0, rtol=MONOTONE_RTOL,
                              note="Lyu–Li monotonicity carries over to the preconditioned flow"),
        compare_ge("normalised margin q_min/ρ^L: final − initial", float(normalised[-1]
                                                                         - normalised[0]), 0.0,
                   note="the margin of v increased"),
        report_value("normalised margin at t_max / (γ_2 / L)", float(normalised[-1] / bound),
                     theory="≤ 1 (= 1 at the balanced SVM direction)"),
        compare_ge("time reached / t_max", float(t[-1] / inst["t_max"]), 1.0,
                   note=f"integration status: {traj.status}"),
    )
    fig = line_figure("banburski_normalised_margin",
                      "Margins of v along the normalised flow (exp loss, deep linear net)",
                      [(t[1:], smoothed[1:], "smoothed margin γ̃"),
                       (t[1:], normalised[1:], "normalised margin q_min/ρ^L"),
                       (t[1:], np.full(t.size - 1, bound), "γ_2 / L (upper bound)", "k--")],
                      xlabel="t", ylabel="margin", xscale="log")
    return Verdict("banburski-normalised-margin",
                   "Normalised dynamics increase the margin of v", comps, (fig,),
                   instance=_summary(inst, "flow"), kind="monotonicity")


# -------------------------------------------------------------------------------------------
def check_halpern(inst: dict) -> Verdict:
    X, y = make_underdetermined(inst["ls_n"], inst["ls_d"], seed=inst["seed"])
    w_mn = solve_min_norm(X, y, norm=2).w
    rng = np.random.default_rng(inst["seed"] + 4)
    anchor = inst["anchor_scale"] * rng.standard_normal(X.shape[1])
    iters = np.asarray(inst["iters"], dtype=int)
    comps, curves = [], []
    for scale in inst["init_scales"]:
        theta0 = scale * rng.standard_normal(X.shape[1])
        errs = []
        for K in iters:
            with warnings.catch_warnings():   # tol=0: every run ends at max_iter by design
                warnings.simplefilter("ignore", UserWarning)
                res = halpern_least_squares(X, y, theta0=theta0, anchor=anchor,
                                            max_iter=int(K), tol=0.0)
            errs.append(float(np.linalg.norm(res.theta - w_mn)))
        slope = loglog_slope(iters, errs)
        comps.append(compare_in_band(
            f"θ_0 scale {scale:g}: exponent of ||θ_K − X⁺y|| vs K", slope, *HALPERN_RATE_BAND,
            theory=-1.0, note="Halpern converges to the anchor's projection (X⁺y for anchor 0) "
                              "at the tight rate 1/k"))
        gd_limit = gunasekar_projection(X, y, theta0)
        comps.append(report_value(
            f"θ_0 scale {scale:g}: plain GD's limit distance to X⁺y",
            float(np.linalg.norm(gd_limit - w_mn)), theory="||P_null(X) θ_0||",
            note="gradient descent keeps the null-space part of its init"))
        curves.append((iters, errs, f"Halpern, θ_0 scale {scale:g}", "o-"))
    curves.append((iters, errs[0] * iters[0] / iters, "∝ 1/k", "k--"))
    fig = line_figure("banburski_halpern", "Halpern (NMGD) iterates vs the min-norm solution",
                      curves, xlabel="k", ylabel="||θ_k − X⁺y||", xscale="log", yscale="log")
    return Verdict("banburski-halpern", "Halpern/NMGD reaches X⁺y from any init at rate 1/k",
                   tuple(comps), (fig,), instance=_summary(inst, "halpern"), kind="limit")


def _summary(inst, which) -> dict:
    keys = {"flow": ("n", "d", "gap", "hidden", "init_scale", "t_fit", "t_max", "tamper"),
            "halpern": ("ls_n", "ls_d", "iters", "init_scales", "anchor_scale")}[which]
    return {"seed": inst["seed"], **{k: (list(inst[k]) if isinstance(inst[k], tuple) else inst[k])
                                     for k in keys}}


def strategy():
    """Small random instances (seeds and sizes)."""
    from hypothesis import strategies as st

    return st.builds(
        lambda seed, n, d, h, m: make_instance(seed, n=n, d=d, hidden=h, ls_n=m, ls_d=m + 4),
        st.integers(0, 2**16), st.integers(8, 20), st.integers(2, 4), st.integers(1, 3),
        st.integers(2, 5))


HYP_SEP = ("deep linear net f(x) = W_L ⋯ W_1 x", "exponential loss (sum)",
           "linearly separable data through the origin")

THEOREMS = (
    Theorem(
        id="banburski-balance",
        title="Gradient flow preserves layer balance while the weights diverge",
        source=SOURCE,
        statement=r"$\|W_{l+1}(t)\|_F^2 - \|W_l(t)\|_F^2 = \mathrm{const}$ while "
                  r"$\|\theta(t)\| \to \infty$",
        hypotheses=HYP_SEP + ("gradient flow from a random init",), kind="identity",
        make_instance=make_instance, check_instance=check_balance, strategy=strategy,
        quick=True),
    Theorem(
        id="banburski-normalised-margin",
        title="Normalised dynamics increase the margin of v",
        source=SOURCE,
        statement=r"$\theta = \rho v$, $\dot\rho = -\langle v, \nabla\mathcal L\rangle$, "
                  r"$\dot v = -\rho (I - v v^\top)\nabla\mathcal L$: "
                  r"$\frac{d}{dt}\,\frac{\log(1/\mathcal L)}{\rho^L} \ge 0$ once $\mathcal L < 1$",
        hypotheses=HYP_SEP + ("normalised flow started where the data are fitted",),
        kind="monotonicity", make_instance=make_instance,
        check_instance=check_normalised_margin, strategy=strategy, quick=True),
    Theorem(
        id="banburski-halpern",
        title="Halpern (NMGD) iteration converges to the minimum-norm solution from any init",
        source=SOURCE,
        statement=r"$\theta_{k+1} = \tfrac{1}{k+2}\theta_a + \tfrac{k+1}{k+2}(\theta_k - "
                  r"\eta\nabla\mathcal L(\theta_k)) \to X^+ y$ ($\theta_a = 0$), "
                  r"$\|\theta_k - X^+y\| = O(1/k)$",
        hypotheses=("least squares, consistent underdetermined system", "η = 1/L_smooth",
                    "anchor θ_a = 0"),
        kind="limit", make_instance=make_instance, check_instance=check_halpern,
        strategy=strategy, quick=True),
)
