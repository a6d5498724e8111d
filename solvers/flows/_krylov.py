"""A matrix-free implicit integrator: scipy's variable-order BDF with a Newton–Krylov solve.

:class:`KrylovBDF` is :class:`scipy.integrate.BDF` (orders 1–5, error control, dense output,
the same step and order selection) in which the dense or sparse LU factorisation of the Newton
matrix :math:`I - cJ` is replaced by GMRES, and the Jacobian :math:`J` by the directional
derivative

.. math:: J(y)\\,v \\approx \\frac{f(y + \\varepsilon v) - f(y)}{\\varepsilon}, \\qquad
          \\varepsilon = \\sqrt{\\epsilon_{\\text{mach}}}\\,\\frac{1 + \\|y\\|}{\\|v\\|},

one extra right-hand-side evaluation per Krylov iteration (Brown & Hindmarsh 1986; Knoll &
Keyes 2004, §2.2). No P×P matrix is ever formed: memory is O(P · ``restart``). The accuracy of
the solution is that of BDF: the Newton iteration evaluates the residual with the exact
right-hand side, so an approximate :math:`J` or an inexact linear solve only slows the Newton
contraction (scipy's BDF then re-evaluates :math:`J` or halves the step), it does not enter the
local error estimate.

With ``preconditioner=`` GMRES is right-preconditioned by an approximation of
:math:`(I - cJ)^{-1}` set up at each linearisation point; :func:`layerwise_gauss_newton` is the
one for deep linear nets under the squared loss (the Gauss–Newton diagonal blocks of the
Hessian, one Kronecker product per layer; docs/theory.md §2.5). A preconditioner changes only
the number of GMRES iterations, not the accuracy (the Newton residual is exact, see above).

References
----------
P. N. Brown and A. C. Hindmarsh, "Matrix-free methods for stiff systems of ODE's", SIAM J.
Numer. Anal. 23(3), 1986. D. A. Knoll and D. E. Keyes, "Jacobian-free Newton–Krylov methods",
J. Comput. Phys. 193, 2004.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import BDF
from scipy.sparse import csc_matrix

__all__ = ["KrylovBDF", "KRYLOV_RTOL", "KRYLOV_RESTART", "KRYLOV_MAXITER",
           "layerwise_gauss_newton"]

_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))
#: Relative residual of each GMRES solve of ``(I - cJ) dy = r``. scipy's BDF accepts a Newton
#: iterate when its predicted remaining correction is below ``newton_tol`` (1e-5 of the error
#: scale at rtol 1e-10); a linear solve accurate to 1e-3 relative makes each Newton step contract
#: the error by about 1e-3, so two or three iterations suffice — a tighter solve would only cost
#: Krylov iterations (Knoll & Keyes 2004, §2.3, the "inexact Newton" forcing term).
KRYLOV_RTOL = 1e-3
#: Krylov subspace kept between GMRES restarts (memory: that many vectors of length P).
KRYLOV_RESTART = 40
#: Restart cycles per linear solve; a solve that has not converged by then returns its best
#: iterate, and the Newton iteration of BDF decides (it then shrinks the step).
KRYLOV_MAXITER = 5


class _DirectionalJacobian:
    """:math:`J(y)` as a map :math:`v \\mapsto J(y) v` by a forward difference of ``fun``."""

    def __init__(self, fun, t, y):
        self.fun, self.t, self.y = fun, t, y.copy()
        self.f = fun(t, y)
        self.scale = 1.0 + float(np.linalg.norm(y))

    def matvec(self, v):
        nv = float(np.linalg.norm(v))
        if nv == 0.0:
            return np.zeros_like(v)
        eps = _SQRT_EPS * self.scale / nv
        return (self.fun(self.t, self.y + eps * v) - self.f) / eps

    def __rmul__(self, c):
        return _Scaled(self, float(c))


class _Scaled:
    def __init__(self, jac, c):
        self.jac, self.c = jac, c


class _Identity:
    """Stands for BDF's ``self.I``: ``I - c * J`` becomes the map ``v -> v - c J v``."""

    def __sub__(self, scaled):
        return _NewtonMatrix(scaled.jac, scaled.c)


class _NewtonMatrix:
    """``I - c J`` as a map, remembering ``c`` and the linearisation for the preconditioner."""

    def __init__(self, jac, c):
        self.jac, self.c = jac, c
        self.precond = None

    def __call__(self, v):
        return v - self.c * self.jac.matvec(v)


def gmres(matvec, b, *, rtol, restart, maxiter, count=None, precond=None):
    """Restarted GMRES (Saad & Schultz 1986) for ``A x = b`` with ``A`` given by ``matvec``.

    Arnoldi with modified Gram–Schmidt (re-orthogonalised once), the small least-squares problem
    solved by ``numpy.linalg.lstsq`` on the (k+1) x k Hessenberg matrix. Stops when
    ``||b - A x|| <= rtol * ||b||`` or after ``maxiter`` cycles of ``restart`` iterations, and
    returns the last iterate (the caller judges it). ``count()`` is called once per product.
    With ``precond`` (``v -> M⁻¹ v``), GMRES runs on ``A M⁻¹ u = b`` and returns ``M⁻¹ u``
    (right preconditioning: the residual it controls is the true residual of ``A x = b``).
    """
    if precond is not None:
        u = gmres(lambda v: matvec(precond(v)), b, rtol=rtol, restart=restart,
                  maxiter=maxiter, count=count)
        return precond(u)
    x = np.zeros_like(b)
    nb = float(np.linalg.norm(b))
    if nb == 0.0:
        return x
    r = b.copy()
    for _ in range(maxiter):
        beta = float(np.linalg.norm(r))
        if beta <= rtol * nb:
            break
        V = [r / beta]
        H = np.zeros((restart + 1, restart))
        e1 = np.zeros(restart + 1)
        e1[0] = beta
        k = 0
        y = np.zeros(0)
        while k < restart:
            w = matvec(V[k])
            if count is not None:
                count()
            for _pass in range(2):
                for i in range(k + 1):
                    hik = float(V[i] @ w)
                    H[i, k] += hik
                    w -= hik * V[i]
            H[k + 1, k] = float(np.linalg.norm(w))
            k += 1
            y = np.linalg.lstsq(H[:k + 1, :k], e1[:k + 1], rcond=None)[0]
            res = float(np.linalg.norm(H[:k + 1, :k] @ y - e1[:k + 1]))
            if res <= rtol * nb or H[k, k - 1] <= 1e-14 * beta:
                break
            V.append(w / H[k, k - 1])
        x += np.column_stack(V[:k]) @ y if k else 0.0
        r = b - matvec(x)
        if count is not None:
            count()
    return x


class KrylovBDF(BDF):
    """:class:`scipy.integrate.BDF` with a Jacobian-free Newton–Krylov (GMRES) linear solve.

    Same constructor as :class:`~scipy.integrate.BDF` except that ``jac`` and ``jac_sparsity``
    are ignored (the Jacobian enters only through directional derivatives of ``fun``), and
    ``preconditioner``, optional: ``preconditioner(t, y)`` is called at each linearisation
    point and returns ``apply(c, v)`` ≈ :math:`(I - cJ(t, y))^{-1} v` (e.g.
    :func:`layerwise_gauss_newton`). The
    counters ``nfev`` (including the directional derivatives), ``njev`` (linearisation points)
    and ``nlu`` (Newton matrices set up) keep scipy's meaning; ``n_krylov`` counts GMRES
    iterations (each one right-hand-side evaluation).
    """

    def __init__(self, fun, t0, y0, t_bound, preconditioner=None, **kwargs):
        kwargs.pop("jac", None)
        kwargs.pop("jac_sparsity", None)
        n = np.asarray(y0).size
        # a structurally empty sparse Jacobian makes scipy set up its sparse branch (an n-entry
        # identity, no dense n x n array); every piece is then replaced by a matrix-free one
        super().__init__(fun, t0, y0, t_bound, jac=lambda t, y: csc_matrix((n, n)), **kwargs)
        self.n_krylov = 0

        def jac(t, y):
            self.njev += 1
            J = _DirectionalJacobian(self.fun, t, y)
            if preconditioner is not None:
                J.precond_setup = preconditioner(t, y)
            return J

        def lu(A):
            self.nlu += 1
            setup = getattr(A.jac, "precond_setup", None)
            if setup is not None:
                c = A.c
                A.precond = lambda v: setup(c, v)
            return A

        def count():
            self.n_krylov += 1

        def solve_lu(A, b):
            return gmres(A, b, rtol=KRYLOV_RTOL, restart=min(KRYLOV_RESTART, n),
                         maxiter=KRYLOV_MAXITER, count=count, precond=A.precond)

        self.njev = 0
        self.jac = jac
        self.J = jac(self.t, self.y)
        self.I = _Identity()
        self.lu = lu
        self.solve_lu = solve_lu


def layerwise_gauss_newton(X, widths, *, weight_decay: float = 0.0):
    r"""Preconditioner for the deep-linear gradient flow under the squared loss (block Jacobi).

    For :math:`f(x) = W_L\cdots W_1 x` and :math:`\mathcal L = \frac{1}{2n}\sum_i
    \|f(x_i) - y_i\|^2 + \frac{\lambda}{2}\|\theta\|^2`, the Gauss–Newton approximation of the
    diagonal Hessian block of layer :math:`l` is a Kronecker product,

    .. math::

        H_l[\Delta] = B_l^\top B_l\, \Delta\, A_l \Sigma A_l^\top + \lambda \Delta, \qquad
        A_l = W_{l-1}\cdots W_1,\ B_l = W_L\cdots W_{l+1},\ \Sigma = X^\top X / n,

    exact at an interpolating point (zero residual). With the eigendecompositions
    :math:`B_l^\top B_l = U\,\mathrm{diag}(q)\,U^\top` and
    :math:`A_l\Sigma A_l^\top = V\,\mathrm{diag}(p)\,V^\top` (two ``d × d`` ``eigh`` per layer
    per linearisation point), the block of :math:`(I - cJ)^{-1} = (I + cH)^{-1}` is applied
    exactly: :math:`\Delta \mapsto U\,[(U^\top\Delta V) / (1 + c(\lambda + q p^\top))]\,V^\top`.
    The coupling between layers is left to GMRES. Its eigenvalues :math:`q_i p_j` are the
    products of the squared singular values of the layers around :math:`W_l`, which is why they
    grow like :math:`\prod_j\|W_j\|^2` (docs/theory.md §2.5).

    Parameters
    ----------
    X : array_like of shape (n, d_0)
        The inputs of the flow (only :math:`\Sigma = X^\top X/n` is used).
    widths : sequence of int
        ``(d_0, ..., d_L)``; the flat state holds ``W_1, ..., W_L`` (shapes ``(d_l, d_{l-1})``,
        C-order), as in :func:`solvers.flows.deep_linear_flow` and the generated flow.
    weight_decay : float
        :math:`\lambda \ge 0`.

    Returns
    -------
    callable ``preconditioner(t, y) -> apply(c, v)``
        For ``integrate(..., method='BDF-Krylov', preconditioner=...)``.

    References
    ----------
    J. Martens and R. Grosse, "Optimizing neural networks with Kronecker-factored approximate
    curvature", ICML 2015 (the Kronecker-factored layer blocks of the Gauss–Newton matrix).
    """
    X = np.asarray(X, dtype=np.float64)
    widths = tuple(int(w) for w in widths)
    if X.ndim != 2 or len(widths) < 2 or widths[0] != X.shape[1] or min(widths) < 1:
        raise ValueError(f"widths must be (d_0, ..., d_L) with d_0 = X.shape[1] = "
                         f"{X.shape[1] if X.ndim == 2 else '?'}; got widths={widths} for X of "
                         f"shape {X.shape}.")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}.")
    lam = float(weight_decay)
    sigma = X.T @ X / X.shape[0]
    shapes = [(widths[l], widths[l - 1]) for l in range(1, len(widths))]
    sizes = [a * b for a, b in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    if offsets[-1] == 0:
        raise ValueError("widths give an empty state.")

    def preconditioner(t, y):
        Ws = [y[offsets[i]:offsets[i + 1]].reshape(shapes[i]) for i in range(len(shapes))]
        A = [np.eye(widths[0])]                      # A[l] = W_l ⋯ W_1 (A[0] = I)
        for W in Ws:
            A.append(W @ A[-1])
        B = [np.eye(widths[-1])]                     # B[k] = W_L ⋯ W_{L-k+1} (B[0] = I)
        for W in reversed(Ws):
            B.append(B[-1] @ W)
        factors = []
        for i in range(len(Ws)):
            a = A[i]                                 # W_{l-1} ⋯ W_1, (d_{l-1}, d_0)
            b = B[len(Ws) - 1 - i]                   # W_L ⋯ W_{l+1}, (d_L, d_l)
            p, V = np.linalg.eigh(a @ sigma @ a.T)
            q, U = np.linalg.eigh(b.T @ b)
            factors.append((U, V, np.outer(np.maximum(q, 0.0), np.maximum(p, 0.0)) + lam))

        def apply(c, v):
            out = np.empty_like(v)
            for i, (U, V, qp) in enumerate(factors):
                D = v[offsets[i]:offsets[i + 1]].reshape(shapes[i])
                out[offsets[i]:offsets[i + 1]] = (U @ ((U.T @ D @ V) / (1.0 + c * qp))
                                                  @ V.T).ravel()
            return out

        return apply

    return preconditioner
