"""Routes for the overparameterized regime (``d > n``) of the max-margin and min-norm programs.

* ℓ2 max margin in the ``n``-dimensional dual (docs/theory.md §5.7): the Gram matrix
  ``K = G G^T`` (``G = diag(y) X``) replaces the ``d``-dimensional primal; the dual
  :math:`\\min_{\\lambda\\ge0} \\tfrac12\\lambda^\\top K\\lambda - \\mathbf 1^\\top\\lambda`
  is solved by a primal-dual active-set method (Hintermüller, Ito & Kunisch 2002) whose
  linear systems reuse one Cholesky factor of ``K`` through Schur complements while few
  examples are inactive, and ``w = G^T λ`` is certified on the data like every other route.
* ℓ1 / ℓ∞ max margin and ℓ1 / ℓ∞ minimum norm by **column generation** (docs/theory.md §5.8):
  a small set of free features, the others fixed at their optimal bound (ℓ∞) or at zero (ℓ1);
  one mat-vec ``G^T ν`` prices every fixed feature against the restricted LP's duals and the
  violators enter. The full ``2d``-column LP is never built.

Every route returns an *unverified* :class:`RouteOutcome`; the caller certifies it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sl
import scipy.optimize as so

from ..tolerances import TOLERANCES
from ._chain import Infeasible

__all__: list[str] = []


# ------------------------------------------------------------------------ ℓ2: the Gram dual
class _GramSolver:
    """Solves ``K_SS z = 1_S`` for index sets ``S``, reusing one Cholesky factor of ``K``.

    With ``R`` the complement of ``S`` and ``L L^T = K``, the solution of the reduced system is
    ``z = K^{-1}(1 + E_R α)`` restricted to ``S``, with ``α`` chosen so that ``z_R = 0``:
    ``(K^{-1})_{RR} α = -(K^{-1}1)_R`` (a Schur-complement identity). That costs ``|R|``
    triangular solves instead of a new factorisation, and is used while ``|R| <= n / 8``.
    """

    def __init__(self, K: np.ndarray):
        self.K = K
        self.n = K.shape[0]
        self.L = sl.cholesky(K, lower=True, check_finite=False)  # LinAlgError if not SPD
        self.z_all = sl.cho_solve((self.L, True), np.ones(self.n), check_finite=False)

    def solve(self, S: np.ndarray) -> np.ndarray:
        n = self.n
        R = np.setdiff1d(np.arange(n), S, assume_unique=True)
        z = np.zeros(n)
        if R.size == 0:
            return self.z_all.copy()
        if R.size <= n // 8:
            E = np.zeros((n, R.size))
            E[R, np.arange(R.size)] = 1.0
            KiE = sl.cho_solve((self.L, True), E, check_finite=False)  # K^{-1} E_R
            alpha = np.linalg.solve(KiE[R], -self.z_all[R])
            z = self.z_all + KiE @ alpha
            z[R] = 0.0
            return z
        Ls = sl.cholesky(self.K[np.ix_(S, S)], lower=True, check_finite=False)
        z[S] = sl.cho_solve((Ls, True), np.ones(S.size), check_finite=False)
        return z


def nnqp_active_set(K: np.ndarray, *, max_iter: int = 50) -> np.ndarray:
    """``argmin_{λ >= 0} ½ λ^T K λ - 1^T λ`` for a positive definite ``K`` (PDAS).

    The primal-dual active-set iteration (Hintermüller, Ito & Kunisch 2002, SIAM J. Optim. 13,
    Alg. 1) guesses the support ``S``, solves ``K_SS λ_S = 1``, drops the examples with
    ``λ_i <= 0`` and adds those outside ``S`` whose margin ``(K λ)_i`` is below ``1 - solver_eps``.
    It stops when the guess reproduces itself (then every KKT condition holds up to round-off).
    Finite termination is proved for M-matrices only, so the iteration count is capped and the
    caller certifies the answer; a cycle raises ``RuntimeError`` (the fallback chain continues).
    """
    n = K.shape[0]
    gs = _GramSolver(K)
    eps = TOLERANCES.solver_eps
    S = np.flatnonzero(gs.z_all > 0)
    seen = set()
    for _ in range(max_iter):
        key = S.tobytes()
        if key in seen:
            raise RuntimeError("active-set iteration cycled")
        seen.add(key)
        lam = gs.solve(S)
        margins = K @ lam
        inS = np.zeros(n, dtype=bool)
        inS[S] = True
        drop = inS & (lam <= 0)
        add = ~inS & (margins < 1.0 - eps)
        if not drop.any() and not add.any():
            return np.clip(lam, 0.0, None)
        S = np.flatnonzero((inS & ~drop) | add)
    raise RuntimeError(f"active-set iteration did not converge in {max_iter} steps")


def ldp_gram(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``min ||w||_2`` s.t. ``G w >= 1`` through the ``m``-dimensional dual on ``K = G G^T``.

    Returns ``(w, λ)`` with ``w = G^T λ``. ``K`` singular (rank-deficient ``G``, duplicated
    examples) falls back to the Lawson–Hanson least-distance program on an eigenvalue factor
    ``F`` of ``K`` (``F F^T = K``, ``m × rank``), which is the same program in the coordinates
    of ``G``'s row space (``w = Q v`` with ``G = F Q^T``), so again ``w = G^T λ``.
    """
    K = G @ G.T
    try:
        lam = nnqp_active_set(K)
    except (np.linalg.LinAlgError, RuntimeError):
        from ._max_margin import _ldp_nnls

        ev, V = np.linalg.eigh(K)
        keep = ev > TOLERANCES.rank_rtol * max(float(ev[-1]), 0.0)
        if not keep.any():
            raise Infeasible("G G^T = 0") from None
        F = V[:, keep] * np.sqrt(ev[keep])
        _, lam = _ldp_nnls(F)
    return G.T @ lam, lam


# ------------------------------------------------------------------- ℓ1 / ℓ∞: column generation
def _lp_opts() -> dict:
    eps = TOLERANCES.solver_eps
    return {"primal_feasibility_tolerance": eps, "dual_feasibility_tolerance": eps}


def margin_lp_colgen(G: np.ndarray, p: float, *, initial: int | None = None,
                     max_rounds: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The margin LP :math:`\\max s` s.t. :math:`Gw \\ge s\\mathbf 1`, :math:`\\|w\\|_p\\le1`
    (``p`` = 1 or ∞) by column generation; returns ``(w*, λ)`` as ``_margin_lp`` does.

    ℓ∞: features outside the free set ``F`` are fixed at ``w_j = σ_j ∈ {-1, +1}``; the
    restricted LP is ``max s`` s.t. ``G_F w_F + G_{F^c} σ >= s 1``, ``|w_F| <= 1``. Its row
    duals ``ν`` (``Σν = 1``) are optimal for the full LP iff every fixed ``σ_j`` maximises
    ``σ (G^T ν)_j`` over ``[-1, 1]``, i.e. ``σ_j (G^T ν)_j >= 0``; the others enter ``F``
    (the initial ``σ`` is the sign of ``G^T 1 / m``).

    ℓ1: ``w = a - b``, features outside ``F`` are zero; the restricted LP is ``max s`` s.t.
    ``G_F (a - b) >= s 1``, ``Σ (a + b) <= 1``, with budget dual ``τ``. Optimal for the full LP
    iff no fixed feature has a positive reduced cost, ``|(G^T ν)_j| <= τ``; the most violating
    ones enter.
    """
    m, d = G.shape
    k0 = min(d, initial if initial is not None else max(2 * m, 50))
    nu = np.full(m, 1.0 / m)
    c = G.T @ nu
    if np.isinf(p):
        sigma = np.where(c >= 0, 1.0, -1.0)
        F = np.sort(np.argpartition(np.abs(c), k0 - 1)[:k0])  # least certain signs are free
    else:
        F = np.sort(np.argpartition(-np.abs(c), k0 - 1)[:k0])  # largest prices first
    tol = TOLERANCES.solver_eps
    batch = max(m, 50)
    for _ in range(max_rounds):
        GF = G[:, F]
        if np.isinf(p):
            fixed = np.ones(d, dtype=bool)
            fixed[F] = False
            offset = G[:, fixed] @ sigma[fixed] if fixed.any() else np.zeros(m)
            k = F.size
            # variables [w_F (k), s];  -G_F w_F + s <= offset
            cc = np.zeros(k + 1)
            cc[-1] = -1.0
            A = np.hstack([-GF, np.ones((m, 1))])
            res = so.linprog(cc, A_ub=A, b_ub=offset, bounds=[(-1.0, 1.0)] * k + [(None, None)],
                             method="highs", options=_lp_opts())
            if res.status != 0 or res.x is None:
                raise RuntimeError(f"HiGHS (column generation): {res.message}")
            nu = -np.asarray(res.ineqlin.marginals[:m])
            s = float(res.x[-1])
            price = G.T @ nu
            bad = np.flatnonzero(fixed & (sigma * price < -tol * max(1.0, np.abs(price).max())))
            if bad.size == 0:
                w = sigma.copy()
                w[F] = res.x[:k]
                break
            if bad.size > batch:
                bad = bad[np.argpartition(sigma[bad] * price[bad], batch)[:batch]]
            F = np.union1d(F, bad)
        else:
            k = F.size
            # variables [a (k), b (k), s]
            cc = np.zeros(2 * k + 1)
            cc[-1] = -1.0
            A = np.vstack([np.hstack([-GF, GF, np.ones((m, 1))]),
                           np.concatenate([np.ones(2 * k), [0.0]])[None, :]])
            bub = np.concatenate([np.zeros(m), [1.0]])
            res = so.linprog(cc, A_ub=A, b_ub=bub, bounds=[(0.0, None)] * (2 * k) + [(None, None)],
                             method="highs", options=_lp_opts())
            if res.status != 0 or res.x is None:
                raise RuntimeError(f"HiGHS (column generation): {res.message}")
            nu = -np.asarray(res.ineqlin.marginals[:m])
            tau = -float(res.ineqlin.marginals[m])
            s = float(res.x[-1])
            price = np.abs(G.T @ nu)
            price[F] = 0.0
            bad = np.flatnonzero(price > tau + tol * max(1.0, tau))
            if bad.size == 0:
                w = np.zeros(d)
                w[F] = res.x[:k] - res.x[k:2 * k]
                break
            if bad.size > batch:
                bad = bad[np.argpartition(-price[bad], batch)[:batch]]
            F = np.union1d(F, bad)
    else:
        raise RuntimeError(f"column generation did not converge in {max_rounds} rounds")
    if s <= 0.0:
        raise Infeasible(f"LP margin s = {s:.2e} <= 0")
    return w / s, nu / s**2


def basis_pursuit_colgen(X: np.ndarray, y: np.ndarray, *, initial: int | None = None,
                         max_rounds: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``min ||w||_1`` s.t. ``X w = y`` by column generation (docs/theory.md §5.8).

    The restricted LP over features ``F`` (``w = a - b``, ``a, b >= 0``) has equality duals
    ``ν'``; the reduced costs of ``a_j, b_j`` are ``1 ∓ (X^T ν')_j``, so the restricted optimum
    is optimal for all features iff ``||X^T ν'||_∞ <= 1`` (one mat-vec); the most violating
    features enter. A restricted LP that is infeasible (``y`` outside the span of ``X_F``)
    doubles ``F``. Returns ``(w, ν)`` with ``ν = ||w||_1 ν'`` the multipliers of the
    half-squared program, as ``_route_highs`` of the min-norm program does.
    """
    n, d = X.shape
    k0 = min(d, initial if initial is not None else max(2 * n, 50))
    F = np.sort(np.argpartition(-np.abs(X.T @ y), k0 - 1)[:k0])
    tol = TOLERANCES.solver_eps
    batch = max(n, 50)
    for _ in range(max_rounds):
        k = F.size
        XF = X[:, F]
        res = so.linprog(np.ones(2 * k), A_eq=np.hstack([XF, -XF]), b_eq=y, bounds=(0, None),
                         method="highs", options=_lp_opts())
        if res.status == 2:  # infeasible on F: widen F
            if k == d:
                raise Infeasible(res.message)
            rest = np.setdiff1d(np.arange(d), F)
            F = np.union1d(F, rest[: max(k, 1)])
            continue
        if res.status != 0 or res.x is None:
            raise RuntimeError(f"HiGHS (column generation): {res.message}")
        nu = np.asarray(res.eqlin.marginals, dtype=float)
        price = np.abs(X.T @ nu)
        price[F] = 0.0
        bad = np.flatnonzero(price > 1.0 + tol)
        if bad.size == 0:
            w = np.zeros(d)
            w[F] = res.x[:k] - res.x[k:]
            return w, nu * float(np.abs(w).sum())
        if bad.size > batch:
            bad = bad[np.argpartition(-price[bad], batch)[:batch]]
        F = np.union1d(F, bad)
    raise RuntimeError(f"column generation did not converge in {max_rounds} rounds")
