"""Column generation for the ℓ1 / ℓ∞ margin LPs and basis pursuit, ``d ≫ n`` (docs/theory.md §5.8).

Each round solves a restricted LP over a feature set ``F`` and prices every other feature with
one mat-vec ``G^T ν``; the most violating features enter. The restricted LPs are **feasible for
every** ``F`` (elastic artificials with an exact-penalty cost for ``G_F w >= 1`` and
``X_F w = y``; the free margin variable for ℓ∞), so the first ``F`` can be small.

The restricted LPs are dense (``n`` rows, ``|F| ≈ n`` columns at the optimum), and are solved by
a dense primal–dual interior-point method (Mehrotra 1992) whose normal matrix
``A Θ A^T = G_F Θ' G_F^T + D`` is one BLAS ``syrk`` and one Cholesky factor per iteration
(``n²|F| + n³/3`` flops): measured against HiGHS on the same restricted LPs (dual simplex, 2000
rows; and interior point IPX), see docs/benchmarks.md. Never an ``n × 2d`` matrix: only
``G[:, F]``.

Every function returns an *unverified* answer; the caller certifies it on the original data.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg as sl
from scipy.linalg.blas import dsyrk

from ..tolerances import TOLERANCES
from ._chain import Infeasible

__all__: list[str] = []

_log = logging.getLogger(__name__)


# ---------------------------------------------------------------- dense interior-point LP
class _DenseLP:
    """``min c^T x`` s.t. ``A x = b``, ``0 <= x <= u`` (``u`` may be ``inf``), with every
    column of ``A`` either ``±`` a column of a dense block ``Ad`` (``m × p``) or ``±`` a unit
    vector ``e_i``; the normal matrix is then ``Ad diag(θ') Ad^T + diag(θ'')``.

    Parameters
    ----------
    Ad : ndarray of shape (m, p)
    jd, sd : ndarray of shape (nd,)
        Dense-backed LP columns: column ``k`` is ``sd[k] * Ad[:, jd[k]]``.
    iu, su : ndarray of shape (nu,)
        Unit LP columns: column ``nd + k`` is ``su[k] * e_{iu[k]}``.
    c, u : ndarray of shape (nd + nu,)
    b : ndarray of shape (m,)
    """

    def __init__(self, Ad, jd, sd, iu, su, c, u, b):
        self.Ad, self.jd, self.sd, self.iu, self.su = Ad, jd, sd, iu, su
        self.c, self.u, self.b = np.asarray(c, float), np.asarray(u, float), b
        self.m, self.p = Ad.shape
        self.nd = jd.size
        self.iterations = 0
        self._state = None

    def A(self, x):
        xd = np.bincount(self.jd, self.sd * x[:self.nd], minlength=self.p)
        return self.Ad @ xd + np.bincount(self.iu, self.su * x[self.nd:], minlength=self.m)

    def AT(self, y):
        return np.concatenate([self.sd * (self.Ad.T @ y)[self.jd], self.su * y[self.iu]])

    def _factor(self, theta):
        td = np.bincount(self.jd, theta[:self.nd], minlength=self.p)
        tu = np.bincount(self.iu, theta[self.nd:], minlength=self.m)
        # columns whose weight is negligible next to the largest (variables pinned at a bound
        # late in the iteration) are left out of the product: an inexact Newton direction
        # whose error the next iteration's residuals see (constraint reduction, Tits, Absil &
        # Woessner 2006)
        keep = np.flatnonzero(td > _REDUCE_RTOL * float(td.max()))
        self.kept = keep.size
        N = np.zeros((self.m, self.m), order="F")  # upper triangle of Ad Θ Ad^T, by blocks
        for i in range(0, keep.size, _BLOCK):  # (a block-sized temporary, not a copy of Ad)
            kb = keep[i:i + _BLOCK]
            N = dsyrk(1.0, self.Ad[:, kb] * np.sqrt(td[kb]), beta=1.0, c=N, lower=0,
                      overwrite_c=1)
        di = np.diag_indices(self.m)
        N[di] += tu
        diag = N.diagonal().copy()
        # near the optimum θ spans many decades and N loses definiteness in round-off: a
        # diagonal shift (relative 1e-14, then larger) keeps the Cholesky factor; the shifted
        # direction is inexact and the next iteration's residuals correct it
        for reg in (1e-14, 1e-12, 1e-10, 1e-8):
            N[di] = diag * (1.0 + reg) + reg * float(diag.max())
            try:
                return sl.cho_factor(N, lower=False, check_finite=False)
            except np.linalg.LinAlgError:
                continue
        raise RuntimeError("interior point: the normal matrix is not positive definite")

    def _direction(self, pt, rxz, rwv):
        """Newton direction for complementarity targets ``x z -> rxz``, ``w v -> rwv``."""
        x, z, w, v, bd, theta, fac, rp, rd, ru = pt
        rhat = rd - rxz / x + np.where(bd, (rwv - v * ru) / w, 0.0)
        dy = sl.cho_solve(fac, rp + self.A(theta * rhat), check_finite=False)
        dx = theta * (self.AT(dy) - rhat)
        dz = (rxz - z * dx) / x
        dw = np.where(bd, ru - dx, 0.0)
        dv = np.where(bd, (rwv - v * dw) / w, 0.0)
        return dx, dy, dz, dw, dv

    def solve(self, *, tol: float, accept: float, max_iter: int = 80, resume: bool = False):
        """Mehrotra predictor–corrector (Wright 1997, *Primal-Dual Interior-Point Methods*,
        ch. 10–11, with upper bounds as in LIPSOL). Returns ``(x, y)``, ``y`` the equality duals
        (``A^T y + z - v = c``), at the first iterate whose relative residuals and gap are
        ``<= tol``, else the best one if it is ``<= accept``; otherwise ``RuntimeError``.
        ``resume=True`` continues from the iterate the previous call returned (a tighter
        ``tol`` on the same LP without a new starting point)."""
        c, u, b = self.c, self.u, self.b
        n = c.size
        bd = np.isfinite(u)
        ub = np.where(bd, u, 0.0)
        if resume and self._state is not None:  # (None: the last call stalled; start afresh)
            return self._iterate(self._state, tol, accept, max_iter)
        # Mehrotra's starting point: least-norm x and least-squares (y, z), shifted inside
        fac = self._factor(np.ones(n))
        x = self.AT(sl.cho_solve(fac, b, check_finite=False))
        y = sl.cho_solve(fac, self.A(c), check_finite=False)
        zt = c - self.AT(y)
        z = np.where(bd, np.maximum(zt, 0.0), zt)
        v = np.where(bd, np.maximum(-zt, 0.0), 0.0)
        x = x + max(-1.5 * float(x.min()), 0.0)
        z = z + max(-1.5 * float(z.min()), 0.0)
        xz = float(x @ z)
        x = x + 0.5 * xz / max(float(z.sum()), 1e-300) + 1e-8
        z = z + 0.5 * xz / max(float(x.sum()), 1e-300) + 1e-8
        x = np.where(bd, np.clip(x, 0.05 * ub, 0.95 * ub), x)
        w = np.where(bd, ub - x, 1.0)
        v = np.where(bd, v + float(z.mean()), 0.0)
        return self._iterate((x, w, y, z, v), tol, accept, max_iter)

    def _iterate(self, state, tol, accept, max_iter):
        c, u, b = self.c, self.u, self.b
        n = c.size
        bd = np.isfinite(u)
        ub = np.where(bd, u, 0.0)
        x, w, y, z, v = state
        nb = int(bd.sum())
        best, best_it = (np.inf, x, y), 0
        bnorm, cnorm = 1.0 + np.linalg.norm(b), 1.0 + np.linalg.norm(c)
        for it in range(max_iter):
            rp = b - self.A(x)
            rd = c - self.AT(y) - z + v
            ru = np.where(bd, ub - x - w, 0.0)
            pobj = float(c @ x)
            dobj = float(b @ y - ub @ v)
            mu = (x @ z + (w * v)[bd].sum()) / (n + nb)
            err = max(np.linalg.norm(rp) / bnorm, np.linalg.norm(rd) / cnorm,
                      np.linalg.norm(ru) / (1.0 + np.linalg.norm(ub)),
                      abs(pobj - dobj) / (1.0 + abs(pobj)))
            if err < best[0]:
                best, best_it = (err, x, y), it
            _log.debug("ipm it %d: err %.2e, mu %.2e, kept %s", it, err, mu,
                       getattr(self, "kept", None))
            if best[0] <= accept and it - best_it >= _STALL:
                # stalled in round-off: μ keeps falling while the residuals grow (measured at
                # 2000 x 20000 ℓ∞: best 5e-9 at iteration 24, then 1e-6 for 55 iterations)
                self.iterations += it
                self._state = None
                return best[1], best[2]
            if err <= tol:
                self.iterations += it
                self._state = (x, w, y, z, v)
                return x, y
            theta = 1.0 / (z / x + np.where(bd, v / w, 0.0))
            fac = self._factor(theta)
            pt = (x, z, w, v, bd, theta, fac, rp, rd, ru)
            dx, dy, dz, dw, dv = self._direction(pt, -x * z, np.where(bd, -w * v, 0.0))
            ap, ad = _steps(pt, dx, dz, dw, dv)
            mu_aff = (((x + ap * dx) @ (z + ad * dz))
                      + ((w + ap * dw) * (v + ad * dv))[bd].sum()) / (n + nb)
            sigma = (mu_aff / mu) ** 3
            rxz = sigma * mu - x * z - dx * dz
            rwv = np.where(bd, sigma * mu - w * v - dw * dv, 0.0)
            dx, dy, dz, dw, dv = self._direction(pt, rxz, rwv)
            ap, ad = _steps(pt, dx, dz, dw, dv)
            ap, ad = min(1.0, 0.995 * ap), min(1.0, 0.995 * ad)
            _log.debug("ipm steps %.3g %.3g, sigma %.2e", ap, ad, sigma)
            x = x + ap * dx
            w = np.where(bd, w + ap * dw, 1.0)
            y = y + ad * dy
            z = z + ad * dz
            v = np.where(bd, v + ad * dv, 0.0)
        self.iterations += max_iter
        if best[0] <= accept:  # stalled in round-off between tol and accept: good enough
            return best[1], best[2]
        raise RuntimeError(f"interior point (column generation): relative residual "
                           f"{best[0]:.1e} > {accept:.0e} after {max_iter} iterations")


def _steps(pt, dx, dz, dw, dv):
    x, z, w, v, bd = pt[:5]
    return (min(_max_step(x, dx), _max_step(w[bd], dw[bd])),
            min(_max_step(z, dz), _max_step(v[bd], dv[bd])))


def _max_step(x, dx):
    neg = dx < 0
    return float(np.min(-x[neg] / dx[neg])) if neg.any() else np.inf


def _top(score: np.ndarray, cand: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` entries of ``cand`` with the largest ``score`` (all if fewer), sorted."""
    if cand.size > k:
        cand = cand[np.argpartition(-score[cand], k - 1)[:k]]
    return np.sort(cand)


# Pricing: a feature violates when its reduced cost is below -_PRICE_RTOL (relative). The
# interior point stops at solver_eps (1e-9); a violation of 1e-7 or less changes the dual norm
# ||G^T λ||_q by at most that fraction, 10x below certificate_rtol (1e-6), so it cannot fail the
# certificate, while a threshold at the interior point's own accuracy would chase round-off.
_PRICE_RTOL = 100 * TOLERANCES.solver_eps
# Early rounds, whose duals only rank the entering columns, stop the interior point at
# _LOOSE_RTOL; the answer always comes from a round solved to solver_eps with no violator.
_LOOSE_RTOL = 1e-6
# ℓ1 rounds also enter the features whose price is within _NEAR_RTOL of a violation (up to the
# batch): they are the next round's violators more often than not (measured, docs/benchmarks.md)
_NEAR_RTOL = 0.25
_M0, _M_MAX = 1e3, 1e9  # elastic penalty: first value and the value at which we give up
# constraint reduction: a column enters the normal matrix while its weight θ_j exceeds 1e-12 of
# the largest (a pinned column's θ falls like μ², so it drops out only in the last iterations)
_REDUCE_RTOL = 1e-12
_BLOCK = 2048  # columns per syrk call
# an interior point whose best residual is <= accept and has not improved for _STALL iterations
# returns that best iterate (the caller's certificate judges it, as after max_iter)
_STALL = 5
_BOUND_ATOL = 1e-6  # u_j within this of 0 or 2 counts as at its bound (ℓ∞ bookkeeping only)


def _l1_elastic(A: np.ndarray, rhs: np.ndarray, *, equality: bool, initial: int | None,
                max_rounds: int, what: str):
    """``min ||w||_1`` s.t. ``A w = rhs`` (``equality``) or ``A w >= rhs`` by column
    generation with elastic artificials; returns ``(w, ν')`` with ``ν'`` the LP duals
    (``||A^T ν'||_∞ <= 1``)."""
    m, d = A.shape
    tol = TOLERANCES.solver_eps
    # equality (basis pursuit): a quarter of n per round, so a sparse w needs few columns and
    # no restricted LP is a square, ill-conditioned X_F; inequality (margin): n per round
    batch = max(50, m // 4 if equality else m)
    k0 = min(d, initial if initial is not None else batch if equality else 2 * batch)
    F = _top(np.abs(A.T @ rhs), np.arange(d), k0)
    M = _M0
    rows = np.arange(m)
    loose = True  # early rounds only choose columns: a loose interior point is enough
    for rnd in range(max_rounds):
        k = F.size
        # columns: a_F (+), b_F (-), then units: r+ (+), [r- (-)] or [z (-) slack]
        jd = np.concatenate([np.arange(k), np.arange(k)])
        sd = np.concatenate([np.ones(k), -np.ones(k)])
        iu = np.concatenate([rows, rows])
        su = np.concatenate([np.ones(m), -np.ones(m)])
        cu = np.concatenate([np.full(m, M), np.full(m, M if equality else 0.0)])
        lp = _DenseLP(A[:, F], jd, sd, iu, su, np.concatenate([np.ones(2 * k), cu]),
                      np.full(2 * k + 2 * m, np.inf), rhs)
        rtol = _LOOSE_RTOL if loose else TOLERANCES.solver_eps
        x, nu = lp.solve(tol=rtol, accept=max(rtol, _PRICE_RTOL))
        price = np.abs(A.T @ nu)
        art = float(x[2 * k:2 * k + m].sum() + (x[2 * k + m:].sum() if equality else 0.0))
        inF = np.zeros(d, dtype=bool)
        inF[F] = True
        viol = np.where(inF, 0.0, price)
        bad = np.flatnonzero(viol > 1.0 + _PRICE_RTOL)
        _log.debug("%s round %d: |F| = %d, M = %g, artificials %.2e, %d violators, %d IPM "
                   "iterations (tol %.0e)", what, rnd, k, M, art, bad.size, lp.iterations, rtol)
        if loose and bad.size <= max(10, k // 100):  # nearly there: solve to full accuracy
            loose = False
            if bad.size == 0:  # the same LP: continue its interior point to solver_eps
                x, nu = lp.solve(tol=TOLERANCES.solver_eps, accept=_PRICE_RTOL, resume=True)
                price = np.abs(A.T @ nu)
                art = float(x[2 * k:2 * k + m].sum()
                            + (x[2 * k + m:].sum() if equality else 0.0))
                viol = np.where(inF, 0.0, price)
                bad = np.flatnonzero(viol > 1.0 + _PRICE_RTOL)
                _log.debug("%s round %d resumed: artificials %.2e, %d violators, %d IPM "
                           "iterations (tol %.0e)", what, rnd, art, bad.size, lp.iterations,
                           TOLERANCES.solver_eps)
        if bad.size == 0:
            if art <= tol * max(1.0, float(np.abs(rhs).max())):
                w = np.zeros(d)
                w[F] = x[:k] - x[k:2 * k]
                return w, nu
            if M >= _M_MAX:
                raise Infeasible(f"{what}: elastic artificials {art:.2e} remain at penalty "
                                 f"{M:.0e} with every feature priced out")
            M *= 100.0
            continue
        # violators first, then near-violators (price within _NEAR_RTOL of 1) up to the
        # batch: the features the next round's duals would price in, entered now
        near = np.flatnonzero(viol > 1.0 - _NEAR_RTOL)
        F = np.union1d(F, _top(viol, near if near.size > bad.size else bad, batch))
    raise RuntimeError(f"{what}: column generation did not converge in {max_rounds} rounds")


def margin_lp_colgen(G: np.ndarray, p: float, *, initial: int | None = None,
                     max_rounds: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The ℓ1 / ℓ∞ max-margin program by column generation (docs/theory.md §5.8); returns
    ``(w*, λ)``: ``w*`` minimises ``||w||_p`` s.t. ``G w >= 1`` and ``λ`` are the multipliers of
    the half-squared program (as the full LP ``_margin_lp`` returns them).

    ℓ1: ``min ||w||_1`` s.t. ``G w >= 1`` directly (homogeneity), with elastic artificials
    ``G_F (a - b) - z + r = 1`` of cost ``M`` so that every restricted LP is feasible; its duals
    ``ν' >= 0`` are optimal for the full LP iff ``||G^T ν'||_∞ <= 1`` (and ``r = 0``); then
    ``λ = ||w*||_1 ν'``.

    ℓ∞: ``max s`` s.t. ``G w >= s 1``, ``|w| <= 1``. Features outside ``F`` are fixed at
    ``w_j = σ_j ∈ {±1}``; in ``F``, ``w_j = σ_j (1 - u_j)`` with ``u_j ∈ [0, 2]``. The row
    duals ``ν ∈ Δ`` are optimal for the full LP iff ``σ_j (G^T ν)_j >= 0`` for every fixed
    feature; violators enter, and features of ``F`` that end at a bound with a reduced cost of
    the right sign leave ``F`` (with ``σ_j`` set to their value), so ``|F|`` stays near the
    ``<= n`` free features of a vertex. ``σ`` starts as the sign of ``G^T 1``.

    Parameters
    ----------
    G : ndarray of shape (m, d)
        Rows ``y_i x_i``.
    p : {1.0, inf}
    initial : int, optional
        Size of the first feature set (ℓ1: ``2 max(m, 50)`` by ``|G^T 1|``; ℓ∞: all ``d``).
    max_rounds : int
        Pricing rounds before giving up (``RuntimeError``; the fallback chain continues).

    Raises
    ------
    Infeasible
        The margin is ``<= 0`` (ℓ∞), or the elastic artificials survive (ℓ1): not separable
        as far as this route can tell (the caller's Farkas certificate decides).
    RuntimeError
        The interior point or the rounds ran out.

    References
    ----------
    Gilmore & Gomory (1961), Oper. Res. 9(6) (column generation); Mehrotra (1992), SIAM J.
    Optim. 2(4) (predictor–corrector).
    """
    m, d = G.shape
    if not np.isinf(p):
        w, nu = _l1_elastic(G, np.ones(m), equality=False, initial=initial,
                            max_rounds=max_rounds, what="l1 margin")
        return w, nu * float(np.abs(w).sum())
    c = G.T @ np.ones(m)
    sigma = np.where(c >= 0, 1.0, -1.0)
    batch = max(50, 2 * m)
    # Default: every feature in the first LP (measured: restricted rounds need ~20-40 rounds at
    # 200 x 2000, each a full interior point, against one interior point on all d columns
    # whose pinned columns drop out of the normal matrix); ``initial`` < d restricts it.
    F = _top(-np.abs(c), np.arange(d), min(d, initial if initial is not None else d))
    for rnd in range(max_rounds):
        k = F.size
        offset = G @ sigma
        L = float(offset.min()) - 1.0  # s >= L is no restriction (u = 0 gives s = min offset)
        # min -s'  s.t. (G_F σ_F) u + s' 1 + z = Gσ - L;  u ∈ [0, 2], s', z >= 0
        Ad = np.hstack([G[:, F] * sigma[F], np.ones((m, 1))])
        lp = _DenseLP(Ad, np.arange(k + 1), np.ones(k + 1), np.arange(m), np.ones(m),
                      np.concatenate([np.zeros(k), [-1.0], np.zeros(m)]),
                      np.concatenate([np.full(k, 2.0), np.full(m + 1, np.inf)]), offset - L)
        x, ydual = lp.solve(tol=TOLERANCES.solver_eps, accept=_PRICE_RTOL)
        nu = -ydual
        s = L + float(x[k])
        price = sigma * (G.T @ nu)  # reduced cost of u_j: >= 0 wanted at u_j = 0
        scale = max(1.0, float(np.abs(price).max()))
        inF = np.zeros(d, dtype=bool)
        inF[F] = True
        bad = np.flatnonzero(~inF & (price < -_PRICE_RTOL * scale))
        _log.debug("linf round %d: |F| = %d, s = %.9g, %d violators, %d IPM iterations", rnd,
                   k, s, bad.size, lp.iterations)
        u = x[:k]
        if bad.size == 0:
            w = sigma.copy()
            w[F] = sigma[F] * (1.0 - u)
            break
        # features at a bound whose reduced cost confirms it leave F, at that bound
        at_hi = (u > 2.0 - _BOUND_ATOL) & (price[F] < -_BOUND_ATOL * scale)
        at_lo = (u < _BOUND_ATOL) & (price[F] > _BOUND_ATOL * scale)
        sigma[F[at_hi]] = -sigma[F[at_hi]]
        F = np.union1d(F[~(at_hi | at_lo)], _top(-price, bad, batch))
    else:
        raise RuntimeError(f"column generation did not converge in {max_rounds} rounds")
    if s <= 0.0:
        raise Infeasible(f"LP margin s = {s:.2e} <= 0")
    return w / s, nu / s**2


def basis_pursuit_colgen(X: np.ndarray, y: np.ndarray, *, initial: int | None = None,
                         max_rounds: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``min ||w||_1`` s.t. ``X w = y`` by column generation (docs/theory.md §5.8).

    The restricted LP over ``F`` is ``min 1^T(a + b) + M 1^T(r⁺ + r⁻)`` s.t.
    ``X_F (a - b) + r⁺ - r⁻ = y``: feasible for every ``F`` (``r = ±y`` at ``F = ∅``), and an
    exact penalty once ``M > ||ν*||_∞``. The reduced costs of ``a_j, b_j`` are
    ``1 ∓ (X^T ν')_j``, so the restricted optimum is optimal for all features iff
    ``||X^T ν'||_∞ <= 1`` (one mat-vec) and ``r = 0``; if every feature prices out but ``r``
    is not 0, ``M`` grows 100-fold. A sparse ``w`` needs about its support in ``F``, not ``n``
    dense columns. Returns ``(w, ν)`` with ``ν = ||w||_1 ν'`` the multipliers of the
    half-squared program, as ``_route_highs`` of the min-norm program does.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
        Consistent (in the range of ``X``; the caller checks it).
    initial : int, optional
        Size of the first feature set (default ``max(n / 4, 50)``), the largest ``|X^T y|``.
    max_rounds : int

    Raises
    ------
    Infeasible
        The artificials survive at the largest penalty with every feature priced out.
    RuntimeError
        The interior point or the rounds ran out.
    """
    w, nu = _l1_elastic(X, np.asarray(y, float), equality=True, initial=initial,
                        max_rounds=max_rounds, what="basis pursuit")
    return w, nu * float(np.abs(w).sum())
