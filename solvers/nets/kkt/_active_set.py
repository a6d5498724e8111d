"""Projected Newton with exact face solves for the ℓ2 cone QP on an explicit Gram (private).

Solves the program of :func:`._qp.solve_cone_qp` without kink variables (docs/theory.md §7.7),

.. math::

    \\min_{\\nu \\ge 0} \\tfrac12 \\nu^\\top G \\nu - c^\\top \\nu
    \\quad\\text{s.t. (optionally)}\\quad r^\\top \\nu \\le \\beta,

for an explicit (dense) ``G`` of a few thousand rows, by Bertsekas' projected Newton method
(Bertsekas 1982, "Projected Newton methods for optimization problems with simple constraints",
SIAM J. Control Optim. 20(2)): at ``x`` the *binding* variables (``x_i <= ε_k`` with ``g_i > 0``)
take a diagonally scaled gradient step, the others (the face) the exact Newton step
``d_F = −G_FF⁻¹ g_F`` from a Cholesky factorisation of ``G_FF``; an Armijo search along the
projection arc ``x(s) = max(x + s d, 0)`` (``s = 1, ½, …``) keeps the objective decreasing. On a
QP the face is identified after finitely many steps, after which ``s = 1`` lands on the face's
exact minimiser; each further step is one step of iterative refinement. Where GPCG
(:mod:`._gpcg`) spends thousands of products on an ill-conditioned ``G`` (conjugate gradients on
each face), this costs one factorisation of the face per iteration (``|F|³/3`` flops).

If ``G_FF`` is numerically singular (Cholesky of its unit-diagonal scaling fails), the
factorisation is retried with ``τ I`` added to the scaled matrix, ``τ = 1e-12`` then ×100 up to
``1e-4``: the direction is then that of a proximal (Levenberg–Marquardt) step, still a descent
direction, and the arc search keeps the decrease; the number of such regularised factorisations
is returned. The δ budget enters through its multiplier ``η`` (:func:`_budget_search`).

Nothing here decides optimality: the caller certifies the returned point with
:func:`._qp.cone_optimality`, exactly as for GPCG and the interior point.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

__all__: list[str] = []

logger = logging.getLogger(__name__)

# Armijo constant and the largest ε_k of the binding set (relative to the variables' scale),
# Bertsekas (1982) §2; neither decides optimality (the caller's certificate does)
_ARMIJO = 1e-4
_EPS_BIND = 1e-3
_REG = (1e-12, 1e-10, 1e-8, 1e-6, 1e-4)


@dataclass(frozen=True)
class NewtonResult:
    """A point of ``ν >= 0`` (within the budget), the budget multiplier, counts (products with
    ``G``, Cholesky factorisations and how many of them needed the regularisation) and the
    internal optimality measure reached (relative, as :func:`._qp.cone_optimality`)."""

    nu: np.ndarray
    eta: float
    matvecs: int
    factorizations: int
    regularized: int
    iterations: int
    optimality: float
    converged: bool

    def to_dict(self) -> dict:
        return {"eta": self.eta, "matvecs": self.matvecs, "factorizations": self.factorizations,
                "regularized": self.regularized, "iterations": self.iterations,
                "optimality": self.optimality, "converged": self.converged}


def _optimality(g, x, col_scale, obj_scale):
    viol = float(np.max(np.maximum(-g, 0.0) / (col_scale * obj_scale), initial=0.0))
    return max(viol, float(abs(g @ x)) / obj_scale**2)


def _face_direction(G, F, rhs, d, counts):
    """``G_FF⁻¹ rhs`` (``rhs`` of shape ``(|F|, k)``) by Cholesky of the unit-diagonal scaling
    of ``G_FF`` (regularised if singular), or ``None``."""
    dF = d[F]
    H = G[np.ix_(F, F)]
    H /= dF[:, None]
    H /= dF[None, :]
    rhs = rhs / dF[:, None]
    for tau in (0.0,) + _REG:
        Ht = H if tau == 0.0 else H + tau * np.eye(F.size)
        try:
            fac = sla.cho_factor(Ht, lower=True, check_finite=False, overwrite_a=tau != 0.0)
        except np.linalg.LinAlgError:
            continue
        counts["factorizations"] += 1
        if tau:
            counts["regularized"] += 1
            logger.debug("projected Newton: face of %d singular, regularised by %g", F.size, tau)
        return sla.cho_solve(fac, rhs, check_finite=False) / dF[:, None]
    return None


def _solve_fixed(G, matvec, c, d, x0, col_scale, obj_scale, tol, max_iter, counts):
    """Projected Newton on ``min ½xᵀGx − cᵀx`` over ``x >= 0`` from ``x0``; returns
    ``(x, optimality, iterations)``."""
    x = np.maximum(x0, 0.0)
    w = d * d
    Gx = matvec(x)
    counts["matvecs"] += 1
    g = Gx - c
    f = 0.5 * float(x @ Gx) - float(c @ x)
    opt, it = np.inf, 0
    for it in range(1, max_iter + 1):  # noqa: B007
        opt = _optimality(g, x, col_scale, obj_scale)
        if opt <= tol:
            break
        # the binding set: within ε_k of the bound with a positive gradient (Bertsekas' ε_k =
        # min(ε, ||x − P(x − g/w)||), in the diagonal metric: scale-free)
        pg = x - np.maximum(x - g / w, 0.0)
        eps_k = min(_EPS_BIND * max(float(np.max(x * d)), 1e-300), float(np.linalg.norm(pg * d)))
        bind = (x * d <= eps_k) & (g > 0)
        F = np.flatnonzero(~bind)
        step = -g / w
        if F.size:
            sol = _face_direction(G, F, g[F][:, None], d, counts)
            if sol is not None:     # else (not even the regularised face factorised): gradient
                step[F] = -sol[:, 0]
        s = 1.0
        for _ls in range(40):
            xn = np.maximum(x + s * step, 0.0)
            Gxn = matvec(xn)
            counts["matvecs"] += 1
            fn = 0.5 * float(xn @ Gxn) - float(c @ xn)
            # Armijo along the arc (Bertsekas 1982, eq. (32)): the face part s·g_Fᵀd_F, the
            # binding part g_Bᵀ(x_B − x_B(s))
            dec = s * float(g[F] @ step[F]) - float(g[bind] @ (x[bind] - xn[bind]))
            if fn <= f + _ARMIJO * dec + 1e-15 * abs(f):
                break
            s *= 0.5
        else:
            break                   # no decrease at the resolution of the objective: stop
        x, Gx, f = xn, Gxn, fn
        g = Gx - c
    else:
        opt = _optimality(g, x, col_scale, obj_scale)
    return x, opt, it


def _budget_search(solve, face_eta, b, x, r, beta, tol):
    """The budget ``rᵀx <= β`` through its multiplier ``η``: the budget-free optimum first; if
    it exceeds the budget, Newton's method on the non-increasing, piecewise affine
    ``φ(η) = rᵀx(η) − β`` — on the face of ``x(η)`` the optimum is affine in ``η``, so
    ``face_eta`` gives the root of that piece exactly (one factorisation, two right-hand sides)
    — safeguarded by bisection inside the bracket. Returns ``(x, η, optimality, iterations)``."""

    def at(eta, x):
        return solve(b - eta * r if eta > 0 else b, x)

    x, opt, its = at(0.0, x)
    if not (r is not None and np.isfinite(beta)) or float(r @ x) <= beta * (1.0 + 1e-12):
        return x, 0.0, opt, its
    e_lo, e_hi, best, lo = 0.0, np.inf, None, x
    eta = 0.0
    for _ in range(60):
        cand = face_eta(x)
        if cand is None or not (e_lo < cand < e_hi):
            cand = 0.5 * (e_lo + e_hi) if np.isfinite(e_hi) else max(2.0 * e_lo, 1e-300)
        eta = cand
        x, opt, it = at(eta, x)
        its += it
        phi = float(r @ x) - beta
        if phi <= 1e-12 * beta:     # within rounding of the budget: scaled onto it at the end
            e_hi, best = eta, (x, opt)
            if phi >= -1e-12 * beta and opt <= tol:
                break
        else:
            e_lo, lo = eta, x
        if np.isfinite(e_hi) and e_hi - e_lo <= 1e-14 * e_hi:
            break
    if best is None:
        return x, eta, np.inf, its      # no feasible η found: reported as not converged
    x, opt = best
    used, used_lo = float(r @ x), float(r @ lo)
    if used < beta * (1.0 - 1e-12) and used_lo > beta and e_hi - e_lo <= 1e-14 * e_hi:
        # a jump of rᵀx(η) at the root (singular G: the optimal set at that η is not a point):
        # both ends are optimal for η = e_hi to rounding, so is the convex combination on the
        # budget (G x, hence the gradient, is the same at both: unique residual)
        t = (beta - used) / (used_lo - used)
        x = t * lo + (1.0 - t) * x
        used = float(r @ x)
    if used > beta:
        x = x * (beta / used)
    return x, e_hi, opt, its


def solve_cone_qp_newton(G: np.ndarray, b: np.ndarray, *, col_scale: np.ndarray,
                         obj_scale: float, tol: float, budget_row: np.ndarray | None = None,
                         budget: float = np.inf, x0: np.ndarray | None = None,
                         max_iter: int = 200, matvec=None) -> NewtonResult:
    """``min ½νᵀGν − bᵀν`` over ``ν >= 0`` (and ``rᵀν <= β``) on an explicit ``G``.

    Parameters
    ----------
    G : ndarray of shape (N, N)
        The symmetric positive semidefinite Gram matrix (dense; its face blocks are factorised).
    b : ndarray of shape (N,)
    col_scale, obj_scale
        ``||h_i||`` of the variables and ``||θ̃||``: the stopping test is the relative dual
        violation and complementarity of :func:`._qp.cone_optimality` below ``tol``.
    budget_row, budget
        ``r`` of shape ``(N,)`` (non-negative) and ``β``.
    x0 : ndarray of shape (N,), optional
        Warm start (projected onto ``ν >= 0``).
    max_iter : int
        Newton iterations per fixed ``η``.
    matvec : callable, optional
        ``v ↦ G v`` (default ``G @ v``), e.g. a symmetric BLAS product.

    Returns
    -------
    NewtonResult
        Not certified: the caller checks the point with :func:`._qp.cone_optimality`.
    """
    N = G.shape[0]
    if N == 0:
        return NewtonResult(np.zeros(0), 0.0, 0, 0, 0, 0, 0.0, True)
    diag = np.asarray(np.diagonal(G), float)
    d = np.sqrt(np.maximum(diag, 1e-300 * max(float(np.max(diag)), 1e-300)))
    mv = G.__matmul__ if matvec is None else matvec
    counts = {"matvecs": 0, "factorizations": 0, "regularized": 0}
    cs = np.maximum(np.asarray(col_scale, float), 1e-300)
    x = np.zeros(N) if x0 is None else np.asarray(x0, float)

    has_budget = budget_row is not None and np.isfinite(budget)
    r = np.asarray(budget_row, float) if has_budget else None

    def solve(c, x):
        return _solve_fixed(G, mv, c, d, x, cs, obj_scale, tol, max_iter, counts)

    def face_eta(x):
        # on the face F = {x > 0}: x_F(η) = G_FF⁻¹ (b_F − η r_F), so rᵀx(η) = β at
        # η = (r_Fᵀu − β) / (r_Fᵀv), u = G_FF⁻¹ b_F, v = G_FF⁻¹ r_F
        F = np.flatnonzero(x > 0)
        if F.size == 0:
            return None
        sol = _face_direction(G, F, np.stack([b[F], r[F]], axis=1), d, counts)
        if sol is None:
            return None
        rv = float(r[F] @ sol[:, 1])
        return (float(r[F] @ sol[:, 0]) - budget) / rv if rv > 0 else None

    x, eta, opt, its = _budget_search(solve, face_eta, b, x, r, budget, tol)
    if has_budget and eta > 0:
        # the final point's own measure with η, as :func:`._qp.cone_optimality` (budget
        # complementarity included): the search may end on a point optimal for a nearby η only
        g = mv(x) - b + eta * r
        counts["matvecs"] += 1
        opt = max(_optimality(g, x, cs, obj_scale),
                  (abs(float(g @ x)) + eta * abs(budget - float(r @ x))) / obj_scale**2)
    return NewtonResult(x, eta, counts["matvecs"], counts["factorizations"],
                        counts["regularized"], its, float(opt), bool(opt <= tol))
