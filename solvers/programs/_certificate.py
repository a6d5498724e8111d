"""The numpy certificate shared by every program of :mod:`solvers.programs`.

All three programs are instances of one template, stated with the *half-squared* objective

.. math::

    \\min_{w} \\tfrac12 \\|w\\|^2 \\quad \\text{s.t.} \\quad \\mathcal{A}(w) \\;\\{\\ge, =\\}\\; b,

whose Lagrange (Fenchel) dual is

.. math::

    \\max_{\\lambda} \\; b^\\top \\lambda - \\tfrac12 \\|\\mathcal{A}^*\\lambda\\|_*^2
    \\quad \\text{s.t.} \\quad \\lambda \\ge 0 \\ \\text{(inequalities only)},

with :math:`\\|\\cdot\\|_*` the dual norm. Weak duality (Fenchel–Young,
:math:`\\tfrac12\\|w\\|^2 + \\tfrac12\\|z\\|_*^2 \\ge \\langle z, w\\rangle`) makes the gap
between the two values non-negative for every feasible pair, so a feasible ``w``, a feasible
``λ`` and a small gap *prove* that ``w`` is optimal up to that gap, whatever solver produced them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Certificate"]


@dataclass(frozen=True)
class Certificate:
    """Optimality certificate of a norm-minimisation program, computed in numpy after the solve.

    Every residual is *relative* to a stated, scale-free reference, so the same tolerance serves
    data of any scale (rescaling ``X`` by ``c > 0`` leaves every residual unchanged).

    Attributes
    ----------
    primal_infeasibility : float
        Inequalities ``A w >= 1``: ``max_i max(0, 1 - (A w)_i)`` (relative to the right-hand
        side 1). Equalities ``A w = b``: ``||A w - b||_2 / ||b||_2``.
    dual_residual : float
        The largest of (i) dual infeasibility ``max(0, -min λ) / max|λ|`` (inequalities only),
        (ii) ``max(0, ||z||_* - ||w||) / ||w||`` and (iii) ``max(0, ||w||² - <z, w>) / ||w||²``
        with ``z = A* λ``. (ii) and (iii) measure the distance of ``z`` from the subdifferential
        ``∂(½||·||²)(w) = {z : ||z||_* <= ||w||, <z, w> >= ||w||²}`` (stationarity).
    duality_gap : float
        ``|primal_value - dual_value| / primal_value``.
    primal_value, dual_value : float
        ``½ ||w||²`` and ``b^T λ - ½ ||A* λ||_*²``.
    rtol : float
        The tolerance each of the three residuals was compared with.
    verified : bool
        All three residuals are ``<= rtol`` (and finite).
    status : str
        ``"verified"`` or ``"failed: <which residual>"``.
    """

    primal_infeasibility: float
    dual_residual: float
    duality_gap: float
    primal_value: float
    dual_value: float
    rtol: float
    verified: bool
    status: str

    def to_dict(self) -> dict:
        """JSON-serialisable view (floats, bool and str only)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, (float, np.floating)):
                d[k] = float(v)
        d["verified"] = bool(self.verified)
        return d


def _pos(x: float) -> float:
    return float(max(0.0, x))


def build_certificate(
    *,
    primal_infeasibility: float,
    w_norm: float,
    z_dual_norm: float,
    z_dot_w: float,
    b_dot_lam: float,
    lam: np.ndarray,
    inequality: bool,
    rtol: float,
) -> Certificate:
    """Assemble a :class:`Certificate` from quantities computed by the caller in numpy.

    Parameters
    ----------
    primal_infeasibility : float
        Already relative (see :class:`Certificate`).
    w_norm : float
        ``||w||`` in the program's norm; must be ``> 0`` (the zero solution is handled by callers).
    z_dual_norm, z_dot_w : float
        ``||A* λ||_*`` and ``<A* λ, w>``.
    b_dot_lam : float
        ``b^T λ``.
    lam : ndarray
        The multipliers (checked for sign when ``inequality``).
    inequality : bool
        Whether the constraints are ``A w >= b`` (``λ >= 0`` required) or ``A w = b``.
    rtol : float
        Acceptance tolerance.
    """
    primal_value = 0.5 * w_norm**2
    dual_value = b_dot_lam - 0.5 * z_dual_norm**2
    lam_scale = float(np.max(np.abs(lam))) if lam.size else 0.0
    dual_infeas = _pos(-float(np.min(lam)) / lam_scale) if (inequality and lam_scale > 0) else 0.0
    if w_norm > 0 and np.isfinite(w_norm):
        stat = max(_pos(z_dual_norm - w_norm) / w_norm, _pos(w_norm**2 - z_dot_w) / w_norm**2)
        gap = abs(primal_value - dual_value) / primal_value
    else:
        stat, gap = np.inf, np.inf
    dual_residual = max(dual_infeas, stat)
    checks = {"primal infeasibility": primal_infeasibility, "dual residual": dual_residual,
              "duality gap": gap}
    failed = [f"{k} {v:.3g} > rtol {rtol:.3g}" for k, v in checks.items()
              if not (np.isfinite(v) and v <= rtol)]
    return Certificate(
        primal_infeasibility=float(primal_infeasibility),
        dual_residual=float(dual_residual),
        duality_gap=float(gap),
        primal_value=float(primal_value),
        dual_value=float(dual_value),
        rtol=float(rtol),
        verified=not failed,
        status="verified" if not failed else "failed: " + "; ".join(failed),
    )


def zero_solution_certificate(*, residual: float, y_norm: float, rtol: float) -> Certificate:
    """The certificate of ``w = 0``, ``ν = 0`` for targets ``y = 0`` (``A w = 0``).

    Every quantity is computed, not asserted: ``residual = ||A 0 - y||`` (the caller evaluates
    it) is ``0`` exactly when ``y = 0``; ``z = A* 0 = 0`` lies in ``∂(½||·||²)(0) = {0}``, so the
    dual residual is ``0``; both values are ``½||0||² = 0`` and ``y^T 0 - ½||0||² = 0``, so the
    gap is ``0`` (stated absolutely here: the relative gap ``|p - d| / p`` is ``0 / 0``).
    Verified only if ``residual == 0`` and ``y_norm == 0``.
    """
    ok = residual == 0.0 and y_norm == 0.0
    return Certificate(
        primal_infeasibility=float(residual), dual_residual=0.0, duality_gap=0.0,
        primal_value=0.0, dual_value=0.0, rtol=float(rtol), verified=bool(ok),
        status=("verified (y = 0: w = 0 and multipliers 0 satisfy every condition exactly)" if ok
                else f"failed: residual {residual:.3g} with ||y|| = {y_norm:.3g}"))


def lp_norm(v: np.ndarray, p: float) -> float:
    """``||v||_p`` for ``p`` in ``[1, inf]`` (float64, overflow- and underflow-safe)."""
    v = np.abs(np.ravel(v))
    if v.size == 0:
        return 0.0
    if np.isinf(p):
        return float(v.max())
    if p == 1.0:
        return float(v.sum())
    m = float(v.max())
    if p == 2.0:  # scaled by the largest entry: cannot overflow or underflow to 0
        return 0.0 if m == 0.0 else float(m * np.linalg.norm(v / m))
    if m == 0.0:
        return 0.0
    return float(m * np.sum((v / m) ** p) ** (1.0 / p))


# ------------------------------------------------- dot products without cancellation error
_VELTKAMP = 134217729.0  # 2^27 + 1: splits a float64 into two 26-bit halves


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = _VELTKAMP * a
    hi = c - (c - a)
    return hi, a - hi


def exact_row_dots(G: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``G @ w`` with every row's dot product correctly rounded (no cancellation error).

    Each product ``G_ij w_j`` is split exactly into ``p + e`` (Dekker 1971, *A floating-point
    technique for extending the available precision*, Numer. Math. 18, TwoProduct with Veltkamp's
    split), and each row's ``2d`` exact terms are summed with :func:`math.fsum` (Shewchuk 1997,
    correctly rounded). Exact barring overflow of ``2^27 |G_ij|``, ``2^27 |w_j|`` and underflow of
    the products' low parts below ``2^-1022`` (callers scale ``G`` to ``max |G_ij| < 1``).
    Cost: one Python ``fsum`` per row — call it on the few rows where the float64 error bound
    is inconclusive, not on the common path.
    """
    G = np.atleast_2d(G)
    p = G * w
    gh, gl = _split(G)
    wh, wl = _split(np.asarray(w, dtype=float))
    e = ((gh * wh - p) + gh * wl + gl * wh) + gl * wl
    return np.array([math.fsum(np.concatenate([p[i], e[i]])) for i in range(G.shape[0])])


def dot_error_bound(d: int, row_norm_max: float, w: np.ndarray) -> float:
    """Bound on ``|fl(g . w) - g . w|`` for every row ``g`` with ``||g||_2 <= row_norm_max``.

    Higham (2002), *Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. (3.5):
    ``|fl(g . w) - g . w| <= γ_d |g| . |w|`` with ``γ_d = d u / (1 - d u)``, ``u = 2^-53``; and
    ``|g| . |w| <= ||g||_2 ||w||_2`` (Cauchy–Schwarz). BLAS may block the sum differently, which
    the same bound covers (any summation order).
    """
    u = np.finfo(float).eps / 2
    gam = d * u / (1.0 - d * u)
    return float(gam * row_norm_max * lp_norm(w, 2.0))


def margins_with_bound(G: np.ndarray, w: np.ndarray, *, row_norm_max: float | None = None,
                       tol: float) -> np.ndarray:
    """``G @ w``, re-evaluated exactly (:func:`exact_row_dots`) wherever float64's error bound
    could move a margin across ``1 - tol``.

    With ``||w||`` of order ``1 / angular margin`` the float64 error of ``g_i . w`` is below
    ``1e-3 tol`` on the common path and nothing extra is computed; data with rows or columns of
    very different scales (docs/theory.md §5.9) need ``||w|| ~ 1e12`` and the rounding error of
    a dot product (``~1e-4``) then exceeds ``tol``: those rows are evaluated exactly.
    """
    m = G @ w
    if row_norm_max is None:
        row_norm_max = float(np.sqrt(np.max(np.einsum("ij,ij->i", G, G)))) if G.size else 0.0
    bound = dot_error_bound(G.shape[1], row_norm_max, w)
    if bound > 1e-3 * tol:
        rows = np.flatnonzero(m < 1.0 + bound)
        if rows.size:
            m[rows] = exact_row_dots(G[rows], w)
    return m


def rounding_floors(A: np.ndarray, w: np.ndarray, lam: np.ndarray, p: float, *,
                    primal_norm: float, primal_scale: float) -> dict:
    """What rounding ``w`` and the multipliers to float64 alone can do to the residuals.

    Each entry of ``w`` and ``λ`` carries a relative rounding error up to ``u = 2^-53``, so
    ``A w`` moves by up to ``u |A| |w|`` and ``z = A^T λ`` by up to ``u |A|^T |λ|`` (exactly
    evaluated products do not remove this: it is the representation, not the arithmetic).
    Returns the floors of the primal infeasibility (``||u |A||w| ||`` in ``primal_norm`` over
    ``primal_scale``), of the stationarity residual (``||u |A|^T|λ| ||_q / ||w||_p``) and of the
    duality gap (twice the latter: ``½||z||_q²`` moves by ``||z||_q ||Δz||_q``).
    """
    from .._validation import dual_exponent

    u = np.finfo(float).eps / 2
    aA = np.abs(A)
    primal = u * lp_norm(aA @ np.abs(w), primal_norm) / primal_scale
    wn = lp_norm(w, p)
    dual = u * lp_norm(aA.T @ np.abs(lam), dual_exponent(p)) / wn if wn > 0 else np.inf
    return {"primal infeasibility": float(primal), "dual residual": float(dual),
            "duality gap": float(2 * dual)}


def precision_limited(cert: Certificate, floors: dict, factor: float = 64.0) -> dict | None:
    """The failing residuals of ``cert`` with their floors if *every* failing residual is within
    ``factor`` of its float64 floor (:func:`rounding_floors`); else ``None``."""
    values = {"primal infeasibility": cert.primal_infeasibility,
              "dual residual": cert.dual_residual, "duality gap": cert.duality_gap}
    failing = {k: v for k, v in values.items() if not (np.isfinite(v) and v <= cert.rtol)}
    if not failing or any(not (v <= factor * floors[k]) for k, v in failing.items()):
        return None
    return {k: {"residual": float(v), "float64 floor": floors[k]} for k, v in failing.items()}


def raise_precision_limit(exc, limited: list, context: str, rtol: float) -> None:
    """Re-raise the chain's :class:`~solvers.errors.SolverError` as a
    :class:`~solvers.errors.PrecisionLimitError` when a candidate failed only at float64's
    representation floor (``limited``: the outputs of :func:`precision_limited`)."""
    from ..errors import PrecisionLimitError

    found = [x for x in limited if x is not None]
    if not found:
        raise exc
    best = min(found, key=lambda r: max(v["residual"] for v in r.values()))
    what = "; ".join(f"{k} {v['residual']:.2e} (float64 floor {v['float64 floor']:.2e})"
                     for k, v in best.items())
    need = max(v["residual"] for v in best.values())
    raise PrecisionLimitError(
        f"{context}: no solver returned a verified solution at rtol = {rtol:g}, and float64 "
        f"resolution is what they ran into: "
        f"the best candidate fails only by {what}, within 64x of what rounding its solution or "
        f"its multipliers to float64 alone can cause on these data (a row or column scaled far "
        f"from the others amplifies it), and refining it with exactly evaluated residuals, then "
        f"searching the float64 grid around it (where implemented, docs/theory.md §5.9), gave "
        f"nothing that verifies. Nothing is claimed about the data. Standardise the features "
        f"(or the rows), or pass rtol >= {2 * need:.1e}.",
        attempts=exc.attempts, residuals=best) from exc


def dual_image(A: np.ndarray, lam: np.ndarray, w_norm: float, *, tol: float,
               frobenius: float | None = None, q: float = 1.0) -> np.ndarray:
    """``z = A^T λ``, computed exactly (:func:`exact_row_dots`) over the rows with ``λ_i != 0``
    when float64's error bound ``γ_n ||(|A_S|^T |λ_S|)||_q`` (Higham 2002, eq. (3.5), entry by
    entry; ``q`` the dual exponent in which the certificate measures ``z``: it bounds the error
    of ``||z − ·||_q`` and, by Hölder, of ``zᵀw`` over ``||w||_p``; the default ``q = 1`` bounds
    every dual norm) exceeds ``1e-3 tol ||w||`` — i.e. only when rounding could decide the
    stationarity residual or the gap. ``frobenius`` is unused (kept for callers that pass
    it)."""
    z = A.T @ lam
    S = np.flatnonzero(lam)
    if S.size == 0:
        return z
    u = np.finfo(float).eps / 2
    gam = S.size * u / (1.0 - S.size * u)
    threshold = 1e-3 * tol * w_norm
    # a cheap bound first, without copying A (triangle inequality, then ||a||_q <= c ||a||_2
    # with c = d^max(0, 1/q - 1/2)): || |A_S|ᵀ|λ_S| ||_q <= c Σ_i |λ_i| ||a_i||_2
    A_S = A if S.size == A.shape[0] else A[S]
    lam_S = np.abs(lam[S])
    c = float(A.shape[1]) ** max(0.0, (0.0 if np.isinf(q) else 1.0 / q) - 0.5)
    if gam * c * float(lam_S @ np.sqrt(np.einsum("ij,ij->i", A_S, A_S))) <= threshold:
        return z
    AS = A_S
    bound = gam * lp_norm(np.abs(AS).T @ lam_S, q)
    if bound > threshold:
        z = exact_row_dots(np.ascontiguousarray(AS.T), lam[S])
    return z


def residual_rows(A: np.ndarray, w: np.ndarray, b: np.ndarray, *, tol: float,
                  row_norm_max: float | None = None) -> np.ndarray:
    """``A w - b`` with the dot products evaluated exactly wherever float64's error bound could
    matter at ``1e-3 tol ||b||_2`` (the min-norm program's primal residual, §5.5)."""
    r = A @ w - b
    if row_norm_max is None:
        row_norm_max = float(np.sqrt(np.max(np.einsum("ij,ij->i", A, A)))) if A.size else 0.0
    bound = dot_error_bound(A.shape[1], row_norm_max, w) * np.sqrt(A.shape[0])
    if bound > 1e-3 * tol * float(np.linalg.norm(b)):
        r = exact_row_dots(A, w) - b
    return r


# --------------------------------------------- refinement on the float64 grid (issue 14.11)
def exact_residuals(B: np.ndarray, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``B v − t`` with every entry correctly rounded: the ``2k + 1`` exact terms of row ``i``
    (TwoProduct of each ``B_ij v_j``, and ``−t_i``) summed by :func:`math.fsum`."""
    B = np.atleast_2d(B)
    p = B * v
    bh, bl = _split(B)
    vh, vl = _split(np.asarray(v, dtype=float))
    e = ((bh * vh - p) + bh * vl + bl * vh) + bl * vl
    t = np.asarray(t, dtype=float)
    return np.array([math.fsum(np.concatenate([p[i], e[i], [-t[i]]]))
                     for i in range(B.shape[0])])


def _lll(basis: np.ndarray, delta: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """LLL-reduce the rows of ``basis`` (Lenstra, Lenstra & Lovász 1982, *Factoring polynomials
    with rational coefficients*, Math. Ann. 261, §1), Gram–Schmidt data taken from a QR
    factorisation at every step (floating point: fine for the small, moderately scaled lattices
    used here — the result is only a search direction, every answer is checked exactly).
    Returns the reduced rows and the unimodular ``U`` (integers stored in float64) with
    ``reduced = U @ basis``."""
    b = np.array(basis, dtype=float)
    k = b.shape[0]
    U = np.eye(k)
    i, steps = 1, 0
    while i < k and steps < 50 * k * k:
        steps += 1
        R = np.linalg.qr(b[:i + 1].T, mode="r")
        for j in range(i - 1, -1, -1):  # size reduction of b_i
            q = np.rint(R[j, i] / R[j, j])
            if q:
                b[i] -= q * b[j]
                U[i] -= q * U[j]
                R[:j + 1, i] -= q * R[:j + 1, j]
        mu = R[i - 1, i] / R[i - 1, i - 1]
        if R[i, i] ** 2 >= (delta - mu * mu) * R[i - 1, i - 1] ** 2:
            i += 1
        else:
            b[[i - 1, i]] = b[[i, i - 1]]
            U[[i - 1, i]] = U[[i, i - 1]]
            i = max(i - 1, 1)
    return b, U


def _nearest_plane(b: np.ndarray, U: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Babai's nearest-plane rounding (Babai 1986, *On Lovász' lattice reduction and the nearest
    lattice point problem*, Combinatorica 6, 1–13) in the reduced rows ``b = U @ basis``:
    returns the integer coefficients, in the rows of the *original* ``basis``, of a lattice
    vector near ``target``."""
    Q, R = np.linalg.qr(b.T)
    c = Q.T @ target
    coef = np.zeros(b.shape[0])
    for j in range(b.shape[0] - 1, -1, -1):
        coef[j] = np.rint(c[j] / R[j, j])
        c[:j + 1] -= coef[j] * R[:j + 1, j]
    return coef @ U


REFINE_MAX_ENTRIES = 4_000_000  # ~200 MB of temporaries in exact_residuals, ~0.5 s per call


def refine_on_float64_grid(B: np.ndarray, v: np.ndarray, t: np.ndarray, scale: np.ndarray, *,
                           free: np.ndarray, max_dim: int = 24, max_steps: float = 2.0**30,
                           lattice: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A float64 vector ``v'`` near ``v`` whose *exact* residuals ``B v' − t`` are small relative
    to ``scale`` (entrywise), changing only the entries ``free`` (docs/theory.md §5.9).

    1. *Iterative refinement* (Wilkinson; Higham 2002, ch. 12): the residual is evaluated exactly
       (:func:`exact_residuals`), the correction solved in float64 by least squares on the free
       columns, rows divided by their largest entry; repeated while it helps.
    2. *Rounding as a closest-vector problem.* Once the corrections fall below the spacing of the
       float64 grid, rounding is the limit: ``v_j`` can only move by integer multiples
       ``κ_j h_j`` of its spacing ``h_j``, so the reachable residuals are the lattice
       ``r + Σ_j κ_j h_j B_{:,j}``. When there are more free entries than rows that matter, the
       lattice is finer than any one ``h_j B_{:,j}``, and a short vector is found by LLL reduction
       of ``[diag(1/scale) B diag(h); η I]`` (``η = 1 / max_steps`` keeps ``|κ|`` small) and
       Babai's nearest plane; with more free entries than ``max_dim`` (raised to 8 more than
       the rows that one ulp step moves beyond their tolerance, at most 64), on that many of
       the finest generators (smallest ``||h_j B_{:,j} / scale||``; LLL's cost grows like
       dim⁴: 3 s at 57). ``lattice=False`` stops after step 1.

    Only proposes ``v'``: the caller's certificate is evaluated on it exactly. Returns
    ``(v', exact residual)``; ``v`` itself when nothing improved. ``B`` larger than
    ``REFINE_MAX_ENTRIES`` is not refined (``(v, None)``): the exact residuals hold ~6 copies
    of it and cost one ``fsum`` per row.
    """
    v = np.array(v, dtype=float)
    if B.size > REFINE_MAX_ENTRIES:
        return v, None
    F = np.flatnonzero(free)
    r = exact_residuals(B, v, t)
    best = (float(np.max(np.abs(r) / scale)), v.copy(), r)
    if F.size == 0 or best[0] <= 1.0:
        return best[1], best[2]
    M = B[:, F]
    rs = np.max(np.abs(M), axis=1)
    rs[rs == 0] = 1.0
    for _ in range(6):  # iterative refinement: corrections in float64, residuals exact
        delta = np.linalg.lstsq(M / rs[:, None], r / rs, rcond=None)[0]
        v[F] -= delta
        r = exact_residuals(B, v, t)
        err = float(np.max(np.abs(r) / scale))
        if not err < best[0]:
            break
        best = (err, v.copy(), r)
        if err <= 1.0:
            return best[1], best[2]
    v, r = best[1].copy(), best[2]
    if not lattice:
        return best[1], best[2]
    h = np.spacing(np.abs(v[F]))  # float64 spacing: v_j + κ h_j is exact for small κ
    A = (M * h) / scale[:, None]
    # rows whose residual one ulp step can move by more than its tolerance must cancel: keep
    # at least 8 spare generators beyond them (up to 64; LLL's cost grows like dim^4)
    dim = min(max(max_dim, int(np.count_nonzero(np.max(np.abs(A), axis=1) > 1.0)) + 8), 64)
    if F.size > dim:  # the finest generators
        keep = np.sort(np.argsort(np.linalg.norm(A, axis=0), kind="stable")[:dim])
        F, h, A = F[keep], h[keep], A[:, keep]
    basis = np.vstack([A, np.eye(F.size) / max_steps])  # columns are the lattice generators
    red, U = _lll(basis.T)
    kappa = _nearest_plane(red, U, np.concatenate([-r / scale, np.zeros(F.size)]))
    if not np.any(kappa) or np.max(np.abs(kappa)) > 4 * max_steps:
        return best[1], best[2]
    v[F] = v[F] + kappa * h
    r = exact_residuals(B, v, t)
    err = float(np.max(np.abs(r) / scale))
    if err < best[0]:
        best = (err, v.copy(), r)
    return best[1], best[2]


def refine_multipliers(A: np.ndarray, w: np.ndarray, lam: np.ndarray, p: float, *,
                       rtol: float) -> np.ndarray | None:
    """Multipliers ``λ'`` (same support as ``λ``) whose exact ``z = A^T λ'`` lies in
    ``∂(½||·||_p²)(w)`` to well below ``rtol`` (:func:`refine_on_float64_grid`), for
    ``p ∈ {1, 2, ∞}``; ``None`` if nothing improved or a sign would flip.

    The rows of ``A^T λ`` that the subdifferential pins (docs/theory.md §0.5, §5.5): ``p = 2``,
    ``z = w``; ``p = ∞``, ``z_k = 0`` off the coordinates within ``rtol / 100`` of ``||w||_∞``
    (on them ``z_k`` only needs the sign of ``w_k``: kept where it is); ``p = 1``,
    ``z_k = ||w||_1 sign(w_k)`` where ``w_k != 0`` and either ``|w_k| > rtol ||w||_1 / 100`` or
    ``z_k`` is within ``1e-3`` of that target already (a coordinate of a column scaled far
    down: ``|w_k|`` tiny next to ``||w||_1``, yet in the support); elsewhere ``z_k w_k`` is
    negligible and ``|z_k| <= ||w||_1`` is needed: clipped to ``(1 − rtol / 8) ||w||_1``.
    Each row to ``rtol ||w|| / (8 d)``.
    """
    S = np.flatnonzero(lam)
    d = A.shape[1]
    wn = lp_norm(w, p)
    if p not in (1.0, 2.0, np.inf) or S.size == 0 or not wn > 0 or (
            S.size * d > REFINE_MAX_ENTRIES):
        return None
    try:  # only a proposal: arithmetic trouble (overflow of 2^27 λ, inf − inf) means "none"
        with np.errstate(over="ignore", invalid="ignore"):
            return _refine_multipliers(A, w, lam, p, rtol, S, d, wn)
    except (ArithmeticError, ValueError):  # (LinAlgError is a ValueError)
        return None


def _refine_multipliers(A, w, lam, p, rtol, S, d, wn):
    B = np.ascontiguousarray(A[S].T)
    if p == 2.0:
        t = np.asarray(w, dtype=float)
    else:
        z = exact_residuals(B, lam[S], np.zeros(d))
        if np.isinf(p):
            t = np.where(np.abs(w) >= (1.0 - 0.01 * rtol) * wn, z, 0.0)
        else:
            near = (np.sign(z) == np.sign(w)) & (np.abs(z) >= (1.0 - 1e-3) * wn)
            pin = (w != 0) & ((np.abs(w) > 0.01 * rtol * wn) | near)
            cap = (1.0 - 0.125 * rtol) * wn  # elsewhere |z_k| <= ||w||_1, with room to spare
            t = np.where(pin, wn * np.sign(w), np.clip(z, -cap, cap))
    lam_S, _ = refine_on_float64_grid(B, lam[S], t, np.full(d, rtol * wn / (8 * d)),
                                      free=np.ones(S.size, dtype=bool))
    if np.array_equal(lam_S, lam[S]) or np.any(np.sign(lam_S) != np.sign(lam[S])):
        return None
    out = np.array(lam, dtype=float)
    out[S] = lam_S
    return out
