"""The convex programs behind :func:`solvers.check_kkt` (private).

Variables ``ν = (λ, μ)``: one multiplier ``λ_i`` per candidate example and one ``μ_k`` per near-kink
pair ``k = (e_k, unit)`` (``μ_k = λ_{e_k} s_k`` with ``s_k`` the Clarke slope of the pair). The
feasible set is the polyhedral cone

.. math::

    C = \\{\\nu : \\lambda_i \\ge 0 \\text{ (examples without kinks)},\\;
        \\alpha \\lambda_{e_k} \\le \\mu_k \\le \\lambda_{e_k}\\},

written ``B ν >= 0`` with a sparse ``B``. Its generators (extreme rays) are, for each example
``i``, ``λ_i = 1`` with every ``μ_k`` of that example at ``α`` or ``1`` — so membership of
``g`` in the dual cone ``C*`` is ``g_{λ_i} + Σ_k min(α g_{μ_k}, g_{μ_k}) >= 0`` for all ``i``.

* :func:`solve_cone_qp`: ``min ½ νᵀ G ν − bᵀ ν`` over ``C`` (``G = A Aᵀ``, ``b = A θ̃``, so the
  objective is ``½||θ̃ − Aᵀν||² − ½||θ̃||²``), by a Mehrotra predictor–corrector interior-point
  method on the dense Gram matrix, then an active-face polish (an exact linear solve on the face
  the interior point identifies), accepted only when it stays feasible and does not increase the
  objective.
* :func:`cone_optimality`: the first-order optimality residuals of a point (dual-cone violation
  and complementarity), used to verify any solution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

__all__: list[str] = []

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConeStructure:
    """The cone ``C``: ``n`` multipliers λ, ``K`` kink variables μ with their example and ``α``."""

    n: int
    kink_example: np.ndarray  # (K,) int, index into 0..n-1
    alpha: float

    @property
    def K(self) -> int:
        return int(self.kink_example.shape[0])

    @property
    def N(self) -> int:
        return self.n + self.K

    def has_kink(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        out[self.kink_example] = True
        return out

    def constraint_matrix(self) -> sp.csr_matrix:
        """``B`` of shape ``(m, N)`` with ``C = {ν : Bν >= 0}``."""
        n, K, a = self.n, self.K, self.alpha
        free = np.flatnonzero(~self.has_kink())
        rows, cols, vals = [], [], []
        r = 0
        for i in free:  # λ_i >= 0
            rows.append(r)
            cols.append(i)
            vals.append(1.0)
            r += 1
        for k, e in enumerate(self.kink_example):
            rows += [r, r, r + 1, r + 1]  # μ_k − α λ_e >= 0 ;  λ_e − μ_k >= 0
            cols += [n + k, e, e, n + k]
            vals += [1.0, -a, 1.0, -1.0]
            r += 2
        return sp.csr_matrix((vals, (rows, cols)), shape=(r, n + K))

    def project(self, nu: np.ndarray) -> np.ndarray:
        """A nearby point of ``C``: ``λ ← max(λ, 0)``, ``μ_k ← clip(μ_k, αλ, λ)``."""
        lam = np.maximum(nu[: self.n], 0.0)
        mu = nu[self.n:]
        le = lam[self.kink_example]
        mu = np.clip(mu, self.alpha * le, le)
        return np.concatenate([lam, mu])

    def natural(self, lam: np.ndarray, slopes: np.ndarray) -> np.ndarray:
        """``ν`` for multipliers ``lam`` and fixed kink slopes ``slopes`` (``μ_k = λ_e s_k``)."""
        return np.concatenate([lam, lam[self.kink_example] * slopes])

    def vertex_min(self, g: np.ndarray) -> np.ndarray:
        """``min`` over the generators of example ``i`` of ``⟨g, generator⟩``, shape ``(n,)``."""
        out = g[: self.n].copy()
        gm = g[self.n:]
        np.add.at(out, self.kink_example, np.minimum(self.alpha * gm, gm))
        return out


@dataclass(frozen=True)
class QPResult:
    nu: np.ndarray
    eta: float  # multiplier of the δ budget (0 when inactive or absent)
    objective: float
    iterations: int
    polished: bool
    converged: bool


def cone_optimality(G: np.ndarray, b: np.ndarray, nu: np.ndarray, cone: ConeStructure,
                    col_scale: np.ndarray, obj_scale: float, *, budget_row=None,
                    budget: float = np.inf, eta: float = 0.0) -> tuple[float, float]:
    """Dual-cone violation and complementarity of ``ν`` for ``min ½νᵀGν − bᵀν`` over ``C``
    (optionally with the budget ``rᵀλ <= β`` and its multiplier ``η >= 0``).

    Optimality: ``g̃ = Gν − b + η (r, 0)`` lies in ``C*`` and ``⟨g̃, ν⟩ = 0``, ``η (β − rᵀλ) = 0``.
    Both are returned relative: the violation of example ``i`` is divided by
    ``col_scale_i · obj_scale`` (``||h_i|| · ||θ̃||``), the complementarity by ``obj_scale²``.
    """
    g = G @ nu - b
    comp_b = 0.0
    if budget_row is not None and eta > 0:
        g[: cone.n] += eta * budget_row
        comp_b = eta * abs(budget - float(budget_row @ nu[: cone.n]))
    vm = cone.vertex_min(g)
    viol = (float(np.max(np.maximum(-vm, 0.0) / (col_scale[: cone.n] * obj_scale)))
            if vm.size else 0.0)
    comp = (float(abs(g @ nu)) + comp_b) / obj_scale**2
    return viol, comp


def _enforce_budget(nu, cone, budget_row, budget):
    if budget_row is None or not np.isfinite(budget):
        return nu
    used = float(budget_row @ nu[: cone.n])
    if used > budget:
        nu = nu * (budget / used)
    return nu


def solve_cone_qp(G: np.ndarray, b: np.ndarray, cone: ConeStructure, *, tol: float,
                  budget_row: np.ndarray | None = None, budget: float = np.inf,
                  max_iter: int = 80) -> QPResult:
    """``min ½ νᵀ G ν − bᵀ ν`` subject to ``ν ∈ C`` and, optionally, ``rᵀλ <= β``.

    ``budget_row`` ``r`` of shape ``(n,)`` (non-negative: ``q_i − 1``) and ``budget`` ``β`` bound
    ``δ = Σ λ_i (q_i − 1)``. The problem is first rescaled (columns to unit diagonal, objective by
    ``max|b|``) so ``tol`` is relative. Returns a point of ``C`` satisfying the budget exactly
    (projected / scaled down).
    """
    N = cone.N
    if N == 0:
        return QPResult(np.zeros(0), 0.0, 0.0, 0, False, True)
    has_budget = budget_row is not None and np.isfinite(budget)
    d = np.sqrt(np.maximum(np.diag(G), 0.0))
    d[d == 0.0] = 1.0
    tau = max(float(np.max(np.abs(b / d))), 1e-300)
    Gs = G / d[:, None]
    Gs /= d[None, :] * tau
    bs = b / d / tau
    Bc = cone.constraint_matrix()
    cvec = np.zeros(Bc.shape[0])
    if has_budget:
        row = np.concatenate([-np.asarray(budget_row, float), np.zeros(cone.K)])
        row = sp.csr_matrix(row[None, :])
        Bc = sp.vstack([Bc, row]).tocsr()
        cvec = np.concatenate([cvec, [-float(budget)]])
    B = sp.csr_matrix(Bc @ sp.diags(1.0 / d))
    m = B.shape[0]
    BT = sp.csr_matrix(B.T)
    # the budget row is dense: its term of BᵀDB is a dense rank-1 update, the rest stays sparse
    m_sparse = m - 1 if has_budget else m
    B_sp = B[:m_sparse]
    BT_sp = sp.csr_matrix(B_sp.T)
    b_row = B[m_sparse:].toarray().ravel() if has_budget else None

    # starting point: the "midpoint" slopes, optimally scaled
    x = cone.natural(np.ones(cone.n), np.full(cone.K, 0.5 * (1.0 + cone.alpha))) * d
    curv = float(x @ (Gs @ x))
    c = max(float(bs @ x) / curv, 1e-3) if curv > 0 else 1.0
    x = c * x
    s = B @ x - cvec
    s = np.maximum(s, 1e-2 * max(1.0, float(np.max(np.abs(s), initial=0.0))))
    z = np.ones(m)

    bud_row = budget_row if has_budget else None

    def finalize(x, s, z):
        """Projected IPM point, then the face polish if it does not increase the objective."""
        nu = _enforce_budget(cone.project(x / d), cone, bud_row, budget)
        eta = float(z[-1] * tau) if has_budget else 0.0
        obj = 0.5 * float(nu @ (G @ nu)) - float(b @ nu)
        pol = _polish(G, b, cone, s, z, bud_row, budget)
        if pol is not None:
            nu_p, eta_p = pol
            obj_p = 0.5 * float(nu_p @ (G @ nu_p)) - float(b @ nu_p)
            if obj_p <= obj + 1e-12 * abs(obj) + 1e-300:
                return nu_p, eta_p, obj_p, True
        return nu, eta, obj, False

    converged = False
    it = 0
    reg = 1e-13
    for it in range(1, max_iter + 1):  # noqa: B007
        rd = Gs @ x - bs - BT @ z
        rp = B @ x - cvec - s
        mu = float(s @ z) / m
        small_rd = np.max(np.abs(rd)) <= tol * (1.0 + float(np.max(np.abs(bs))))
        if np.max(np.abs(rp)) <= tol and mu <= tol:
            # accurate enough to read the active face: stop as soon as its polish succeeds
            # (the dual residual may stall near N·eps·||G|| on large programs, so it is not
            # required here; the caller verifies optimality independently)
            fin = finalize(x, s, z)
            if fin[3]:
                return QPResult(fin[0], fin[1], fin[2], it, True, bool(small_rd))
            if mu <= tol * tol:
                converged = bool(small_rd)
                break
        D = z / s
        Hm = Gs.copy()
        BDB = (BT_sp @ sp.diags(D[:m_sparse]) @ B_sp).tocoo()
        BDB.sum_duplicates()  # unique (row, col): fancy-index += is exact (np.add.at is slow)
        Hm[BDB.row, BDB.col] += BDB.data
        if has_budget:
            Hm += D[-1] * np.outer(b_row, b_row)
        Hm[np.diag_indices_from(Hm)] += reg * (1.0 + np.abs(np.diag(Hm)))
        try:
            fac = sla.cho_factor(Hm, lower=True, check_finite=False, overwrite_a=True)
        except np.linalg.LinAlgError:
            reg *= 100.0
            continue
        del Hm

        def direction(rc, fac=fac, rd=rd, rp=rp, s=s, z=z):
            # Newton step of  G dx − Bᵀdz = −rd,  B dx − ds = −rp,  Z ds + S dz = rc
            rhs = -rd + BT @ ((rc - z * rp) / s)
            dx = sla.cho_solve(fac, rhs, check_finite=False)
            dz = (rc - z * rp - z * (B @ dx)) / s
            ds = B @ dx + rp
            return dx, ds, dz

        def step(v, dv):
            neg = dv < 0
            if not np.any(neg):
                return 1.0
            return float(min(1.0, np.min(-v[neg] / dv[neg])))

        dx_a, ds_a, dz_a = direction(-s * z)  # predictor (affine scaling)
        a_p, a_d = step(s, ds_a), step(z, dz_a)
        mu_aff = float((s + a_p * ds_a) @ (z + a_d * dz_a)) / m
        sigma = (mu_aff / mu) ** 3 if mu > 0 else 0.0
        dx, ds, dz = direction(-s * z - ds_a * dz_a + sigma * mu)  # corrector
        a = 0.99 * min(step(s, ds), step(z, dz))
        logger.debug("cone QP it %d: |rd| %.2e |rp| %.2e mu %.2e step %.3f", it,
                     float(np.max(np.abs(rd))), float(np.max(np.abs(rp), initial=0.0)), mu, a)
        x = x + a * dx
        s = np.maximum(s + a * ds, 1e-300)
        z = np.maximum(z + a * dz, 1e-300)
    del Gs
    nu, eta, obj, polished = finalize(x, s, z)
    return QPResult(nu, eta, obj, it, polished, converged)


def _well_conditioned_cholesky(G: np.ndarray, rcond: float):
    """Cholesky factor of the unit-diagonal scaling of ``G`` if its pivots stay above
    ``rcond`` (then ``G`` is numerically nonsingular), else ``None``."""
    d = np.sqrt(np.maximum(np.diag(G), 0.0))
    if np.any(d == 0.0):
        return None
    try:
        Lf = np.linalg.cholesky(G / d[:, None] / d[None, :])
    except np.linalg.LinAlgError:
        return None
    if float(np.min(np.diag(Lf))) ** 2 < rcond:
        return None
    return Lf, d


def _psd_solve(Gf: np.ndarray, bf: np.ndarray) -> np.ndarray:
    """``Gf ξ = bf`` for PSD ``Gf``: Cholesky when well conditioned, else the minimum-norm
    solution from the eigendecomposition (eigenvalues below ``1e-13 · max`` dropped)."""
    fac = _well_conditioned_cholesky(Gf, 1e-10)
    if fac is not None:
        Lf, d = fac
        return sla.cho_solve((Lf, True), bf / d, check_finite=False) / d
    w, V = np.linalg.eigh(Gf)
    keep = w > 1e-13 * max(float(w[-1]), 1e-300)
    return V[:, keep] @ ((V[:, keep].T @ bf) / w[keep])


def _polish(G, b, cone: ConeStructure, s, z, budget_row, budget):
    """Exact minimiser on the face of ``C`` whose constraints the interior point marks active.

    Active = slack below multiplier (``s < z``). Faces: ``λ_i = 0`` (drops the example and its
    kinks), ``μ_k = αλ_e`` or ``μ_k = λ_e`` (the kink column folds into the example's column) or
    ``μ_k`` free; an active budget adds the equality ``rᵀλ = β`` (bordered system). Returns
    ``(ν, η)``, or ``None`` when the face solution leaves the feasible set or ``η < 0``.
    """
    n, K, alpha = cone.n, cone.K, cone.alpha
    active = s < z
    has_kink = cone.has_kink()
    dropped = np.zeros(n, dtype=bool)
    r = 0
    for i in np.flatnonzero(~has_kink):
        dropped[i] = active[r]
        r += 1
    lo = active[r:r + 2 * K:2]
    hi = active[r + 1:r + 2 * K:2]
    budget_active = budget_row is not None and bool(active[-1])
    dropped[cone.kink_example[lo & hi]] = True
    col_of = -np.ones(n, dtype=int)
    keep_ex = np.flatnonzero(~dropped)
    col_of[keep_ex] = np.arange(keep_ex.size)
    rows_t = list(keep_ex)
    cols_t = list(range(keep_ex.size))
    vals_t = [1.0] * keep_ex.size
    nf = keep_ex.size
    for k in range(K):
        e = cone.kink_example[k]
        if dropped[e]:
            continue
        rows_t.append(n + k)
        if lo[k] or hi[k]:
            cols_t.append(col_of[e])
            vals_t.append(alpha if lo[k] else 1.0)
        else:
            cols_t.append(nf)
            vals_t.append(1.0)
            nf += 1
    if nf == 0:
        return np.zeros(cone.N), 0.0
    T = sp.csr_matrix((vals_t, (rows_t, cols_t)), shape=(cone.N, nf))
    GT = np.asarray((T.T @ G).T)  # (N, nf): sparse-dense products, never a dense T
    Gf = np.asarray(T.T @ GT)
    Gf = 0.5 * (Gf + Gf.T)
    bf = np.asarray(T.T @ b)
    eta = 0.0
    if budget_active:
        rf = np.asarray(T.T @ np.concatenate([budget_row, np.zeros(K)]))
        sc = (float(np.max(np.abs(np.diag(Gf)), initial=1.0))
              / max(float(np.max(np.abs(rf))), 1e-300))
        KKT = np.block([[Gf, sc * rf[:, None]], [sc * rf[None, :], np.zeros((1, 1))]])
        sol = np.linalg.lstsq(KKT, np.concatenate([bf, [sc * budget]]), rcond=1e-13)[0]
        xi, eta = sol[:nf], float(sol[nf]) * sc
        if eta < 0:
            return None
    else:
        xi = _psd_solve(Gf, bf)
    nu_f = T @ xi
    scale = max(float(np.max(np.abs(nu_f))), 1e-300)
    if np.min(cone.constraint_matrix() @ nu_f, initial=0.0) < -1e-9 * scale:
        return None
    nu_f = cone.project(nu_f)
    if budget_row is not None:
        used = float(budget_row @ nu_f[:n])
        if used > budget * (1.0 + 1e-9) + 1e-300:
            return None
        nu_f = _enforce_budget(nu_f, cone, budget_row, budget)
    return nu_f, eta


def min_delta_on_optimal_set(G: np.ndarray, nu_star: np.ndarray, cone: ConeStructure,
                             budget_row: np.ndarray, budget: float, slack: float,
                             solver_eps: float, rank_rtol: float = 1e-12):
    """Among (almost) optimal ``ν``, the one with the smallest ``δ = rᵀλ`` (an LP; HiGHS).

    The optimal residual ``θ̃ − Aν*`` of the ℓ2 program is unique (a projection onto a convex set),
    so every optimal ``ν`` has ``Aν = Aν*``; with ``G = V W Vᵀ`` (eigenvalues above
    ``rank_rtol · w_max``) and ``F = W^{1/2} Vᵀ``, ``||A(ν − ν*)||_2 = ||F(ν − ν*)||_2``. The LP

    .. math::  \\min r^\\top\\lambda \\;\\text{s.t.}\\; |F(\\nu - \\nu^*)| \\le \\tau,\\;
               \\nu \\in C,\\; r^\\top\\lambda \\le \\beta

    with ``τ = slack / sqrt(rank)`` moves ε by at most ``slack``. Only worth solving when ``G``
    is singular (else ``ν*`` is unique); returns ``None`` then, or when HiGHS fails.
    """
    from scipy.optimize import linprog

    N = cone.N
    if _well_conditioned_cholesky(G, 1e-10) is not None:
        return None  # G nonsingular: the optimal ν is unique (cheap test, N³/3 flops)
    w, V = np.linalg.eigh(0.5 * (G + G.T))
    keep = w > rank_rtol * max(float(w[-1]), 1e-300)
    r = int(keep.sum())
    if r >= N:
        return None
    F = (V[:, keep] * np.sqrt(w[keep])).T  # (r, N)
    d = np.sqrt(np.maximum(np.diag(G), 0.0))
    d[d == 0.0] = 1.0
    lam_scale = max(float(np.max(np.abs(nu_star * d))), 1e-300)
    # variables x = ν d / lam_scale (O(1))
    Fs = F / d[None, :] * lam_scale
    f0 = F @ nu_star
    tau = slack / np.sqrt(max(r, 1))
    Bs = cone.constraint_matrix() @ sp.diags(lam_scale / d)
    row = np.concatenate([np.asarray(budget_row, float), np.zeros(cone.K)]) * lam_scale / d
    A_ub = sp.vstack([sp.csr_matrix(Fs), sp.csr_matrix(-Fs), -Bs, sp.csr_matrix(row[None, :])])
    b_ub = np.concatenate([f0 + tau, -(f0 - tau), np.zeros(Bs.shape[0]), [budget]])
    opts = {"primal_feasibility_tolerance": solver_eps, "dual_feasibility_tolerance": solver_eps}
    res = linprog(row, A_ub=A_ub.tocsc(), b_ub=b_ub, bounds=[(None, None)] * N,
                  method="highs", options=opts)
    if res.status != 0 or res.x is None:
        return None
    nu = cone.project(res.x * lam_scale / d)
    return _enforce_budget(nu, cone, budget_row, budget)
