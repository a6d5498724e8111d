"""Azulay, Moroshko, Nacson, Woodworth, Srebro, Globerson & Soudry 2021: the initialisation
*shape*, not only its scale, sets the implicit bias (docs/theory.md §12.4).

Two-layer diagonal product model ``w = u₊⊙v₊ − u₋⊙v₋`` with ``u₊(0) = u₋(0) = u₀1``,
``v₊(0) = v₋(0) = v₀1`` and the squared loss: gradient flow converges to
``argmin Q_k(w) s.t. Xw = y`` with ``k = 2(u₀² + v₀²)`` (their Theorem 4.1, §4), i.e. to the
minimiser of the hypentropy with ``b = u₀² + v₀²`` (same minimiser; exact). In their
parametrisation ``u₀ = √(α(1−s)/(1+s))``, ``v₀ = √(α(1+s)/(1−s))`` — scale ``α = u₀v₀``, shape
``s ∈ [0, 1)`` — a more unbalanced shape at a fixed scale moves the limit towards the kernel
regime. The flow is integrated for several shapes at one scale and compared with the certified
``solve_min_potential``.
"""

from __future__ import annotations

import numpy as np

from solvers.flows import integrate
from solvers.programs import Potential, solve_min_norm, solve_min_potential

from ..checking import Source, Theorem, Verdict, compare_le, report_value
from ._common import line_figure, merge

__all__ = ["THEOREMS"]

SOURCE = Source(
    authors="S. Azulay, E. Moroshko, M. S. Nacson, B. Woodworth, N. Srebro, A. Globerson, "
            "D. Soudry",
    year=2021,
    title="On the implicit bias of initialization shape: beyond infinitesimal mirror descent "
          "(ICML 2021)",
    arxiv="2102.09769",
    where="§4, Theorem 4.1 (two-layer diagonal network, potential Q_k, k = 2(u₀² + v₀²))",
)

#: Relative distance of ``w(T)`` to the certified minimiser; the flow is run until its own
#: residual is below ``CONVERGED_RTOL`` (integrator rtol 1e-10).
LIMIT_RTOL = 1e-6
CONVERGED_RTOL = 1e-8
HORIZONS = (1e2, 1e3, 1e4, 1e5)

DEFAULTS = {"n": 8, "d": 24, "sparsity": 2, "seed": 0, "scale": 0.01,
            "shapes": (0.0, 0.5, 0.9, 0.99), "horizons": HORIZONS,
            # broken instances: the potential from the scale only (balanced shape), or ℓ2
            "reference": "shape", "interpolating": True}


def make_instance(seed: int = 0, **overrides) -> dict:
    """Default: ``X`` 8 × 24 Gaussian, ``y = X w♮`` (2-sparse), scale α = 0.01, shapes
    ``s ∈ {0, 0.5, 0.9, 0.99}``.

    Broken instances: ``reference="scale_only"`` (``b = 2α``, the balanced shape with the same
    scale: wrong for ``s > 0``), ``reference="l2"`` (the ℓ2 interpolant),
    ``interpolating=False`` (``n = 2d`` noisy rows).
    """
    return merge({**DEFAULTS, "seed": seed}, overrides)


def _data(inst):
    rng = np.random.default_rng(inst["seed"])
    n, d = inst["n"], inst["d"]
    if not inst["interpolating"]:
        n = 2 * d
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    w[rng.choice(d, inst["sparsity"], replace=False)] = rng.choice([-1.0, 1.0], inst["sparsity"])
    y = X @ w
    if not inst["interpolating"]:
        y = y + rng.standard_normal(n)
    return X, y


def init_shape(scale: float, shape: float) -> tuple[float, float]:
    """``(u₀, v₀)`` of Azulay et al.'s symmetric initialisation with ``u₀v₀ = scale``."""
    return (float(np.sqrt(scale * (1 - shape) / (1 + shape))),
            float(np.sqrt(scale * (1 + shape) / (1 - shape))))


def product_flow_limit(X, y, u0: float, v0: float, horizons):
    """``(w(T), T)`` of gradient flow on ``w = u₊⊙v₊ − u₋⊙v₋`` (squared loss, mean)."""
    n, d = X.shape
    G, c = X.T @ X / n, X.T @ y / n

    def rhs(t, z):
        up, vp, um, vm = z.reshape(4, d)
        g = G @ (up * vp - um * vm) - c
        return np.concatenate([-g * vp, -g * up, g * vm, g * um])

    def jac(t, z):
        up, vp, um, vm = z.reshape(4, d)
        g = G @ (up * vp - um * vm) - c
        dw = np.hstack([G * vp[None, :], G * up[None, :], -G * vm[None, :],
                        -G * um[None, :]])        # ∂g/∂(u₊, v₊, u₋, v₋)
        J = np.vstack([-vp[:, None] * dw, -up[:, None] * dw, vm[:, None] * dw, um[:, None] * dw])
        idx = np.arange(d)
        J[idx, d + idx] -= g
        J[d + idx, idx] -= g
        J[2 * d + idx, 3 * d + idx] += g
        J[3 * d + idx, 2 * d + idx] += g
        return J

    z0 = np.concatenate([np.full(d, u0), np.full(d, v0), np.full(d, u0), np.full(d, v0)])
    horizons = np.asarray(horizons, float)
    traj = integrate(rhs, z0, (0.0, horizons[-1]), jac=jac, t_eval=horizons)
    S = traj.states.reshape(len(horizons), 4, d)
    W = S[:, 0] * S[:, 1] - S[:, 2] * S[:, 3]
    res = np.linalg.norm(W @ X.T - y, axis=1) / np.linalg.norm(y)
    k = int(np.argmax(res <= CONVERGED_RTOL)) if np.any(res <= CONVERGED_RTOL) else -1
    return W[k], float(horizons[k])


def check_shape(inst: dict) -> Verdict:
    X, y = _data(inst)
    a = float(inst["scale"])
    comps, d_l2, shapes_done = [], [], []
    l2 = None
    for s in inst["shapes"]:
        u0, v0 = init_shape(a, s)
        w, T = product_flow_limit(X, y, u0, v0, inst["horizons"])
        res = float(np.linalg.norm(X @ w - y) / np.linalg.norm(y))
        comps.append(compare_le(f"s = {s:g}: ||Xw(T) − y|| / ||y||", res, LIMIT_RTOL,
                                note="the flow interpolates (hypothesis: Xw = y solvable)"))
        if res > LIMIT_RTOL:
            continue
        l2 = solve_min_norm(X, y, norm=2).w if l2 is None else l2
        if inst["reference"] == "l2":
            ref = l2
        else:
            b = 2 * a if inst["reference"] == "scale_only" else u0**2 + v0**2
            ref = solve_min_potential(X, y, Potential.hypentropy(b)).w
        dist = float(np.linalg.norm(w - ref) / np.linalg.norm(ref))
        comps.append(compare_le(f"s = {s:g}: ||w(T) − argmin{{Q_k : Xw = y}}|| / ||·||", dist,
                                LIMIT_RTOL, note=f"k = 2(u₀² + v₀²) = {2 * (u0**2 + v0**2):.3g}; "
                                                 f"T = {T:g}; reference {inst['reference']}"))
        shapes_done.append(s)
        d_l2.append(float(np.linalg.norm(w - l2) / np.linalg.norm(l2)))
    if d_l2:
        comps.append(report_value("||w(T) − X⁺y|| / ||X⁺y|| at the most unbalanced shape",
                                  d_l2[-1], theory="kernel-ward as s → 1",
                                  note=f"at s = 0: {d_l2[0]:.3g}"))
    figs = ()
    if d_l2:
        figs = (line_figure("azulay_shape", f"Distance of the limit to X⁺y at scale α = {a:g}",
                            [(1 - np.array(shapes_done) + 1e-3, np.maximum(d_l2, 1e-16),
                              "||w(∞) − X⁺y|| / ||X⁺y||", "o-")],
                            xlabel="1 − s (+1e-3)", ylabel="relative distance", xscale="log",
                            yscale="log"),)
    return Verdict("azulay-shape", "product diagonal net → argmin Q_k, k from the shape",
                   tuple(comps), figs, kind="limit",
                   instance={"n": X.shape[0], "d": X.shape[1], "seed": inst["seed"], "scale": a,
                             "shapes": list(inst["shapes"]), "reference": inst["reference"],
                             "interpolating": inst["interpolating"]})


THEOREMS = (
    Theorem(
        id="azulay-shape",
        title="The limit of a two-layer diagonal net depends on the initial shape through Q_k",
        source=SOURCE,
        statement=r"$w(t) \to \arg\min\{Q_k(w) : Xw = y\}$, $k = 2(u_0^2 + v_0^2)$",
        hypotheses=("w = u₊⊙v₊ − u₋⊙v₋", "u₊(0) = u₋(0) = u₀1, v₊(0) = v₋(0) = v₀1",
                    "squared loss (mean)", "Xw = y solvable"),
        kind="limit", make_instance=make_instance, check_instance=check_shape, quick=True),
)
