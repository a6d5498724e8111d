"""Gunasekar, Lee, Soudry & Srebro 2018: mirror flow on under-determined least squares converges
to the Bregman projection of its starting point (docs/theory.md §12.2).

Mirror flow ``d/dt ∇ψ(w) = −∇𝓛(w)``, ``𝓛(w) = (1/2n)||Xw − y||²``, keeps ``∇ψ(w(t)) − ∇ψ(w₀)``
in ``range(Xᵀ)``; its limit is ``argmin D_ψ(w, w₀) s.t. Xw = y`` (their §2; exact). Checked with
the negative entropy ``ψ(w) = Σ w log w − w`` (exponentiated gradient, ``w > 0``) and with the
hypentropy, integrating the flow in the mirror coordinates ``θ = ∇ψ(w)``
(``θ̇ = −Xᵀ(X∇ψ*(θ) − y)/n``) and comparing with the certified ``solve_min_potential``.
"""

from __future__ import annotations

import numpy as np

from solvers.flows import integrate
from solvers.programs import Potential, solve_min_norm, solve_min_potential

from ..checking import Source, Theorem, Verdict, compare_le
from ._common import line_figure, merge

__all__ = ["THEOREMS"]

SOURCE = Source(
    authors="S. Gunasekar, J. D. Lee, D. Soudry, N. Srebro",
    year=2018,
    title="Characterizing implicit bias in terms of optimization geometry (ICML 2018)",
    arxiv="1802.08246",
    where="§2 (mirror descent on losses with a unique finite root → argmin D_ψ(w, w₀))",
)

#: Relative distance of ``w(T)`` to the certified minimiser: the integrator's rtol is 1e-10 and
#: the flow's own residual at ``T`` is below ``CONVERGED_RTOL``; 1e-6 is the certificate level.
LIMIT_RTOL = 1e-6
#: The flow counts as converged (first horizon used) when ``||Xw − y||/||y||`` is below this.
CONVERGED_RTOL = 1e-8
HORIZONS = (1e1, 1e2, 1e3, 1e4, 1e5)

DEFAULTS = {"n": 6, "d": 20, "seed": 0, "potentials": ("entropy", "hypentropy"),
            "beta": 0.1, "horizons": HORIZONS,
            # broken instances: the reference ignores w0, or is the Euclidean projection
            "reference": "bregman", "interpolating": True}


def make_instance(seed: int = 0, **overrides) -> dict:
    """Default: ``X`` 6 × 20 with positive entries, ``y = X w♮`` with ``w♮ > 0``, ``w₀`` random
    positive; entropy and hypentropy (β = 0.1).

    Broken instances: ``reference="w0_ignored"`` (the minimiser from the potential's own
    minimiser instead of ``w₀``), ``reference="euclidean"`` (the projection ``w₀ + X⁺(y − Xw₀)``,
    the limit of plain gradient flow); ``interpolating=False`` (``n = 2d`` noisy rows: no
    interpolant, the flow stops short of ``Xw = y``).
    """
    return merge({**DEFAULTS, "seed": seed}, overrides)


def _data(inst):
    rng = np.random.default_rng(inst["seed"])
    n = inst["n"] if inst["interpolating"] else 2 * inst["d"]
    X = rng.uniform(0.0, 1.0, (n, inst["d"]))
    y = X @ rng.uniform(0.5, 1.5, inst["d"])
    if not inst["interpolating"]:
        y = y + 0.5 * rng.standard_normal(n)
    w0 = rng.uniform(0.2, 2.0, inst["d"])
    return X, y, w0


def _potential(name, inst):
    return Potential.entropy() if name == "entropy" else Potential.hypentropy(inst["beta"])


def mirror_flow_limit(X, y, potential: Potential, w0, horizons):
    """``(w(T), T)`` of mirror flow from ``w₀``, integrated in ``θ = ∇ψ(w)``."""
    n = X.shape[0]
    inv = potential.grad_inv
    G = X.T @ X / n
    c = X.T @ y / n

    def rhs(t, th):
        return c - X.T @ (X @ inv(th)) / n

    def jac(t, th):
        w = inv(th)
        return -G / potential.hess(w)[None, :]      # ∂θ̇/∂θ = −XᵀX diag(∇²ψ*(θ)) / n

    horizons = np.asarray(horizons, float)
    traj = integrate(rhs, potential.grad(w0), (0.0, horizons[-1]), jac=jac, t_eval=horizons)
    W = np.array([inv(th) for th in traj.states])
    res = np.linalg.norm(W @ X.T - y, axis=1) / np.linalg.norm(y)
    k = int(np.argmax(res <= CONVERGED_RTOL)) if np.any(res <= CONVERGED_RTOL) else -1
    return W[k], float(horizons[k])


def check_mirror(inst: dict) -> Verdict:
    X, y, w0 = _data(inst)
    comps, curves = [], []
    for name in inst["potentials"]:
        pot = _potential(name, inst)
        w, T = mirror_flow_limit(X, y, pot, w0, inst["horizons"])
        res = float(np.linalg.norm(X @ w - y) / np.linalg.norm(y))
        comps.append(compare_le(f"{name}: ||Xw(T) − y|| / ||y||", res, LIMIT_RTOL,
                                note="the flow interpolates (hypothesis: Xw = y solvable)"))
        if res > LIMIT_RTOL:   # no interpolant reached: the reference program is not defined
            continue
        if inst["reference"] == "euclidean":
            ref = w0 + solve_min_norm(X, y - X @ w0, norm=2).w
        elif inst["reference"] == "w0_ignored":
            ref = solve_min_potential(X, y, pot).w
        else:
            ref = solve_min_potential(X, y, pot, w0=w0).w
        dist = float(np.linalg.norm(w - ref) / np.linalg.norm(ref))
        comps.append(compare_le(f"{name}: ||w(T) − argmin{{D_ψ(w, w₀) : Xw = y}}|| / ||·||", dist,
                                LIMIT_RTOL, note=f"T = {T:g}; reference {inst['reference']}"))
        curves.append((np.array([T]), np.array([max(dist, 1e-16)]), name, "o"))
    fig = line_figure("gunasekar_mirror_limit", "Mirror flow at T against the Bregman projection",
                      curves, xlabel="T", ylabel="relative distance", xscale="log", yscale="log")
    return Verdict("gunasekar-mirror-flow", "mirror flow → argmin D_ψ(w, w₀)", tuple(comps),
                   (fig,), kind="limit",
                   instance={"n": inst["n"], "d": inst["d"], "seed": inst["seed"],
                             "potentials": list(inst["potentials"]),
                             "reference": inst["reference"],
                             "interpolating": inst["interpolating"]})


THEOREMS = (
    Theorem(
        id="gunasekar-mirror-flow",
        title="Mirror flow on underdetermined least squares converges to the Bregman projection",
        source=SOURCE,
        statement=r"$w(t) \to \arg\min\{D_\psi(w, w_0) : Xw = y\}$ for "
                  r"$\tfrac{d}{dt}\nabla\psi(w) = -\nabla\mathcal L(w)$",
        hypotheses=("ψ smooth, strictly convex (entropy, hypentropy)", "squared loss (mean)",
                    "Xw = y solvable inside the domain of ψ"),
        kind="limit", make_instance=make_instance, check_instance=check_mirror, quick=True),
)
