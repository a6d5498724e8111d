"""The marginflow exception family.

One small, flat hierarchy (after CVXPY's): every error marginflow raises on purpose derives from
:class:`MarginflowError`, so ``except MarginflowError`` catches them all. Bad *arguments* (wrong
shapes, NaN/inf, labels not ±1, unknown options) raise the built-in :class:`ValueError` or
:class:`TypeError` with a message that names the argument, the value and the fix.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MarginflowError",
    "NotSeparableError",
    "MarginBelowResolutionError",
    "InconsistentSystemError",
    "NotHomogeneousError",
    "NotFeasibleError",
    "SolverError",
    "PrecisionLimitError",
    "IntegrationError",
]


class MarginflowError(Exception):
    """Base class of every error marginflow raises on purpose."""


class NotSeparableError(MarginflowError):
    """The data are not (strictly) linearly separable, so no margin program is feasible.

    Attributes
    ----------
    certificate : ndarray of shape (n,)
        A Farkas certificate ``mu``: ``mu >= 0``, ``sum(mu) = 1`` and ``sum_i mu_i y_i x_i = 0``
        (verified in numpy before the error is raised). By Gordan's theorem its existence proves
        that no ``w`` has ``y_i <w, x_i> > 0`` for all ``i``.
    residual : float
        ``||sum_i mu_i y_i x_i||_2`` for the certificate, the evidence of its accuracy.
    """

    def __init__(self, message: str, *, certificate: np.ndarray | None = None,
                 residual: float | None = None):
        super().__init__(message)
        self.certificate = certificate
        self.residual = residual


class MarginBelowResolutionError(MarginflowError):
    """Separable or not is undecided at this tolerance: the margin is below the resolution.

    A Gordan vector ``mu`` (``mu >= 0``, ``sum(mu) = 1``) makes ``||sum_i mu_i y_i x_i||`` small
    (``<= farkas_atol`` on the equilibrated data) but not zero to rounding error, so neither a
    margin nor non-separability could be certified.

    Attributes
    ----------
    upper_bound : float
        A certified upper bound on the ``p``-margin: ``γ_p <= ||sum_i mu_i y_i x_i||_q`` for every
        ``mu`` in the simplex (weak duality, ``γ_p = min_{mu ∈ Δ} ||G^T mu||_q``), evaluated in
        float64 on the original data.
    certificate : ndarray of shape (n,)
        The ``mu`` giving the bound.
    residual : float
        Its residual on the equilibrated data (between ``farkas_proof_atol`` and ``farkas_atol``).
    """

    def __init__(self, message: str, *, upper_bound: float, certificate: np.ndarray,
                 residual: float):
        super().__init__(message)
        self.upper_bound = upper_bound
        self.certificate = certificate
        self.residual = residual


class InconsistentSystemError(MarginflowError):
    """An equality-constrained program (``X w = y``, ``<A_i, W> = y_i``) has no solution.

    Attributes
    ----------
    residual : float
        The smallest achievable ``||X w - y||_2`` (least squares), the evidence of inconsistency.
    """

    def __init__(self, message: str, *, residual: float | None = None):
        super().__init__(message)
        self.residual = residual


class NotHomogeneousError(MarginflowError):
    """A network is not positively homogeneous: a bias or activation breaks f(cθ) = c^L f(θ)."""


class NotFeasibleError(MarginflowError):
    """A point is not feasible for the margin problem (some ``q_i <= 0``: misclassified)."""


class SolverError(MarginflowError):
    """No solver returned a solution whose certificate verified.

    Attributes
    ----------
    attempts : list of dict
        One entry per solver tried: its name, the status it reported and why it was rejected.
    """

    def __init__(self, message: str, *, attempts: list | None = None):
        super().__init__(message)
        self.attempts = list(attempts or [])


class PrecisionLimitError(SolverError):
    """No float64 answer that meets the certificate's tolerance was found (docs/theory.md §5.9).

    Raised instead of a bare :class:`SolverError` when the best candidate fails only by residuals
    within a small factor of what rounding its ``w`` or its multipliers to float64 alone causes,
    and refining it with exactly evaluated residuals, then searching the float64 grid around it,
    gave nothing that verifies (e.g. a square 6×6 system with one row scaled by 1e-12, where five
    rows must cancel terms of ~1e14 with one spare entry). The grid search is not exhaustive, so
    this says that float64 resolution is what the solvers ran into, not that no float64 answer
    exists. Nothing is claimed about the data.

    Attributes
    ----------
    residuals : dict
        The failing residuals of the best candidate and their float64 floors.
    """

    def __init__(self, message: str, *, attempts: list | None = None,
                 residuals: dict | None = None):
        super().__init__(message, attempts=attempts)
        self.residuals = dict(residuals or {})


class IntegrationError(MarginflowError):
    """An ODE integration failed (step size collapse, non-finite state, event misfire).

    Attributes
    ----------
    trajectory : object or None
        The partial trajectory up to the failure, for diagnosis only (never a result).
    """

    def __init__(self, message: str, *, trajectory: object | None = None):
        super().__init__(message)
        self.trajectory = trajectory
