"""The ℓp max-margin (hard-margin SVM without bias) program, solved and certified.

Fast routes, chosen by shape (the reason is recorded in ``MarginSolution.route_reason``): ℓ2 by
least-distance programming (Lawson & Hanson) on a working set when ``n >= d`` and in the
``n``-dimensional Gram dual when ``d > n`` (docs/theory.md §5.7); ℓ1/ℓ∞ by linear programs with
constraint generation (HiGHS), with column generation first when ``d > n`` (§5.8); other ``p``
by Clarabel on a working set of examples when ``n`` is large (§5.10); CVXPY + Clarabel for any
``p >= 1`` and as fallback. The data are scaled exactly (powers of two, §5.9). Every route's
answer is checked by the same numpy certificate before it is returned.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.optimize as so
import scipy.sparse as sp

from .._validation import check_labels, check_norm, check_rtol, check_X, dual_exponent
from ..errors import MarginBelowResolutionError, SolverError
from ..tolerances import TOLERANCES
from ._certificate import (
    Certificate,
    build_certificate,
    dual_image,
    lp_norm,
    margins_with_bound,
    precision_limited,
    raise_precision_limit,
    refine_multipliers,
    rounding_floors,
)
from ._chain import Infeasible, RouteOutcome, run_chain
from ._farkas import raise_not_separable
from ._wide import ldp_gram, margin_lp_colgen

__all__ = ["MarginSolution", "solve_max_margin", "MAX_MARGIN_METHODS"]

MAX_MARGIN_METHODS = ("auto", "working-set-nnls", "nnls", "kkt-equilibrated", "dual-gram",
                      "highs-cg", "colgen-ipm", "highs", "working-set-clarabel", "cvxpy-clarabel",
                      "cvxpy-osqp", "cvxpy-scs")
"""Accepted values of ``method=`` in :func:`solve_max_margin`."""


@dataclass(frozen=True)
class MarginSolution:
    """A certified solution of the ℓp max-margin program (see :func:`solve_max_margin`).

    Attributes
    ----------
    w : ndarray of shape (d,)
        The minimum-norm ``w`` with ``y_i <w, x_i> >= 1``.
    margin : float
        ``1 / ||w||_p``, the geometric ``p``-margin
        :math:`\\gamma_p = \\max_{\\|u\\|_p \\le 1} \\min_i y_i \\langle u, x_i\\rangle`.
    direction : ndarray of shape (d,)
        ``w / ||w||_p``.
    dual : ndarray of shape (n,)
        Multipliers ``λ >= 0`` of the *half-squared* program
        :math:`\\min \\tfrac12\\|w\\|_p^2` s.t. :math:`y_i\\langle w, x_i\\rangle \\ge 1`, i.e. the
        maximiser of :math:`\\mathbf 1^\\top\\lambda - \\tfrac12\\|G^\\top\\lambda\\|_q^2`,
        ``G = y[:, None] * X``. For ``p = 2``: ``w = G^T λ``. (The multipliers ``ν`` of
        :math:`\\min\\|w\\|_p` are ``λ / ||w||_p``; ``λ / sum(λ)`` is the worst-case mixture of
        examples.)
    support : ndarray of shape (k,), int
        Indices ``i`` with ``y_i <w, x_i> - 1 <= support_rtol`` (active constraints).
    support_rtol : float
        The tolerance used for ``support`` (``TOLERANCES.support_rtol`` by default).
    norm : float
        The exponent ``p`` (``inf`` for ℓ∞).
    certificate : Certificate
        Primal infeasibility, dual residual and duality gap, computed in numpy.
    solver : str
        The route whose answer verified (e.g. ``"working-set-nnls"``, ``"dual-gram"``,
        ``"highs-cg"``, ``"colgen-ipm"``).
    status : str
        ``"optimal"`` (only certified solutions are ever returned).
    attempts : tuple of dict
        Every route tried, its reported status and why it was rejected (empty string if accepted).
    route_reason : str
        Why the route chain was chosen (the shape rule, or the explicit ``method=``).
    """

    w: np.ndarray
    margin: float
    direction: np.ndarray
    dual: np.ndarray
    support: np.ndarray
    support_rtol: float
    norm: float
    certificate: Certificate
    solver: str
    status: str = "optimal"
    attempts: tuple = field(default_factory=tuple)
    route_reason: str = ""

    def to_dict(self) -> dict:
        """JSON-serialisable view: arrays as lists, ``inf`` norm as the string ``"inf"``."""
        return {
            "w": self.w.tolist(), "margin": float(self.margin),
            "direction": self.direction.tolist(), "dual": self.dual.tolist(),
            "support": [int(i) for i in self.support], "support_rtol": float(self.support_rtol),
            "norm": "inf" if np.isinf(self.norm) else float(self.norm),
            "certificate": self.certificate.to_dict(), "solver": self.solver,
            "status": self.status, "attempts": [dict(a) for a in self.attempts],
            "route_reason": self.route_reason,
        }


def margin_certificate(G: np.ndarray, w: np.ndarray, lam: np.ndarray, p: float, *,
                       rtol: float | None = None, row_norm_max: float | None = None,
                       frobenius: float | None = None) -> Certificate:
    """Certificate of ``(w, λ)`` for :math:`\\min\\tfrac12\\|w\\|_p^2` s.t. :math:`Gw \\ge 1`.

    The margins ``G w`` are evaluated exactly wherever float64's rounding error could decide
    primal feasibility (:func:`~solvers.programs._certificate.margins_with_bound`, docs/theory.md
    §5.9), and so is ``z = G^T λ`` where its error bound could decide stationarity or the gap;
    ``row_norm_max`` (``max_i ||g_i||_2``) and ``frobenius`` (``||G||_F``) are computed if not
    given.
    """
    rtol = TOLERANCES.certificate_rtol if rtol is None else rtol
    q = dual_exponent(p)
    z = dual_image(G, lam, lp_norm(w, p), tol=rtol, frobenius=frobenius, q=q)
    margins = margins_with_bound(G, w, row_norm_max=row_norm_max, tol=rtol)
    return build_certificate(
        primal_infeasibility=float(max(0.0, 1.0 - float(np.min(margins)))),
        w_norm=lp_norm(w, p), z_dual_norm=lp_norm(z, q), z_dot_w=float(z @ w),
        b_dot_lam=float(np.sum(lam)), lam=lam, inequality=True, rtol=rtol)


# ---------------------------------------------------------------- ℓ2: least-distance programming
def _ldp_nnls(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-distance program :math:`\\min\\|w\\|_2` s.t. :math:`Gw \\ge 1` by one NNLS.

    Lawson & Hanson (1974), *Solving Least Squares Problems*, Ch. 23, Alg. LDP: with
    ``E = [G^T; 1^T]`` (shape ``(d+1, m)``) and ``f = e_{d+1}``, let ``u = argmin_{u>=0}
    ||E u - f||`` and ``r = E u - f``. If ``r = 0`` the constraints are incompatible; otherwise
    ``w = -r[:d] / r[d] = G^T u / (1 - 1^T u)``. The NNLS optimality conditions
    ``E^T r >= 0``, ``u ⊙ E^T r = 0`` read ``(1 - 1^T u)(G w - 1) >= 0`` with complementarity,
    so ``λ = u / (1 - 1^T u)`` are the multipliers of ``½||w||²`` (``w = G^T λ``).
    """
    m, d = G.shape
    # columns e_i = (g_i, 1) scaled to unit norm: the same NNLS in u_i' = ||e_i|| u_i, but
    # rows of very different norms no longer dominate Lawson-Hanson's pricing
    cn = np.sqrt(np.einsum("ij,ij->i", G, G) + 1.0)
    E = np.vstack([G.T, np.ones((1, m))]) / cn
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = so.nnls(E, f, maxiter=max(50 * (d + 1), 3 * m))
    u = u / cn
    denom = 1.0 - float(u.sum())
    if denom <= 1e3 * np.finfo(float).eps:
        raise Infeasible(f"LDP residual vanishes (1 - sum(u) = {denom:.2e})")
    lam = u / denom
    return G.T @ lam, lam


def _polish_l2(G: np.ndarray, out: RouteOutcome, support_rtol: float):
    """Re-solve the ℓ2 KKT system on the route's support ``S``, row-equilibrated.

    At the optimum ``G_S w = 1`` and ``w = G_S^T λ_S`` (Karush–Kuhn–Tucker), so ``w`` is the
    minimum-norm solution of ``D G_S w = D 1`` for any positive diagonal ``D``; with ``D`` the
    inverse row norms, least squares (SVD) resolves rows of norms 1e-12 and 1 alike, which the
    least-distance program cannot. Returns ``(w, λ)`` or ``None`` (no support, or ``λ_S < 0``);
    the caller certifies it like any route's answer.
    """
    S = np.flatnonzero((out.dual > 0) | (G @ out.w - 1.0 <= support_rtol))
    n = G.shape[0]
    for _ in range(20):  # primal-dual active set on the support guess (Hintermüller et al. 2002)
        if S.size == 0 or S.size > 5000:
            return None
        GS = G[S]
        dinv = 1.0 / np.sqrt(np.einsum("ij,ij->i", GS, GS))
        A = dinv[:, None] * GS
        w = np.linalg.lstsq(A, dinv, rcond=TOLERANCES.rank_rtol)[0]
        lam_S = dinv * np.linalg.lstsq(A.T, w, rcond=TOLERANCES.rank_rtol)[0]
        inS = np.zeros(n, dtype=bool)
        inS[S] = True
        drop = np.zeros(n, dtype=bool)
        drop[S] = lam_S < 0
        add = ~inS & (G @ w < 1.0 - TOLERANCES.solver_eps)
        if not drop.any() and not add.any():
            lam = np.zeros(n)
            lam[S] = lam_S
            return w, lam
        S = np.flatnonzero((inS & ~drop) | add)
    return None


def _kkt_solve(A_S: np.ndarray, rhs: np.ndarray, W: np.ndarray):
    """Solve ``W v = A_S^T μ``, ``A_S v = rhs`` (the KKT system of ``min ½ v^T diag(W) v``
    s.t. ``A_S v = rhs``) as one saddle-point system, by LU with partial pivoting; least squares
    (minimum norm) when it is singular. Returns ``(v, μ)``."""
    k, d = A_S.shape
    M = np.zeros((d + k, d + k))
    M[np.arange(d), np.arange(d)] = W
    M[:d, d:] = -A_S.T
    M[d:, :d] = A_S
    f = np.concatenate([np.zeros(d), rhs])
    try:
        x = np.linalg.solve(M, f)
        if not np.all(np.isfinite(x)):
            raise np.linalg.LinAlgError("non-finite")
    except np.linalg.LinAlgError:
        x = np.linalg.lstsq(M, f, rcond=None)[0]
    return x[:d], x[d:]


_KKT_FLOOR = 1e-12  # every column to max-abs ~1 (a floor for zero columns); measured: a
# floor of 1 (only large columns scaled) failed 4 of 60 random data with a column x 1e-7..1e-9
_KKT_MAX = 3000  # the dense saddle-point system of the equilibrated route is (d + |S|)^2


def _clarabel_seed(Ap: np.ndarray, b: np.ndarray, W: np.ndarray):
    """Support guess for :func:`_route_kkt_equilibrated`: the multipliers of the equilibrated,
    weighted program solved by Clarabel (an interior-point method is indifferent to the tiny
    weights); ``None`` if it fails. Only a guess: the active set and the certificate decide."""
    import cvxpy as cp

    v = cp.Variable(Ap.shape[1])
    con = Ap @ v >= b
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum(cp.multiply(W, cp.square(v)))), [con])
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            prob.solve(solver="CLARABEL", **_cvxpy_options("CLARABEL"))
    except Exception:  # a failed guess is not an answer; the caller tries without it
        return None
    if con.dual_value is None:
        return None
    mu = np.asarray(con.dual_value, dtype=float)
    return np.flatnonzero(mu > TOLERANCES.support_rtol * max(float(mu.max()), 0.0))


def _active_set(Ap, b, W, S, max_iter: int = 100):
    """Primal–dual active set on ``min ½ v^T diag(W) v`` s.t. ``Ap v >= b`` from support ``S``;
    returns ``(v, μ_S, S, converged)``."""
    n, d = Ap.shape
    eps = TOLERANCES.solver_eps
    seen = set()
    v = mu_S = S_v = None
    for _ in range(max_iter):
        if d + S.size > _KKT_MAX:
            raise RuntimeError(f"support of {S.size} examples with d = {d}: the dense KKT "
                               f"system exceeds {_KKT_MAX}")
        key = S.tobytes()
        if key in seen:
            return v, mu_S, S_v, False  # cycling
        seen.add(key)
        v, mu_S = _kkt_solve(Ap[S], b[S], W)
        S_v = S
        m = Ap @ v
        err = 4 * d * np.finfo(float).eps * (np.abs(Ap) @ np.abs(v))
        inS = np.zeros(n, dtype=bool)
        inS[S] = True
        drop = np.zeros(n, dtype=bool)
        drop[S] = mu_S < 0
        add = ~inS & (m < b * (1.0 - eps) - err)
        if not drop.any() and not add.any():
            return v, mu_S, S_v, True
        S = np.flatnonzero((inS & ~drop) | add)
    return v, mu_S, S_v, False


def _route_kkt_equilibrated(Gs: np.ndarray, seed: np.ndarray | None) -> RouteOutcome:
    """ℓ2 max margin on row- and column-equilibrated data (docs/theory.md §5.9).

    Rows: ``g_i w >= 1`` is ``a_i w >= b_i`` with unit ``a_i`` and ``b_i = 1/||row||`` (so
    each constraint keeps its own scale). Columns: every column is divided by a power of two
    ``t_k`` near its max-abs, ``v = t w`` (exact), which turns the program into
    ``min ½ Σ W_k v_k²`` (``W = (t_min / t)²``) s.t. ``A' v >= b``: a weighted norm whose tiny
    weights (nearly free coordinates) the saddle-point system ``[W, -A'_S^T; A'_S, 0]``
    handles without forming ``A' W^{-1} A'^T`` (which loses the small columns to rounding).
    A primal–dual active set (Hintermüller, Ito & Kunisch 2002) on the support ``S``, first
    guessed from ``seed`` (a failed route's support), else from Clarabel's multipliers on the
    equilibrated program; violations are measured relative to each ``b_i``. Finally ``w`` is
    pushed into the feasible set by the minimum-weighted-norm ``δ`` with ``A'_S δ = τ 1``,
    ``τ`` a bound on the rounding error of ``a_i v`` (representing ``w`` in float64 costs
    ``ε ||w||`` per constraint, which for ``||w|| ~ 1e12`` exceeds the certificate's tolerance
    on a unit-scale constraint). The multipliers map back as ``λ = μ / (ρ'_i t_min²)``, ``ρ'``
    the row norms after the column factors (so that ``w = G^T λ``).
    """
    n, d = Gs.shape
    rho = np.sqrt(np.einsum("ij,ij->i", Gs, Gs))
    colmax = np.max(np.abs(Gs / rho[:, None]), axis=0)
    ref = float(np.median(colmax[colmax > 0]))
    # column factors t_k (powers of two): every column to max-abs ~1 (zero columns: a floor)
    t = np.ldexp(1.0, np.frexp(np.maximum(colmax, ref * _KKT_FLOOR))[1])
    t_min = float(t.min())
    Gt = Gs / t  # exact
    rho_t = np.sqrt(np.einsum("ij,ij->i", Gt, Gt))
    Ap = Gt / rho_t[:, None]  # unit rows again
    b = 1.0 / rho_t
    W = (t_min / t) ** 2  # in (0, 1]: tiny weights = nearly free coordinates
    seeds = [lambda: seed] if seed is not None and seed.size else []
    seeds.append(lambda: _clarabel_seed(Ap, b, W))
    found = None
    for make_seed in seeds:
        S0 = make_seed()
        if S0 is None or S0.size == 0:
            continue
        found = _active_set(Ap, b, W, np.unique(S0))
        if found[3]:  # converged
            break
    if found is None:
        raise RuntimeError("no support guess for the equilibrated KKT route")
    v, mu_S, S, _ = found
    # push into the feasible set, relative to each constraint's own scale
    tau = 16 * d * np.finfo(float).eps * float(np.max(np.abs(Ap[S]) @ np.abs(v)))
    delta, dmu = _kkt_solve(Ap[S], np.full(S.size, tau), W)
    v = v + delta
    lam = np.zeros(n)
    lam[S] = (mu_S + dmu) / (rho_t[S] * t_min**2)
    return RouteOutcome(v / t, lam, "optimal")


def _polish_l1_dual(G: np.ndarray, w: np.ndarray, lam: np.ndarray, support_rtol: float):
    """Re-solve the ℓ1 multipliers on the support of a feasible ``w`` (docs/theory.md §5.9).

    Stationarity of ``½||w||_1²`` at ``w`` needs ``z = G^T λ`` with ``z_k = ||w||_1 sign(w_k)``
    on ``K = supp(w)`` (and ``|z_k| <= ||w||_1`` elsewhere, which the certificate checks), with
    ``λ`` on the active rows ``S``. HiGHS's multipliers carry its absolute dual tolerance, which
    columns of very different scales amplify; here ``λ_S`` solves ``G_{S,K}^T λ_S = ||w||_1
    sign(w_K)`` by least squares with every equation (column ``k``) divided by its largest
    entry. Returns ``λ`` or ``None`` (a negative multiplier: the support guess was wrong).
    """
    wn = float(np.sum(np.abs(w)))
    K = np.flatnonzero(np.abs(w) > 1e-12 * wn)
    S = np.flatnonzero((lam > 0) & (G @ w - 1.0 <= support_rtol))
    if K.size == 0 or S.size == 0:
        return None
    M = G[np.ix_(S, K)].T
    scale = np.max(np.abs(M), axis=1)
    scale[scale == 0] = 1.0
    lam_S = np.linalg.lstsq(M / scale[:, None], wn * np.sign(w[K]) / scale, rcond=None)[0]
    if np.any(lam_S < 0):
        return None
    out = np.zeros_like(lam)
    out[S] = lam_S
    return out


def _route_nnls(Gs: np.ndarray) -> RouteOutcome:
    w, lam = _ldp_nnls(Gs)
    return RouteOutcome(w, lam, "optimal")


def _initial_working_set(Gs: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` examples with the smallest margins under the mean direction ``G^T 1 / n``."""
    n = Gs.shape[0]
    if size >= n:
        return np.arange(n)
    w0 = Gs.mean(axis=0)
    scores = Gs @ w0
    return np.sort(np.argpartition(scores, size)[:size])


def _working_set(Gs: np.ndarray, solve_subset, *, initial: int, batch: int,
                 shrink: bool = False, max_rounds: int = 100
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Solve on a working set ``S``; add the ``batch`` most violated examples until none is.

    Dropping constraints can only lower the optimal norm, so the first ``w_S`` that satisfies
    *all* constraints is optimal for the full program; its multipliers are ``λ_S`` on ``S`` and
    ``0`` elsewhere (``λ_i = 0`` for inactive constraints satisfies every KKT condition).

    ``shrink=True`` (strictly convex objectives only) keeps only the examples with ``λ_i > 0``
    before adding violators: the optimum on the multipliers' support equals the optimum on ``S``,
    and adding a constraint that the unique minimiser violates strictly increases the optimal
    norm, so no working set repeats and the loop terminates.
    """
    n = Gs.shape[0]
    S = _initial_working_set(Gs, initial)
    thresh = 1.0 - TOLERANCES.solver_eps
    for _ in range(max_rounds):
        w, lam_S = solve_subset(Gs[S])
        margins = Gs @ w
        inS = np.zeros(n, dtype=bool)
        inS[S] = True
        viol = np.flatnonzero((margins < thresh) & ~inS)
        if viol.size == 0:
            lam = np.zeros(n)
            lam[S] = lam_S
            return w, lam, S.size
        if viol.size > batch:
            viol = viol[np.argpartition(margins[viol], batch)[:batch]]
        keep = S[lam_S > 0] if shrink else S
        S = np.sort(np.concatenate([keep, viol]))
    raise RuntimeError(f"working set did not converge in {max_rounds} rounds")


def _route_working_set_nnls(Gs: np.ndarray) -> RouteOutcome:
    n, d = Gs.shape
    w, lam, _ = _working_set(Gs, _ldp_nnls, initial=min(n, max(2 * d, 100)),
                             batch=max(d, 50), shrink=True)
    return RouteOutcome(w, lam, "optimal")


# ------------------------------------------------------------------ ℓ1 / ℓ∞: linear programs
_COLUMN_SPREAD = 2.0**10  # column factors only when a column exceeds the median by this


def column_factors(A: np.ndarray) -> np.ndarray:
    """Powers of two ``t_j >= 1`` dividing the columns of ``A`` that exceed the (lower) median
    column max-abs by more than ``2^10`` (to about the median); ``1`` elsewhere, and ``1``
    everywhere for well-scaled data (docs/theory.md §5.9)."""
    cmax = np.max(np.abs(A), axis=0)
    pos = cmax[cmax > 0]
    if pos.size == 0:
        return np.ones(A.shape[1])
    ref = float(np.sort(pos)[(pos.size - 1) // 2])  # the lower median (d = 2: the smaller)
    if float(cmax.max()) <= _COLUMN_SPREAD * ref:
        return np.ones(A.shape[1])
    return np.ldexp(1.0, np.frexp(np.maximum(cmax, ref) / ref)[1] - 1)

def _margin_lp(G: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """LP :math:`\\max s` s.t. :math:`Gw \\ge s\\mathbf 1`, :math:`\\|w\\|_p \\le 1` (p = 1 or ∞).

    Its value is the margin :math:`\\gamma_p` (minimax: :math:`\\gamma_p = \\min_{\\nu\\in\\Delta}
    \\|G^\\top\\nu\\|_q`); the row multipliers ``ν >= 0`` (``Σν = 1``) give the half-squared
    multipliers ``λ = ν / γ²`` of ``w* = w / γ`` (then ``1^T λ - ½||G^T λ||_q² = ½ / γ²
    = ½||w*||_p²``). Returns ``(w*, λ)``.
    """
    m, d = G.shape
    # Row-equilibrated (docs/theory.md §5.9): row i divided by ρ_i = ||g_i||, so the LP reads
    # a_i w >= s' b_i with unit rows a_i and b_i = ρ_min / ρ_i (then s = ρ_min s' is the same
    # margin); its multipliers ν' give ν_i = ν'_i b_i for G w >= s 1 (still Σ ν = 1).
    # Columns far above the median (by more than 2^10, measured on unit rows) are divided by
    # powers of two t_j and the LP is solved in v = t w (bounds |v_j| <= t_j for ℓ∞, budget
    # Σ |v_j| / t_j <= 1 for ℓ1): the same program, with the large columns no longer hiding
    # the others from HiGHS's absolute tolerances (§5.9). Well-scaled data keep t = 1.
    t = column_factors(G / np.sqrt(np.einsum("ij,ij->i", G, G))[:, None])
    G = G / t
    rho = np.sqrt(np.einsum("ij,ij->i", G, G))
    bcol = (rho.min() / rho)[:, None]
    G = G / rho[:, None]
    res, sol, sig = _margin_lp_highs(G, bcol, t, p, 1.0)
    s1 = float(res.x[-1])
    if abs(s1) < _SMALL_MARGIN:
        # A margin ~1e-9 of the unit rows (a column x 1e-9 carrying the separation) is at
        # HiGHS's absolute tolerances: it stopped up to ~30% short, or at s = 0 (measured).
        # Solve again with the margin variable s = σ s'' (σ a power of two near the first s,
        # else 2^-30, 2^-40, 2^-50), i.e. every row divided by σ: the same LP with the same
        # multipliers, in which s'' ~ 1 is far above the tolerances (docs/theory.md §5.9).
        ladder = [2.0**-30, 2.0**-40, 2.0**-50]
        if s1 > 0.0:
            ladder = [float(np.ldexp(1.0, int(np.frexp(s1)[1])))] + ladder
        for sig_try in ladder:
            try:
                res2, sol2, _ = _margin_lp_highs(G, bcol, t, p, sig_try)
            except RuntimeError:
                continue
            if float(res2.x[-1]) > 0.0:  # the rescaled solve replaces the first (measured:
                res, sol, sig = res2, sol2, sig_try  # the first may overshoot, rows violated)
                if float(res2.x[-1]) > 2.0**-4:
                    break
    s_unit = float(res.x[-1]) * sig
    s = s_unit * float(rho.min())
    if s <= 0.0:
        raise Infeasible(f"LP margin s = {s:.2e} <= 0")
    sol = _push_lp(G, sol * t, s_unit * bcol[:, 0]) / t
    nu = -np.asarray(res.ineqlin.marginals[:m]) * bcol[:, 0]
    return sol / s, nu / s**2


_SMALL_MARGIN = 2.0**-20  # unit-row margins below this are re-solved with s rescaled (§5.9);
# empirical: with a column x 1e-6 (s' ~ 1e-6) all 60 sweep problems certify without the re-solve


def _margin_lp_highs(G, bcol, t, p, sig):
    """One HiGHS solve of the row-equilibrated margin LP with rows ``(−G w + σ b s'')/σ <= 0``;
    returns ``(res, w)`` (``w`` in the original variables) and ``σ``."""
    m, d = G.shape
    Gs = G / sig if sig != 1.0 else G
    eps = TOLERANCES.solver_eps
    opts = {"primal_feasibility_tolerance": eps, "dual_feasibility_tolerance": eps}
    if np.isinf(p):
        # variables [w (d), s];  -G w + s <= 0;  -1 <= w <= 1
        c = np.zeros(d + 1)
        c[-1] = -1.0
        A = np.hstack([-Gs, bcol])
        bounds = [(-tj, tj) for tj in t.tolist()] + [(None, None)]
        res = so.linprog(c, A_ub=A, b_ub=np.zeros(m), bounds=bounds, method="highs",
                         options=opts)
        sol = None if res.x is None else res.x[:d] / t
    else:
        # variables [a (d), b (d), s], w = a - b;  -G a + G b + s <= 0;  sum(a + b) <= 1
        c = np.zeros(2 * d + 1)
        c[-1] = -1.0
        A = sp.vstack([sp.csr_matrix(np.hstack([-Gs, Gs, bcol])),
                       sp.csr_matrix(np.concatenate([1.0 / t, 1.0 / t, [0.0]])[None, :])])
        b = np.concatenate([np.zeros(m), [1.0]])
        bounds = [(0.0, None)] * (2 * d) + [(None, None)]
        res = so.linprog(c, A_ub=A, b_ub=b, bounds=bounds, method="highs", options=opts)
        sol = None if res.x is None else (res.x[:d] - res.x[d:2 * d]) / t
    if res.status != 0 or sol is None:
        raise RuntimeError(f"HiGHS: {res.message}")
    return res, sol, sig


def _push_lp(A: np.ndarray, v: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Move an LP answer ``v`` of ``A v >= rhs`` (unit rows) that HiGHS left infeasible by up to
    its absolute tolerance into the feasible set: ``v + τ u`` with ``A_V u = 1`` (least squares)
    on the rows ``V`` within ``1e-7`` of active and ``τ = 10 × max violation``. Rows whose
    right-hand side is tiny (``b_i = ρ_min / ρ_i ~ 1e-12`` for one row scaled by 1e-12) are
    otherwise violated *relative to their own scale* by HiGHS's 1e-9 (docs/theory.md §5.9);
    the norm grows by ``τ ||u||`` (~1e-8 relative), which the certificate measures."""
    slack = A @ v - rhs
    viol = -float(slack.min())
    if viol <= 0.0:
        return v  # feasible as computed (the common path)
    V = np.flatnonzero(slack <= 1e-7)
    u = np.linalg.lstsq(A[V], np.ones(V.size), rcond=None)[0]
    return v + 10.0 * viol * u


def _route_highs(Gs: np.ndarray, p: float) -> RouteOutcome:
    w, lam = _margin_lp(Gs, p)
    return RouteOutcome(w, lam, "optimal")


def _route_highs_cg(Gs: np.ndarray, p: float) -> RouteOutcome:
    n, d = Gs.shape
    w, lam, _ = _working_set(Gs, lambda G: _margin_lp(G, p), initial=min(n, max(4 * d, 200)),
                             batch=max(2 * d, 100))
    return RouteOutcome(w, lam, "optimal")


def _route_dual_gram(Gs: np.ndarray) -> RouteOutcome:
    """ℓ2 in the ``n``-dimensional dual on the Gram matrix (``d > n``); a working set over
    examples keeps the Gram matrix at most ``_GRAM_MAX × _GRAM_MAX``."""
    n, _ = Gs.shape
    if n <= _GRAM_MAX:
        w, lam = ldp_gram(Gs)
    else:
        w, lam, _ = _working_set(Gs, ldp_gram, initial=_GRAM_MAX // 2, batch=_GRAM_MAX // 4,
                                 shrink=True)
    return RouteOutcome(w, lam, "optimal")


_GRAM_MAX = 6000  # K = G G^T of 6000 examples is 288 MB


def _route_colgen_ipm(Gs: np.ndarray, p: float) -> RouteOutcome:
    """ℓ1/ℓ∞ margin LP by column (feature) generation and a dense interior point (``d > n``,
    docs/theory.md §5.8)."""
    w, lam = margin_lp_colgen(Gs, p)
    return RouteOutcome(w, lam, "optimal")


_REFINE_MAX = 10**6  # d × |support| up to which ℓ1/ℓ∞ multipliers that fail far above float64's
# floor are refined too (exact residuals cost one TwoProduct per entry and one fsum per
# coordinate); ℓ2 routes that fail above the floor go to the next route, as before


# ----------------------------------------------------------------------------- CVXPY (any p)
def _route_cvxpy(Gs: np.ndarray, p: float, solver: str) -> RouteOutcome:
    import cvxpy as cp

    n, d = Gs.shape
    w = cp.Variable(d)
    con = Gs @ w >= 1
    if p == 2.0:
        prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(w)), [con])
    else:
        prob = cp.Problem(cp.Minimize(cp.pnorm(w, p)), [con])
    with warnings.catch_warnings():  # the status is checked below
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=solver, **_cvxpy_options(solver))
    status = prob.status
    if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise Infeasible(f"CVXPY/{solver} status {status}")
    if status != cp.OPTIMAL or w.value is None or con.dual_value is None:
        return RouteOutcome(np.full(d, np.nan) if w.value is None else w.value,
                            np.zeros(n), str(status))
    wv = np.asarray(w.value, dtype=float)
    nu = np.clip(np.asarray(con.dual_value, dtype=float), 0.0, None)
    lam = nu if p == 2.0 else nu * lp_norm(wv, p)  # ν of min ||w|| -> λ of min ½||w||²
    return RouteOutcome(wv, lam, "optimal")


def _route_working_set_cvxpy(Gs: np.ndarray, p: float) -> RouteOutcome:
    """Any ``1 < p < ∞``: CVXPY + Clarabel on a working set of examples (row generation).

    ``½||w||_p²`` is strictly convex for ``1 < p < ∞``, so the minimiser is unique and the
    shrinking working set of :func:`_working_set` terminates; the answer on the working set is
    optimal for all examples once none is violated (docs/theory.md §5.10).
    """
    n, d = Gs.shape

    def solve_subset(G):
        out = _route_cvxpy(G, p, "CLARABEL")
        if out.solver_status != "optimal":
            raise RuntimeError(f"Clarabel on the working set: {out.solver_status}")
        return out.w, out.dual

    w, lam, _ = _working_set(Gs, solve_subset, initial=min(n, max(4 * d, 200)),
                             batch=max(2 * d, 100), shrink=True)
    return RouteOutcome(w, lam, "optimal")


def _cvxpy_options(solver: str) -> dict:
    eps = TOLERANCES.solver_eps
    if solver == "CLARABEL":
        return {"tol_gap_abs": eps, "tol_gap_rel": eps, "tol_feas": eps, "max_iter": 500}
    if solver == "OSQP":
        return {"eps_abs": eps, "eps_rel": eps, "polishing": True, "max_iter": 200000}
    if solver == "SCS":
        return {"eps_abs": eps, "eps_rel": eps, "max_iters": 100000}
    return {}


# -------------------------------------------------------------------------------- public API
def solve_max_margin(X, y, *, norm=2, method: str = "auto", rtol: float | None = None,
                     support_rtol: float | None = None) -> MarginSolution:
    """Solve the ℓp max-margin program and certify the answer in numpy.

    .. math::

        \\min_{w \\in \\mathbb R^d} \\; \\|w\\|_p \\quad \\text{s.t.} \\quad
        y_i \\langle w, x_i \\rangle \\ge 1, \\quad i = 1, \\dots, n,

    the hard-margin SVM without bias for ``p = 2`` (the limit direction of gradient descent on
    separable data, Soudry et al. 2018, Thm 3) and the limit of steepest descent w.r.t.
    ``||·||_p`` (Gunasekar et al. 2018). Its value gives the ``p``-margin
    :math:`\\gamma_p = 1/\\|w^*\\|_p = \\max_{\\|u\\|_p\\le1}\\min_i y_i\\langle u, x_i\\rangle`.
    The multipliers returned are those of the equivalent half-squared program
    :math:`\\min \\tfrac12\\|w\\|_p^2` (same minimiser), whose dual is

    .. math::

        \\max_{\\lambda \\ge 0} \\; \\mathbf 1^\\top\\lambda - \\tfrac12 \\|G^\\top\\lambda\\|_q^2,
        \\qquad G = \\operatorname{diag}(y) X, \\quad 1/p + 1/q = 1,

    with equal optimal value (strong duality: the program is a feasible convex QP/conic program
    with linear constraints).

    Parameters
    ----------
    X : array_like of shape (n, d)
        One example per row, finite.
    y : array_like of shape (n,)
        Labels in {-1, +1}.
    norm : {1, 2, inf} or float >= 1, keyword-only
        The exponent ``p`` (``"inf"``, ``"l1"``, ``"l2"`` accepted).
    method : str, keyword-only
        ``"auto"`` (default): the fastest verified route, then fallbacks — ℓ2:
        ``working-set-nnls → nnls → kkt-equilibrated → cvxpy-clarabel → cvxpy-osqp →
        cvxpy-scs`` (``kkt-equilibrated``: rows and columns equilibrated, a weighted norm,
        docs/theory.md §5.9), preceded by
        ``dual-gram`` when ``d > n``; ℓ1/ℓ∞: ``highs-cg → highs → cvxpy-clarabel →
        cvxpy-scs``, preceded by ``colgen-ipm`` when ``d > n`` (docs/theory.md §5.8); other
        ``p``:
        ``cvxpy-clarabel → cvxpy-scs``, preceded by ``working-set-clarabel`` when
        ``n > max(4d, 200)``. Any single name of :data:`MAX_MARGIN_METHODS` runs
        that route only (still verified).
    rtol : float, optional
        Certificate tolerance in ``(0, 1)`` (default ``TOLERANCES.certificate_rtol``).
    support_rtol : float, optional
        Activity tolerance for ``support`` in ``[0, 1)`` (default ``TOLERANCES.support_rtol``).

    Returns
    -------
    MarginSolution

    Raises
    ------
    NotSeparableError
        The data are not strictly separable through the origin; ``.certificate`` is a verified
        Gordan/Farkas ``μ`` (``μ >= 0``, ``Σμ = 1``, ``Σ μ_i y_i x_i = 0`` to rounding error on
        the equilibrated data, docs/theory.md §5.9).
    MarginBelowResolutionError
        Separable or not is undecided at this tolerance: a Gordan ``μ`` is small but not at
        rounding level; ``.upper_bound`` is a certified upper bound on the margin.
    PrecisionLimitError
        A :class:`SolverError` whose best candidate failed only by residuals within 64x of what
        rounding ``w`` or ``λ`` to float64 causes on these data, and whose multipliers, refined
        with exact residuals and rounded on the float64 grid, did not verify either
        (docs/theory.md §5.9); ``.residuals`` holds them with their floors.
    SolverError
        No route produced a solution whose certificate verified; ``.attempts`` says why.
    ValueError, TypeError
        Bad shapes, non-finite entries, labels outside {-1, +1}, empty data, bad ``norm`` or
        ``method``.

    References
    ----------
    Lawson & Hanson (1974), *Solving Least Squares Problems*, Ch. 23 (LDP via NNLS).
    Hintermüller, Ito & Kunisch (2002), SIAM J. Optim. 13(3), 865–888, Alg. 1 (primal-dual
    active set, used on the Gram dual).
    Soudry, Hoffer, Nacson, Gunasekar, Srebro (2018), JMLR 19, Thm 3.
    Gunasekar, Lee, Soudry, Srebro (2018), ICML, "Characterizing implicit bias in terms of
    optimization geometry".

    Examples
    --------
    >>> import numpy as np
    >>> sol = solve_max_margin(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0]))
    >>> np.round(sol.w, 6).tolist(), round(sol.margin, 6)
    ([1.0, -1.0], 0.707107)
    """
    X = check_X(X)
    y = check_labels(y, X.shape[0])
    p = check_norm(norm)
    if method not in MAX_MARGIN_METHODS:
        raise ValueError(f"method must be one of {MAX_MARGIN_METHODS}; got {method!r}.")
    rtol = check_rtol(rtol, "rtol", TOLERANCES.certificate_rtol)
    support_rtol = check_rtol(support_rtol, "support_rtol", TOLERANCES.support_rtol,
                              allow_zero=True)

    n, d = X.shape
    ctx = f"solve_max_margin(norm={norm!r})"
    # G = diag(y) X, scaled by a power of two so that max_i ||g_i||_2 lies in [1/2, 1): the
    # scaling is exact in floating point (no rounding), so the certificate computed on the
    # scaled data *is* the certificate on the original data (residuals are scale-free; values
    # are mapped back with ldexp). Two steps so that ||g_i|| cannot overflow (X * 1e300).
    G = y[:, None] * X
    amax = max(float(G.max()), -float(G.min()))  # no |G| temporary: G may be most of memory
    if amax == 0.0:
        raise_not_separable(G, ctx)
    e1 = int(np.frexp(amax)[1])
    G = np.ldexp(G, -e1, out=G)  # max |G_ij| in [1/2, 1): row norms cannot overflow
    sq = np.einsum("ij,ij->i", G, G)
    if np.any(sq == 0):
        if not np.all(G.any(axis=1)):  # an example at x = 0: exactly not separable
            raise_not_separable(G, ctx, scale_exp=e1, p=p)
        i = int(np.argmin(np.max(np.abs(G), axis=1)))
        bound = float(np.ldexp(lp_norm(G[i], dual_exponent(p)), e1))
        raise MarginBelowResolutionError(
            f"{ctx}: separable or not is undecided at this resolution: example {i} has "
            f"||x_i|| below 1e-150 of the largest example, so its squared norm underflows. "
            f"The certified upper bound on the margin is ||x_{i}||_q = {bound:.3g} (the margin "
            f"is at most every example's dual norm). Rescale or remove that example.",
            upper_bound=bound, certificate=np.eye(1, G.shape[0], i).ravel(), residual=np.nan)
    # ℓ2: the smallest row norm to [1/2, 1). The margin is at most min_i ||g_i||, so then
    # ||w*|| = 1/γ >= 1 and it is O(1) unless the *angular* margin is small; scaling by the
    # largest row instead makes ||w*|| >= max ||g_i|| / min ||g_i||, which the least-distance
    # program loses to cancellation (issue 14.11: one row x 1e-6). ℓ1/ℓ∞/other p: the largest
    # row (the LPs are row-equilibrated inside).
    ref = float(np.sqrt(sq.max()))
    if p == 2.0:  # capped at 2^-200 of the largest, so the largest rows cannot overflow
        ref = max(float(np.sqrt(sq.min())), ref * 2.0**-200)
    e2 = int(np.frexp(ref)[1])
    G = np.ldexp(G, -e2, out=G)
    e = e1 + e2  # original G = 2^e * G (exactly, unless entries fall below 2^-1074)

    sq = np.einsum("ij,ij->i", G, G)
    gmax, gfro = float(np.sqrt(sq.max())), float(np.sqrt(sq.sum()))
    seen_supports: list[np.ndarray] = []  # supports of rejected candidates seed later routes

    def seed_support():
        return seen_supports[-1] if seen_supports else None

    routes, reason = _routes(G, p, method, seed_support)

    limited: list = []  # candidates that failed only at float64's representation floor

    def certify(out: RouteOutcome) -> Certificate:
        cert = margin_certificate(G, out.w, out.dual, p, rtol=rtol, row_norm_max=gmax,
                                  frobenius=gfro)
        if not cert.verified:
            seen_supports.append(np.flatnonzero(
                (out.dual > 0) | (G @ out.w - 1.0 <= support_rtol)))
            limited.append(precision_limited(cert, rounding_floors(
                G, out.w, out.dual, p, primal_norm=np.inf, primal_scale=1.0)))
            if (cert.primal_infeasibility <= rtol
                    and (limited[-1] is not None
                         or (p != 2.0
                             and G.shape[1] * np.count_nonzero(out.dual) <= _REFINE_MAX))
                    and (lam_r := refine_multipliers(G, out.w, out.dual, p, rtol=rtol))
                    is not None):
                # a feasible w whose multipliers fail: refined with exact residuals, then
                # rounded on the float64 grid (docs/theory.md §5.9); certified like any other
                cert2 = margin_certificate(G, out.w, lam_r, p, rtol=rtol, row_norm_max=gmax,
                                           frobenius=gfro)
                if cert2.verified:
                    out.dual = lam_r
                    out.solver_status = "optimal (multipliers refined exactly)"
                    return cert2
        if (not cert.verified and p == 1.0 and cert.primal_infeasibility <= rtol
                and (lam1 := _polish_l1_dual(G, out.w, out.dual, support_rtol)) is not None):
            cert2 = margin_certificate(G, out.w, lam1, p, rtol=rtol, row_norm_max=gmax,
                                       frobenius=gfro)
            if cert2.verified:  # the route's primal was right; its multipliers were not
                out.dual = lam1
                out.solver_status = "optimal (polished on its support)"
                return cert2
        if cert.verified or p != 2.0 or cert.primal_infeasibility <= rtol:
            return cert  # polish only answers that fail feasibility (arithmetic, not choice)
        polished = _polish_l2(G, out, support_rtol)
        if polished is None:
            return cert
        cert2 = margin_certificate(G, polished[0], polished[1], p, rtol=rtol,
                                   row_norm_max=gmax, frobenius=gfro)
        if cert2.verified:  # the route's support was right; its arithmetic was not
            out.w, out.dual = polished
            out.solver_status = "optimal (polished on its support)"
            return cert2
        return cert

    try:
        name, out, cert, attempts = run_chain(
            routes, certify, on_infeasible=lambda: raise_not_separable(G, ctx, scale_exp=e, p=p),
            program=ctx)
    except SolverError as exc:
        raise_precision_limit(exc, limited, ctx, rtol)
    if out.solver_status.startswith("optimal (polished"):
        name += "+polish"
    elif out.solver_status.startswith("optimal (multipliers refined"):
        name += "+exact-refine"
    # back to the original scale: w = 2^-e w_s, λ = 2^-2e λ_s, values ½||w||² scale by 2^-2e
    with np.errstate(over="ignore", under="ignore"):  # values beyond float64 become inf / 0
        cert = replace(cert, primal_value=float(np.ldexp(cert.primal_value, -2 * e)),
                       dual_value=float(np.ldexp(cert.dual_value, -2 * e)))
        w = np.ldexp(out.w, -e)
        lam = np.ldexp(out.dual, -2 * e)
    wn_s = lp_norm(out.w, p)
    margin = float(np.ldexp(1.0 / wn_s, e))
    support = np.flatnonzero(G @ out.w - 1.0 <= support_rtol)
    return MarginSolution(w=w, margin=margin, direction=out.w / wn_s, dual=lam, support=support,
                          support_rtol=support_rtol, norm=p, certificate=cert, solver=name,
                          status="optimal", attempts=tuple(attempts), route_reason=reason)


def _routes(Gs: np.ndarray, p: float, method: str, seed_support=lambda: None):
    n, d = Gs.shape
    table = {
        "dual-gram": lambda: _route_dual_gram(Gs),
        "colgen-ipm": lambda: _route_colgen_ipm(Gs, p),
        "working-set-nnls": lambda: _route_working_set_nnls(Gs),
        "nnls": lambda: _route_nnls(Gs),
        "kkt-equilibrated": lambda: _route_kkt_equilibrated(Gs, seed_support()),
        "highs-cg": lambda: _route_highs_cg(Gs, p),
        "highs": lambda: _route_highs(Gs, p),
        "working-set-clarabel": lambda: _route_working_set_cvxpy(Gs, p),
        "cvxpy-clarabel": lambda: _route_cvxpy(Gs, p, "CLARABEL"),
        "cvxpy-osqp": lambda: _route_cvxpy(Gs, p, "OSQP"),
        "cvxpy-scs": lambda: _route_cvxpy(Gs, p, "SCS"),
    }
    wide = d > n
    if method == "auto":
        if p == 2.0:
            names = ["working-set-nnls", "nnls", "kkt-equilibrated", "cvxpy-clarabel",
                     "cvxpy-osqp", "cvxpy-scs"]
            if wide:
                names.insert(0, "dual-gram")
                reason = (f"d = {d} > n = {n}: the n-dimensional dual on the Gram matrix first, "
                          f"then the primal routes")
            else:
                reason = f"n = {n} >= d = {d}: primal least-distance program first"
        elif p == 1.0 or np.isinf(p):
            names = ["highs-cg", "highs", "cvxpy-clarabel", "cvxpy-scs"]
            if wide and p == 1.0:
                names = ["colgen-ipm"] + names
                reason = (f"d = {d} > n = {n}: column (feature) generation with a dense "
                          f"interior point first (never the n x 2d LP), then row generation "
                          f"and the full LP")
            elif wide:  # ℓ∞: the dense interior point on all d columns, docs/benchmarks.md
                names = ["colgen-ipm"] + names
                reason = (f"d = {d} > n = {n}, ℓ∞: dense interior point on the n x d LP "
                          f"(priced like column generation) first, then row generation and "
                          f"the full LP")
            else:
                reason = f"n = {n} >= d = {d}: row (constraint) generation first"
        else:
            names = ["cvxpy-clarabel", "cvxpy-scs"]
            reason = f"p = {p:g}: conic program (CVXPY)"
            if n > max(4 * d, 200):
                names.insert(0, "working-set-clarabel")
                reason = (f"p = {p:g}, n = {n} > max(4d, 200): conic program on a working set "
                          f"of examples first, then on all examples")
    else:
        names = [method]
        reason = f"method={method!r} requested"
        ok = {"working-set-nnls": p == 2.0, "nnls": p == 2.0, "cvxpy-osqp": p == 2.0,
              "kkt-equilibrated": p == 2.0,
              "dual-gram": p == 2.0, "colgen-ipm": p in (1.0, np.inf),
              "highs-cg": p in (1.0, np.inf), "highs": p in (1.0, np.inf),
              "working-set-clarabel": 1.0 < p < np.inf}
        if not ok.get(method, True):
            raise ValueError(
                f"method={method!r} does not solve norm={p!r}; use method='auto' or "
                f"'cvxpy-clarabel' (any p).")
    return [(nm, table[nm]) for nm in names], reason
