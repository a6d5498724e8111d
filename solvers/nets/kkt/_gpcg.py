"""Gradient projection + conjugate gradients for the ℓ2 cone QP of the KKT check (private).

Solves the same program as :func:`._qp.solve_cone_qp` (docs/theory.md §7),

.. math::

    \\min_{\\nu \\in C} \\tfrac12 \\nu^\\top G \\nu - b^\\top \\nu
    \\quad\\text{s.t. (optionally)}\\quad r^\\top \\lambda \\le \\beta,

using only products ``G v`` (no factorisation), so its cost is a few dozen passes over ``G``
instead of the interior point's ``N³`` Cholesky factorisations. The method is GPCG
(Moré & Toraldo 1991, "On the solution of large quadratic programming problems with bound
constraints", SIAM J. Optim. 1(1)): projected-gradient steps (Barzilai–Borwein step, Armijo
search along the projection arc) identify a face of ``C``, then preconditioned conjugate
gradients minimise the quadratic on that face, followed by a projected search. The cone ``C``
is not a box: an example ``e`` with kinks has ``α λ_e <= μ_k <= λ_e``; the (diagonally
weighted) projection onto it is a convex one-dimensional problem in ``λ_e`` per example
(:func:`project_cone`). The δ budget enters through its multiplier ``η``: the program with
linear term ``b − η (r, 0)`` is solved for the ``η`` at which ``rᵀλ = β`` (a monotone root
search, each solve warm-started).

Nothing here decides optimality: the caller certifies the returned point with
:func:`._qp.cone_optimality` on the final multipliers, exactly as for the interior point.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._qp import ConeStructure

__all__: list[str] = []

logger = logging.getLogger(__name__)

# CG on a face: stop at this relative reduction of the (preconditioned) residual, or after this
# many steps. Tighter inner solves cost more products in total on the bench_kkt.py working-set
# programs (4,733 variables: 332 products at 1e-3, 480 at 1e-5, 649 at 1e-7; stopping CG at the
# first bound crossing: 559), since the outer iterations are spent identifying the face.
_CG_RTOL = 1e-3
_CG_MAX = 100


@dataclass(frozen=True)
class GPCGResult:
    """A point of ``C`` (within the budget), the budget multiplier, counts and the internal
    optimality measure reached (relative, as :func:`._qp.cone_optimality`)."""

    nu: np.ndarray
    eta: float
    matvecs: int
    iterations: int
    optimality: float
    converged: bool


def project_cone(a: np.ndarray, cone: ConeStructure, w: np.ndarray) -> np.ndarray:
    """``argmin_{ν ∈ C} Σ_j w_j (ν_j − a_j)²`` (weights ``w > 0``), exactly.

    Examples without kinks: ``λ = max(a, 0)``. An example ``e`` with kinks ``k``: for fixed
    ``λ`` the best ``μ_k`` is ``clip(a_k, αλ, λ)``, and what remains is the convex, piecewise
    quadratic ``φ_e(λ)`` with the continuous, non-decreasing, piecewise linear derivative

    .. math::

        φ_e'(λ) = s(λ)\\,λ - t(λ),\\quad
        s = w_e + \\sum_{a_k < αλ} w_k α^2 + \\sum_{a_k > λ} w_k,\\quad
        t = w_e a_e + \\sum_{a_k < αλ} w_k α a_k + \\sum_{a_k > λ} w_k a_k .

    ``s`` and ``t`` change only at the breakpoints ``λ = a_k`` (kink ``k`` leaves the upper
    bound) and ``λ = a_k/α`` (it reaches the lower bound), for ``a_k > 0``. The breakpoints of
    all examples are sorted once; ``φ_e'`` at each breakpoint (from segmented cumulative sums)
    locates the piece containing the root, which is ``λ = t/s`` there (``λ = 0`` if
    ``φ_e'(0) = −t(0⁺) >= 0``). Cost ``O(K log K)``, no iteration.
    """
    n, K, al = cone.n, cone.K, cone.alpha
    out = np.empty_like(a)
    out[:n] = np.maximum(a[:n], 0.0)
    if K == 0:
        return out
    ke = cone.kink_example
    ex, grp = np.unique(ke, return_inverse=True)
    c, wk = a[n:], w[n:]
    ae, we = a[ex], w[ex]
    ne = ex.size
    # the state just right of λ = 0: low = {a_k < α·0⁺}, up = {a_k > 0⁺}
    low0 = (c < 0.0) | ((c == 0.0) & (al > 0.0))
    up0 = c > 0.0
    s0 = we + np.bincount(grp, weights=np.where(low0, wk * al * al, 0.0)
                          + np.where(up0, wk, 0.0), minlength=ne)
    t0 = we * ae + np.bincount(grp, weights=np.where(low0, wk * al * c, 0.0)
                               + np.where(up0, wk * c, 0.0), minlength=ne)
    # breakpoints: (group, position, Δs, Δt)
    kp = np.flatnonzero(up0)
    ev_g, ev_x = [grp[kp]], [c[kp]]
    ev_ds, ev_dt = [-wk[kp]], [-wk[kp] * c[kp]]
    if al > 0.0:
        ev_g.append(grp[kp])
        ev_x.append(c[kp] / al)
        ev_ds.append(wk[kp] * al * al)
        ev_dt.append(wk[kp] * al * c[kp])
    eg, ex_, eds, edt = (np.concatenate(v) for v in (ev_g, ev_x, ev_ds, ev_dt))
    order = np.lexsort((ex_, eg))
    eg, ex_, eds, edt = eg[order], ex_[order], eds[order], edt[order]
    # cumulative Δs, Δt of the breakpoints before each one, within its group. One cumulative
    # sum serves every group, so each group's increments are first divided by that group's own
    # scale (s0 >= |Δs|; Σ|w a| >= |Δt|): otherwise a group of magnitude 1e-100 after one of
    # magnitude 1 is lost to cancellation in the differences and lands on the wrong piece
    t_sc = np.abs(we * ae) + np.bincount(grp, weights=np.abs(wk * c), minlength=ne)
    t_sc = np.where(t_sc > 0.0, t_sc, 1.0)
    start = np.searchsorted(eg, np.arange(ne))
    cs_ = np.concatenate(([0.0], np.cumsum(eds / s0[eg])))
    ct_ = np.concatenate(([0.0], np.cumsum(edt / t_sc[eg])))
    pos = np.arange(eg.size)
    s_before = s0[eg] * (1.0 + (cs_[pos] - cs_[start[eg]]))
    t_before = t_sc[eg] * (t0[eg] / t_sc[eg] + (ct_[pos] - ct_[start[eg]]))
    # φ' is non-decreasing: the breakpoints with φ' < 0 are a prefix of each group
    m = np.bincount(eg, weights=(s_before * ex_ - t_before < 0.0), minlength=ne).astype(np.int64)
    # s, t on the piece after the first m breakpoints, summed afresh (no cancellation)
    rank = pos - start[eg]
    take = rank < m[eg]
    s = s0 + np.bincount(eg, weights=np.where(take, eds, 0.0), minlength=ne)
    t = t0 + np.bincount(eg, weights=np.where(take, edt, 0.0), minlength=ne)
    lv = np.where(t0 <= 0.0, 0.0, np.maximum(t / s, 0.0))
    out[ex] = lv
    lk = lv[grp]
    out[n:] = np.clip(c, al * lk, lk)
    return out


def face_map(nu: np.ndarray, cone: ConeStructure) -> sp.csr_matrix:
    """``T`` of shape ``(N, nf)``: the face of ``C`` through ``ν`` is ``{ν + T p}`` locally.

    ``λ_i = 0`` drops example ``i`` with its kinks; ``μ_k = αλ_e`` or ``μ_k = λ_e`` folds the
    kink column into its example's column (with weight ``α`` or 1); other ``μ_k`` are free.
    """
    n, K, al = cone.n, cone.K, cone.alpha
    lam, mu = nu[:n], nu[n:]
    keep = np.flatnonzero(lam > 0.0)
    col = -np.ones(n, dtype=np.int64)
    col[keep] = np.arange(keep.size)
    rows, cols, vals = [keep], [col[keep]], [np.ones(keep.size)]
    if K:
        ke = cone.kink_example
        live = lam[ke] > 0.0
        at_lo = live & (mu == al * lam[ke])
        at_hi = live & (mu == lam[ke]) & ~at_lo
        free = live & ~at_lo & ~at_hi
        for mask, v in ((at_lo, al), (at_hi, 1.0)):
            k = np.flatnonzero(mask)
            rows.append(n + k)
            cols.append(col[ke[k]])
            vals.append(np.full(k.size, v))
        k = np.flatnonzero(free)
        rows.append(n + k)
        cols.append(keep.size + np.arange(k.size))
        vals.append(np.ones(k.size))
        nf = keep.size + k.size
    else:
        nf = keep.size
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(cone.N, nf))


def _optimality(g, nu, cone, col_scale, obj_scale):
    vm = cone.vertex_min(g)
    viol = float(np.max(np.maximum(-vm, 0.0) / (col_scale * obj_scale), initial=0.0))
    return max(viol, float(abs(g @ nu)) / obj_scale**2)


def _solve_fixed(matvec, c, cone, w, x0, col_scale, obj_scale, tol, max_iter, counter):
    """GPCG on ``min ½xᵀGx − cᵀx`` over ``C`` from ``x0``; returns ``(x, optimality, iters)``."""
    x = project_cone(x0, cone, w)
    Gx = matvec(x)
    counter[0] += 1
    g = Gx - c
    f = 0.5 * float(x @ Gx) - float(c @ x)
    t = 1.0
    opt = np.inf
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        opt = _optimality(g, x, cone, col_scale, obj_scale)
        if opt <= tol:
            break
        # --- projected gradient steps until the face settles (at most 5)
        for _ in range(5):
            sig_old = (x[:cone.n] > 0)
            for _ls in range(60):
                xn = project_cone(x - t * g / w, cone, w)
                Gxn = matvec(xn)
                counter[0] += 1
                fn = 0.5 * float(xn @ Gxn) - float(c @ xn)
                if fn <= f + 1e-4 * float(g @ (xn - x)) + 1e-15 * abs(f):
                    break
                t *= 0.25
            s, yv = xn - x, Gxn - Gx
            sy = float(s @ yv)
            t = float(s @ (w * s)) / sy if sy > 0 else 4.0 * t
            x, Gx, f = xn, Gxn, fn
            g = Gx - c
            if np.array_equal(sig_old, x[:cone.n] > 0):
                break
        # --- conjugate gradients on the face through x
        T = face_map(x, cone)
        if T.shape[1] == 0:
            continue
        TT = sp.csr_matrix(T.T)
        prec = 1.0 / np.maximum(np.asarray(TT.multiply(TT) @ w).ravel(), 1e-300)
        r = -(TT @ g)
        z = prec * r
        p = z.copy()
        rz = float(r @ z)
        r0 = np.sqrt(rz)
        step = np.zeros(T.shape[1])
        GTstep = np.zeros_like(x)
        for _cg in range(_CG_MAX):
            Tp = T @ p
            GTp = matvec(Tp)
            counter[0] += 1
            pAp = float(Tp @ GTp)
            if pAp <= 0:
                break
            a = rz / pAp
            step += a * p
            GTstep += a * GTp
            r -= a * (TT @ GTp)
            z = prec * r
            rz_new = float(r @ z)
            if np.sqrt(max(rz_new, 0.0)) <= _CG_RTOL * r0:
                break
            p = z + (rz_new / rz) * p
            rz = rz_new
        d = T @ step
        # projected search along x + s d (s = 1 first: stays on the face unless a bound is hit)
        s_ = 1.0
        for _ls in range(30):
            xn = project_cone(x + s_ * d, cone, w)
            if s_ == 1.0 and np.array_equal(xn, x + d):
                Gxn = Gx + GTstep  # exact up to rounding; refreshed below every outer step
            else:
                Gxn = matvec(xn)
                counter[0] += 1
            fn = 0.5 * float(xn @ Gxn) - float(c @ xn)
            if fn <= f + 1e-4 * float(g @ (xn - x)) + 1e-15 * abs(f):
                break
            s_ *= 0.5
        else:
            continue
        x, f = xn, fn
        Gx = matvec(x)  # fresh product: the optimality test never relies on accumulated rounding
        counter[0] += 1
        g = Gx - c
    return x, opt, it


def solve_cone_qp_gpcg(matvec, diag: np.ndarray, b: np.ndarray, cone: ConeStructure, *,
                       col_scale: np.ndarray, obj_scale: float, tol: float,
                       budget_row: np.ndarray | None = None, budget: float = np.inf,
                       x0: np.ndarray | None = None, max_iter: int = 200) -> GPCGResult:
    """``min ½νᵀGν − bᵀν`` over ``C`` (and ``rᵀλ <= β``) from products ``matvec(v) = G v``.

    Parameters
    ----------
    matvec : callable
        ``v ↦ G v`` for ``v`` of shape ``(N,)`` (a dense Gram matrix, or matrix-free passes).
    diag : ndarray of shape (N,)
        ``diag(G)`` (the metric of the projection and the Jacobi preconditioner).
    b : ndarray of shape (N,)
    cone : ConeStructure
    col_scale, obj_scale
        ``||h_i||`` of the examples and ``||θ̃||``: the stopping test is the relative dual-cone
        violation and complementarity of :func:`._qp.cone_optimality` below ``tol``.
    budget_row, budget
        ``r`` of shape ``(n,)`` (non-negative) and ``β``.
    x0 : ndarray of shape (N,), optional
        Warm start (projected onto ``C``), e.g. the natural multipliers.
    max_iter : int
        Outer iterations per fixed ``η``.
    """
    N = cone.N
    if N == 0:
        return GPCGResult(np.zeros(0), 0.0, 0, 0, 0.0, True)
    w = np.maximum(np.asarray(diag, float), 1e-300 * max(float(np.max(diag)), 1e-300))
    x = np.zeros(N) if x0 is None else np.asarray(x0, float)
    counter = [0]
    cs = np.maximum(col_scale[:cone.n], 1e-300)

    def solve(c, x):
        return _solve_fixed(matvec, c, cone, w, x, cs, obj_scale, tol, max_iter, counter)

    x, eta, opt, its = budget_root_search(solve, b, cone.n, x, budget_row, budget)
    return GPCGResult(x, eta, counter[0], its, float(opt), bool(opt <= tol))


def budget_root_search(solve, b, n, x, budget_row, budget):
    """The δ budget ``rᵀλ <= β`` through its multiplier ``η``: ``solve(c, x0)`` minimises
    ``½νᵀGν − cᵀν`` over the cone from ``x0`` (returning ``(ν, optimality, iterations)``);
    first with ``c = b``, and if that point exceeds the budget, for the ``η`` at which
    ``c = b − η (r, 0)`` gives ``rᵀλ = β``. ``rᵀλ(η)`` is non-increasing and piecewise affine:
    bracket the root, then regula falsi (Illinois variant), keeping the feasible end ``e_hi``
    (``rᵀλ <= β``), each solve warm-started. Returns ``(ν, η, optimality, iterations)``, ``ν``
    scaled into the budget."""

    def at(eta, x):
        c = b.copy()
        if eta > 0:
            c[:n] -= eta * budget_row
        return solve(c, x)

    x, opt, its = at(0.0, x)
    eta = 0.0
    has_budget = budget_row is not None and np.isfinite(budget)
    if has_budget and float(budget_row @ x[:n]) > budget * (1.0 + 1e-12):
        f_lo = float(budget_row @ x[:n]) - budget
        e_lo, e_hi = 0.0, max(float(np.max(np.abs(b[:n]) / np.maximum(budget_row, 1e-300)
                                           * (budget_row > 0), initial=0.0)) * 1e-6, 1e-300)
        sols = {}
        for _ in range(80):
            xe, oe, ie = at(e_hi, x)
            its += ie
            f_hi = float(budget_row @ xe[:n]) - budget
            if f_hi <= 0:
                sols[e_hi] = (xe, oe)
                break
            e_lo, f_lo, x = e_hi, f_hi, xe
            e_hi *= 10.0
        side = 0
        for _ in range(100):
            if f_hi >= -1e-12 * budget or e_hi - e_lo <= 1e-14 * e_hi:
                break
            em = (e_lo * f_hi - e_hi * f_lo) / (f_hi - f_lo)
            if not (e_lo < em < e_hi):
                em = 0.5 * (e_lo + e_hi)
            xe, oe, ie = at(em, sols[e_hi][0])
            its += ie
            fm = float(budget_row @ xe[:n]) - budget
            if fm <= 0:
                e_hi, f_hi = em, fm
                sols[e_hi] = (xe, oe)
                if side == -1:
                    f_lo *= 0.5
                side = -1
            else:
                e_lo, f_lo = em, fm
                if side == 1:
                    f_hi *= 0.5
                side = 1
        eta = e_hi
        x, opt = sols[e_hi]
        used = float(budget_row @ x[:n])
        if used > budget:
            x = x * (budget / used)
    return x, eta, opt, its
