"""Small synthetic problems with known structure, used by the catalogue, notebooks and tests.

Every generator takes a ``seed`` (int or :class:`numpy.random.Generator`) and is deterministic
in it.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "make_separable",
    "make_separable_with_slack",
    "make_underdetermined",
    "make_whitened_regression",
    "make_sensing",
]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _positive_int(value, name: str) -> int:
    if int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def make_separable(n: int = 40, d: int = 5, *, gap: float = 0.2, seed=0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian data ``(n, d)`` separable through the origin with margin at least ``gap``.

    A random unit direction ``u`` labels each point by ``sign(⟨u, x⟩)``; a point closer than ``gap``
    to the hyperplane is pushed out along ``u`` to a random distance in ``[gap, 2 gap)``. The ℓ2
    margin of the data is therefore at least ``gap``, so the max-margin programs are feasible, and
    no two points tie on the margin by construction: the data are generic in the sense of Soudry
    et al. 2018 (support vectors with positive dual variables, almost surely).

    Returns
    -------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), values in {-1, +1}
    """
    n, d = _positive_int(n, "n"), _positive_int(d, "d")
    if not gap > 0:
        raise ValueError(f"gap must be positive; got {gap!r}.")
    rng = _rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((n, d))
    s = X @ u
    y = np.where(s >= 0, 1.0, -1.0)
    close = np.abs(s) < gap
    target = gap * (1.0 + rng.random(n))
    X += np.outer(np.where(close, y * target - s, 0.0), u)
    return X, y


def make_separable_with_slack(n: int = 40, d: int = 5, *, gap: float = 0.2, slack: float = 0.05,
                              seed=0) -> tuple[np.ndarray, np.ndarray]:
    r"""Separable data whose ℓ2 max-margin solution has a complementarity gap of at least ``slack``.

    Starts from :func:`make_separable` (same ``n``, ``d``, ``gap``, ``seed``), solves the certified
    ℓ2 max-margin program ``ŵ = argmin{||w|| : y_i⟨w, x_i⟩ ≥ 1}`` with multipliers ``λ*``, and moves
    every point that is not a support vector (``λ*_i = 0``) whose functional margin
    ``q_i = y_i⟨ŵ, x_i⟩`` is below ``1 + slack`` along ``y_i ŵ`` to a random margin in
    ``[1 + slack, 1 + 2 slack)``. The pair ``(ŵ, λ*)`` still satisfies the KKT conditions of the
    moved data (stationarity ``ŵ = Σ λ*_i y_i x_i`` only involves support vectors, which do not
    move; the moved constraints stay feasible with ``λ*_i = 0``), and the program is strictly
    convex, so its solution ``ŵ`` and the ℓ2 margin ``1/||ŵ|| ≥ gap`` are unchanged. Afterwards

    .. math:: y_i\langle\hat w, x_i\rangle \ge 1 + \mathrm{slack}\quad\text{whenever }
              \lambda^\star_i = 0,

    so no point is weakly active and no non-support point lies near the margin. Primal–dual flows
    such as Minnorm (docs/theory.md §8.2) need this: a multiplier that became positive early
    leaves the support only at rate ``α (q_i − 1)``, which is arbitrarily slow without a gap
    (``make_separable(20, 3, gap=0.3, seed=18)`` has a non-support point at ``q_i − 1 = 3e-4``).

    Parameters
    ----------
    n, d : int
        Number of points and dimension.
    gap : float
        Lower bound on the ℓ2 margin (as in :func:`make_separable`).
    slack : float
        Complementarity gap, ``> 0``.
    seed : int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), values in {-1, +1}
    """
    if not slack > 0:
        raise ValueError(f"slack must be positive (the complementarity gap); got {slack!r}.")
    rng = _rng(seed)
    X, y = make_separable(n, d, gap=gap, seed=rng)
    from .programs import solve_max_margin  # certified program (lazy: cvxpy is heavy)

    svm = solve_max_margin(X, y, norm=2)
    w = svm.w
    q = y * (X @ w)
    # λ*_i = 0 up to the certificate's scale: the support vectors are left in place
    inactive = svm.dual <= 1e-6 * float(svm.dual.max())
    move = inactive & (q < 1.0 + slack)
    target = 1.0 + slack * (1.0 + rng.random(n))
    shift = np.where(move, (target - q) / float(w @ w), 0.0)
    return X + np.outer(y * shift, w), y


def make_underdetermined(n: int = 5, d: int = 12, *, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A consistent underdetermined system: ``X`` ``(n, d)`` with ``d > n``, ``y`` ``(n,)``."""
    n, d = _positive_int(n, "n"), _positive_int(d, "d")
    if d <= n:
        raise ValueError(f"d must exceed n for an underdetermined system; got n={n}, d={d}.")
    rng = _rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal(n)


def make_whitened_regression(n: int = 64, d: int = 4, k: int = 3, *, singular_values=None,
                             seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs with ``XᵀX/n = I`` and targets with a prescribed input–output correlation spectrum.

    ``Y = X Mᵀ`` with ``M = U diag(s) Vᵀ`` (random orthonormal ``U``, ``V``), so
    ``Σ_yx = YᵀX/n = M`` has singular values ``s`` (Saxe et al. 2014's setting).

    Returns
    -------
    X : ndarray of shape (n, d)
    Y : ndarray of shape (n, k)
    """
    n, d, k = _positive_int(n, "n"), _positive_int(d, "d"), _positive_int(k, "k")
    if n < d:
        raise ValueError(f"whitening needs n >= d; got n={n}, d={d}.")
    rng = _rng(seed)
    r = min(d, k)
    s = np.linspace(3.0, 1.0, r) if singular_values is None else np.asarray(singular_values, float)
    if s.shape != (r,):
        raise ValueError(f"singular_values must have min(d, k) = {r} entries; got {s.shape}.")
    Q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    X = np.sqrt(n) * Q                                  # XᵀX/n = I
    U, _ = np.linalg.qr(rng.standard_normal((k, r)))
    V, _ = np.linalg.qr(rng.standard_normal((d, r)))
    M = U @ np.diag(s) @ V.T                            # (k, d)
    return X, X @ M.T


def make_sensing(n: int = 40, d1: int = 6, d2: int = 6, *, rank: int = 1, symmetric: bool = True,
                 seed=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian matrix sensing ``y_i = ⟨A_i, W*⟩`` with a low-rank ground truth ``W*``.

    Returns
    -------
    A : ndarray of shape (n, d1, d2)
        Measurement matrices (symmetrised when ``symmetric``; then ``d1 == d2``).
    y : ndarray of shape (n,)
    W_star : ndarray of shape (d1, d2)
        The ground truth (PSD with trace 1 when ``symmetric``).
    """
    n, d1, d2 = _positive_int(n, "n"), _positive_int(d1, "d1"), _positive_int(d2, "d2")
    rank = _positive_int(rank, "rank")
    rng = _rng(seed)
    if symmetric:
        if d1 != d2:
            raise ValueError(f"symmetric sensing needs d1 == d2; got {d1}, {d2}.")
        A = rng.standard_normal((n, d1, d1))
        A = 0.5 * (A + A.transpose(0, 2, 1))
        U = rng.standard_normal((d1, rank))
        W_star = U @ U.T
        W_star /= np.trace(W_star)
    else:
        A = rng.standard_normal((n, d1, d2))
        W_star = rng.standard_normal((d1, rank)) @ rng.standard_normal((rank, d2)) / rank
    y = np.einsum("nij,ij->n", A, W_star)
    return A, y, W_star
