"""Minimum-Bregman-divergence interpolation ``min D_ψ(w, w₀) s.t. X w = y``, solved and certified.

For a smooth, strictly convex, *separable* potential :math:`\\psi(w) = \\sum_i \\phi(w_i)`, the
program

.. math::

    \\min_{w} \\; D_\\psi(w, w_0) = \\psi(w) - \\psi(w_0)
    - \\langle \\nabla\\psi(w_0), w - w_0\\rangle \\quad \\text{s.t.} \\quad X w = y

has the optimality conditions :math:`Xw = y` and :math:`\\nabla\\psi(w) = \\nabla\\psi(w_0) +
X^\\top\\nu` (docs/theory.md §12). With :math:`\\theta_0 = \\nabla\\psi(w_0)` its Lagrange dual is
the smooth concave program in ``n`` variables

.. math::

    \\max_{\\nu \\in \\mathbb R^n} \\; g(\\nu) = y^\\top\\nu - \\psi^*(\\theta_0 + X^\\top\\nu)
    + \\psi^*(\\theta_0),

whose gradient is :math:`y - X w(\\nu)` with :math:`w(\\nu) = \\nabla\\psi^*(\\theta_0 +
X^\\top\\nu)` and whose Hessian is :math:`-X\\,\\mathrm{diag}(1/\\phi''(w(\\nu)))\\,X^\\top`. It is
solved by Newton's method with a backtracking (Armijo) line search; the answer is then certified
in numpy like every program of :mod:`solvers.programs` (primal residual, stationarity residual,
duality gap). CVXPY is the fallback where the potential is representable (weighted ℓ2, negative
entropy, ℓp^p).

References
----------
S. Gunasekar, J. D. Lee, D. Soudry, N. Srebro. Characterizing implicit bias in terms of
optimization geometry. ICML 2018 (mirror descent on under-determined least squares, §2).
B. Woodworth et al. Kernel and rich regimes in overparametrized models. COLT 2020 (Theorem 1:
the potential ``Q_α`` of the diagonal linear net).
U. Ghai, E. Hazan, Y. Singer. Exponentiated gradient meets gradient descent. ALT 2020
(the hypentropy potential).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla

from .._validation import as_float_array, check_X
from ..errors import InconsistentSystemError, SolverError
from ..tolerances import TOLERANCES
from ._certificate import Certificate
from ._chain import RouteOutcome, run_chain

__all__ = ["Potential", "PotentialSolution", "solve_min_potential", "MIN_POTENTIAL_METHODS"]

_log = logging.getLogger(__name__)

MIN_POTENTIAL_METHODS = ("auto", "newton", "cvxpy-clarabel", "cvxpy-scs")
"""Accepted values of ``method=`` in :func:`solve_min_potential`."""

#: Newton iterations allowed before the dual route gives up (each costs one n × n factorisation).
_MAX_NEWTON = 200
#: Armijo sufficient-increase constant, and the smallest step tried (relative to the first).
_ARMIJO = 1e-4
_MIN_STEP = 1e-20
#: Relative change of the dual value below which it counts as flat (round-off of its terms).
_FLAT = 1e-12
#: Preconditioned CG for the Newton system: products allowed before the Hessian is formed again
#: (each costs 2nd flops, forming it n²d: at most n/4 products, so a failed attempt costs at most
#: half a Hessian), and the forcing term's range (relative residual of the step).
_PCG_MAXITER = 12
_PCG_RTOL_MAX = 1e-2
_PCG_RTOL_MIN = 1e-12
#: Largest change of the mirror coordinates θ = ∇ψ(w) in one Newton step, before doubling with |θ|.
_THETA_STEP = 4.0


@dataclass(frozen=True)
class Potential:
    """A smooth, strictly convex, separable potential :math:`\\psi(w) = \\sum_i \\phi_i(w_i)`.

    Built-ins: :meth:`woodworth`, :meth:`hypentropy`, :meth:`entropy`, :meth:`lp`,
    :meth:`weighted_l2`. A custom potential needs only ``grad`` and ``hess``; ``value`` and
    ``grad_inv`` make the solve faster and the duality gap exact.

    Attributes
    ----------
    name : str
        A label for reports (e.g. ``"Q_alpha(alpha=0.01)"``).
    grad : callable ``(d,) -> (d,)``
        :math:`\\nabla\\psi` (coordinate-wise :math:`\\phi_i'`), strictly increasing on the domain.
    hess : callable ``(d,) -> (d,)``
        The diagonal of :math:`\\nabla^2\\psi` (:math:`\\phi_i'' > 0` inside the domain).
    value : callable ``(d,) -> (d,)``, optional
        The per-coordinate values :math:`\\phi_i(w_i)` (summed by the solver). Without it the
        Bregman divergences of the certificate are computed by Gauss–Legendre quadrature of
        ``grad`` (:func:`bregman`).
    grad_inv : callable ``(d,) -> (d,)``, optional
        :math:`\\nabla\\psi^* = (\\nabla\\psi)^{-1}`, the mirror map back to the primal. Without it,
        :math:`\\nabla\\psi` is inverted coordinate-wise by safeguarded Newton–bisection.
    lower : float
        The open domain is ``(lower, +inf)`` (``-inf``: the whole line; ``0``: negative entropy).
    minimiser : float
        The default ``w₀`` coordinate, where :math:`\\phi'` vanishes
        (``D_ψ(w, w₀) = ψ(w) − min ψ``).
    params : dict
        The potential's parameters, for ``to_dict``.
    cvxpy : callable ``(cp.Variable) -> cp.Expression``, optional
        A DCP expression of :math:`\\sum_i \\phi_i(w_i)` (up to an additive constant); ``None``
        when the potential has no CVXPY form (then no fallback route exists).
    """

    name: str
    grad: Callable[[np.ndarray], np.ndarray]
    hess: Callable[[np.ndarray], np.ndarray]
    value: Callable[[np.ndarray], np.ndarray] | None = None
    grad_inv: Callable[[np.ndarray], np.ndarray] | None = None
    lower: float = -np.inf
    minimiser: float = 0.0
    params: dict = field(default_factory=dict)
    cvxpy: Callable | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-serialisable view (name, parameters, domain)."""
        params = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
                  for k, v in self.params.items()}
        return {"name": self.name, "params": params, "lower": float(self.lower),
                "minimiser": float(self.minimiser)}

    # -------------------------------------------------------------------------- built-ins
    @classmethod
    def hypentropy(cls, beta: float) -> Potential:
        """Hypentropy :math:`\\phi(w) = w\\,\\mathrm{asinh}(w/\\beta)-\\sqrt{w^2+\\beta^2}+\\beta`.

        :math:`\\phi'(w) = \\mathrm{arcsinh}(w/\\beta)`,
        :math:`\\phi''(w) = 1/\\sqrt{w^2+\\beta^2}`,
        :math:`(\\phi')^{-1}(\\theta) = \\beta\\sinh\\theta` (Ghai, Hazan & Singer 2020).
        """
        beta = _positive(beta, "beta", "Potential.hypentropy")

        def value(w):
            return w * np.arcsinh(w / beta) - np.hypot(w, beta) + beta

        return cls(name=f"hypentropy(beta={beta:g})", grad=lambda w: np.arcsinh(w / beta),
                   hess=lambda w: 1.0 / np.hypot(w, beta), value=value,
                   grad_inv=lambda t: beta * np.sinh(t), params={"beta": beta})

    @classmethod
    def woodworth(cls, alpha: float) -> Potential:
        """Woodworth et al. (2020, Theorem 1)'s :math:`Q_\\alpha(\\beta) = \\alpha^2\\sum_i
        q(\\beta_i/\\alpha^2)`, :math:`q(z) = 2 - \\sqrt{4+z^2} + z\\,\\mathrm{arcsinh}(z/2)`.

        The limit of gradient flow on the diagonal net ``β = u⊙u − v⊙v`` from ``u = v = α1``
        (squared loss) is ``argmin Q_α(β) s.t. Xβ = y``. It is the hypentropy with
        ``β_h = 2α²`` (identical values;
        :math:`\\nabla Q_\\alpha = \\mathrm{arcsinh}(\\beta/2\\alpha^2)`).
        Rich regime: ``Q_α / ln(1/α²) → ||·||₁`` as ``α → 0``; kernel regime:
        ``4α² Q_α → ||·||₂²`` as ``α → ∞`` (docs/theory.md §12).
        """
        alpha = _positive(alpha, "alpha", "Potential.woodworth")
        h = cls.hypentropy(2.0 * alpha**2)
        return cls(name=f"Q_alpha(alpha={alpha:g})", grad=h.grad, hess=h.hess, value=h.value,
                   grad_inv=h.grad_inv, params={"alpha": alpha})

    @classmethod
    def entropy(cls) -> Potential:
        """Negative entropy :math:`\\phi(w) = w\\log w - w` on ``w > 0`` (``w₀ = 1`` by default).

        :math:`D_\\psi` is the unnormalised Kullback–Leibler divergence; mirror descent with it is
        exponentiated gradient (Gunasekar et al. 2018, §2).
        """
        def value(w):
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)) - w,
                                np.where(w == 0, 0.0, np.inf))

        def cvx(w):
            import cvxpy as cp
            return -cp.sum(cp.entr(w)) - cp.sum(w)

        return cls(name="entropy", grad=lambda w: np.log(w), hess=lambda w: 1.0 / w,
                   value=value, grad_inv=np.exp, lower=0.0, minimiser=1.0, cvxpy=cvx)

    @classmethod
    def lp(cls, p: float) -> Potential:
        """:math:`\\phi(w) = |w|^p` for ``1 < p < inf`` (the ℓp norm to the power p)."""
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise TypeError(f"Potential.lp: p must be a real number > 1; got {p!r}.") from None
        if not (np.isfinite(p) and p > 1.0):
            raise ValueError(f"Potential.lp: p must be finite and > 1 (|w|^p strictly convex and "
                             f"smooth); got p={p!r}. For p = 1 use solve_min_norm(norm=1).")

        def grad(w):
            return p * np.sign(w) * np.abs(w) ** (p - 1)

        def hess(w):
            with np.errstate(divide="ignore"):
                return p * (p - 1) * np.abs(w) ** (p - 2)

        def cvx(w):
            import cvxpy as cp
            return cp.sum(cp.power(cp.abs(w), p))

        return cls(name=f"lp(p={p:g})", grad=grad, hess=hess, value=lambda w: np.abs(w) ** p,
                   grad_inv=lambda t: np.sign(t) * (np.abs(t) / p) ** (1.0 / (p - 1)),
                   params={"p": p}, cvxpy=cvx)

    @classmethod
    def weighted_l2(cls, weights) -> Potential:
        """:math:`\\phi_i(w_i) = \\tfrac12 c_i w_i^2`, weights ``c_i > 0`` (a scalar or ``(d,)``).

        Closed form: :math:`w = w_0 + C^{-1}X^\\top(XC^{-1}X^\\top)^{-1}(y - Xw_0)`.
        """
        c = np.asarray(weights, dtype=np.float64)
        if c.ndim > 1 or c.size == 0 or not np.all(np.isfinite(c)) or np.any(c <= 0):
            raise ValueError(f"Potential.weighted_l2: weights must be a positive finite scalar or "
                             f"1-D array; got {np.asarray(weights)!r}. Pass e.g. np.ones(d).")

        def cvx(w):
            import cvxpy as cp
            return 0.5 * cp.sum(cp.multiply(np.broadcast_to(c, w.shape), cp.square(w)))

        return cls(name="weighted_l2", grad=lambda w: c * w,
                   hess=lambda w: np.broadcast_to(c, np.shape(w)).astype(float),
                   value=lambda w: 0.5 * c * w**2, grad_inv=lambda t: t / c,
                   params={"weights": c}, cvxpy=cvx)


@dataclass(frozen=True)
class PotentialSolution:
    """A certified solution of :math:`\\min D_\\psi(w, w_0)` s.t. :math:`Xw = y`.

    Attributes
    ----------
    w : ndarray of shape (d,)
        The minimiser.
    dual : ndarray of shape (n,)
        Multipliers ``ν``: :math:`\\nabla\\psi(w) = \\nabla\\psi(w_0) + X^\\top\\nu`.
    value : float
        :math:`D_\\psi(w, w_0)`.
    residual : float
        ``||X w − y||_2`` (absolute).
    w0 : ndarray of shape (d,)
        The reference point of the divergence.
    potential : Potential
    certificate : Certificate
        ``primal_infeasibility = ||Xw − y||₂/||y||₂``; ``dual_residual`` = the stationarity
        residual ``||∇ψ(w) − ∇ψ(w₀) − Xᵀν||₂ / max(||Xᵀν||₂, ||∇ψ(w) − ∇ψ(w₀)||₂)``;
        ``duality_gap = |D_ψ(w, w₀) − g(ν)| / max(D_ψ(w, w₀), |g(ν)|)``; ``primal_value`` and
        ``dual_value`` are ``D_ψ(w, w₀)`` and ``g(ν)``.
    solver : str
        ``"newton"`` (dual Newton), ``"cvxpy-*"``, or ``"trivial"`` (``X w₀ = y``).
    iterations : int
        Newton iterations (0 for the other routes).
    status : str
        ``"optimal"``.
    attempts : tuple of dict
        Every route tried and why it was rejected.
    """

    w: np.ndarray
    dual: np.ndarray
    value: float
    residual: float
    w0: np.ndarray
    potential: Potential
    certificate: Certificate
    solver: str
    iterations: int = 0
    status: str = "optimal"
    attempts: tuple = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """JSON-serialisable view."""
        return {"w": self.w.tolist(), "dual": self.dual.tolist(), "value": float(self.value),
                "residual": float(self.residual), "w0": self.w0.tolist(),
                "potential": self.potential.to_dict(), "certificate": self.certificate.to_dict(),
                "solver": self.solver, "iterations": int(self.iterations), "status": self.status,
                "attempts": [dict(a) for a in self.attempts]}


# ------------------------------------------------------------------------------ helpers
def _positive(x, name: str, where: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a positive real number; got {x!r}.") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{where}: {name} must be finite and > 0; got {name}={x!r}.")
    return v


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(32)


def bregman(potential: Potential, w: np.ndarray, w0: np.ndarray) -> float:
    """:math:`D_\\psi(w, w_0) = \\sum_i \\int_{w_{0,i}}^{w_i} (\\phi_i'(s) - \\phi_i'(w_{0,i}))ds`.

    From ``potential.value`` when given, else by 32-point Gauss–Legendre quadrature of the
    gradient on each coordinate's segment (exact for polynomial gradients of degree ≤ 63).
    """
    if potential.value is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            return float(np.sum(potential.value(w) - potential.value(w0)
                                - potential.grad(w0) * (w - w0)))
    half = 0.5 * (w - w0)
    mid = 0.5 * (w + w0)
    g0 = potential.grad(w0)
    tot = np.zeros_like(w)
    for x, wt in zip(_GL_NODES, _GL_WEIGHTS, strict=True):
        tot += wt * (potential.grad(mid + half * x) - g0)
    return float(np.sum(half * tot))


def _grad_inv(potential: Potential, theta: np.ndarray, start: np.ndarray | None = None
              ) -> np.ndarray:
    """``(∇ψ)^{-1}(θ)``: the closed form, or coordinate-wise Newton–bisection on a bracket."""
    if potential.grad_inv is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(potential.grad_inv(theta), dtype=np.float64)
    lo_dom = potential.lower
    # bracket [a, b] with grad(a) <= θ <= grad(b), expanding geometrically
    base = potential.minimiser
    a = np.full_like(theta, base)
    b = np.full_like(theta, base)
    step = np.ones_like(theta)
    with np.errstate(all="ignore"):
        for _ in range(2100):
            ga, gb = potential.grad(a), potential.grad(b)
            need_lo, need_hi = ga > theta, gb < theta
            if not (need_lo.any() or need_hi.any()):
                break
            b = np.where(need_hi, b + step, b)
            a = np.where(need_lo, np.where(np.isfinite(lo_dom), lo_dom + (a - lo_dom) / 2,
                                           a - step), a)
            step = np.where(need_hi | need_lo, step * 2, step)
        x = 0.5 * (a + b) if start is None else np.clip(start, a, b)
        for _ in range(200):
            g = potential.grad(x) - theta
            a = np.where(g < 0, x, a)
            b = np.where(g > 0, x, b)
            xn = x - g / potential.hess(x)
            bad = ~np.isfinite(xn) | (xn <= a) | (xn >= b)
            xn = np.where(bad, 0.5 * (a + b), xn)
            if np.all(np.abs(xn - x) <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(x))):
                x = xn
                break
            x = xn
    return x


def _conj_value(potential: Potential, theta: np.ndarray, w: np.ndarray) -> float:
    """:math:`\\psi^*(\\theta) = \\langle\\theta, w\\rangle - \\psi(w)` at ``w = ∇ψ*(θ)``."""
    with np.errstate(invalid="ignore", over="ignore"):
        return float(theta @ w - np.sum(potential.value(w)))


def potential_certificate(X, y, w, nu, potential: Potential, w0, *, rtol: float | None = None
                          ) -> Certificate:
    """Certificate of ``(w, ν)`` for :math:`\\min D_\\psi(w, w_0)` s.t. :math:`Xw = y`.

    Computed in numpy from ``w`` and ``ν`` alone (whichever route produced them):

    * primal: ``||Xw − y||₂ / ||y||₂``;
    * stationarity: ``||∇ψ(w) − ∇ψ(w₀) − Xᵀν||₂`` relative to the larger of its two terms;
    * gap: ``D_ψ(w, w₀) − g(ν)``, the dual value being (Fenchel–Young at
      :math:`\\tilde w`) :math:`g(\\nu) = \\nu^\\top(y - X\\tilde w) + D_\\psi(\\tilde w, w_0)`,
      :math:`\\tilde w = \\nabla\\psi^*(\\theta_0 + X^\\top\\nu)` is recomputed from ``ν``
      independently of ``w``. Weak duality: :math:`g(\\nu) \\le D_\\psi(w', w_0)` for every
      feasible ``w'``.
    """
    rtol = TOLERANCES.certificate_rtol if rtol is None else rtol
    ynorm = float(np.linalg.norm(y))
    primal = float(np.linalg.norm(X @ w - y)) / ynorm if ynorm > 0 else float(
        np.linalg.norm(X @ w - y))
    with np.errstate(all="ignore"):
        inside = bool(np.all(w > potential.lower))
        theta0 = potential.grad(w0)
        z = X.T @ nu
        gw = potential.grad(w) - theta0 if inside else np.full_like(w, np.nan)
        scale = max(float(np.linalg.norm(z)), float(np.linalg.norm(gw)))
        stat = float(np.linalg.norm(gw - z)) / scale if scale > 0 else 0.0
        if not np.isfinite(stat):
            stat = np.inf
        primal_value = bregman(potential, w, w0) if inside else np.inf
        wt = _grad_inv(potential, theta0 + z, start=w)
        dual_value = float(nu @ (y - X @ wt)) + bregman(potential, wt, w0)
    gscale = max(abs(primal_value), abs(dual_value))
    if not np.isfinite(gscale):
        gap = np.inf
    else:
        gap = abs(primal_value - dual_value) / gscale if gscale > 0 else 0.0
    checks = {"primal infeasibility": primal, "stationarity residual": stat, "duality gap": gap}
    failed = [f"{k} {v:.3g} > rtol {rtol:.3g}" for k, v in checks.items()
              if not (np.isfinite(v) and v <= rtol)]
    return Certificate(primal_infeasibility=primal, dual_residual=float(stat),
                       duality_gap=float(gap), primal_value=float(primal_value),
                       dual_value=float(dual_value), rtol=float(rtol), verified=not failed,
                       status="verified" if not failed else "failed: " + "; ".join(failed))


# ------------------------------------------------------------------------------ routes
def _pcg(X, h, r, factor, *, rtol: float, maxiter: int):
    """Solve ``X diag(h) Xᵀ s = r`` by conjugate gradients preconditioned with an earlier
    factored Hessian; ``None`` when ``||residual|| <= rtol ||r||`` is not reached in ``maxiter``
    products (each reads ``X`` twice: O(nd), against O(n²d) to form the Hessian)."""
    rn = float(np.linalg.norm(r))
    x = np.zeros_like(r)
    res = r.copy()
    z = sla.cho_solve(factor, res, check_finite=False)
    p = z.copy()
    rz = float(res @ z)
    for _ in range(maxiter):
        q = X @ (h * (X.T @ p))
        pq = float(p @ q)
        if not (np.isfinite(pq) and pq > 0):
            return None
        a = rz / pq
        x += a * p
        res -= a * q
        if float(np.linalg.norm(res)) <= rtol * rn:
            # the recurrence's residual drifts when h spans many orders: recompute it
            true = float(np.linalg.norm(r - X @ (h * (X.T @ x))))
            if true <= 2 * rtol * rn:
                _log.debug("pcg: converged in %d products", _ + 1)
                return x
            _log.debug("pcg: recurrence converged, true residual did not")
            return None
        z = sla.cho_solve(factor, res, check_finite=False)
        rz_new = float(res @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    _log.debug("pcg: no convergence in %d products", maxiter)
    return None


def _dual_newton(X, y, potential: Potential, theta0, *, tol: float, nu0=None):
    """Damped Newton on the concave dual ``g(ν)``; returns ``(w, ν, iterations, status)``.

    The Newton system ``X diag(h) Xᵀ s = r`` (``h = 1/φ''(w)``) is solved by conjugate gradients
    preconditioned with the last factored Hessian when that converges in ``_PCG_MAXITER``
    products (late iterations, where ``h`` barely moves), else the Hessian is formed again in
    one reused buffer ``X·diag(√h)`` and factored. An inexact Newton step with forcing term
    ``min(1e-2, ||r||/||y||)`` keeps the local superlinear convergence (Dembo, Eisenstat &
    Steihaug 1982); the line search below is unchanged.
    """
    n, d = X.shape
    nu = np.zeros(n) if nu0 is None else np.array(nu0, dtype=float)
    ynorm = max(float(np.linalg.norm(y)), np.finfo(float).tiny)
    use_value = potential.value is not None

    def state(v):
        th = theta0 + X.T @ v
        w = _grad_inv(potential, th)
        with np.errstate(all="ignore"):  # an overflowing trial step is rejected by the caller
            r = y - X @ w
        if use_value:
            with np.errstate(all="ignore"):
                merit = float(v @ y) - _conj_value(potential, th, w)
        else:
            merit = -0.5 * float(r @ r)
        return w, r, merit

    w, r, merit = state(nu)
    buf, factor, hessians, full_step = None, None, 0, False
    for it in range(1, _MAX_NEWTON + 1):
        if np.linalg.norm(r) <= tol * ynorm:
            _log.debug("dual Newton: %d iterations, %d Hessians formed", it - 1, hessians)
            return w, nu, it - 1, "optimal"
        with np.errstate(all="ignore"):
            h = 1.0 / potential.hess(w)         # ∇²ψ*(θ) = 1/φ''(w)
        h = np.where(np.isfinite(h), h, 0.0)
        cap = np.max(h) if np.any(h > 0) else 1.0
        h = np.where(h > 0, h, cap * 1e-300 + np.finfo(float).tiny)
        step = None
        if factor is not None and full_step:
            # the last factored Hessian preconditions CG on the current one, once the full Newton
            # step is accepted (h then moves little); the forcing term is superlinear
            # (||r||/||y||) but never asks more than the stopping test needs (tol ||y|| / ||r||)
            rn = float(np.linalg.norm(r))
            eta = min(_PCG_RTOL_MAX, max(rn / ynorm, 0.25 * tol * ynorm / rn, _PCG_RTOL_MIN))
            step = _pcg(X, h, r, factor, rtol=eta, maxiter=min(_PCG_MAXITER, n // 4))
        if step is None:
            factor = None
            if buf is None:                     # one reused (n, d) buffer for X·diag(√h)
                buf = np.empty_like(X)
            np.multiply(X, np.sqrt(h), out=buf)
            H = buf @ buf.T
            H[np.diag_indices(n)] += np.finfo(float).eps * np.trace(H) / n
            try:
                factor = sla.cho_factor(H, check_finite=False)
                step = sla.cho_solve(factor, r, check_finite=False)
            except (np.linalg.LinAlgError, ValueError):
                factor = None
                step = np.linalg.lstsq(H, r, rcond=None)[0]
            hessians += 1
        slope = float(r @ step) if use_value else float(r @ r)
        # trust region in the mirror coordinates: |Δθ|_∞ <= max(_THETA_STEP, 2|θ|_∞), so an
        # exponential-type ψ* (entropy, hypentropy at small β) cannot overflow on a far step
        th = theta0 + X.T @ nu
        dth = float(np.max(np.abs(X.T @ step)))
        lim = max(_THETA_STEP, 2.0 * float(np.max(np.abs(th))))
        t = min(1.0, lim / dth) if dth > 0 else 1.0
        t_floor = _MIN_STEP * t
        while t >= t_floor:
            cand = nu + t * step
            w_c, r_c, m_c = state(cand)
            ok = np.isfinite(m_c) and np.all(np.isfinite(w_c))
            if ok and use_value:
                # Armijo on g; where g is flat to round-off (its terms cancel to ~1e-13 of
                # |θ||w|), the residual ||y − Xw|| must fall instead (Newton on ∇g = 0)
                flat = abs(m_c - merit) <= _FLAT * (1.0 + abs(merit))
                ok = m_c >= merit + _ARMIJO * t * slope or (
                    flat and np.linalg.norm(r_c) <= (1 - _ARMIJO * t) * np.linalg.norm(r))
            elif ok:
                ok = m_c >= merit * (1 - 2 * _ARMIJO * t)
            if ok:
                break
            t *= 0.5
        else:
            return w, nu, it, "line search stalled"
        nu, w, r, merit = cand, w_c, r_c, m_c
        full_step = t == 1.0
    return w, nu, _MAX_NEWTON, "iteration limit"


def _route_newton(X, y, potential, w0, theta0, iters: list) -> RouteOutcome:
    w, nu, it, status = _dual_newton(X, y, potential, theta0, tol=TOLERANCES.solver_eps)
    iters.append(it)
    return RouteOutcome(w, nu, "optimal" if status == "optimal" else status)


def _route_cvxpy(X, y, potential, w0, theta0, solver: str) -> RouteOutcome:
    import cvxpy as cp

    from ._max_margin import _cvxpy_options

    n, d = X.shape
    w = cp.Variable(d)
    con = X @ w == y
    # D_ψ(w, w0) = ψ(w) − <θ0, w> + const
    obj = potential.cvxpy(w) - theta0 @ w
    prob = cp.Problem(cp.Minimize(obj), [con])
    with warnings.catch_warnings():  # the status is checked below and the answer certified
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=solver, **_cvxpy_options(solver))
    if prob.status != cp.OPTIMAL or w.value is None or con.dual_value is None:
        return RouteOutcome(np.full(d, np.nan), np.zeros(n), str(prob.status))
    # CVXPY's Lagrangian has +ν(Xw − y): our ν (∇ψ(w) = θ0 + Xᵀν) is its negative
    return RouteOutcome(np.asarray(w.value, float), -np.asarray(con.dual_value, float), "optimal")


# ------------------------------------------------------------------------------ public API
def solve_min_potential(X, y, potential: Potential, *, w0=None, method: str = "auto",
                        rtol: float | None = None) -> PotentialSolution:
    """Minimise a Bregman divergence over the interpolating solutions, certified in numpy.

    .. math::

        \\min_{w} \\; D_\\psi(w, w_0) \\quad \\text{s.t.} \\quad X w = y,

    the limit of mirror flow :math:`\\tfrac{d}{dt}\\nabla\\psi(w) = -\\nabla\\mathcal L(w)` on
    under-determined least squares from ``w₀`` (Gunasekar et al. 2018, §2) and, with
    ``Potential.woodworth(α)`` and ``w₀ = 0``, of gradient flow on the diagonal linear net
    (Woodworth et al. 2020, Theorem 1). Exact optimality conditions: ``Xw = y`` and
    ``∇ψ(w) = ∇ψ(w₀) + Xᵀν`` (docs/theory.md §12).

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,)
    potential : Potential
        E.g. ``Potential.woodworth(1e-3)``, ``Potential.entropy()``, ``Potential.lp(1.5)``,
        ``Potential.weighted_l2(c)``, or a custom separable potential.
    w0 : array_like of shape (d,), optional, keyword-only
        Reference point (inside the domain). Default: the minimiser of ψ (``0``; ``1`` for the
        entropy), so that ``D_ψ(w, w₀) = ψ(w) − min ψ``.
    method : str, keyword-only
        ``"auto"`` (``newton``, then ``cvxpy-clarabel`` and ``cvxpy-scs`` when the potential has a
        CVXPY form) or one name of :data:`MIN_POTENTIAL_METHODS`.
    rtol : float, optional
        Certificate tolerance (default ``TOLERANCES.certificate_rtol``).

    Returns
    -------
    PotentialSolution

    Raises
    ------
    InconsistentSystemError
        ``X w = y`` has no solution (least-squares residual above ``consistency_rtol ||y||₂``),
        or none inside the potential's domain (entropy: no ``w > 0`` with ``Xw = y``; decided by
        an LP after the routes failed).
    SolverError
        No route verified.
    ValueError, TypeError
        Bad shapes, non-finite entries, ``w0`` outside the domain, bad ``potential``/``method``.

    References
    ----------
    Gunasekar, Lee, Soudry & Srebro (2018), ICML, §2; Woodworth et al. (2020), COLT, Theorem 1.

    Examples
    --------
    >>> import numpy as np
    >>> sol = solve_min_potential(np.array([[1.0, 2.0]]), np.array([5.0]),
    ...                           Potential.weighted_l2(1.0))
    >>> np.round(sol.w, 6).tolist()
    [1.0, 2.0]
    """
    X = check_X(X)
    y = as_float_array(y, "y", ndim=(1, 2))
    if y.ndim == 2:
        raise ValueError(f"y must be 1-D of shape ({X.shape[0]},); got shape {y.shape}. "
                         f"Solve one target column at a time, e.g. y[:, k].")
    n, d = X.shape
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} entries but X has {n} rows; "
                         f"pass one target per example.")
    if not isinstance(potential, Potential):
        raise TypeError(f"potential must be a solvers.programs.Potential; got "
                        f"{type(potential).__name__}. Use e.g. Potential.woodworth(alpha) or "
                        f"Potential.entropy().")
    if method not in MIN_POTENTIAL_METHODS:
        raise ValueError(f"method must be one of {MIN_POTENTIAL_METHODS}; got {method!r}.")
    if method.startswith("cvxpy") and potential.cvxpy is None:
        raise ValueError(f"method={method!r}: potential {potential.name} has no CVXPY form; "
                         f"use method='newton' or 'auto'.")
    if w0 is None:
        w0 = np.full(d, float(potential.minimiser))
    else:
        w0 = as_float_array(w0, "w0", ndim=1)
        if w0.shape != (d,):
            raise ValueError(f"w0 has shape {w0.shape} but X has d = {d} columns; pass a "
                             f"vector of shape ({d},).")
    if not np.all(w0 > potential.lower):
        raise ValueError(f"w0 must lie in the domain of {potential.name} (every entry > "
                         f"{potential.lower:g}); got min(w0) = {float(np.min(w0)):g}. "
                         f"Pass w0=None for the potential's minimiser.")
    rtol = TOLERANCES.certificate_rtol if rtol is None else float(rtol)
    theta0 = np.asarray(potential.grad(w0), dtype=np.float64)
    if theta0.shape != (d,) or not np.all(np.isfinite(theta0)):
        raise ValueError(f"potential.grad(w0) must return a finite array of shape ({d},); got "
                         f"shape {theta0.shape}. Check the potential's grad.")
    ctx = f"solve_min_potential({potential.name})"

    # consistency first, independently of the route
    ynorm = float(np.linalg.norm(y))
    res = _lstsq_residual(X, y)
    if res > TOLERANCES.consistency_rtol * max(ynorm, np.finfo(float).tiny):
        raise InconsistentSystemError(
            f"{ctx}: X w = y has no solution: the least-squares residual ||X w - y||_2 = "
            f"{res:.3e} is {res / max(ynorm, 1e-300):.2e} of ||y||_2 (> consistency_rtol "
            f"{TOLERANCES.consistency_rtol:.0e}); drop redundant rows or fit least squares.",
            residual=res)
    r0 = float(np.linalg.norm(X @ w0 - y))
    if r0 == 0.0:  # w0 already interpolates: it is the minimiser (D_ψ(w0, w0) = 0)
        cert = potential_certificate(X, y, w0, np.zeros(n), potential, w0, rtol=rtol)
        return PotentialSolution(w=w0.copy(), dual=np.zeros(n), value=0.0, residual=0.0,
                                 w0=w0, potential=potential, certificate=cert, solver="trivial")

    iters: list[int] = []
    table = {
        "newton": lambda: _route_newton(X, y, potential, w0, theta0, iters),
        "cvxpy-clarabel": lambda: _route_cvxpy(X, y, potential, w0, theta0, "CLARABEL"),
        "cvxpy-scs": lambda: _route_cvxpy(X, y, potential, w0, theta0, "SCS"),
    }
    if method == "auto":
        names = ["newton"] + (["cvxpy-clarabel", "cvxpy-scs"] if potential.cvxpy else [])
    else:
        names = [method]

    def certify(out: RouteOutcome) -> Certificate:
        return potential_certificate(X, y, out.w, out.dual, potential, w0, rtol=rtol)

    try:
        name, out, cert, attempts = run_chain([(nm, table[nm]) for nm in names], certify,
                                              on_infeasible=None, program=ctx)
    except SolverError:
        if np.isfinite(potential.lower):  # an LP, only on failure: raises when no interior point
            _check_interior(X, y, potential, ctx)
        raise
    return PotentialSolution(
        w=out.w, dual=out.dual, value=cert.primal_value,
        residual=float(np.linalg.norm(X @ out.w - y)), w0=w0, potential=potential,
        certificate=cert, solver=name, iterations=iters[-1] if name == "newton" else 0,
        attempts=tuple(attempts))


def _lstsq_residual(X: np.ndarray, y: np.ndarray) -> float:
    """``min_w ||Xw − y||₂``: 0 when ``X X^T`` is well conditioned (full row rank; one Cholesky
    of the Gram matrix, far cheaper than an SVD when ``d ≫ n``), else by ``lstsq``."""
    G = X @ X.T
    try:
        c, low = sla.cho_factor(G, check_finite=False)
        piv = np.abs(np.diag(c))
        if piv.min() > np.sqrt(TOLERANCES.rank_rtol) * piv.max():  # cond(G) < 1/rank_rtol
            return 0.0
    except np.linalg.LinAlgError:
        pass
    ls = np.linalg.lstsq(X, y, rcond=TOLERANCES.rank_rtol)[0]
    return float(np.linalg.norm(X @ ls - y))


def _check_interior(X, y, potential: Potential, ctx: str) -> None:
    """Refuse when no ``w`` with ``Xw = y`` lies strictly inside ``(lower, inf)^d`` (an LP)."""
    import scipy.optimize as so
    import scipy.sparse as sp

    n, d = X.shape
    lo = potential.lower
    # max s s.t. X w = y, w_j − s >= lo, s <= 1: an interior solution exists iff s* > 0
    c = np.zeros(d + 1)
    c[-1] = -1.0
    A_ub = sp.hstack([-sp.identity(d, format="csr"), sp.csr_matrix(np.ones((d, 1)))]).tocsr()
    b_ub = np.full(d, -lo)
    A_eq = np.hstack([X, np.zeros((n, 1))])
    res = so.linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=y,
                     bounds=[(None, None)] * d + [(None, 1.0)], method="highs")
    if res.status == 0 and -res.fun > 0:
        return
    raise InconsistentSystemError(
        f"{ctx}: no solution of X w = y lies inside the potential's domain (every w_j > {lo:g}); "
        f"the largest margin max_w min_j (w_j − {lo:g}) over X w = y is "
        f"{(-res.fun if res.status == 0 else float('nan')):.3g} (HiGHS: {res.message}). Use a "
        f"potential defined on the whole line (e.g. Potential.woodworth).")
