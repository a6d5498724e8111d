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
into ``S`` the coordinates whose sign changed from the previous cut; a coordinate ``j`` moved out
of an earlier cut's ``T`` enters that cut as ``+ s_j`` (``τ + Σ_moved s_j >= ⟨w_k, r⟩``, valid
since ``s_j >= |r_j| >= w_j r_j``), so old rows are never rewritten. When the current signs agree
with a cut, that cut is exact and the lower bound equals the achieved value. Convergence is that
of a cutting-plane method (no round bound beyond ``max_rounds``); the gap is reported either way.

**Warm start** (:class:`_Restricted`): the restricted LP is one ``highspy.Highs`` model kept
across rounds; rounds only add rows and columns, the kept basis stays dual feasible, and HiGHS
re-solves by the dual simplex from it instead of from scratch (ℓ1; for ℓ∞ a cold solve with
presolve was measured faster and is the default, ``_WARM_START``). A warm start that stalls (an
iteration limit, on very degenerate LPs) is replaced by a cold solve. The certificate does not
depend on the route: each round's LP optimum is a relaxation's optimum whichever basis it
started from.

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

from ...errors import SolverError
from ...tolerances import TOLERANCES
from ._lp import best_residual, subgradient_pattern
from ._qp import ConeStructure
from ._report import NORM_NAMES
from ._solve import Build, Programs, Step

__all__: list[str] = []

logger = logging.getLogger(__name__)

#: Constraint generation for numpy MLPs: initial coordinates and coordinates added per round
#: (module constants so that tests and benchmarks can change them).
_INITIAL, _BATCH = 200, 200
#: Re-solve each round from the previous basis (False: clear it, presolve and solve cold — the
#: same restricted LPs). Chosen by measurement (docs/benchmarks.md, 2000×300 random net): ℓ1 warm
#: 10,962 simplex iterations / 60 s CPU against 24,143 / 158 s cold; ℓ∞ warm 9,773 / 18 s
#: against 5,055 / 11 s cold (presolve shrinks the ℓ∞ LP's s_j columns; the kept basis does not).
_WARM_START = {1.0: True, np.inf: False}


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


class _Restricted:
    """The restricted LP as one ``highspy.Highs`` model kept across rounds (docs/theory.md §7.6).

    Rounds only **add** rows (coordinates, cuts) and columns (``s_j`` of new ℓ∞ coordinates,
    cost 1, entering the old cuts with coefficient −1). The previous optimal basis, extended by
    the new rows as basic (their slacks) and the new columns at their lower bound 0, stays dual
    feasible: for added rows trivially, and for an added column ``s_j`` its reduced cost
    ``1 − Σ_k y_k`` over the cuts' duals ``y_k ≥ 0`` is ``>= 0`` since the cuts' duals sum to at
    most the cost 1 of ``τ``. So HiGHS re-solves by the dual simplex from that basis
    (presolve runs only on the first solve; later solves start from the kept basis).
    """

    def __init__(self, lower, upper, cost, solver_eps, warm=True):
        import highspy

        self._hs = highspy
        self.warm = warm
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("primal_feasibility_tolerance", float(solver_eps))
        h.setOptionValue("dual_feasibility_tolerance", float(solver_eps))
        h.setOptionValue("solver", "simplex")
        h.setOptionValue("simplex_strategy", 1)  # dual simplex (the warm start's natural method)
        self.h = h
        self.n_rows = 0
        self.n_cols = 0
        self.iterations = 0
        self.solves = 0
        self.cold = 0  # warm starts abandoned for a cold solve
        self.add_cols(cost, lower, upper)

    @staticmethod
    def _bounds(b):
        return np.where(np.isfinite(b), b, np.where(b > 0, np.inf, -np.inf)).astype(float)

    def add_cols(self, cost, lower, upper, rows=None, vals=None):
        """Columns with costs and bounds; optional entries ``(rows[k], vals[k])`` per column
        (lists of arrays) in rows that already exist."""
        k = len(cost)
        if k == 0:
            return
        if rows is None:
            starts = np.zeros(k, dtype=np.int32)
            idx, val = np.zeros(0, dtype=np.int32), np.zeros(0)
        else:
            lens = np.array([len(r) for r in rows], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int32)
            idx = (np.concatenate(rows) if lens.sum() else np.zeros(0)).astype(np.int32)
            val = (np.concatenate(vals) if lens.sum() else np.zeros(0)).astype(float)
        st = self.h.addCols(k, np.asarray(cost, float), self._bounds(np.asarray(lower, float)),
                            self._bounds(np.asarray(upper, float)), int(idx.size), starts, idx,
                            val)
        if st == self._hs.HighsStatus.kError:
            raise SolverError(f"HiGHS refused {k} new columns ({st})")
        self.n_cols += k

    def add_rows(self, A, lower, upper):
        """Rows ``lower <= A z <= upper`` (``A`` dense or sparse, ``n_cols`` wide)."""
        A = sp.csr_matrix(A)
        if A.shape[0] == 0:
            return
        A.sum_duplicates()
        st = self.h.addRows(A.shape[0], self._bounds(np.asarray(lower, float)),
                            self._bounds(np.asarray(upper, float)), int(A.nnz),
                            A.indptr[:-1].astype(np.int32), A.indices.astype(np.int32),
                            A.data.astype(float))
        # kWarning: entries below HiGHS's small_matrix_value dropped, as linprog's HiGHS does
        if st == self._hs.HighsStatus.kError:
            raise SolverError(f"HiGHS refused {A.shape[0]} new rows ({st})")
        self.n_rows += A.shape[0]

    def solve(self):
        """``(x or None, objective, message)``; ``x`` only at a proven optimum.

        A warm start (a kept basis) runs the dual simplex under an iteration limit of
        ``2 (rows + columns) + 1000``: on very degenerate restricted LPs (an exact ℓ∞ KKT point,
        objective 0) it can stall, and is then abandoned for a cold solve (presolve, no basis).
        """
        h, hs = self.h, self._hs
        warm = self.solves > 0 and self.warm
        if not warm:
            h.clearSolver()
        h.setOptionValue("simplex_iteration_limit",
                         2 * (self.n_rows + self.n_cols) + 1000 if warm else 2**31 - 1)
        h.run()
        status = h.getModelStatus()
        self.iterations += int(h.getInfo().simplex_iteration_count)
        if warm and status != hs.HighsModelStatus.kOptimal:
            logger.debug("warm-started dual simplex stopped (%s); solving cold",
                         h.modelStatusToString(status))
            self.cold += 1
            h.clearSolver()
            h.setOptionValue("simplex_iteration_limit", 2**31 - 1)
            h.run()
            status = h.getModelStatus()
            self.iterations += int(h.getInfo().simplex_iteration_count)
        self.solves += 1
        msg = f"HiGHS: {h.modelStatusToString(status)}"
        if status != hs.HighsModelStatus.kOptimal:
            return None, np.inf, msg
        x = np.asarray(h.getSolution().col_value, dtype=float)
        return x, float(h.getInfo().objective_function_value), msg


def _cone_rows(cone: ConeStructure, colscale, R, budget_row, budget):
    """The cone and the budget in the scaled variables ``x`` (``ν = x R / colscale``):
    ``(lower, A, b)`` with column lower bounds ``lower`` (the singleton rows ``ν_i >= 0``) and
    the remaining rows ``A x <= b``."""
    B = cone.constraint_matrix().tocsr()
    nnz = np.diff(B.indptr)
    single = (nnz == 1)
    lower = np.full(cone.N, -np.inf)
    if np.any(single):
        cols = B.indices[B.indptr[:-1][single]]
        vals = B.data[B.indptr[:-1][single]]
        if np.any(vals <= 0):  # not of the form ν_i >= 0: keep such rows as rows
            single[np.flatnonzero(single)[vals <= 0]] = False
            cols = cols[vals > 0]
        lower[cols] = 0.0
    Bc = B[~single] @ sp.diags(1.0 / colscale)
    A = [-Bc]
    b = [np.zeros(Bc.shape[0])]
    if budget_row is not None and np.isfinite(budget):
        row = np.concatenate([np.asarray(budget_row, float), np.zeros(cone.K)]) * R / colscale
        A.append(sp.csr_matrix(row[None, :]))
        b.append(np.array([float(budget)]))
    return lower, sp.vstack(A).tocsr(), np.concatenate(b)


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
    nu_start = np.zeros(N) if nu0 is None else np.asarray(nu0, float)
    v0 = combine(nu_start)
    if p == 1.0:
        r0 = np.abs(np.where(mask, 0.0, R * sgn) - v0) - np.where(mask, R, 0.0)
    else:
        r0 = np.abs(v0) + np.where(mask, R, 0.0)
    k0 = min(P, initial)
    S = np.sort(np.argpartition(-r0, k0 - 1)[:k0]) if k0 < P else np.arange(P)
    J = np.flatnonzero(mask) if p != 1.0 else None
    if p != 1.0:
        S = np.union1d(S, J)
    Mrows = rows(S)
    colscale = np.max(np.abs(Mrows), axis=0) if Mrows.size else np.ones(N)
    colscale = np.where(colscale > 0, colscale, 1.0)
    lower_nu, Acone, bcone = _cone_rows(cone, colscale, R, budget_row, budget)
    inS = np.zeros(P, dtype=bool)
    inS[S] = True
    if p == 1.0:
        # columns (x, t): min t; per coordinate |Ms_j x − g_j| <= t + slack_j
        lp = _Restricted(np.concatenate([lower_nu, [0.0]]), np.full(N + 1, np.inf),
                         np.concatenate([np.zeros(N), [1.0]]), solver_eps, _WARM_START[1.0])
        lp.add_rows(sp.hstack([Acone, sp.csr_matrix((Acone.shape[0], 1))]),
                    np.full(Acone.shape[0], -np.inf), bcone)

        def add_coords(idx, Mk):
            gk = np.where(mask[idx], 0.0, sgn[idx])
            sk = np.where(mask[idx], 1.0, 0.0)
            Ms = Mk / colscale
            one = np.ones((idx.size, 1))
            lp.add_rows(np.hstack([Ms, -one]), np.full(idx.size, -np.inf), gk + sk)
            lp.add_rows(np.hstack([Ms, one]), gk - sk, np.full(idx.size, np.inf))
        add_coords(S, Mrows)
        cut_rows: list[int] = []
        cut_cover = None
    else:
        # columns (x, u, τ, s_S…): min Σ s + τ; Σ u = 1; per coordinate of S
        # |Ms_j x − [j ∈ J] sgn_j u_j| <= s_j; cuts τ + Σ_{j moved since the cut} s_j >= −c_k·x
        nJ = J.size
        lp = _Restricted(np.concatenate([lower_nu, np.zeros(nJ + 1)]),
                         np.full(N + nJ + 1, np.inf),
                         np.concatenate([np.zeros(N + nJ), [1.0]]), solver_eps,
                         _WARM_START[np.inf])
        lp.add_rows(sp.hstack([Acone, sp.csr_matrix((Acone.shape[0], nJ + 1))]),
                    np.full(Acone.shape[0], -np.inf), bcone)
        lp.add_rows(np.concatenate([np.zeros(N), np.ones(nJ), [0.0]])[None, :], [1.0], [1.0])
        s_col = np.full(P, -1, dtype=np.int64)   # the column of s_j, for j in S
        cut_rows = []                            # HiGHS row of each cut
        cut_cover = np.zeros((0, P), dtype=bool)  # coordinates each cut aggregates (its T)
        posJ = np.full(P, -1, dtype=np.int64)
        posJ[J] = np.arange(nJ)

        def add_coords(idx, Mk):
            k = idx.size
            first = lp.n_cols
            # new s_j columns: −1 in every earlier cut that aggregated coordinate j
            crow = [np.asarray(cut_rows, dtype=np.int64)[cut_cover[:, j]] for j in idx]
            lp.add_cols(np.ones(k), np.zeros(k), np.full(k, np.inf), crow,
                        [-np.ones(c.size) for c in crow])
            s_col[idx] = first + np.arange(k)
            Ms = sp.csr_matrix(Mk / colscale)
            inJ = posJ[idx] >= 0
            ncols = lp.n_cols
            E = sp.csr_matrix((-sgn[idx][inJ], (np.flatnonzero(inJ), N + posJ[idx][inJ])),
                              shape=(k, ncols))
            Sd = sp.csr_matrix((np.ones(k), (np.arange(k), s_col[idx])), shape=(k, ncols))
            base = sp.hstack([Ms, sp.csr_matrix((k, ncols - N))]).tocsr() + E
            lp.add_rows(base - Sd, np.full(k, -np.inf), np.zeros(k))
            lp.add_rows(base + Sd, np.zeros(k), np.full(k, np.inf))

        def add_cut(w):
            nonlocal cut_cover
            c = apply(w) / colscale
            row = np.zeros(lp.n_cols)
            row[:N] = -c
            row[N + nJ] = -1.0
            cut_rows.append(lp.n_rows)
            lp.add_rows(row[None, :], [-np.inf], [0.0])
            cut_cover = np.vstack([cut_cover, (w != 0)[None, :]])
        add_coords(S, Mrows)
        add_cut(np.where(inS, 0.0, -np.sign(v0)))  # r_T = −v_T off J ⊆ S
        cut_sign = np.where(inS, 0.0, -np.sign(v0))
    best = None
    msg = ""
    lower = 0.0
    for rnd in range(1, max_rounds + 1):
        x, obj, msg = lp.solve()
        if x is None:
            break
        lower = obj * R
        nu = cone.project(x[:N] / colscale * R)
        if budget_row is not None and np.isfinite(budget):
            used = float(np.asarray(budget_row) @ nu[:cone.n])
            if used > budget:
                nu = nu * (budget / used)
        v = combine(nu)
        u = x[N:N + J.size] if p != 1.0 else None
        eps, g = best_residual(theta, v, p, rtol, u=u)
        if best is None or eps < best[1]:
            best = (nu, eps, g)
        logger.debug("colgen p=%s round %d: %d coords, %d cuts, lower %.3e, eps %.3e, "
                     "%d simplex iterations so far (%.1f s)", p, rnd, S.size, len(cut_rows),
                     lower / R, eps / R, lp.iterations, time.perf_counter() - t0)
        if (eps - lower) <= gap_rtol * R:
            break
        if p == 1.0:
            t = float(x[N])
            viol = np.abs(np.where(mask, 0.0, sgn) - v / R) - np.where(mask, 1.0, 0.0) - t
            viol[inS] = -np.inf
            add = np.flatnonzero(viol > gap_rtol)
            add = add[np.argsort(-viol[add], kind="stable")][:batch]
        else:
            r = g - v
            wnew = np.where(inS, 0.0, np.sign(r))
            flips = np.flatnonzero((wnew != cut_sign) & ~inS)
            add = flips[np.argsort(-np.abs(r[flips]), kind="stable")][:batch]
        if add.size == 0 and p == 1.0:
            break
        if add.size:
            add = np.sort(add)
            add_coords(add, rows(add))
            S = np.union1d(S, add)
            inS[add] = True
        if p != 1.0:
            cut_sign = np.where(inS, 0.0, np.sign(g - v))
            add_cut(cut_sign)
    msg = (f"{msg} (dual simplex warm-started across rounds, {lp.iterations} iterations, "
           f"{lp.cold} cold re-solve(s))" if lp.warm else
           f"{msg} (re-solved cold each round, {lp.iterations} simplex iterations)")
    if best is None:
        return ColgenResult(np.zeros(N), np.inf, 0.0, np.inf, rnd, int(S.size), len(cut_rows),
                            msg)
    nu, eps, g = best
    return ColgenResult(nu, float(eps), float(lower), float(max(eps - lower, 0.0) / R), rnd,
                        int(S.size), len(cut_rows), msg, g)


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
                               gap_rtol=TOLERANCES.kkt_working_set_rtol, initial=_INITIAL,
                               batch=_BATCH)

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
