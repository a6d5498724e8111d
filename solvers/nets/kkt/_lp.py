"""Linear programs of the ℓ1 / ℓ∞ KKT check (private).

After Tsilivis, Vardi & Kempe 2024.

Generalised stationarity of ``min ½||θ||_p² s.t. q_i(θ) ≥ 1`` asks for
``Σ λ_i h_i ∈ ∂(½||·||_p²)(θ̃)`` (docs/theory.md §7). With ``v = Mν`` (``M`` of shape ``(P, N)``,
columns = the Clarke generators of :mod:`solvers._kkt_qp`, ``ν ∈ C``), the residual is
``ε = min_g ||g − v||_*`` over the subdifferential
``S_p(θ) = {g : ||g||_* ≤ ||θ||, ⟨g, θ⟩ ≥ ||θ||²}``, made explicit:

* ``p = 1`` (dual ``ℓ∞``). ``S_1(θ) = ||θ||_1 ∂||θ||_1``: ``g_j = ||θ||_1 sign θ_j`` where
  ``θ_j ≠ 0`` and ``|g_j| ≤ ||θ||_1`` where ``θ_j = 0``. (From
  ``⟨g, θ⟩ ≤ ||g||_∞ ||θ||_1 ≤ ||θ||_1²``, equality forces ``g_j = ||θ||_1 sign θ_j`` on the
  support.) ``g`` is eliminated: on the support the rows are ``|v_j − g_j| ≤ t``; at zeros
  ``|v_j| ≤ ||θ||_1 + t`` (distance to the box).
* ``p = ∞`` (dual ``ℓ1``). ``S_∞(θ) = ||θ||_∞ conv{sign(θ_j) e_j : |θ_j| = ||θ||_∞}``: ``g``
  lives on the argmax set ``J`` with ``g_j = sign(θ_j) u_j``, ``u ≥ 0``, ``Σ u = ||θ||_∞`` (from
  ``⟨g, θ⟩ ≤ ||g||_1 ||θ||_∞ ≤ ||θ||_∞²`` with equality only on ``J``). Off ``J`` the residual is
  ``|v_j|``; the LP has ``|J|`` variables for ``g`` instead of ``P``.

"Zero" and "argmax" use the relative tolerance ``norm_rtol`` (the subdifferential is then that of
the nearby point where these coordinates are exactly zero / tied). Everything is scaled by
``R = ||θ||_p`` so the LP's optimum is ``ε / R`` directly. The returned ``ε`` is recomputed in numpy
from the (cone-projected) multipliers and an explicit ``g ∈ S_p``: an achieved, valid value.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ._qp import ConeStructure

__all__: list[str] = []


def subgradient_pattern(theta: np.ndarray, p: float, rtol: float):
    """``(R, mask)``: ``R = ||θ||_p`` and the zero set (``p = 1``) or argmax set (``p = ∞``)."""
    a = np.abs(theta)
    if p == 1.0:
        return float(a.sum()), a <= rtol * float(a.max())
    top = float(a.max())
    return top, a >= (1.0 - rtol) * top


def best_residual(theta: np.ndarray, v: np.ndarray, p: float, rtol: float,
                  u: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """``(ε, g)``: an explicit ``g ∈ S_p(θ)`` and ``||g − v||_*`` (exactly optimal in ``g`` for
    ``p = 1``; for ``p = ∞`` with the weights ``u`` given on the argmax set, or the best vertex)."""
    R, mask = subgradient_pattern(theta, p, rtol)
    sgn = np.sign(theta)
    if p == 1.0:
        g = R * sgn
        g[mask] = np.clip(v[mask], -R, R)
        return float(np.max(np.abs(g - v))), g
    J = np.flatnonzero(mask)
    if u is None or u.shape != J.shape or not np.all(np.isfinite(u)):
        u = np.zeros(J.size)
        u[int(np.argmax(sgn[J] * v[J]))] = 1.0
    u = np.maximum(u, 0.0)
    tot = float(u.sum())
    u = u / tot if tot > 0 else np.full(J.size, 1.0 / J.size)
    g = np.zeros_like(theta)
    g[J] = R * sgn[J] * u
    return float(np.sum(np.abs(g - v))), g


def solve_cone_lp(M: np.ndarray, theta: np.ndarray, p: float, cone: ConeStructure, *,
                  rtol: float, solver_eps: float, budget_row: np.ndarray | None = None,
                  budget: float = np.inf, eps_cap: float | None = None):
    """``min_{ν ∈ C, g ∈ S_p(θ)} ||g − Mν||_*``, optionally with ``rᵀλ <= β`` (the δ budget).

    With ``eps_cap`` (relative, ``ε / ||θ||_p``) the LP instead minimises ``δ = rᵀλ`` subject to
    ``ε / ||θ||_p <= eps_cap`` (the second phase: smallest δ among the optimal multipliers).

    Returns ``(ν, ε, g, status_text, optimal)``.
    """
    P, N = M.shape
    R, mask = subgradient_pattern(theta, p, rtol)
    sgn = np.sign(theta)
    colscale = np.max(np.abs(M), axis=0)
    colscale[colscale == 0.0] = 1.0
    Ms = sp.csr_matrix(M / colscale)  # columns O(1); the target g is scaled by 1/R below
    Bc = cone.constraint_matrix() @ sp.diags(1.0 / colscale)
    # ν = ν' R / colscale; the budget rᵀλ <= β becomes -(−r R / colscale)ᵀν' >= -β
    b_extra = np.zeros(0)
    if budget_row is not None and np.isfinite(budget):
        row = np.concatenate([-np.asarray(budget_row, float), np.zeros(cone.K)]) * R / colscale
        Bc = sp.vstack([Bc, sp.csr_matrix(row[None, :])])
        b_extra = np.array([-float(budget)])
    Bc = sp.csr_matrix(Bc)
    mB = Bc.shape[0]
    # rows "-Bc ν' <= -c" with c = 0 for the cone and -β for the budget
    b_cone = np.concatenate([np.zeros(mB - b_extra.size), -b_extra])
    # the LP solves for g / R with ν = ν' R / colscale, so its optimum is ε / R
    delta_obj = None
    if eps_cap is not None and budget_row is not None:
        delta_obj = np.concatenate([np.asarray(budget_row, float), np.zeros(cone.K)]) * R / colscale
    opts = {"primal_feasibility_tolerance": solver_eps, "dual_feasibility_tolerance": solver_eps,
            "presolve": True}
    if p == 1.0:
        gS = sgn  # g / R on the support
        S = ~mask
        MS, MZ = Ms[S], Ms[mask]
        nS, nZ = MS.shape[0], MZ.shape[0]
        A_ub = sp.vstack([
            sp.hstack([MS, -np.ones((nS, 1))]),
            sp.hstack([-MS, -np.ones((nS, 1))]),
            sp.hstack([MZ, -np.ones((nZ, 1))]),
            sp.hstack([-MZ, -np.ones((nZ, 1))]),
            sp.hstack([-Bc, sp.csr_matrix((mB, 1))]),
        ]).tocsc()
        b_ub = np.concatenate([gS[S], -gS[S], np.ones(nZ), np.ones(nZ), b_cone])
        c = np.zeros(N + 1)
        c[-1] = 1.0
        bounds = [(None, None)] * N + [(0, None)]
        if delta_obj is not None:
            c = np.concatenate([delta_obj, [0.0]])
            bounds[-1] = (0, float(eps_cap))
        res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs", options=opts)
        u = None
    else:
        J = np.flatnonzero(mask)
        nJ = J.size
        EJ = sp.csr_matrix((sgn[J], (J, np.arange(nJ))), shape=(P, nJ))
        I = sp.identity(P, format="csr")
        A_ub = sp.vstack([
            sp.hstack([Ms, -EJ, -I]),
            sp.hstack([-Ms, EJ, -I]),
            sp.hstack([-Bc, sp.csr_matrix((mB, nJ + P))]),
        ]).tocsc()
        b_ub = np.concatenate([np.zeros(2 * P), b_cone])
        A_eq = sp.hstack([sp.csr_matrix((1, N)), np.ones((1, nJ)), sp.csr_matrix((1, P))])
        c = np.concatenate([np.zeros(N + nJ), np.ones(P)])
        if delta_obj is not None:
            A_ub = sp.vstack([A_ub, sp.csr_matrix(c[None, :])]).tocsc()
            b_ub = np.concatenate([b_ub, [float(eps_cap)]])
            c = np.concatenate([delta_obj, np.zeros(nJ + P)])
        bounds = [(None, None)] * N + [(0, None)] * (nJ + P)
        res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq.tocsc(), b_eq=[1.0], bounds=bounds,
                      method="highs", options=opts)
        u = None if res.x is None else res.x[N:N + nJ]
    if res.x is None:
        return None, np.inf, None, f"HiGHS: {res.message}", False
    nu = cone.project(res.x[:N] / colscale * R)
    if budget_row is not None and np.isfinite(budget):
        used = float(np.asarray(budget_row) @ nu[: cone.n])
        if used > budget:
            nu = nu * (budget / used)
    eps, g = best_residual(theta, M @ nu, p, rtol, u=u)
    return nu, eps, g, f"HiGHS: {res.message}", bool(res.status == 0)
