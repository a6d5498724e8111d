"""The ℓ1 / ℓ∞ KKT linear programs without the explicit ``(P, N)`` matrix (private).

docs/theory.md §7.6. The programs of :mod:`._lp` minimise ``||g − Mν||_*`` over the cone ``C``
of multipliers (``ν = (λ, μ)``, :class:`._qp.ConeStructure`) and ``g ∈ S_p(θ̃)``; ``M`` has one
row per parameter coordinate and one column per candidate (or kink variable). At MNIST scale
``M`` has ``P · N ≈ 10^10`` entries, but the program is touched only through

* ``rows(S)``: the rows ``M[S, :]`` of a few coordinates ``S`` (``(|S|, N)``);
* ``combine(ν)``: ``v = Mν`` over all ``P`` coordinates (one backward pass,
  ``∇_θ Σ_a ν_a q_a``);
* ``apply(w)``: ``Mᵀw`` (one forward-mode pass), ℓ∞ only.

``p = 1`` (residual ``max_j |g_j − v_j|``): **constraint generation over coordinates**. The LP
restricted to the rows of ``S`` is a relaxation (fewer constraints), so its optimum ``t_S`` is a
lower bound of the full optimum ``t*``. Its solution is priced on all ``P`` coordinates with one
``combine``; the most violated coordinates are added, until none is violated beyond the LP
tolerance. Then ``ν`` is feasible for the full LP with the same ``t`` (the restricted duals,
extended by zeros on the rows not in ``S``, are dual feasible for the full LP), and the achieved
``ε`` (recomputed from an explicit ``g`` over all ``P`` coordinates, :func:`._lp.best_residual`)
satisfies ``R t_S <= ε* <= ε``: the **gap** ``ε − R t_S`` certifies optimality.

``p = ∞`` (residual ``Σ_j |g_j − v_j|``, a sum over every coordinate, so rows cannot be left
out): **partial disaggregation with cutting planes.** The coordinates ``S`` (containing the
argmax set ``J``, where ``g`` lives) get their own term ``s_j >= |g_j − v_j|``; the rest ``T``
are aggregated into one variable ``τ`` bounded below by cuts
``τ >= ⟨w_k, g_T − M_T ν⟩ = −(M_Tᵀ w_k)ᵀ ν`` with sign vectors ``w_k ∈ {−1, 0, 1}^T`` (valid:
``Σ_T |r_j| >= ⟨w, r_T⟩`` whenever ``|w| <= 1``). The restricted LP is again a relaxation (lower
bound). Each round adds the cut of the current signs (``w = sign(r_T)``, one ``apply``) and moves
into ``S`` the coordinates whose sign changed from the previous cut; when the current signs agree
with a cut, that cut is exact and the lower bound equals the achieved value. Convergence is that
of a cutting-plane method (no round bound beyond ``max_rounds``); the gap is reported either way.

References
----------
G. B. Dantzig, P. Wolfe. Decomposition principle for linear programs. Oper. Res. 8 (1960).
J. E. Kelley. The cutting-plane method for solving convex programs. J. SIAM 8 (1960).
N. Tsilivis, G. Vardi, J. Kempe. Flavors of margin (2024), arXiv:2410.22069 (the programs).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ...errors import SolverError
from ...tolerances import TOLERANCES
from ._lp import best_residual, subgradient_pattern
from ._qp import ConeStructure
from ._report import NORM_NAMES
from ._solve import Build, Programs, Step

__all__: list[str] = []

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColgenResult:
    """Outcome of :func:`solve_lp_colgen`.

    Attributes
    ----------
    nu : ndarray of shape (N,)
        Multipliers in the cone (projected), within the budget.
    eps : float
        Achieved ``||g − Mν||_*`` over all ``P`` coordinates, ``g`` explicit in ``S_p(θ̃)``.
    lower : float
        A lower bound of the full LP's optimum (the restricted LP's optimum, a relaxation).
    gap_relative : float
        ``(eps − lower) / ||θ̃||_p``: the certificate of optimality (0 when exact).
    rounds, n_coords, n_cuts : int
        Generation rounds, coordinates in the final restricted LP, cuts (ℓ∞).
    message : str
        HiGHS's last status message.
    g : ndarray of shape (P,)
        The explicit element of ``S_p(θ̃)`` that achieves ``eps``.
    """

    nu: np.ndarray
    eps: float
    lower: float
    gap_relative: float
    rounds: int
    n_coords: int
    n_cuts: int
    message: str
    g: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {"eps": self.eps, "lower": self.lower, "gap_relative": self.gap_relative,
                "rounds": self.rounds, "n_coords": self.n_coords, "n_cuts": self.n_cuts,
                "message": self.message}


def _cone_rows(cone: ConeStructure, colscale, R, budget_row, budget):
    """Rows ``A x <= b`` of the cone and the budget in the scaled variables ``x``
    (``ν = x R / colscale``)."""
    Bc = cone.constraint_matrix() @ sp.diags(1.0 / colscale)
    A = [-Bc]
    b = [np.zeros(Bc.shape[0])]
    if budget_row is not None and np.isfinite(budget):
        row = np.concatenate([np.asarray(budget_row, float), np.zeros(cone.K)]) * R / colscale
        A.append(sp.csr_matrix(row[None, :]))
        b.append(np.array([float(budget)]))
    return sp.vstack(A).tocsr(), np.concatenate(b)


def _restricted_l1(Ms, sgn_S, zero_S, Acone, bcone, N, opts):
    """``min t`` over ``x`` s.t. ``|Ms x − sgn| <= t`` (support rows), ``|Ms x| <= 1 + t``
    (zero rows), cone rows; ``Ms = M[S] / colscale`` (scaled by ``R``)."""
    nS = Ms.shape[0]
    g = np.where(zero_S, 0.0, sgn_S)
    slack = np.where(zero_S, 1.0, 0.0)
    ones = -np.ones((nS, 1))
    A_ub = sp.vstack([
        sp.hstack([sp.csr_matrix(Ms), ones]),
        sp.hstack([sp.csr_matrix(-Ms), ones]),
        sp.hstack([Acone, sp.csr_matrix((Acone.shape[0], 1))]),
    ]).tocsc()
    b_ub = np.concatenate([g + slack, -g + slack, bcone])
    c = np.zeros(N + 1)
    c[-1] = 1.0
    bounds = [(None, None)] * N + [(0, None)]
    return linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs", options=opts)


def _restricted_linf(Ms, S, J, sgn, cuts, Acone, bcone, N, opts):
    """Variables ``(x, u, s, τ)``: ``s_j >= |Ms_j x − [j∈J] sgn_j u_j|`` on ``S``, ``Σu = 1``,
    ``τ >= −c_k·x`` for each cut; minimise ``Σ s + τ``."""
    nS, nJ = Ms.shape[0], J.size
    posJ = np.searchsorted(S, J)  # J ⊆ S, both sorted
    E = sp.csr_matrix((sgn[J], (posJ, np.arange(nJ))), shape=(nS, nJ))
    I = sp.identity(nS, format="csr")
    z1 = sp.csr_matrix((nS, 1))
    nk = len(cuts)
    C = -np.vstack(cuts) if nk else np.zeros((0, N))
    A_ub = sp.vstack([
        sp.hstack([sp.csr_matrix(Ms), -E, -I, z1]),
        sp.hstack([sp.csr_matrix(-Ms), E, -I, z1]),
        sp.hstack([sp.csr_matrix(C), sp.csr_matrix((nk, nJ + nS)), -np.ones((nk, 1))]),
        sp.hstack([Acone, sp.csr_matrix((Acone.shape[0], nJ + nS + 1))]),
    ]).tocsc()
    b_ub = np.concatenate([np.zeros(2 * nS + nk), bcone])
    A_eq = sp.hstack([sp.csr_matrix((1, N)), np.ones((1, nJ)), sp.csr_matrix((1, nS + 1))])
    c = np.concatenate([np.zeros(N + nJ), np.ones(nS + 1)])
    bounds = [(None, None)] * N + [(0, None)] * (nJ + nS + 1)
    return linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq.tocsc(), b_eq=[1.0], bounds=bounds,
                   method="highs", options=opts)


def solve_lp_colgen(theta, p, cone: ConeStructure, rows, combine, apply=None, *, rtol,
                    solver_eps, budget_row=None, budget=np.inf, nu0=None, gap_rtol,
                    initial=200, batch=200, max_rounds=60) -> ColgenResult:
    """``min_{ν ∈ C, g ∈ S_p(θ̃)} ||g − Mν||_*`` (optionally ``rᵀλ <= β``) without forming ``M``.

    Parameters
    ----------
    theta : ndarray of shape (P,)
    p : {1.0, inf}
    cone : ConeStructure
        The cone of ``ν`` (``N = cone.N`` variables).
    rows : callable
        ``rows(S)`` → ``M[S, :]``, shape ``(|S|, N)``, for sorted int coordinates ``S``.
    combine : callable
        ``combine(ν)`` → ``Mν``, shape ``(P,)``.
    apply : callable, optional
        ``apply(w)`` → ``Mᵀw``, shape ``(N,)`` (needed for ``p = ∞``).
    rtol, solver_eps : float
        ``norm_rtol`` (zero / argmax sets) and HiGHS's feasibility tolerances.
    budget_row, budget : optional
        The δ budget ``rᵀλ <= β``.
    nu0 : ndarray of shape (N,), optional
        A feasible start (e.g. the natural multipliers): its residual chooses the initial
        coordinates and, for ``p = ∞``, the first cut.
    gap_rtol : float
        Stop when ``(ε − lower) / ||θ̃||_p <= gap_rtol``; also the pricing tolerance.
    initial, batch, max_rounds : int
        Initial coordinates (besides the zero/argmax set), coordinates added per round, rounds.

    Returns
    -------
    ColgenResult
    """
    t0 = time.perf_counter()
    P, N = theta.size, cone.N
    R, mask = subgradient_pattern(theta, p, rtol)
    sgn = np.sign(theta)
    opts = {"primal_feasibility_tolerance": solver_eps, "dual_feasibility_tolerance": solver_eps,
            "presolve": True}
    nu_start = np.zeros(N) if nu0 is None else np.asarray(nu0, float)
    v0 = combine(nu_start)
    if p == 1.0:
        r0 = np.abs(np.where(mask, 0.0, R * sgn) - v0) - np.where(mask, R, 0.0)
    else:
        r0 = np.abs(v0) + np.where(mask, R, 0.0)
    k0 = min(P, initial)
    S = np.sort(np.argpartition(-r0, k0 - 1)[:k0]) if k0 < P else np.arange(P)
    if p != 1.0:
        S = np.union1d(S, np.flatnonzero(mask))
    Mrows = rows(S)
    colscale = np.max(np.abs(Mrows), axis=0) if Mrows.size else np.ones(N)
    colscale = np.where(colscale > 0, colscale, 1.0)
    Acone, bcone = _cone_rows(cone, colscale, R, budget_row, budget)
    J = np.flatnonzero(mask) if p != 1.0 else None
    cuts, cut_signs = [], []
    if p != 1.0:
        T = np.ones(P, dtype=bool)
        T[S] = False
        w = np.where(T, -np.sign(v0), 0.0)  # r_T = −v_T off J ⊆ S
        cuts.append(apply(w) / colscale)
        cut_signs.append(w)
    best = None
    msg = ""
    lower = 0.0
    for rnd in range(1, max_rounds + 1):
        Ms = Mrows / colscale
        if p == 1.0:
            res = _restricted_l1(Ms, sgn[S], mask[S], Acone, bcone, N, opts)
        else:
            res = _restricted_linf(Ms, S, J, sgn, cuts, Acone, bcone, N, opts)
        msg = f"HiGHS: {res.message}"
        if res.x is None or res.status != 0:
            break
        lower = float(res.fun) * R
        nu = cone.project(res.x[:N] / colscale * R)
        if budget_row is not None and np.isfinite(budget):
            used = float(np.asarray(budget_row) @ nu[:cone.n])
            if used > budget:
                nu = nu * (budget / used)
        v = combine(nu)
        u = res.x[N:N + J.size] if p != 1.0 else None
        eps, g = best_residual(theta, v, p, rtol, u=u)
        if best is None or eps < best[1]:
            best = (nu, eps, g)
        logger.debug("colgen p=%s round %d: %d coords, %d cuts, lower %.3e, eps %.3e (%.1f s)",
                     p, rnd, S.size, len(cuts), lower / R, eps / R, time.perf_counter() - t0)
        if (eps - lower) <= gap_rtol * R:
            break
        inS = np.zeros(P, dtype=bool)
        inS[S] = True
        if p == 1.0:
            t = float(res.x[N])
            viol = np.abs(np.where(mask, 0.0, sgn) - v / R) - np.where(mask, 1.0, 0.0) - t
            viol[inS] = -np.inf
            add = np.flatnonzero(viol > gap_rtol)
            add = add[np.argsort(-viol[add], kind="stable")][:batch]
        else:
            r = g - v
            wnew = np.where(inS, 0.0, np.sign(r))
            flips = np.flatnonzero((wnew != cut_signs[-1]) & ~inS)
            add = flips[np.argsort(-np.abs(r[flips]), kind="stable")][:batch]
        if add.size == 0 and p == 1.0:
            break
        if add.size:
            add = np.sort(add)
            Madd = rows(add)
            if p != 1.0:  # remove the new coordinates from the existing cuts (T shrinks)
                for k, wk in enumerate(cut_signs):
                    cuts[k] = cuts[k] - (wk[add] @ Madd) / colscale
                    wk = wk.copy()
                    wk[add] = 0.0
                    cut_signs[k] = wk
            order = np.argsort(np.concatenate([S, add]), kind="stable")
            S = np.concatenate([S, add])[order]
            Mrows = np.vstack([Mrows, Madd])[order]
            inS[add] = True
        if p != 1.0:
            r = g - v
            wnew = np.where(inS, 0.0, np.sign(r))
            cuts.append(apply(wnew) / colscale)
            cut_signs.append(wnew)
    if best is None:
        return ColgenResult(np.zeros(N), np.inf, 0.0, np.inf, rnd, int(S.size), len(cuts), msg)
    nu, eps, g = best
    return ColgenResult(nu, float(eps), float(lower), float(max(eps - lower, 0.0) / R), rnd,
                        int(S.size), len(cuts), msg, g)


# ------------------------------------------------------------------------------- numpy MLPs
def layered_rows(lg, S: np.ndarray) -> np.ndarray:
    """``M[S, :]`` of a :class:`._problem.LayeredGram`: coordinate ``(a, b)`` of layer ``l`` is
    ``δ_l[:, a] h_{l−1}[:, b]`` for every column; shape ``(|S|, N)``, never ``P`` wide."""
    S = np.asarray(S, dtype=np.int64)
    out = np.empty((S.size, lg.b.size))
    off = 0
    for W, Dl, Hl in zip(lg.Ws, lg.Ds, lg.Hs, strict=True):
        sel = np.flatnonzero((S >= off) & (S < off + W.size))
        if sel.size:
            a, b = np.divmod(S[sel] - off, W.shape[1])
            out[sel] = (Dl[:, a] * Hl[:, b]).T
        off += W.size
    return out


class ColgenPrograms(Programs):
    """:class:`._solve.Programs` for ℓ1/ℓ∞ on the layered structure (no Gram matrix, no explicit
    ``(P, N)`` matrix): every program is solved by :func:`solve_lp_colgen`."""

    def build(self, slopes, free, *, gram: bool = True) -> Build:
        return super().build(slopes, free, gram=False)

    def _colgen(self, bld: Build, r, nu0) -> ColgenResult:
        lg, prob = bld.M, self.prob
        nu0 = nu0 if nu0 is not None and nu0.shape == (bld.cone.N,) else None
        return solve_lp_colgen(prob.theta, self.p, bld.cone, lambda S: layered_rows(lg, S),
                               lg.combination, lg.apply, rtol=self.norm_rtol,
                               solver_eps=TOLERANCES.solver_eps, budget_row=r,
                               budget=self.budget, nu0=nu0,
                               gap_rtol=TOLERANCES.kkt_working_set_rtol)

    def solve(self, bld: Build, r=None, x0=None) -> Step:
        prob = self.prob
        r = prob.qc - 1.0 if r is None else r
        res = self._colgen(bld, r, self.nat_nu if x0 is None else x0)
        if not np.isfinite(res.eps):
            raise SolverError(f"the l{NORM_NAMES[self.p]} KKT LP failed: {res.message}",
                              attempts=[{"solver": "HiGHS", "status": res.message}])
        how = ("constraint generation over coordinates" if self.p == 1.0 else
               f"coordinates + {res.n_cuts} cutting planes")
        meth = (f"HiGHS LP by {how} ({res.rounds} round(s), {res.n_coords} of {prob.P} "
                f"coordinates x {bld.cone.N}; gap {res.gap_relative:.1e}; {res.message}; "
                f"no second phase)")
        return Step(res.nu, res.eps, res.gap_relative, meth, 0.0)

    def natural_scale_lp(self, v: np.ndarray, d0: float, cmax: float) -> float:
        """:meth:`Programs.natural_scale_lp` by constraint generation (no explicit matrix)."""
        prob = self.prob
        one = ConeStructure(1, np.zeros(0, dtype=int), prob.clarke_low)
        res = solve_lp_colgen(prob.theta, self.p, one, lambda S: v[S][:, None],
                              lambda c: c[0] * v, lambda w: np.array([w @ v]),
                              rtol=self.norm_rtol, solver_eps=TOLERANCES.solver_eps,
                              budget_row=np.array([d0]), budget=self.budget,
                              gap_rtol=TOLERANCES.kkt_working_set_rtol)
        return min(float(res.nu[0]), cmax) if np.isfinite(res.eps) else 0.0
