"""ℓ∞ minimum-norm interpolation at ``d ≫ n`` by column generation (docs/theory.md §5.12).

The program :math:`\\min t` s.t. :math:`Xw = y`, :math:`-t \\le w_j \\le t` has a basic optimal
solution with at most ``n`` coordinates strictly inside ``(-t, t)``; every other coordinate sits
at ``±t``. So a small *free* set ``F`` of features is solved for explicitly and every other
feature is fixed at ``w_j = σ_j t`` (``σ_j ∈ {-1, +1}``). The restricted LP has ``|F| + 2``
variables with box bounds and ``n`` equality rows whatever ``d`` is, and one mat-vec
``X^T μ`` prices every fixed feature against its equality duals ``μ``. The full LP with
``d + 1`` variables and ``2d`` inequality rows is never built.

Returns an *unverified* ``(w, ν)``; the caller (:func:`solvers.programs.solve_min_norm`)
certifies it on the data like every other route.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize as so

from ..tolerances import TOLERANCES
from ._chain import Infeasible

__all__: list[str] = []


def min_norm_inf_colgen(X: np.ndarray, y: np.ndarray, *, initial: int | None = None,
                        max_rounds: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``min ||w||_∞`` s.t. ``X w = y`` by column generation; returns ``(w, ν)``.

    Solved in the homogeneous form ``max s`` s.t. ``X v = s y``, ``||v||_∞ <= 1`` (then
    ``w = v / s``, ``||w||_∞ = 1/s``), whose dual is ``min ||X^T μ||_1`` s.t. ``y^T μ = 1``.
    The restricted LP (docs/theory.md §5.12) has variables ``v_F`` (free features),
    ``α ∈ [0, 1]`` (every other feature at ``v_j = α σ_j``) and ``s``:

    .. math::

        \\max s \\quad\\text{s.t.}\\quad X_F v_F + \\alpha\\, X_{F^c}\\sigma_{F^c} - s y = 0,
        \\quad |v_F| \\le 1,\\ 0 \\le \\alpha \\le 1,

    always feasible (``v = 0``, ``α = s = 0``) and bounded. Its dual value at the equality
    duals ``μ`` (``y^T μ = 1``, ``a = X^T μ``) is ``Σ_F |a_j| + max(0, Σ_{F^c} σ_j a_j)``, and
    ``||a||_1`` bounds the full optimum from above; the two agree iff no fixed feature has
    ``σ_j a_j < 0``. The loop stops when the relative gap is at most ``solver_eps`` and
    otherwise moves the worst violators into ``F`` (at most ``max(n, 50)`` a round).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), not all zero
    initial : int, optional
        Size of the first free set (default ``max(2n, 50)``, capped at ``d``): the features
        with the smallest ``|X^T y|``, whose signs under ``μ ∝ y`` are least certain; the others
        start at ``σ = sign(X^T y)``.
    max_rounds : int
        Cap on pricing rounds (``RuntimeError`` beyond it: the fallback chain continues).

    Returns
    -------
    w : ndarray of shape (d,)
    nu : ndarray of shape (n,)
        Multipliers of the half-squared program :math:`\\min\\tfrac12\\|w\\|_\\infty^2`:
        ``ν = μ / s²`` (``y^T ν = 1/s² = ||w||_∞²``, ``||X^T ν||_1 = ||w||_∞`` at the optimum).

    Raises
    ------
    Infeasible
        The LP value is ``s <= 0`` (``y`` outside the range of ``X``).
    RuntimeError
        HiGHS failed or the loop did not converge.
    """
    n, d = X.shape
    k0 = min(d, initial if initial is not None else max(2 * n, 50))
    a = X.T @ y
    sigma = np.where(a >= 0, 1.0, -1.0)
    F = np.sort(np.argpartition(np.abs(a), k0 - 1)[:k0])
    eps = TOLERANCES.solver_eps
    opts = {"primal_feasibility_tolerance": eps, "dual_feasibility_tolerance": eps,
            "presolve": False}
    batch = max(n, 50)
    for _ in range(max_rounds):
        k = F.size
        fixed = np.ones(d, dtype=bool)
        fixed[F] = False
        offset = X[:, fixed] @ sigma[fixed] if fixed.any() else np.zeros(n)
        # variables [v_F (k), α, s]
        c = np.zeros(k + 2)
        c[-1] = -1.0
        A_eq = np.hstack([X[:, F], offset[:, None], -y[:, None]])
        # dense n x (k + 2) equality rows and box bounds only: HiGHS's interior point (with
        # crossover, so the duals are a vertex's) measured 3-4x faster than its dual simplex
        # at (300, 1500); presolve finds nothing to remove in a dense matrix
        res = so.linprog(c, A_eq=A_eq, b_eq=np.zeros(n),
                         bounds=[(-1.0, 1.0)] * k + [(0.0, 1.0), (0.0, None)],
                         method="highs-ipm", options=opts)
        if res.status != 0 or res.x is None:
            raise RuntimeError(f"HiGHS (ℓ∞ column generation): {res.message}")
        s = float(res.x[-1])
        mu = np.asarray(res.eqlin.marginals, dtype=float)  # the duals with y^T μ = 1
        a = X.T @ mu
        sa = np.where(fixed, sigma * a, 0.0)
        viol = np.flatnonzero(sa < 0.0)
        upper = float(np.abs(a).sum())  # the full dual's value at μ: an upper bound on s*
        if upper - s <= eps * max(s, np.finfo(float).tiny):
            if s <= 0.0:
                raise Infeasible(f"ℓ∞ column generation: LP value s = {s:.2e} <= 0")
            alpha = float(res.x[k])
            v = alpha * sigma
            v[F] = res.x[:k]
            return v / s, mu / s**2
        if viol.size == 0:  # the gap sits on the free set: HiGHS's own tolerance
            raise RuntimeError(f"ℓ∞ column generation: restricted gap {upper - s:.1e} with no "
                               f"violating feature")
        if viol.size > batch:
            viol = viol[np.argpartition(sa[viol], batch - 1)[:batch]]
        F = np.union1d(F, viol)
    raise RuntimeError(f"ℓ∞ column generation did not converge in {max_rounds} rounds")
