"""Closed forms of linear-network training dynamics (docs/theory.md §4), derived with sympy and
evaluated with numpy.

* Saxe, McClelland, Ganguli (2014), eq. (6)–(7) (two layers, whitened inputs, mean squared
  loss, balanced init aligned with the SVD of :math:`\\Sigma_{yx} = Y^T X/n`): each mode strength
  obeys :math:`\\dot u = 2u(s - u)`, solved here by ``sympy.dsolve``:
  :math:`u(t) = s e^{2st}/(e^{2st} - 1 + s/u_0)` (exact). Depth :math:`L`:
  :math:`\\dot u = L u^{2-2/L}(s - u)`; here :math:`t(u)` is the separable integral, worked out
  by partial fractions in :math:`w = (u/s)^{1/L}`,

  .. math:: t(u) = s^{2/L - 2} \\int_{w_0}^{w} \\frac{d\\omega}{\\omega^{L-1}(1 - \\omega^L)},

  and :math:`u(t)` is recovered by bisection on the monotone :math:`t(u)` (exact to rounding).
  (``sympy.integrate`` returns a wrong antiderivative of this integrand for odd ``L`` in sympy
  1.14, dropping the complex-root terms; ``apart(..., full=True)`` is correct, so it is used.)
* Arora, Cohen, Hazan (2018), Thm. 1 (balanced init :math:`D_l(0) = 0`): the end-to-end map
  obeys :math:`\\dot W = -\\sum_{j=1}^{L} (W W^T)^{(j-1)/L} G (W^T W)^{(L-j)/L}` (exact).
* Gunasekar et al. (2018), Thm. 1 / Soudry-type least-squares argument: gradient flow on
  underdetermined least squares from :math:`w_0` converges to
  :math:`w_0 + X^+(y - X w_0)`, the Euclidean projection of :math:`w_0` onto
  :math:`\\{w : Xw = y\\}` (exact).
"""

from __future__ import annotations

__all__ = [
    "saxe_mode_ode",
    "saxe_mode_solution",
    "saxe_time_integral",
    "saxe_mode_time",
    "saxe_mode_strength",
    "psd_power",
    "arora_end_to_end_expression",
    "arora_end_to_end_rhs",
    "gunasekar_projection",
]

from functools import cache

import numpy as np
import sympy as sp

T = sp.Symbol("t", nonnegative=True)
S = sp.Symbol("s", positive=True)
U0 = sp.Symbol("u0", positive=True)
U = sp.Symbol("u", positive=True)

RANK_RTOL = 1e-12
"""Mirror of ``solvers.tolerances.TOLERANCES.rank_rtol`` (theory never imports solvers; a test
pins the two equal)."""


def _check_depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1; got {depth!r}.")
    return depth


def saxe_mode_ode(depth: int = 2) -> sp.Eq:
    """The mode-strength ODE :math:`\\dot u = L u^{2-2/L}(s - u)` (Saxe et al. 2014)."""
    L = _check_depth(depth)
    u = sp.Function("u")
    return sp.Eq(u(T).diff(T), L * u(T) ** (2 - sp.Rational(2, L)) * (S - u(T)))


@cache
def saxe_mode_solution() -> sp.Expr:
    """:math:`u(t)` for depth 2 from ``sympy.dsolve`` with :math:`u(0) = u_0`, simplified.

    Equals :math:`s e^{2st}/(e^{2st} - 1 + s/u_0)` (Saxe et al. 2014, eq. (7)).
    """
    u = sp.Function("u")
    sol = sp.dsolve(saxe_mode_ode(2), u(T), ics={u(0): U0})
    return sp.simplify(sol.rhs)


@cache
def _omega_antiderivative(L: int) -> tuple[sp.Expr, sp.Symbol]:
    """An antiderivative of :math:`1/(\\omega^{L-1}(1 - \\omega^L))` by partial fractions."""
    w = sp.Symbol("omega")
    parts = sp.apart(1 / (w ** (L - 1) * (1 - w**L)), w, full=True).doit()
    terms = sp.Add.make_args(parts)
    F = sp.Add(*(sp.integrate(term, w) for term in terms))
    return F, w


@cache
def saxe_time_integral(depth: int) -> sp.Expr:
    """:math:`t(u)`: time for a depth-``L`` mode to go from :math:`u_0` to :math:`u` (sympy).

    .. math:: t(u) = s^{2/L-2}\\,[F(w) - F(w_0)], \\quad w = (u/s)^{1/L},

    with :math:`F` the partial-fraction antiderivative of
    :math:`1/(\\omega^{L-1}(1-\\omega^L))` (complex logarithms; the difference is real).
    """
    L = _check_depth(depth)
    if L == 1:
        # u' = (s - u): t = log((s - u0)/(s - u))
        return sp.log((S - U0) / (S - U))
    F, w = _omega_antiderivative(L)
    w1 = (U / S) ** sp.Rational(1, L)
    w0 = (U0 / S) ** sp.Rational(1, L)
    return S ** (sp.Rational(2, L) - 2) * (F.subs(w, w1) - F.subs(w, w0))


@cache
def _antiderivative_numeric(L: int):
    F, w = _omega_antiderivative(L)
    return sp.lambdify(w, F, modules="numpy")


def saxe_mode_time(u, s, u0, *, depth: int = 2) -> np.ndarray:
    """Numeric :math:`t(u)` of the depth-``L`` mode dynamics (inverse of
    :func:`saxe_mode_strength`).

    Parameters
    ----------
    u, s, u0 : array_like (broadcast)
        Target strength, singular value :math:`s > 0`, initial strength :math:`u_0 > 0`;
        ``u`` must lie between ``u0`` and ``s`` (strictly before ``s``).
    """
    L = _check_depth(depth)
    u, s, u0 = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (u, s, u0)))
    _check_mode_args(s, u0)
    if L == 1:
        return np.log((s - u0) / (s - u))
    F = _antiderivative_numeric(L)
    w = (u / s) ** (1.0 / L) + 0j
    w0 = (u0 / s) ** (1.0 / L) + 0j
    return s ** (2.0 / L - 2.0) * np.real(F(w) - F(w0))


def _check_mode_args(s, u0):
    if not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError(f"s (the singular value of Sigma_yx) must be finite and > 0; got {s}.")
    if not (np.all(np.isfinite(u0)) and np.all(u0 > 0)):
        raise ValueError(
            f"u0 (the initial mode strength) must be finite and > 0; got {u0}. "
            "A zero mode stays zero."
        )


def saxe_mode_strength(t, s, u0, *, depth: int = 2) -> np.ndarray:
    """Mode strength :math:`u(t)` of a depth-``L`` linear net (Saxe et al. 2014), in numpy.

    Depth 2: the ``dsolve`` solution in the overflow-free form
    :math:`u = s / (1 - e^{-2st}(1 - s/u_0))`. Depth :math:`L \\ge 3`: bisection on the exact
    :math:`t(u)` of :func:`saxe_mode_time` (60 halvings of the bracket between ``u0`` and ``s``
    in :math:`w = (u/s)^{1/L}`, then converged to rounding). Depth 1: :math:`s + (u_0 - s)e^{-t}`.

    Parameters
    ----------
    t : array_like
        Times :math:`\\ge 0`.
    s, u0 : float or array_like
        Singular value and initial strength (both > 0); broadcast with ``t``.
    depth : int, default 2

    Returns
    -------
    ndarray
        :math:`u(t)`, broadcast shape of the inputs.
    """
    L = _check_depth(depth)
    t, s, u0 = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (t, s, u0)))
    _check_mode_args(s, u0)
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("t must be finite and >= 0.")
    if L == 1:
        return s + (u0 - s) * np.exp(-t)
    if L == 2:
        return s / (1.0 - np.exp(-2.0 * s * t) * (1.0 - s / u0))
    w0 = (u0 / s) ** (1.0 / L)
    lo = np.minimum(w0, 1.0).copy()
    hi = np.maximum(w0, 1.0).copy()
    growing = w0 < 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        tm = saxe_mode_time(s * mid**L, s, u0, depth=L)
        # t(w) increases from w0 towards 1 on both sides
        move_lo = np.where(growing, tm < t, tm > t)
        lo = np.where(move_lo, mid, lo)
        hi = np.where(move_lo, hi, mid)
        if np.all(hi - lo <= 4 * np.finfo(float).eps * np.maximum(hi, 1.0)):
            break
    w = 0.5 * (lo + hi)
    return np.where(w0 == 1.0, s, s * w**L)


# ---------------------------------------------------------------------------------------------
def psd_power(M, p: float) -> np.ndarray:
    """:math:`M^p` for a symmetric positive semidefinite ``M`` (eigendecomposition).

    Negative eigenvalues from rounding (:math:`\\ge -10^{-12}\\,\\|M\\|`) are clipped to zero;
    ``p = 0`` gives the identity (the convention :math:`0^0 = 1` used by Arora et al.).

    Eigenvalues at or below the rank tolerance :math:`n\\,\\varepsilon\\,\\lambda_{\\max}`
    (``n`` the size of ``M``, :math:`\\varepsilon` the float64 machine epsilon: the rounding
    level of ``eigh``) are treated as exact zeros, so that they stay zero in fractional powers.
    Without this, a rounding-level eigenvalue of :math:`10^{-17}` of a rank-deficient :math:`W^T W`
    raised to the power 1/3 becomes :math:`2\\cdot 10^{-6}` (issue 13, item 3).
    """
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"M must be a square matrix; got shape {M.shape}.")
    if p == 0:
        return np.eye(M.shape[0])
    Ms = 0.5 * (M + M.T)
    lam, V = np.linalg.eigh(Ms)
    scale = max(float(np.abs(lam).max(initial=0.0)), 1e-300)
    if lam.min(initial=0.0) < -1e-12 * scale:
        raise ValueError(
            f"M is not positive semidefinite (smallest eigenvalue {lam.min():.3e}); "
            "psd_power needs W W^T or W^T W."
        )
    lam = np.clip(lam, 0.0, None)
    lam[lam <= M.shape[0] * np.finfo(np.float64).eps * scale] = 0.0   # rank tolerance
    return (V * lam**p) @ V.T


def arora_end_to_end_expression(depth: int, k: int, d: int) -> sp.MatrixExpr:
    """The Arora-Cohen-Hazan end-to-end right-hand side as a sympy matrix expression.

    .. math:: \\dot W = -\\sum_{j=1}^{L} (W W^T)^{\\frac{j-1}{L}}\\, G\\, (W^T W)^{\\frac{L-j}{L}}

    in the symbols ``W`` and ``G`` (both ``(k, d)``); for reports (``sympy.latex``). Arora,
    Cohen, Hazan (2018), Thm. 1; numeric twin :func:`arora_end_to_end_rhs`.
    """
    L = _check_depth(depth)
    W = sp.MatrixSymbol("W", k, d)
    G = sp.MatrixSymbol("G", k, d)
    terms = []
    for j in range(1, L + 1):
        left, right = sp.Rational(j - 1, L), sp.Rational(L - j, L)
        term = G
        if left != 0:
            term = sp.MatPow(W * W.T, left) * term
        if right != 0:
            term = term * sp.MatPow(W.T * W, right)
        terms.append(term)
    return -sp.MatAdd(*terms) if len(terms) > 1 else -terms[0]


def arora_end_to_end_rhs(W, G, *, depth: int) -> np.ndarray:
    """End-to-end dynamics of a balanced depth-``L`` linear net (Arora, Cohen, Hazan 2018, Thm. 1).

    .. math:: \\dot W = -\\sum_{j=1}^{L} (W W^T)^{\\frac{j-1}{L}}\\, G\\, (W^T W)^{\\frac{L-j}{L}}

    Exact for gradient flow from a balanced init (:math:`D_l(0) = 0`); ``depth = 1`` is plain
    gradient flow :math:`\\dot W = -G`.

    Parameters
    ----------
    W : array_like of shape (k, d)
        End-to-end map :math:`W_L \\cdots W_1`.
    G : array_like of shape (k, d)
        Loss gradient :math:`\\partial\\mathcal L/\\partial W`.
    depth : int

    Returns
    -------
    ndarray of shape (k, d)
    """
    L = _check_depth(depth)
    W = np.asarray(W, dtype=np.float64)
    G = np.asarray(G, dtype=np.float64)
    if W.ndim != 2 or G.shape != W.shape:
        raise ValueError(
            f"W and G must be matrices of the same shape (k, d); got {W.shape}, {G.shape}."
        )
    WWt, WtW = W @ W.T, W.T @ W
    out = np.zeros_like(W)
    for j in range(1, L + 1):
        out -= psd_power(WWt, (j - 1) / L) @ G @ psd_power(WtW, (L - j) / L)
    return out


def gunasekar_projection(X, y, w0=None, *, rank_rtol: float = RANK_RTOL) -> np.ndarray:
    """Limit of gradient flow on least squares from ``w0``: :math:`w_0 + X^+(y - X w_0)`.

    Gunasekar, Lee, Soudry, Srebro (2018), §2: the iterates stay in :math:`w_0 + \\mathrm{row}(X)`,
    so the interpolant reached is the Euclidean projection of :math:`w_0` onto
    :math:`\\{w : Xw = y\\}` (exact, for consistent systems).

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,)
    w0 : array_like of shape (d,), optional
        Initialisation (default zero: the minimum-norm interpolant).
    rank_rtol : float
        Singular values below ``rank_rtol * s_max`` count as zero.

    Returns
    -------
    ndarray of shape (d,)
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(
            f"X must be a finite (n, d) matrix, one example per row; got shape {X.shape}."
        )
    n, d = X.shape
    if y.shape != (n,) or not np.all(np.isfinite(y)):
        raise ValueError(
            f"y must be finite with shape ({n},) (one target per row of X); got {y.shape}."
        )
    w0 = np.zeros(d) if w0 is None else np.asarray(w0, dtype=np.float64)
    if w0.shape != (d,):
        raise ValueError(f"w0 must have shape ({d},); got {w0.shape}.")
    Xp = np.linalg.pinv(X, rcond=rank_rtol)
    return w0 + Xp @ (y - X @ w0)
