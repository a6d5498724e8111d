"""Minimum-ℓp-norm interpolation ``min ||w||_p s.t. X w = y``, solved and certified."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.optimize as so
import scipy.sparse as sp

from .._validation import as_float_array, check_norm, check_rtol, check_X, dual_exponent
from ..errors import InconsistentSystemError, SolverError
from ..tolerances import TOLERANCES
from ._certificate import (
    Certificate,
    build_certificate,
    dual_image,
    lp_norm,
    precision_limited,
    raise_precision_limit,
    refine_multipliers,
    refine_on_float64_grid,
    residual_rows,
    rounding_floors,
    zero_solution_certificate,
)
from ._chain import Infeasible, RouteOutcome, run_chain
from ._minnorm_inf import min_norm_inf_colgen
from ._wide import basis_pursuit_colgen

__all__ = ["MinNormSolution", "solve_min_norm", "MIN_NORM_METHODS"]

MIN_NORM_METHODS = ("auto", "lstsq", "kkt-equilibrated", "colgen-ipm", "highs-colgen", "highs",
                    "cvxpy-clarabel", "cvxpy-scs")
"""Accepted values of ``method=`` in :func:`solve_min_norm`."""


@dataclass(frozen=True)
class MinNormSolution:
    """A certified solution of :math:`\\min\\|w\\|_p` s.t. :math:`Xw = y` (:func:`solve_min_norm`).

    Attributes
    ----------
    w : ndarray of shape (d,)
        The minimum-norm interpolant.
    value : float
        ``||w||_p``.
    dual : ndarray of shape (n,)
        Multipliers ``ν`` (free sign) of the half-squared program
        :math:`\\min\\tfrac12\\|w\\|_p^2` s.t. :math:`Xw = y`, the maximiser of
        :math:`y^\\top\\nu - \\tfrac12\\|X^\\top\\nu\\|_q^2`. For ``p = 2``: ``w = X^T ν``.
    residual : float
        ``||X w - y||_2`` (absolute).
    norm : float
        The exponent ``p``.
    certificate : Certificate
        Computed in numpy; primal infeasibility is ``||Xw - y||_2 / ||y||_2``.
    solver : str
        The route that verified: ``"lstsq"`` (closed form ``X⁺ y``), ``"highs"``,
        ``"colgen-ipm"`` (ℓ1 column generation), ``"highs-colgen"`` (ℓ∞ column generation),
        ``"kkt-equilibrated"`` (ℓ2 on equilibrated data), ``"cvxpy-*"``, or ``"trivial"`` for
        ``y = 0``.
    status : str
        ``"optimal"``.
    attempts : tuple of dict
        Every route tried and why it was rejected.
    route_reason : str
        Why the route chain was chosen (the shape rule, or the explicit ``method=``).
    """

    w: np.ndarray
    value: float
    dual: np.ndarray
    residual: float
    norm: float
    certificate: Certificate
    solver: str
    status: str = "optimal"
    attempts: tuple = field(default_factory=tuple)
    route_reason: str = ""

    def to_dict(self) -> dict:
        """JSON-serialisable view."""
        return {
            "w": self.w.tolist(), "value": float(self.value), "dual": self.dual.tolist(),
            "residual": float(self.residual),
            "norm": "inf" if np.isinf(self.norm) else float(self.norm),
            "certificate": self.certificate.to_dict(), "solver": self.solver,
            "status": self.status, "attempts": [dict(a) for a in self.attempts],
            "route_reason": self.route_reason,
        }


def min_norm_certificate(X: np.ndarray, y: np.ndarray, w: np.ndarray, nu: np.ndarray, p: float,
                         *, rtol: float | None = None) -> Certificate:
    """Certificate of ``(w, ν)`` for :math:`\\min\\tfrac12\\|w\\|_p^2` s.t. :math:`Xw = y`."""
    rtol = TOLERANCES.certificate_rtol if rtol is None else rtol
    # rounding-aware: exact dot products where float64's error bound could decide (§5.9)
    z = dual_image(X, nu, lp_norm(w, p), tol=rtol, q=dual_exponent(p))
    return build_certificate(
        primal_infeasibility=float(np.linalg.norm(residual_rows(X, w, y, tol=rtol))
                                   / np.linalg.norm(y)),
        w_norm=lp_norm(w, p), z_dual_norm=lp_norm(z, dual_exponent(p)), z_dot_w=float(z @ w),
        b_dot_lam=float(y @ nu), lam=nu, inequality=False, rtol=rtol)


def _refine_exactly(X: np.ndarray, y: np.ndarray, out: RouteOutcome, p: float, rtol: float,
                    cert: Certificate) -> Certificate | None:
    """Refine a candidate that failed only near float64's floor (docs/theory.md §5.9): ``w``
    (its nonzero entries) so that the exact ``X w − y`` is small, if the primal check failed;
    then ``ν`` so that the exact ``X^T ν`` lies in ``∂(½||·||_p²)(w)``, if stationarity or the
    gap failed. Updates ``out`` and returns the new certificate only if it verified."""
    w, nu = out.w, out.dual
    if cert.primal_infeasibility > rtol:
        ynorm = float(np.linalg.norm(y))
        try:  # only a proposal: arithmetic trouble (overflow, inf − inf in fsum) means "none"
            with np.errstate(over="ignore", invalid="ignore"):
                w, _ = refine_on_float64_grid(X, w, y, np.full(X.shape[0], rtol * ynorm / (
                    8 * np.sqrt(X.shape[0]))), free=w != 0)
        except (ArithmeticError, ValueError):  # (LinAlgError is a ValueError)
            return None
    cert2 = min_norm_certificate(X, y, w, nu, p, rtol=rtol)
    if not cert2.verified and max(cert2.dual_residual, cert2.duality_gap) > rtol:
        nu2 = refine_multipliers(X, w, nu, p, rtol=rtol)
        if nu2 is not None:
            nu = nu2
            cert2 = min_norm_certificate(X, y, w, nu, p, rtol=rtol)
    if not cert2.verified:
        return None
    out.w, out.dual = w, nu
    out.solver_status = "optimal (refined exactly)"
    return cert2


def _route_lstsq(X: np.ndarray, y: np.ndarray) -> RouteOutcome:
    """Closed form ``w = X⁺ y`` (minimum-norm least squares, ranks cut at ``rank_rtol``).

    ``w`` lies in the row space of ``X``, so ``w = X^T ν`` has a solution ``ν = (X^T)⁺ w``;
    these are the multipliers of ``½||w||²`` (stationarity ``w = X^T ν``).
    """
    rc = TOLERANCES.rank_rtol
    w = np.linalg.lstsq(X, y, rcond=rc)[0]
    nu = np.linalg.lstsq(X.T, w, rcond=rc)[0]
    return RouteOutcome(w, nu, "optimal")


def _route_highs(X: np.ndarray, y: np.ndarray, p: float,
                 t: np.ndarray | None = None) -> RouteOutcome:
    """LP for ``p = 1`` (``w = a - b``) or ``p = ∞`` (epigraph ``|w_j| <= t``).

    The equality multipliers ``ν'`` of :math:`\\min\\|w\\|_p` (``dual = max y^T ν'`` s.t.
    ``||X^T ν'||_q <= 1``) rescale to ``ν = ||w||_p ν'`` for the half-squared program.
    With column factors ``t`` (powers of two, docs/theory.md §5.9) ``X`` holds the columns
    ``x_j / t_j`` and the LP is solved in ``v = t w``: costs ``1/t_j`` (ℓ1) or bounds
    ``|v_j| <= t_j τ`` (ℓ∞); the equations, hence ``ν``, are the same; ``w = v / t``.
    """
    n, d = X.shape
    t = np.ones(d) if t is None else t
    eps = TOLERANCES.solver_eps
    opts = {"primal_feasibility_tolerance": eps, "dual_feasibility_tolerance": eps}
    if p == 1.0:
        c = np.concatenate([1.0 / t, 1.0 / t])
        res = so.linprog(c, A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None), method="highs",
                         options=opts)
        w = None if res.x is None else (res.x[:d] - res.x[d:]) / t
    else:
        c = np.zeros(d + 1)
        c[-1] = 1.0
        eye = sp.identity(d, format="csr")
        one = sp.csr_matrix(t[:, None])
        A_ub = sp.vstack([sp.hstack([eye, -one]), sp.hstack([-eye, -one])])
        A_eq = np.hstack([X, np.zeros((n, 1))])
        res = so.linprog(c, A_ub=A_ub, b_ub=np.zeros(2 * d), A_eq=A_eq, b_eq=y,
                         bounds=[(None, None)] * d + [(0, None)], method="highs", options=opts)
        w = None if res.x is None else res.x[:d] / t
    if res.status == 2:
        raise Infeasible(res.message)
    if res.status != 0 or w is None:
        raise RuntimeError(f"HiGHS: {res.message}")
    nu = np.asarray(res.eqlin.marginals, dtype=float) * lp_norm(w, p)
    return RouteOutcome(w, nu, "optimal")


def _route_kkt_equilibrated(A: np.ndarray, b: np.ndarray, t: np.ndarray) -> RouteOutcome:
    """ℓ2 on equilibrated data (docs/theory.md §5.9): ``A`` holds ``x_j / t_j`` (large columns
    divided by powers of two ``t_j``), so ``min ||w||`` is ``min ½ Σ v_j² W_j`` in ``v = t w``,
    ``W = (t_min / t)²``; one saddle-point solve ``[W, -A^T; A, 0]`` (no Gram matrix, which
    would lose the small columns to rounding). Returns ``w = v / t`` and ``ν = μ / t_min²``
    (``w = A_t^T ν`` for the unscaled columns)."""
    from ._max_margin import _KKT_MAX, _kkt_solve  # noqa: I001 (circular at import time)

    n, d = A.shape
    if n + d > _KKT_MAX:
        raise RuntimeError(f"n + d = {n + d} exceeds the dense KKT limit {_KKT_MAX}")
    t_min = float(t.min())
    v, mu = _kkt_solve(A, b, (t_min / t) ** 2)
    return RouteOutcome(v / t, mu / t_min**2, "optimal")


def _route_cvxpy(X: np.ndarray, y: np.ndarray, p: float, solver: str) -> RouteOutcome:
    import cvxpy as cp

    from ._max_margin import _cvxpy_options

    n, d = X.shape
    w = cp.Variable(d)
    con = X @ w == y
    obj = 0.5 * cp.sum_squares(w) if p == 2.0 else cp.pnorm(w, p)
    prob = cp.Problem(cp.Minimize(obj), [con])
    with warnings.catch_warnings():  # the status is checked below
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=solver, **_cvxpy_options(solver))
    if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise Infeasible(f"CVXPY/{solver} status {prob.status}")
    if prob.status != cp.OPTIMAL or w.value is None or con.dual_value is None:
        return RouteOutcome(np.full(d, np.nan), np.zeros(n), str(prob.status))
    wv = np.asarray(w.value, dtype=float)
    # CVXPY's equality duals enter the Lagrangian as +ν(Xw - y): flip the sign to ours.
    nu = -np.asarray(con.dual_value, dtype=float)
    return RouteOutcome(wv, nu if p == 2.0 else nu * lp_norm(wv, p), "optimal")


def solve_min_norm(X, y, *, norm=2, method: str = "auto",
                   rtol: float | None = None) -> MinNormSolution:
    """Minimum-norm interpolation, certified in numpy.

    .. math::

        \\min_{w \\in \\mathbb R^d} \\; \\|w\\|_p \\quad \\text{s.t.} \\quad X w = y,

    with the dual of the equivalent half-squared program

    .. math::

        \\max_{\\nu \\in \\mathbb R^n} \\; y^\\top \\nu - \\tfrac12 \\|X^\\top \\nu\\|_q^2,
        \\qquad 1/p + 1/q = 1.

    For ``p = 2`` the solution is the closed form :math:`w = X^+ y`, the limit of gradient descent
    from zero on underdetermined least squares (Gunasekar et al. 2018, docs/theory.md §4); it is
    still
    verified. ``p = 1`` and ``p = ∞`` are solved as LPs (HiGHS), other ``p`` with CVXPY.

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,)
        Real targets (for ``(n, k)`` targets, solve one column at a time).
    norm : {1, 2, inf} or float >= 1, keyword-only
    method : str, keyword-only
        ``"auto"`` (ℓ2: ``lstsq → kkt-equilibrated → cvxpy-clarabel``; ℓ1/ℓ∞: ``highs →
        cvxpy-clarabel → cvxpy-scs``, with ``d > 2n`` preceded by column generation:
        ``colgen-ipm`` for ℓ1 (basis pursuit, docs/theory.md §5.8) and ``highs-colgen`` for ℓ∞
        (§5.12); other p: ``cvxpy-clarabel → cvxpy-scs``) or one name of
        :data:`MIN_NORM_METHODS`.
    rtol : float, optional
        Certificate tolerance in ``(0, 1)`` (default ``TOLERANCES.certificate_rtol``). ``X`` and
        ``y`` are scaled by exact powers of two before solving (docs/theory.md §5.9), so data of
        any magnitude (``X * 1e300``) give the same certified answer. ``y = 0`` returns
        ``w = 0`` with its computed certificate (§5.11). ``X w = y`` counts as
        inconsistent when its least-squares residual exceeds
        ``TOLERANCES.consistency_rtol * ||y||_2``.

    Returns
    -------
    MinNormSolution

    Raises
    ------
    InconsistentSystemError
        ``X w = y`` has no solution: ``min ||Xw - y||_2 > consistency_rtol ||y||_2``;
        ``.residual`` holds it.
    PrecisionLimitError
        A :class:`SolverError`: the best candidate failed only at float64's representation floor
        and, refined with exact residuals and rounded on the float64 grid, did not verify either
        (e.g. a square 6 x 6 system with one row of ``X`` x 1e-12, docs/theory.md §5.9).
    SolverError
        No route verified.
    ValueError, TypeError
        Bad shapes, non-finite entries, empty data, bad ``norm``/``method``.

    Examples
    --------
    >>> import numpy as np
    >>> sol = solve_min_norm(np.array([[1.0, 1.0]]), np.array([2.0]))
    >>> np.round(sol.w, 6).tolist()
    [1.0, 1.0]
    """
    X = check_X(X)
    y = as_float_array(y, "y", ndim=(1, 2))
    if y.ndim == 2:
        raise ValueError(f"y must be 1-D of shape ({X.shape[0]},); got shape {y.shape}. "
                         f"Solve one target column at a time, e.g. y[:, k].")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} entries but X has {X.shape[0]} rows; "
                         f"pass one target per example.")
    p = check_norm(norm)
    if method not in MIN_NORM_METHODS:
        raise ValueError(f"method must be one of {MIN_NORM_METHODS}; got {method!r}.")
    if method == "lstsq" and p != 2.0:
        raise ValueError(f"method='lstsq' solves norm=2 only; got norm={norm!r}. "
                         f"Use method='auto'.")
    if method == "colgen-ipm" and p != 1.0:
        raise ValueError(f"method='colgen-ipm' solves norm=1 only; got norm={norm!r}. "
                         f"Use method='auto'.")
    if method == "highs-colgen" and p != np.inf:
        raise ValueError(f"method='highs-colgen' solves norm='inf' only; got norm={norm!r}. "
                         f"Use method='auto'.")
    if method == "highs" and p not in (1.0, np.inf):
        raise ValueError(f"method='highs' solves norm=1 or 'inf' only; got norm={norm!r}. "
                         f"Use method='auto'.")
    rtol = check_rtol(rtol, "rtol", TOLERANCES.certificate_rtol)
    from ._max_margin import column_factors

    n, d = X.shape
    ctx = f"solve_min_norm(norm={norm!r})"
    if not np.any(y):  # not ||y|| == 0: the norm underflows to 0 for y ~ 1e-170
        cert = zero_solution_certificate(
            residual=float(np.linalg.norm(X @ np.zeros(d) - y)), y_norm=0.0, rtol=rtol)
        return MinNormSolution(w=np.zeros(d), value=0.0, dual=np.zeros(n), residual=0.0,
                               norm=p, certificate=cert, solver="trivial",
                               route_reason="y = 0: w = 0 (docs/theory.md §5.11)")
    if not np.any(X):
        raise InconsistentSystemError(
            f"{ctx}: X = 0 but y != 0, so X w = y has no solution; check the data.",
            residual=float(np.linalg.norm(y)))
    # Solve at unit scale with exact power-of-two factors: X = 2^ex Xs, y = 2^ey ys. Then
    # w = 2^(ey-ex) w_s and (stationarity X^T ν ∈ ∂(½||·||²)(w), positively homogeneous)
    # ν = 2^(ey-2ex) ν_s. The scaling is exact, so residuals computed on (Xs, ys) are those of
    # the original data; no norm of X or y can overflow (X * 1e300).
    ex = int(np.frexp(max(float(X.max()), -float(X.min())))[1])
    ey = int(np.frexp(max(float(y.max()), -float(y.min())))[1])
    Xs = np.ldexp(X, -ex)
    ys = np.ldexp(y, -ey)

    # Equilibrate by powers of two (exact, docs/theory.md §5.9): row i by 2^-er_i (the same
    # equations; multipliers ν_i = 2^-er_i ν'_i), then every column to max-abs in [1/2, 1)
    # (the same column space; for the consistency test) and, for the routes, only the columns
    # above the median by t_j >= 1 (the norm becomes a weighted norm in v = t w).
    er = np.frexp(np.max(np.abs(Xs), axis=1))[1]
    Xr = np.ldexp(Xs, -er[:, None])
    yr = np.ldexp(ys, -er)
    cmax = np.max(np.abs(Xr), axis=0)
    Xrc = np.ldexp(Xr, -np.frexp(cmax)[1][None, :])
    yrnorm = float(np.linalg.norm(yr))

    def check_consistency() -> None:
        """The least-squares residual of the equilibrated system (consistent iff the original
        is): InconsistentSystemError above ``consistency_rtol``."""
        ls = np.linalg.lstsq(Xrc, yr, rcond=TOLERANCES.rank_rtol)[0]
        r = float(np.linalg.norm(Xrc @ ls - yr))
        if r > TOLERANCES.consistency_rtol * yrnorm:
            rank = int(np.linalg.matrix_rank(Xrc))
            if rank == n:  # full row rank: every y is in the column space; the least-squares
                return  # residual came from cutting singular values at rank_rtol (ill-
                # conditioned, not inconsistent); the routes decide, a failure is a SolverError
            raise InconsistentSystemError(
                f"{ctx}: X w = y has no solution: the least-squares residual is {r / yrnorm:.2e} "
                f"of ||y||_2 (> consistency_rtol {TOLERANCES.consistency_rtol:.0e}; rows and "
                f"columns scaled by powers of two to unit max-abs); X has rank "
                f"{rank} < n = {n} and y leaves its column space. Drop "
                f"redundant rows, or fit least squares instead.",
                residual=float(np.ldexp(
                    np.linalg.norm(Xs @ np.ldexp(ls, -np.frexp(cmax)[1]) - ys), ey)))

    # Consistency first, independently of the route — except for wide X (d > 2n), where the
    # least-squares solve (an SVD of the n × d matrix) costs more than the routes (13.9 s of 20 s
    # at 1000 × 20000): there a certified answer whose equilibrated residual is within
    # consistency_rtol proves consistency by the same criterion (the least-squares residual is
    # the smallest), and the test runs only when it does not (or when every route fails).
    wide = d > 2 * n
    if not wide:
        check_consistency()
    t = column_factors(Xr)  # >= 1, powers of two; 1 for well-scaled data
    Xt = Xr / t  # exact
    et = np.frexp(np.max(np.abs(Xt), axis=1))[1]
    Xt = np.ldexp(Xt, -et[:, None])
    yt = np.ldexp(yr, -et)

    def rows_back(out: RouteOutcome, e: np.ndarray) -> RouteOutcome:
        return RouteOutcome(out.w, np.ldexp(out.dual, -e), out.solver_status)

    table = {
        "lstsq": lambda: rows_back(_route_lstsq(Xr, yr), er),
        "kkt-equilibrated": lambda: rows_back(_route_kkt_equilibrated(Xt, yt, t), er + et),
        "highs": lambda: rows_back(_route_highs(Xt, yt, p, t), er + et),
        "colgen-ipm": lambda: rows_back(
            RouteOutcome(*basis_pursuit_colgen(Xr, yr), "optimal"), er),
        "highs-colgen": lambda: rows_back(
            RouteOutcome(*min_norm_inf_colgen(Xr, yr), "optimal"), er),
        "cvxpy-clarabel": lambda: _route_cvxpy(Xs, ys, p, "CLARABEL"),
        "cvxpy-scs": lambda: _route_cvxpy(Xs, ys, p, "SCS"),
    }
    if method == "auto":
        names = (["lstsq", "kkt-equilibrated", "cvxpy-clarabel"] if p == 2.0 else
                 ["highs", "cvxpy-clarabel", "cvxpy-scs"] if p in (1.0, np.inf) else
                 ["cvxpy-clarabel", "cvxpy-scs"])
        reason = f"n = {n}, d = {d}: the full program"
        if p in (1.0, np.inf) and d > 2 * n:  # d >> n: column generation first (§5.8, §5.12)
            names = ["colgen-ipm" if p == 1.0 else "highs-colgen"] + names
            reason = (f"d = {d} > 2n = {2 * n}: column (feature) generation first (never the "
                      f"full {'2d' if p == 1.0 else 'd + 1'}-column LP), then the full LP")
    else:
        names = [method]
        reason = f"method={method!r} requested"

    limited: list = []  # candidates that failed only at float64's representation floor

    def certify(out: RouteOutcome) -> Certificate:
        cert = min_norm_certificate(Xs, ys, out.w, out.dual, p, rtol=rtol)
        if not cert.verified:
            limited.append(precision_limited(cert, rounding_floors(
                Xs, out.w, out.dual, p, primal_norm=2.0,
                primal_scale=float(np.linalg.norm(ys)))))
            if limited[-1] is not None:
                # failing only near float64's floor: refine with exact residuals, then round
                # on the float64 grid (docs/theory.md §5.9); certified like any candidate
                cert2 = _refine_exactly(Xs, ys, out, p, rtol, cert)
                if cert2 is not None:
                    return cert2
        return cert

    try:
        name, out, cert, attempts = run_chain([(nm, table[nm]) for nm in names], certify,
                                              on_infeasible=None, program=ctx)
    except SolverError as exc:
        if wide:
            check_consistency()
        raise_precision_limit(exc, limited, ctx, rtol)
    if wide and not (float(np.linalg.norm(np.ldexp(Xs @ out.w - ys, -er)))
                     <= TOLERANCES.consistency_rtol * yrnorm):
        check_consistency()
    with np.errstate(over="ignore", under="ignore"):  # values beyond float64 become inf / 0
        cert = replace(cert, primal_value=float(np.ldexp(cert.primal_value, 2 * (ey - ex))),
                       dual_value=float(np.ldexp(cert.dual_value, 2 * (ey - ex))))
        w = np.ldexp(out.w, ey - ex)
        dual = np.ldexp(out.dual, ey - 2 * ex)
    if out.solver_status.startswith("optimal (refined"):
        name += "+exact-refine"
    return MinNormSolution(w=w, value=float(np.ldexp(lp_norm(out.w, p), ey - ex)),
                           dual=dual,
                           residual=float(np.ldexp(np.linalg.norm(  # exact where it matters (§5.9)
                               residual_rows(Xs, out.w, ys, tol=rtol)), ey)), norm=p,
                           certificate=cert, solver=name, status="optimal",
                           attempts=tuple(attempts), route_reason=reason)
