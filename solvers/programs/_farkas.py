"""Farkas (Gordan) certificates of non-separability.

Gordan's theorem of the alternative (Gordan 1873; see Mangasarian, *Nonlinear Programming*, 1969,
Thm 2.4.5): for ``G`` of shape ``(n, d)`` exactly one of the following holds

.. math::

    \\exists\\, w:\\; G w > 0 \\qquad\\text{or}\\qquad
    \\exists\\, \\mu \\ge 0,\\; \\mathbf 1^\\top \\mu = 1:\\; G^\\top \\mu = 0 .

With ``G = diag(y) X`` the first alternative is strict linear separability through the origin, so a
verified ``μ`` proves that no max-margin program is feasible. Data separable only with zero margin
(e.g. an example at ``x = 0``) satisfy the second alternative: they are *not* strictly separable.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize as so
import scipy.sparse as sp

from ..errors import MarginBelowResolutionError, NotSeparableError, SolverError
from ..tolerances import TOLERANCES

__all__: list[str] = []


def farkas_residual(G: np.ndarray, mu: np.ndarray) -> float:
    """``||G^T mu||_2 / max_i ||g_i||_2`` — the scale-free residual of a certificate ``mu``."""
    scale = float(np.max(np.linalg.norm(G, axis=1)))
    r = float(np.linalg.norm(G.T @ mu))
    return r / scale if scale > 0 else 0.0


def find_farkas_certificate(G: np.ndarray, *, atol: float | None = None):
    """Return a verified ``μ`` (``μ >= 0``, ``Σμ = 1``, ``G^T μ ≈ 0``) or ``None`` if none exists.

    Solves the LP :math:`\\min_{\\mu \\in \\Delta} \\|G^\\top \\mu\\|_1` with HiGHS (its value
    is the ℓ∞ margin, zero exactly when a certificate exists), then polishes ``μ`` on its support by
    least squares and keeps whichever verifies better.

    Returns
    -------
    (mu, residual) or None
        ``mu`` of shape ``(n,)`` and its residual :func:`farkas_residual`, if
        ``residual <= atol`` (default ``TOLERANCES.farkas_atol``).
    """
    atol = TOLERANCES.farkas_atol if atol is None else atol
    n, d = G.shape
    scale = float(np.max(np.linalg.norm(G, axis=1)))
    if scale == 0.0:  # every example is at the origin: any point of the simplex certifies
        return np.full(n, 1.0 / n), 0.0
    Gs = G / scale
    # variables [mu (n), r+ (d), r- (d)];  Gs^T mu - r+ + r- = 0,  1^T mu = 1
    c = np.concatenate([np.zeros(n), np.ones(2 * d)])
    eye = sp.identity(d, format="csr")
    A_eq = sp.vstack([
        sp.hstack([sp.csr_matrix(Gs.T), -eye, eye]),
        sp.hstack([sp.csr_matrix(np.ones((1, n))), sp.csr_matrix((1, 2 * d))]),
    ]).tocsc()
    b_eq = np.concatenate([np.zeros(d), [1.0]])
    eps = TOLERANCES.solver_eps
    res = so.linprog(c, A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs",
                     options={"primal_feasibility_tolerance": eps,
                              "dual_feasibility_tolerance": eps})
    if res.status != 0 or res.x is None:
        raise SolverError(
            f"the Farkas LP min ||G^T mu||_1 over the simplex failed in HiGHS: {res.message}",
            attempts=[{"solver": "linprog-highs (Farkas LP)", "status": res.message,
                       "rejected": "solver failure"}])
    candidates = [_normalise(res.x[:n])]
    support = np.flatnonzero(res.x[:n] > 0)
    if 0 < support.size <= d + 1:
        M = np.vstack([Gs[support].T, np.ones((1, support.size))])
        rhs = np.concatenate([np.zeros(d), [1.0]])
        sol = np.linalg.lstsq(M, rhs, rcond=None)[0]
        if np.all(sol >= 0):
            mu = np.zeros(n)
            mu[support] = sol
            candidates.append(_normalise(mu))
    best = min((c for c in candidates if c is not None), key=lambda m: farkas_residual(G, m),
               default=None)
    if best is None:
        return None
    r = farkas_residual(G, best)
    return (best, r) if r <= atol else None


def _normalise(mu: np.ndarray):
    mu = np.clip(mu, 0.0, None)
    s = mu.sum()
    return mu / s if s > 0 else None


def equilibrate(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``A = R G C`` with rows of unit ℓ2 norm (``R``) then columns of unit max-abs (``C``).

    Gordan's alternative is invariant under positive row and column scalings (``Gw > 0`` iff
    ``A (C^{-1} w) > 0``; ``G^T R μ = 0`` iff ``A^T μ = 0``), so a certificate ``μ_A`` for ``A``
    gives ``μ ∝ R μ_A`` for ``G``. Returns ``(A, r)`` with ``r`` the row factors (rows of ``G``
    must be nonzero). Zero columns stay zero.
    """
    r = 1.0 / np.sqrt(np.einsum("ij,ij->i", G, G))
    A = r[:, None] * G
    cmax = np.max(np.abs(A), axis=0)
    A /= np.where(cmax > 0, cmax, 1.0)
    return A, r


def raise_not_separable(G: np.ndarray, context: str, *, scale_exp: int = 0,
                        p: float = 2.0) -> None:
    """Decide non-separability on the equilibrated data and raise the matching error.

    * An example at ``x = 0`` is an exact Gordan certificate: :class:`NotSeparableError`.
    * A Gordan ``μ`` for the equilibrated data (:func:`equilibrate`) with residual at rounding
      level (``<= farkas_proof_atol``): :class:`NotSeparableError` carrying ``μ`` mapped back.
    * A residual between ``farkas_proof_atol`` and ``farkas_atol``: the margin is below the
      resolution; :class:`MarginBelowResolutionError` with the certified upper bound
      ``γ_p <= ||G^T μ||_q`` (weak duality).
    * No certificate: returns ``None``: the data are separable at this resolution and the
      infeasibility the caller saw was a solver failure.

    ``G`` may be the data scaled by ``2^-scale_exp`` (exact); reported residuals and bounds are
    mapped back to the original scale. ``p`` is the norm of the margin program (for the bound).
    """
    from .._validation import dual_exponent
    from ._certificate import lp_norm

    zero_rows = np.flatnonzero(~G.any(axis=1))
    if zero_rows.size:
        mu = np.zeros(G.shape[0])
        mu[zero_rows[0]] = 1.0
        raise NotSeparableError(
            f"{context}: the data (X, y) are not strictly linearly separable through the origin: "
            f"examples {zero_rows[:5].tolist()} lie at x = 0 (margin exactly 0 for every w). "
            f"Remove them, or append a constant feature if a bias is intended.",
            certificate=mu, residual=0.0)
    A, r = equilibrate(G)
    found = find_farkas_certificate(A)
    if found is None:
        return
    mu_A, res = found
    mu = r * mu_A
    mu /= mu.sum()
    k = int(np.count_nonzero(mu))
    z = G.T @ mu
    if res <= TOLERANCES.farkas_proof_atol:
        raise NotSeparableError(
            f"{context}: the data (X, y) are not strictly linearly separable through the origin. "
            f"Gordan certificate mu >= 0, sum(mu) = 1 on {k} example(s) with "
            f"||sum_i mu_i y_i x_i|| = {res:.2e} on the equilibrated data (unit rows, unit "
            f"columns), at float64 rounding level (<= farkas_proof_atol = "
            f"{TOLERANCES.farkas_proof_atol:g}). Remove or relabel the conflicting examples "
            f"(mu's support), or append a constant feature if a bias is intended.",
            certificate=mu, residual=float(np.ldexp(np.linalg.norm(z), scale_exp)))
    bound = float(np.ldexp(lp_norm(z, dual_exponent(p)), scale_exp))
    raise MarginBelowResolutionError(
        f"{context}: separable or not is undecided at this tolerance: a Gordan vector mu on {k} "
        f"example(s) leaves ||sum_i mu_i y_i x_i|| = {res:.2e} on the equilibrated data, above "
        f"rounding level ({TOLERANCES.farkas_proof_atol:g}) but below farkas_atol "
        f"({TOLERANCES.farkas_atol:g}); the certified upper bound on the margin is "
        f"{bound:.6g} (= ||sum_i mu_i y_i x_i||_q, weak duality). Standardise the features, "
        f"or remove mu's support examples, to get a margin above the resolution.",
        upper_bound=bound, certificate=mu, residual=float(res))
