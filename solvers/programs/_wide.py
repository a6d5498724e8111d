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
# moved to _colgen.py (dense interior point on the restricted LPs); re-exported for the callers
from ._colgen import basis_pursuit_colgen, margin_lp_colgen  # noqa: E402, F401
