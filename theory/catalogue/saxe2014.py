"""Saxe, McClelland & Ganguli 2014: exact learning curves of deep linear networks
(docs/theory.md §4).

With whitened inputs (``XᵀX/n = I``), the mean squared loss and a balanced initialisation aligned
with the SVD ``Σ_yx = YᵀX/n = U diag(s) Vᵀ``, the modes decouple: the end-to-end map stays
``W(t) = U diag(u(t)) Vᵀ`` and each mode strength obeys ``u̇ = L u^{2−2/L}(s − u)``; for two layers
``u(t) = s e^{2st}/(e^{2st} − 1 + s/u₀)`` (the sigmoidal learning curve). The closed forms are
:func:`theory.closed_forms.saxe_mode_strength` (depth 2: ``sympy.dsolve``; depth L: the exact
separable integral inverted by bisection); the measured strengths ``u_a(t) = U_aᵀ W(t) V_a`` come
from integrating the factorised flow :func:`solvers.flows.deep_linear_flow` on data from
:func:`solvers.datasets.make_whitened_regression`.
"""

from __future__ import annotations

import numpy as np

from solvers.datasets import make_whitened_regression
from solvers.flows import deep_linear_flow, end_to_end, integrate
from theory.symbolic import saxe_mode_strength

from ..checking import Source, Theorem, Verdict, compare_ge, compare_le
from ._common import line_figure, merge

__all__ = ["THEOREMS"]

SOURCE = Source(
    authors="A. M. Saxe, J. L. McClelland, S. Ganguli",
    year=2014,
    title="Exact solutions to the nonlinear dynamics of learning in deep linear neural networks "
          "(ICLR 2014)",
    arxiv="1312.6120",
    where="two-layer mode dynamics and solution, eqs. (6)-(7) (as cited in "
          "theory.closed_forms); deeper networks: the section on depth-L mode dynamics",
)

#: Integrator tolerances (LSODA); the closed forms are exact to rounding.
ODE_RTOL = 1e-10
ODE_ATOL = 1e-12
#: max_t |u_measured(t) − u_closed(t)| / s_max: the integrated flow carries a global error ~1e-8
#: relative at rtol 1e-10 over ~10² steps; 1e-6 sits two orders above it. Non-whitened inputs or a
#: misaligned init give O(1e-2 … 1) deviations (tests).
CURVE_RTOL = 1e-6
#: Off-diagonal couplings U_aᵀ W V_b (a ≠ b) stay exactly zero: same tolerance.
COUPLING_RTOL = 1e-6
#: The strongest mode must be learned within the horizon (u ≥ 0.9 s): the curve is not trivially
#: flat, so the comparison tests the sigmoid, not just u₀.
LEARNED_FRACTION = 0.9

DEFAULTS = {
    "seed": 0, "n": 16, "d": 3, "k": 3, "singular_values": (2.0, 1.0, 0.5),
    "u0": (1e-2, 3e-3, 1e-3), "hidden": 4, "t_max": 15.0, "depths": (3, 4),
    "whitened": True, "aligned": True, "closed_form_depth": None,
}


def make_instance(seed: int = 0, **overrides) -> dict:
    """Default: d = k = 3, Σ_yx spectrum (2, 1, 0.5), small initial strengths (1e-2, 3e-3, 1e-3).

    ``depths`` are the depths of the depth-L check (the depth-2 check always uses 2). Broken
    variants: ``whitened=False`` scales X by 1.5 (XᵀX/n = 2.25 I), ``aligned=False`` starts from a
    random init with the same layer norms, ``closed_form_depth`` compares with another depth's
    closed form.
    """
    inst = merge({**DEFAULTS, "seed": seed}, overrides)
    r = min(inst["d"], inst["k"])
    for key in ("singular_values", "u0"):
        if len(inst[key]) != r:
            raise ValueError(f"{key} must have min(d, k) = {r} entries; got {inst[key]!r}.")
    if inst["hidden"] < r:
        raise ValueError(f"hidden must be >= min(d, k) = {r} to hold every mode; "
                         f"got {inst['hidden']}.")
    return inst


def _problem(inst):
    X, Y = make_whitened_regression(inst["n"], inst["d"], inst["k"],
                                    singular_values=inst["singular_values"], seed=inst["seed"])
    n = X.shape[0]
    U, s, Vt = np.linalg.svd(Y.T @ X / n)               # the SVD of Σ_yx, measured from the data
    r = s.size
    if not inst["whitened"]:
        X = 1.5 * X                                     # Σ_xx = 2.25 I, Σ_yx scaled by 1.5
    return X, Y, U[:, :r], s, Vt[:r].T


def _trajectory(inst, depth):
    X, Y, U, s, V = _problem(inst)
    u0 = np.asarray(inst["u0"], dtype=float)            # u0[a] for the a-th largest s
    rng = np.random.default_rng(inst["seed"] + 1)
    h, r = inst["hidden"], s.size
    frames = [V] + [np.linalg.qr(rng.standard_normal((h, r)))[0]
                    for _ in range(depth - 1)] + [U]
    a0 = u0 ** (1.0 / depth)                             # balanced: every layer carries u0^{1/L}
    init = {f"W{l}": frames[l] @ np.diag(a0) @ frames[l - 1].T for l in range(1, depth + 1)}
    if not inst["aligned"]:
        init = {k: np.linalg.norm(v) * (g := rng.standard_normal(v.shape)) / np.linalg.norm(g)
                for k, v in init.items()}
    widths = (inst["d"],) + (h,) * (depth - 1) + (inst["k"],)
    flow = deep_linear_flow(X, Y, widths=widths)
    t = np.linspace(0.0, inst["t_max"], 61)
    traj = integrate(flow, flow.pack(**init), (0.0, inst["t_max"]), t_eval=t, rtol=ODE_RTOL,
                     atol=ODE_ATOL)
    W = end_to_end(traj)
    modes = np.einsum("ka,tkd,db->tab", U, W, V)         # U_aᵀ W(t) V_b
    return t, s, u0, modes


def _check(inst, depths, theorem_id, title):
    comps, curves = [], []
    for depth in depths:
        t, s, u0, modes = _trajectory(inst, depth)
        u_num = np.diagonal(modes, axis1=1, axis2=2)
        cf_depth = inst["closed_form_depth"] or depth
        u_ref = np.column_stack([saxe_mode_strength(t, sa, ua, depth=cf_depth)
                                 for sa, ua in zip(s, u0, strict=True)])
        off = modes.copy()
        idx = np.arange(s.size)
        off[:, idx, idx] = 0.0
        smax = float(s.max())
        comps.append(compare_le(
            f"L = {depth}: max_t max_a |u_a(t) − u_a^closed(t)| / s_max",
            float(np.abs(u_num - u_ref).max() / smax), CURVE_RTOL,
            note="exact closed form (Saxe et al.); tolerance above the integrator's error"))
        comps.append(compare_le(
            f"L = {depth}: max_t max_(a≠b) |U_aᵀ W(t) V_b| / s_max (modes decouple)",
            float(np.abs(off).max() / smax), COUPLING_RTOL,
            note="aligned balanced init: W(t) stays diagonal in the SVD basis of Σ_yx"))
        top = int(np.argmax(s))
        comps.append(compare_ge(
            f"L = {depth}: u_top(t_max) / s_top (the strongest mode was learned)",
            float(u_num[-1, top] / s[top]), LEARNED_FRACTION,
            note="the horizon covers the sigmoidal transition, so the curve is not flat"))
        for a in range(s.size):
            curves.append((t, u_num[:, a], f"L = {depth}, s = {s[a]:g} (integrated)"))
            curves.append((t, u_ref[:, a], f"L = {depth}, s = {s[a]:g} (closed form)", "k:"))
    fig = line_figure(f"{theorem_id.replace('-', '_')}_curves",
                      "Mode strengths: integrated deep linear flow vs Saxe et al.'s closed form",
                      curves, xlabel="t", ylabel="u_a(t)")
    return Verdict(theorem_id, title, tuple(comps), (fig,), instance=_summary(inst, depths),
                   kind="identity")


def check_depth2(inst: dict) -> Verdict:
    return _check(inst, (2,), "saxe-depth2", "Two-layer mode strengths follow the sigmoid")


def check_deep(inst: dict) -> Verdict:
    return _check(inst, tuple(inst["depths"]), "saxe-depth-l",
                  "Depth-L mode strengths follow u̇ = L u^(2−2/L)(s − u)")


def _summary(inst, depths) -> dict:
    return {"seed": inst["seed"], "n": inst["n"], "d": inst["d"], "k": inst["k"],
            "singular_values": list(inst["singular_values"]), "u0": list(inst["u0"]),
            "hidden": inst["hidden"], "t_max": inst["t_max"], "depths": list(depths),
            "whitened": inst["whitened"], "aligned": inst["aligned"],
            "closed_form_depth": inst["closed_form_depth"]}


def strategy():
    """Small random instances: a spectrum in [0.8, 2.5], initial strengths in [1e-3, 1e-1]."""
    from hypothesis import strategies as st

    spec = st.lists(st.floats(0.8, 2.5), min_size=2, max_size=2, unique=True)
    u0 = st.lists(st.floats(1e-3, 1e-1), min_size=2, max_size=2)
    return st.builds(
        lambda seed, s, u: make_instance(seed, n=8, d=2, k=2, singular_values=tuple(s),
                                         u0=tuple(u), hidden=3, depths=(3,)),
        st.integers(0, 2**16), spec, u0)


HYPOTHESES = ("deep linear net, mean squared loss", "whitened inputs XᵀX/n = I",
              "balanced initialisation aligned with the SVD of Σ_yx = YᵀX/n", "gradient flow")

THEOREMS = (
    Theorem(
        id="saxe-depth2",
        title="Two-layer linear nets: each mode strength follows the closed-form sigmoid",
        source=SOURCE,
        statement=r"$u_a(t) = \frac{s_a e^{2 s_a t}}{e^{2 s_a t} - 1 + s_a/u_{a,0}}$, "
                  r"$W(t) = U\,\mathrm{diag}(u(t))\,V^\top$",
        hypotheses=HYPOTHESES, kind="identity", make_instance=make_instance,
        check_instance=check_depth2, strategy=strategy, quick=True),
    Theorem(
        id="saxe-depth-l",
        title="Depth-L linear nets: mode strengths follow u̇ = L u^(2−2/L)(s − u)",
        source=SOURCE,
        statement=r"$\dot u_a = L\, u_a^{2 - 2/L} (s_a - u_a)$, solved exactly by the separable "
                  r"integral $t(u)$",
        hypotheses=HYPOTHESES, kind="identity", make_instance=make_instance,
        check_instance=check_deep, strategy=strategy, quick=False),
)
