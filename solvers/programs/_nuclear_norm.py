"""Minimum nuclear norm matrix sensing ``min ||W||_* s.t. <A_i, W> = y_i``, solved and certified."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import as_float_array, check_rtol, check_X
from ..errors import InconsistentSystemError, SolverError
from ..tolerances import TOLERANCES
from ._certificate import Certificate, build_certificate, zero_solution_certificate
from ._chain import Infeasible, RouteOutcome, run_chain
from ._nuclear_colgen import route_nuclear_colgen

__all__ = ["NuclearNormSolution", "solve_min_nuclear_norm", "sensing_operator_from_regression",
           "NUCLEAR_NORM_METHODS"]

NUCLEAR_NORM_METHODS = ("auto", "colgen", "cvxpy-clarabel", "cvxpy-scs")

#: ``method="auto"`` runs column generation first when ``d1 d2 > n`` and ``d1 + d2`` exceeds this
#: (docs/benchmarks.md, 2026-11-29: CVXPY + Clarabel took 8.9 s at 30x30 (n = 200), where column
#: generation took 26 s, but > 120 s at 60x60 (n = 800) and 100x100 (n = 2000), where column
#: generation certified the planted rank-3 minimiser in 5 s at 100x100).
COLGEN_FIRST_DIM = 80
"""Accepted values of ``method=`` in :func:`solve_min_nuclear_norm`."""


@dataclass(frozen=True)
class NuclearNormSolution:
    """A certified solution of the minimum nuclear norm program (:func:`solve_min_nuclear_norm`).

    Attributes
    ----------
    W : ndarray of shape (d1, d2)
        The minimiser.
    value : float
        ``||W||_*`` (sum of singular values).
    singular_values : ndarray of shape (min(d1, d2),)
        Singular values of ``W``, descending.
    dual : ndarray of shape (n,)
        Multipliers ``ν`` of the half-squared program :math:`\\min\\tfrac12\\|W\\|_*^2`, the
        maximiser of :math:`y^\\top\\nu - \\tfrac12\\|\\sum_i \\nu_i A_i\\|_{op}^2`; the
        multipliers of :math:`\\min\\|W\\|_*` are ``ν / ||W||_*`` (operator norm of
        ``Σ ν_i A_i`` then ``<= 1``).
    residual : float
        ``||(<A_i, W>)_i - y||_2``.
    certificate : Certificate
        Dual norm = spectral norm; computed in numpy.
    solver : str
        The route that verified: ``"colgen"`` (column generation over rank-one atoms,
        docs/theory.md §5.13), ``"cvxpy-clarabel"``, ``"cvxpy-scs"`` or ``"trivial"``.
    status : str
        ``"optimal"``.
    attempts : tuple of dict
    route_reason : str
        Why ``method="auto"`` ordered the routes as it did (the shape rule), or that the
        caller chose the method.
    """

    W: np.ndarray
    value: float
    singular_values: np.ndarray
    dual: np.ndarray
    residual: float
    certificate: Certificate
    solver: str
    status: str = "optimal"
    attempts: tuple = field(default_factory=tuple)
    route_reason: str = ""

    def to_dict(self) -> dict:
        """JSON-serialisable view."""
        return {
            "W": self.W.tolist(), "value": float(self.value),
            "singular_values": self.singular_values.tolist(), "dual": self.dual.tolist(),
            "residual": float(self.residual), "certificate": self.certificate.to_dict(),
            "solver": self.solver, "status": self.status,
            "attempts": [dict(a) for a in self.attempts],
            "route_reason": self.route_reason,
        }


def nuclear_norm_certificate(A: np.ndarray, y: np.ndarray, W: np.ndarray, nu: np.ndarray, *,
                             rtol: float | None = None) -> Certificate:
    """Certificate of ``(W, ν)`` for :math:`\\min\\tfrac12\\|W\\|_*^2` s.t. ``<A_i, W> = y_i``."""
    rtol = TOLERANCES.certificate_rtol if rtol is None else rtol
    Z = np.tensordot(nu, A, axes=1)
    s = np.linalg.svd(W, compute_uv=False)
    return build_certificate(
        primal_infeasibility=float(np.linalg.norm(np.tensordot(A, W, axes=2) - y)
                                   / np.linalg.norm(y)),
        w_norm=float(s.sum()), z_dual_norm=float(np.linalg.norm(Z, 2)),
        z_dot_w=float(np.sum(Z * W)), b_dot_lam=float(y @ nu), lam=nu, inequality=False,
        rtol=rtol)


def _route_cvxpy(A: np.ndarray, y: np.ndarray, solver: str) -> RouteOutcome:
    import cvxpy as cp

    from ._max_margin import _cvxpy_options

    n, d1, d2 = A.shape
    W = cp.Variable((d1, d2))
    con = A.reshape(n, d1 * d2) @ cp.vec(W, order="C") == y
    prob = cp.Problem(cp.Minimize(cp.normNuc(W)), [con])
    with warnings.catch_warnings():  # the status is checked below
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=solver, **_cvxpy_options(solver))
    if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise Infeasible(f"CVXPY/{solver} status {prob.status}")
    if prob.status != cp.OPTIMAL or W.value is None or con.dual_value is None:
        return RouteOutcome(np.full((d1, d2), np.nan), np.zeros(n), str(prob.status))
    Wv = np.asarray(W.value, dtype=float)
    # CVXPY's equality dual enters as +ν(AW - y): flip, then rescale to the half-squared program
    nu = -np.asarray(con.dual_value, dtype=float) * float(np.linalg.svd(Wv, compute_uv=False).sum())
    return RouteOutcome(Wv, nu, "optimal")


def solve_min_nuclear_norm(A, y, *, method: str = "auto",
                           rtol: float | None = None) -> NuclearNormSolution:
    """Minimum nuclear norm subject to linear measurements, certified in numpy.

    .. math::

        \\min_{W \\in \\mathbb R^{d_1 \\times d_2}} \\; \\|W\\|_* \\quad \\text{s.t.} \\quad
        \\langle A_i, W \\rangle = \\operatorname{tr}(A_i^\\top W) = y_i, \\quad i = 1..n,

    the conjectured limit of gradient flow on a depth-2 factorisation ``W = U V^T`` from small
    initialisation (Gunasekar, Woodworth, Bhojanapalli, Neyshabur, Srebro 2017, Conjecture 1).
    The certificate uses the dual of the half-squared program,

    .. math::

        \\max_{\\nu} \\; y^\\top\\nu - \\tfrac12 \\Big\\|\\sum_i \\nu_i A_i\\Big\\|_{op}^2,

    (the operator norm is the dual of the nuclear norm).

    **Regression form** ``W x_i = y_i`` (``X`` of shape ``(n, d)``, ``Y`` of shape ``(n, k)``,
    ``W`` of shape ``(k, d)``): ``A, b = sensing_operator_from_regression(X, Y)`` then
    ``solve_min_nuclear_norm(A, b)``. For that form every Schatten norm is minimised by the
    closed form ``W = (X⁺ Y)^T`` (docs/theory.md §5), which the tests use as an independent check.

    Parameters
    ----------
    A : array_like of shape (n, d1, d2)
        Measurement matrices.
    y : array_like of shape (n,)
        Measurements.
    method : {"auto", "colgen", "cvxpy-clarabel", "cvxpy-scs"}, keyword-only
        ``"auto"`` tries Clarabel, then (when ``d1 d2 > n``) column generation over rank-one
        atoms (docs/theory.md §5.13), then SCS; column generation goes first when also
        ``d1 + d2 >`` :data:`COLGEN_FIRST_DIM`, and last when ``d1 d2 <= n``. The order is
        recorded in ``route_reason``.
    rtol : float, optional
        Certificate tolerance (default ``TOLERANCES.certificate_rtol``). The measurements count
        as inconsistent when their least-squares residual exceeds
        ``TOLERANCES.consistency_rtol * ||y||_2``.

    Returns
    -------
    NuclearNormSolution

    Raises
    ------
    InconsistentSystemError
        No ``W`` satisfies the measurements (least-squares residual ``> consistency_rtol ||y||``).
    SolverError
        No solver verified.
    ValueError, TypeError
        Bad shapes, non-finite entries, empty data, unknown ``method``.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.zeros((2, 2, 2)); A[0, 0, 0] = 1.0; A[1, 1, 1] = 1.0
    >>> sol = solve_min_nuclear_norm(A, np.array([1.0, -2.0]))
    >>> round(sol.value, 6)
    3.0
    """
    A = as_float_array(A, "A", ndim=3)
    y = as_float_array(y, "y", ndim=1)
    if y.shape[0] != A.shape[0]:
        raise ValueError(f"y has {y.shape[0]} entries but A has {A.shape[0]} measurement "
                         f"matrices (A.shape = {A.shape}); pass one measurement per A_i.")
    if method not in NUCLEAR_NORM_METHODS:
        raise ValueError(f"method must be one of {NUCLEAR_NORM_METHODS}; got {method!r}.")
    rtol = check_rtol(rtol, "rtol", TOLERANCES.certificate_rtol)
    n, d1, d2 = A.shape
    ctx = "solve_min_nuclear_norm"
    Af = A.reshape(n, d1 * d2)
    ynorm = float(np.linalg.norm(y))
    if not np.any(y):  # not ynorm == 0: ||y|| underflows to 0 for y ~ 1e-170
        cert = zero_solution_certificate(
            residual=float(np.linalg.norm(Af @ np.zeros(d1 * d2) - y)), y_norm=ynorm, rtol=rtol)
        return NuclearNormSolution(W=np.zeros((d1, d2)), value=0.0,
                                   singular_values=np.zeros(min(d1, d2)), dual=np.zeros(n),
                                   residual=0.0, certificate=cert, solver="trivial")

    def check_consistency() -> None:
        # Run only when a route reports infeasibility or every route failed: the least-squares
        # solve costs O(n² d1 d2) (342 s at n = 2000, d1 d2 = 10^4 under load), more than the
        # column-generation route itself. Raises when the system is inconsistent.
        ls = np.linalg.lstsq(Af, y, rcond=TOLERANCES.rank_rtol)[0]
        r = float(np.linalg.norm(Af @ ls - y))
        if r > TOLERANCES.consistency_rtol * ynorm:
            raise InconsistentSystemError(
                f"{ctx}: no W satisfies <A_i, W> = y_i: the least-squares residual is {r:.3e} "
                f"({r / ynorm:.2e} of ||y||_2 > consistency_rtol "
                f"{TOLERANCES.consistency_rtol:.0e}). "
                f"Drop contradictory measurements or fit least squares instead.", residual=r)

    scale = float(np.max(np.abs(A)))
    As = A / scale
    if method != "auto":
        names = [method]
        reason = f"method={method!r} chosen by the caller"
    elif d1 * d2 > n and d1 + d2 > COLGEN_FIRST_DIM:
        names = ["colgen", "cvxpy-clarabel", "cvxpy-scs"]
        reason = (f"d1*d2 = {d1 * d2} > n = {n} and d1 + d2 = {d1 + d2} > {COLGEN_FIRST_DIM}: "
                  f"column generation over rank-one atoms first (Clarabel's semidefinite cone "
                  f"of size d1 + d2 took > 120 s at 60x60 and 100x100), then Clarabel, then SCS")
    elif d1 * d2 > n:
        # measured (docs/benchmarks.md): column generation wins by far when the minimiser is
        # low rank and n is a few times its degrees of freedom, and loses ~3x below that
        # (30x30, n = 200); no cheap test tells the two apart beforehand, so it runs second,
        # before SCS, and rescues Clarabel's inaccurate ends. Pass method="colgen" to go first.
        names = ["cvxpy-clarabel", "colgen", "cvxpy-scs"]
        reason = (f"d1*d2 = {d1 * d2} > n = {n}: Clarabel on the full program first, then "
                  f"column generation over rank-one atoms (a smaller conic program per round), "
                  f"then SCS")
    else:
        names = ["cvxpy-clarabel", "cvxpy-scs", "colgen"]
        reason = (f"d1*d2 = {d1 * d2} <= n = {n}: the full conic program is no larger than the "
                  f"data; CVXPY first, column generation as fallback")
    table = {"colgen": lambda: route_nuclear_colgen(As, y, rtol=rtol),
             "cvxpy-clarabel": lambda: _route_cvxpy(As, y, "CLARABEL"),
             "cvxpy-scs": lambda: _route_cvxpy(As, y, "SCS")}

    def certify(out: RouteOutcome) -> Certificate:  # A = scale As: W = W_s/scale, ν = ν_s/scale²
        return nuclear_norm_certificate(A, y, out.w / scale, out.dual / scale**2, rtol=rtol)

    try:
        name, out, cert, attempts = run_chain([(nm, table[nm]) for nm in names], certify,
                                              on_infeasible=check_consistency, program=ctx)
    except SolverError:
        check_consistency()  # an inconsistent system is named as such, not as a solver failure
        raise
    W = out.w / scale
    residual = float(np.linalg.norm(np.tensordot(A, W, axes=2) - y))
    if residual > TOLERANCES.consistency_rtol * ynorm:
        # the answer's own residual proves consistency only below consistency_rtol (the
        # least-squares residual is the smallest); between it and rtol, the test decides as
        # it did when it ran before every route
        check_consistency()
    s = np.linalg.svd(W, compute_uv=False)
    return NuclearNormSolution(W=W, value=float(s.sum()), singular_values=s,
                               dual=out.dual / scale**2, residual=residual,
                               certificate=cert, solver=name, status="optimal",
                               attempts=tuple(attempts), route_reason=reason)


def sensing_operator_from_regression(X, Y) -> tuple[np.ndarray, np.ndarray]:
    """State the regression constraints ``W x_i = Y_i`` as matrix sensing ``<A_m, W> = b_m``.

    With ``X`` of shape ``(n, d)`` (one example per row) and ``Y`` of shape ``(n, k)``, the
    unknown ``W`` has shape ``(k, d)`` and the ``n k`` scalar constraints are

    .. math::

        (W x_i)_j = \\langle e_j x_i^\\top, W \\rangle = Y_{ij},
        \\qquad m = i k + j \\;(\\text{row-major}).

    Parameters
    ----------
    X : array_like of shape (n, d)
    Y : array_like of shape (n, k) or (n,)
        A 1-D ``Y`` is treated as ``k = 1``.

    Returns
    -------
    A : ndarray of shape (n * k, k, d)
    b : ndarray of shape (n * k,)
        ``Y.ravel()`` (row-major).

    Examples
    --------
    >>> import numpy as np
    >>> A, b = sensing_operator_from_regression(np.eye(2), np.array([[1.0], [2.0]]))
    >>> A.shape, b.tolist()
    ((2, 1, 2), [1.0, 2.0])
    """
    X = check_X(X)
    Y = as_float_array(Y, "Y", ndim=(1, 2))
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"Y has {Y.shape[0]} rows but X has {X.shape[0]}; pass one target "
                         f"row per example.")
    n, d = X.shape
    k = Y.shape[1]
    A = np.zeros((n, k, k, d))
    for j in range(k):
        A[:, j, j, :] = X
    return A.reshape(n * k, k, d), Y.ravel().copy()
