r"""Halpern-anchored gradient descent for minimum-norm fixed points (docs/theory.md §9).

.. math::

    \theta_{k+1} = \beta_k\,\theta_a + (1 - \beta_k)\,T(\theta_k), \qquad
    \beta_k = \frac{1}{k + 2}, \qquad T = I - \eta\nabla\mathcal L,

with :math:`\eta \le 1/L_{\rm smooth}` so that :math:`T` is nonexpansive. Halpern (1967) and
Wittmann (1992): the iterates converge to the fixed point of :math:`T` nearest to the anchor
:math:`\theta_a` (the projection of the anchor onto
:math:`\mathrm{Fix}\,T = \mathrm{argmin}\,\mathcal L`);
with :math:`\theta_a = 0` on least squares, to the minimum-norm interpolant from any
:math:`\theta_0`. The fixed-point residual obeys the tight bound
:math:`\|\theta_k - T\theta_k\| \le 2\|\theta_0 - \theta^\star\|/(k+1)` when
:math:`\theta_a = \theta_0` (Lieder 2021, Theorem 2.1; Sabach & Shtern 2017).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validation import as_float_array, check_X
from ..tolerances import TOLERANCES

__all__ = ["HalpernResult", "halpern", "halpern_least_squares"]


@dataclass(frozen=True)
class HalpernResult:
    """The outcome of :func:`halpern`.

    Attributes
    ----------
    theta : ndarray of shape (d,)
        The last iterate.
    anchor : ndarray of shape (d,)
        The anchor :math:`\\theta_a`.
    residuals : ndarray of shape (K + 1,)
        Fixed-point residuals :math:`\\|\\theta_k - T(\\theta_k)\\|` for k = 0..K.
    iterations : int
        K, the number of Halpern steps taken.
    step : float
        The step size η of :math:`T = I - \\eta\\nabla\\mathcal L`.
    tol : float
        The stopping tolerance used (relative, see ``TOLERANCES.halpern_tol``).
    status : str
        ``"converged"`` (residual <= tol·(1 + ||θ||); for :func:`halpern` this certifies an
        approximate *fixed point* only — every minimiser is one — while
        :func:`halpern_least_squares` also certifies the anchor's projection) or ``"max_iter"``
        (the budget ran out; the iterate is then only an approximation, and a warning was issued).
    """

    theta: np.ndarray
    anchor: np.ndarray
    residuals: np.ndarray
    iterations: int
    step: float
    tol: float
    status: str

    def to_dict(self) -> dict:
        """JSON-serialisable view (arrays as lists)."""
        return {"theta": self.theta.tolist(), "anchor": self.anchor.tolist(),
                "residuals": self.residuals.tolist(), "iterations": int(self.iterations),
                "step": float(self.step), "tol": float(self.tol), "status": self.status}


def halpern(grad: Callable[[np.ndarray], np.ndarray], theta0, *, step: float, anchor=None,
            max_iter: int = 100_000, tol: float | None = None) -> HalpernResult:
    r"""Halpern-anchored gradient descent for the minimum-distance minimiser (docs/theory.md §9).

    .. math::

        \theta_{k+1} = \beta_k\theta_a + (1 - \beta_k)(\theta_k - \eta\nabla\mathcal L(\theta_k))

    Parameters
    ----------
    grad : callable ``grad(theta) -> ndarray (d,)``
        Gradient of a convex, L-smooth loss.
    theta0 : array_like of shape (d,)
        Initial iterate.
    step : float, keyword-only
        η in ``(0, 2/L]`` (``1/L`` recommended, docs/theory.md §9); T must be nonexpansive.
    anchor : array_like of shape (d,), optional
        :math:`\theta_a`; default ``0`` (the minimum-norm minimiser is the limit).
    max_iter : int
        Budget of Halpern steps.
    tol : float, optional
        Stop when :math:`\|\theta_k - T\theta_k\| \le \mathrm{tol}\,(1 + \|\theta_k\|)`;
        default ``TOLERANCES.halpern_tol``.

    Returns
    -------
    HalpernResult

    Warns
    -----
    UserWarning
        If ``max_iter`` is exhausted before the tolerance is met (``status="max_iter"``).
    """
    result = _run(grad, theta0, step=step, anchor=anchor, max_iter=max_iter, tol=tol)
    _warn_if_not_converged(result)
    return result


def _warn_if_not_converged(result: HalpernResult) -> None:
    if result.status != "converged":
        warnings.warn(
            f"halpern: not certified after {result.iterations} steps (fixed-point residual "
            f"{result.residuals[-1]:.3g}, tol = {result.tol:g}); the O(1/k) rate needs more steps "
            f"(raise max_iter) or a looser tol. The returned iterate is an approximation "
            f"(status='max_iter').",
            stacklevel=3,
        )


def _run(grad, theta0, *, step, anchor, max_iter, tol, certify=None) -> HalpernResult:
    """The iteration. It stops when the fixed-point residual is below ``tol·(1 + ||θ||)`` and,
    if given, ``certify(θ, a) <= tol·(1 + ||θ||)`` too (a fixed point is not yet the anchor's
    projection: every minimiser has zero fixed-point residual)."""
    theta = as_float_array(theta0, "theta0", ndim=1).copy()
    a = np.zeros_like(theta) if anchor is None else as_float_array(anchor, "anchor", ndim=1)
    if a.shape != theta.shape:
        raise ValueError(f"anchor has shape {a.shape} but theta0 has {theta.shape}; "
                         f"pass an anchor in the same space.")
    step = float(step)
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive finite number (η <= 1/L); got {step!r}.")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}.")
    tol = TOLERANCES.halpern_tol if tol is None else float(tol)
    residuals = np.empty(int(max_iter) + 1)
    status = "max_iter"
    k = 0
    for k in range(int(max_iter) + 1):
        g = np.asarray(grad(theta), dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            T_theta = theta - step * g
            res = float(np.linalg.norm(theta - T_theta))
        residuals[k] = res
        if not np.isfinite(res):
            raise ValueError(f"the fixed-point residual became non-finite at step {k}; the step "
                             f"size {step:g} is probably above 2/L. Pass step <= 1/L.")
        scale = tol * (1.0 + np.linalg.norm(theta))
        if res <= scale and (certify is None or certify(theta, a) <= scale):
            status = "converged"
            break
        if k == int(max_iter):
            break
        beta = 1.0 / (k + 2)
        theta = beta * a + (1.0 - beta) * T_theta
    return HalpernResult(theta=theta, anchor=a.copy(), residuals=residuals[: k + 1].copy(),
                         iterations=k, step=step, tol=tol, status=status)


def halpern_least_squares(X, y, *, theta0=None, anchor=None, step=None, max_iter: int = 100_000,
                          tol: float | None = None) -> HalpernResult:
    r"""Halpern iteration on least squares :math:`\tfrac{1}{2n}\|X\theta - y\|^2`
    (docs/theory.md §9).

    Converges to the projection of the anchor onto :math:`\{\theta: X^\top X\theta = X^\top y\}`
    (``status="converged"`` certifies both a small fixed-point residual and a null-space component
    of :math:`\theta - \theta_a` below ``tol``),
    i.e. :math:`\theta_a + X^+(y - X\theta_a)` for a consistent system; with the default anchor
    0, to the minimum-norm interpolant :math:`X^+ y`, from any ``theta0``.

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,)
    theta0 : array_like of shape (d,), optional
        Default 0.
    anchor : array_like of shape (d,), optional
        Default 0.
    step : float, optional
        Default :math:`1/L_{\rm smooth}` with :math:`L_{\rm smooth} = \sigma_{\max}(X)^2/n`.
    max_iter, tol
        As in :func:`halpern`.
    """
    X = check_X(X)
    n, d = X.shape
    y = as_float_array(y, "y", ndim=1)
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} entries but X has {n} rows; pass one per example.")
    H = X.T @ X / n
    b = X.T @ y / n
    if step is None:
        L = float(np.linalg.eigvalsh(H)[-1])
        if L <= 0:
            raise ValueError("X is zero: the loss is constant and every point is a minimiser.")
        step = 1.0 / L
    theta0 = np.zeros(d) if theta0 is None else theta0
    # The limit is the anchor's projection onto the minimisers: θ − a must lie in range(Xᵀ).
    # "converged" requires that too, not only a small fixed-point residual (zero at every
    # minimiser): the component of θ − a in the null space of X must be below tolerance.
    _, sv, Vt = np.linalg.svd(X, full_matrices=False)
    Vr = Vt[sv > TOLERANCES.rank_rtol * (sv[0] if sv.size else 0.0)]

    def null_component(theta, a):
        r = theta - a
        return float(np.linalg.norm(r - Vr.T @ (Vr @ r)))

    result = _run(lambda th: H @ th - b, theta0, step=step, anchor=anchor, max_iter=max_iter,
                  tol=tol, certify=null_component)
    _warn_if_not_converged(result)
    return result
