"""Minimum nuclear norm by column generation over rank-one atoms (docs/theory.md §5.13).

The program :math:`\\min\\|W\\|_*` s.t. :math:`\\langle A_i, W\\rangle = y_i` is solved over a
growing pair of subspaces ``U`` (``d1 × r``), ``V`` (``d2 × r``): the *restricted master*

.. math::

    \\min_{S \\in \\mathbb R^{r\\times r},\\, s \\in \\mathbb R^n} \\|S\\|_* + M\\|s\\|_1
    \\quad\\text{s.t.}\\quad \\langle U^\\top A_i V, S\\rangle + s_i = y_i

(a small conic program; the elastic slacks ``s`` keep it feasible before the subspaces contain a
solution) gives multipliers ``ν`` with ``|ν_i| <= M`` and ``||U^T A*(ν) V||_op <= 1``. *Pricing*
is the top singular pairs of the ``d1 × d2`` matrix ``A*(ν) = Σ ν_i A_i``: when
``σ_max(A*(ν)) <= 1`` the multipliers are feasible for the full dual
:math:`\\max y^\\top\\nu` s.t. :math:`\\|A^*(\\nu)\\|_{op}\\le 1`, so (slacks zero) the master's
``W = U S V^T`` is optimal; otherwise the violating singular vectors enter ``U`` and ``V``.
When the slacks vanish, the least-norm multipliers certifying ``W`` on its tangent space
(Candès & Recht 2009) are tried first, since the master's own are not unique.
The cost per round is one pass over ``A`` (``O(n d1 d2 r)``) plus a conic program with ``r²``
unknowns. The subspaces only grow (nothing is pruned), so the route terminates after at most
``d1 + d2`` enlarging rounds, but on Gaussian sensing they grow well past the solution's rank
before the multipliers price out. Hence a warm start: singular value projection finds the
subspaces of a low-rank solution when ``n`` is a few times its degrees of freedom, and the dual
is completed on the tangent space by a small spectral-norm program (docs/theory.md §5.13).
A pruning variant (keep only the span of the master's ``S``) stalled in a trial and is not used.

The route returns an *unverified* :class:`RouteOutcome`; the caller certifies it on the data.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ._chain import RouteOutcome

__all__: list[str] = []

log = logging.getLogger("solvers.programs")

#: Singular pairs entering per pricing round (those above the threshold, at most this many).
_MAX_NEW_ATOMS = 2
#: Rounds of pricing before the route gives up (each adds at least one direction).
_MAX_ROUNDS = 100
#: The elastic penalty ``M`` grows by this factor when the subspaces price out but slacks remain.
_PENALTY_GROWTH = 10.0
_MAX_PENALTY_RAISES = 6
#: A priced unit vector whose component outside the current span is below this is not new.
_NEW_DIRECTION_ATOL = 1e-8
#: Singular values of the master's W below this fraction of the largest count as zero (the
#: masters are solved to TOLERANCES.solver_eps = 1e-9; the certificate checks the result).
_RANK_RTOL = 1e-6
#: SVP warm start: iterations per rank, and the relative residual at which its subspaces are used.
_SVP_ITERS = 1000
_SVP_RTOL = 1e-10


def _restricted(A: np.ndarray, U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``B`` of shape ``(n, r1 * r2)`` with rows ``vec(U^T A_i V)`` (row-major)."""
    n, d1, d2 = A.shape
    AV = (A.reshape(n * d1, d2) @ V).reshape(n, d1, V.shape[1])
    return np.einsum("ija,jb->iba", AV, U, optimize=True).reshape(n, -1)


def _master(B: np.ndarray, y: np.ndarray, r1: int, r2: int, M: float, solver: str):
    """Solve the elastic restricted master; return ``(S, s, ν)`` (``ν`` the plain multipliers)."""
    import cvxpy as cp

    from ._max_margin import _cvxpy_options

    S = cp.Variable((r1, r2))
    s = cp.Variable(B.shape[0])
    con = B @ cp.vec(S, order="C") + s == y
    prob = cp.Problem(cp.Minimize(cp.normNuc(S) + M * cp.norm1(s)), [con])
    with warnings.catch_warnings():  # the status is checked below; the certificate decides
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=solver, **_cvxpy_options(solver))
    # an inaccurate master is still a candidate: the certificate on the full data decides
    if (prob.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or S.value is None
            or con.dual_value is None):
        return None
    # CVXPY's equality dual enters as +ν(B S + s - y): flip to the convention y^T ν
    return (np.asarray(S.value, dtype=float), np.asarray(s.value, dtype=float),
            -np.asarray(con.dual_value, dtype=float))


def _orth_extend(Q: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Orthonormal basis of ``span(Q, new)``, keeping ``Q``; drops directions already in it."""
    for v in new.T:
        v = v - Q @ (Q.T @ v)
        v = v - Q @ (Q.T @ v)  # re-orthogonalise once (classical Gram-Schmidt twice)
        nv = np.linalg.norm(v)
        if nv > _NEW_DIRECTION_ATOL:  # unit vectors: an absolute threshold on what is new
            Q = np.column_stack([Q, v / nv])
    return Q


def _least_norm_multipliers(A: np.ndarray, W: np.ndarray) -> np.ndarray | None:
    """The least-norm ``ν`` with ``P_T(A*(ν)) = U_W V_W^T`` on the tangent space ``T`` of ``W``.

    ``W = U_W Σ V_W^T`` (compact, rank ``k``: singular values above ``_RANK_RTOL`` times the
    largest). Any ``Z`` with ``P_T(Z) = U_W V_W^T`` and ``||P_T⊥(Z)||_op <= 1`` is a subgradient
    of ``||·||_*`` at ``W`` (Watson 1992), so ``A*(ν) = Z`` certifies ``W`` when ``W`` is feasible.
    ``T`` is parameterised by ``U_W^T Z`` (``k × d2``) and ``(I - U_W U_W^T) Z V_W`` (``d1 × k``).
    Returns ``None`` when the linear system has no exact solution (then pricing uses the master's
    multipliers).
    """
    n, d1, d2 = A.shape
    Uw, sw, Vwt = np.linalg.svd(W, full_matrices=False)
    k = int(np.sum(sw > _RANK_RTOL * sw[0])) if sw[0] > 0 else 0
    if k == 0 or k * (d1 + d2 - k) > n:
        return None
    Uw, Vw = Uw[:, :k], Vwt[:k].T
    UA = np.einsum("ja,ijk->iak", Uw, A, optimize=True).reshape(n, -1)          # U^T A_i
    AV = (A.reshape(n * d1, d2) @ Vw).reshape(n, d1, k)
    AV = (AV - np.einsum("ja,iab->ijb", Uw, np.einsum("ja,ijb->iab", Uw, AV))).reshape(n, -1)
    G = np.hstack([UA, AV]).T                      # (k d2 + d1 k, n): ν -> coordinates of P_T(A*ν)
    target = np.concatenate([Vw.T.ravel(), np.zeros(d1 * k)])   # U^T (U V^T) = V^T; rest 0
    nu, *_ = np.linalg.lstsq(G, target, rcond=None)
    if np.linalg.norm(G @ nu - target) > _RANK_RTOL * np.linalg.norm(target):
        return None
    Z = np.tensordot(nu, A, axes=1)
    Pu = np.eye(d1) - Uw @ Uw.T
    if np.linalg.norm(Pu @ Z @ (np.eye(d2) - Vw @ Vw.T), 2) <= 1.0 or k == min(d1, d2):
        return nu
    return _complete_multipliers(A, nu, G, Uw, Vw)


def _complete_multipliers(A, nu0, G, Uw, Vw):
    """Among ``ν = ν0 + N z`` (``N`` a basis of ``null(G)``: ``P_T(A*ν)`` unchanged), minimise
    ``||U⊥^T A*(ν) V⊥||_op`` (a small spectral-norm program, CVXPY + Clarabel)."""
    import cvxpy as cp

    from ._max_margin import _cvxpy_options

    n, d1, d2 = A.shape
    k = Uw.shape[1]
    _, sg, Gvt = np.linalg.svd(G, full_matrices=True)
    rank = int(np.sum(sg > _RANK_RTOL * sg[0]))
    N = Gvt[rank:].T                                     # (n, m)
    if N.shape[1] == 0:
        return nu0
    Uc = np.linalg.svd(np.eye(d1) - Uw @ Uw.T)[0][:, : d1 - k]
    Vc = np.linalg.svd(np.eye(d2) - Vw @ Vw.T)[0][:, : d2 - k]
    C = _restricted(A, Uc, Vc)                           # (n, (d1-k)(d2-k)) rows vec(Uc^T A_i Vc)
    z = cp.Variable(N.shape[1])
    M = cp.reshape(C.T @ nu0 + (C.T @ N) @ z, (d1 - k, d2 - k), order="C")
    prob = cp.Problem(cp.Minimize(cp.sigma_max(M)))
    prob.solve(solver="CLARABEL", **_cvxpy_options("CLARABEL"))
    if z.value is None:
        return nu0
    return nu0 + N @ np.asarray(z.value, dtype=float)


def _svp_subspaces(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Warm start: column/row spaces of a low-rank ``W`` with ``A(W) = y``, by singular value
    projection (Jain, Meka & Dhillon 2010) at ranks ``k = 1, 2, ...``; ``None`` if none fits.

    Only a guess of the subspaces: the master then solves the program on them and the caller's
    certificate decides. SVP iterates ``W <- P_k(W - η A*(A(W) - y))`` with the isotropic step
    ``η = d1 d2 / ||A||_F²`` (``1/n`` for standard Gaussian sensing).
    """
    n, d1, d2 = A.shape
    Af = A.reshape(n, d1 * d2)
    eta = d1 * d2 / float(np.sum(Af * Af))
    ynorm = float(np.linalg.norm(y))
    k = 1
    while k * (d1 + d2 - k) <= n // 2 and k <= min(d1, d2):
        W = np.zeros((d1, d2))
        res = -y
        prev = ynorm
        step = eta
        hist: list[float] = []
        for _ in range(_SVP_ITERS):
            Uw, sw, Vwt = np.linalg.svd(W - step * (res @ Af).reshape(d1, d2),
                                        full_matrices=False)
            Wn = (Uw[:, :k] * sw[:k]) @ Vwt[:k]
            rn_vec = Af @ Wn.ravel() - y
            rn = float(np.linalg.norm(rn_vec))
            if rn >= prev:  # overshoot: halve the step and retry from the same W
                step *= 0.5
                if step < 1e-3 * eta:
                    break
                continue
            if rn <= _SVP_RTOL * ynorm:
                return Uw[:, :k], Vwt[:k].T
            hist.append(rn)
            if len(hist) > 20 and rn > 0.9 * hist[-21]:  # < 10% in 20 steps: rank too small
                break
            W, res, prev = Wn, rn_vec, rn
        k += 1
    return None


def route_nuclear_colgen(A: np.ndarray, y: np.ndarray, *, rtol: float,
                         solver: str = "CLARABEL") -> RouteOutcome:
    """Column generation for :math:`\\min\\|W\\|_*` s.t. ``<A_i, W> = y_i`` (module docstring).

    Parameters
    ----------
    A : ndarray of shape (n, d1, d2)
        Measurement matrices, already scaled by the caller (``max |A| = 1``).
    y : ndarray of shape (n,)
    rtol : float
        The certificate tolerance. Pricing stops at ``σ_max(A*(ν)) <= 1 + rtol / 10``, which
        leaves the certificate's stationarity test (``<= 1 + rtol``) a tenfold margin; Clarabel
        solves each master to ``TOLERANCES.solver_eps``, far below it.
    solver : str
        CVXPY solver for the restricted master.

    Returns
    -------
    RouteOutcome
        ``w`` = ``W`` of shape ``(d1, d2)``, ``dual`` = multipliers of the half-squared program
        (plain multipliers × ``||W||_*``), ``solver_status`` ``"optimal"`` only when pricing
        found no violated atom and the slacks vanished; the caller certifies in any case.
    """
    n, d1, d2 = A.shape
    thresh = 1.0 + rtol / 10
    ynorm = float(np.linalg.norm(y))
    Z = np.tensordot(y / ynorm, A, axes=1)
    Uz, sz, Vzt = np.linalg.svd(Z, full_matrices=False)
    k0 = 1
    U, V = Uz[:, :k0], Vzt[:k0].T
    warm = _svp_subspaces(A, y)
    if warm is not None:
        U, V = warm
        log.debug("colgen: SVP warm start at rank %d", U.shape[1])
    # exact-penalty weight: the plain multipliers ν of the full program satisfy ||A*(ν)||_op <= 1;
    # start M at a generous multiple of the size that gives, and raise it while slacks remain.
    M = 10.0 * max(1.0, float(np.sqrt(min(d1, d2)) / max(np.linalg.norm(A) / np.sqrt(n), 1e-300)))
    raises = 0
    status = f"no pricing round converged in {_MAX_ROUNDS} rounds"
    for _ in range(_MAX_ROUNDS):
        res = _master(_restricted(A, U, V), y, U.shape[1], V.shape[1], M, solver)
        if res is None:
            return RouteOutcome(np.full((d1, d2), np.nan), np.zeros(n), "master not optimal")
        S, s, nu = res
        if np.linalg.norm(s) <= rtol * ynorm / 10:
            # the master's multipliers are far from unique when r1 r2 < n; try the least-norm
            # multipliers that certify W = U S V^T first (docs/theory.md §5.13)
            nu_ls = _least_norm_multipliers(A, U @ S @ V.T)
            if nu_ls is not None:
                Z = np.tensordot(nu_ls, A, axes=1)
                s_ls = np.linalg.norm(Z, 2)
                log.debug("colgen: least-norm multipliers give sigma_max = %.6g", s_ls)
                if s_ls <= thresh:
                    W = U @ S @ V.T
                    wn = float(np.linalg.svd(W, compute_uv=False).sum())
                    return RouteOutcome(W, nu_ls * wn, "optimal")
        Z = np.tensordot(nu, A, axes=1)
        Uz, sz, Vzt = np.linalg.svd(Z, full_matrices=False)
        if sz[0] <= thresh:
            if np.linalg.norm(s) <= rtol * ynorm / 10:
                W = U @ S @ V.T
                wn = float(np.linalg.svd(W, compute_uv=False).sum())
                return RouteOutcome(W, nu * wn, "optimal")
            if raises >= _MAX_PENALTY_RAISES:
                status = f"slacks remain at penalty M = {M:.3g}"
                break
            M *= _PENALTY_GROWTH
            raises += 1
            continue
        k = min(_MAX_NEW_ATOMS, int(np.sum(sz > thresh)))
        log.debug("colgen: r = (%d, %d), sigma_max = %.6g, %d new", U.shape[1], V.shape[1],
                  sz[0], k)
        U2 = _orth_extend(U, Uz[:, :k])
        V2 = _orth_extend(V, Vzt[:k].T)
        if U2.shape[1] == U.shape[1] and V2.shape[1] == V.shape[1]:
            status = "pricing returned no new direction (master inaccurate)"
            break
        U, V = U2, V2
    return RouteOutcome(np.full((d1, d2), np.nan), np.zeros(n), status)
