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

__all__ = ["KrylovBDF", "KRYLOV_RTOL", "KRYLOV_RESTART", "KRYLOV_MAXITER"]

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
        jac, c = scaled.jac, scaled.c
        return lambda v: v - c * jac.matvec(v)


def gmres(matvec, b, *, rtol, restart, maxiter, count=None):
    """Restarted GMRES (Saad & Schultz 1986) for ``A x = b`` with ``A`` given by ``matvec``.

    Arnoldi with modified Gram–Schmidt (re-orthogonalised once), the small least-squares problem
    solved by ``numpy.linalg.lstsq`` on the (k+1) x k Hessenberg matrix. Stops when
    ``||b - A x|| <= rtol * ||b||`` or after ``maxiter`` cycles of ``restart`` iterations, and
    returns the last iterate (the caller judges it). ``count()`` is called once per product.
    """
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
    are ignored (the Jacobian enters only through directional derivatives of ``fun``). The
    counters ``nfev`` (including the directional derivatives), ``njev`` (linearisation points)
    and ``nlu`` (Newton matrices set up) keep scipy's meaning; ``n_krylov`` counts GMRES
    iterations (each one right-hand-side evaluation).
    """

    def __init__(self, fun, t0, y0, t_bound, **kwargs):
        kwargs.pop("jac", None)
        kwargs.pop("jac_sparsity", None)
        n = np.asarray(y0).size
        # a structurally empty sparse Jacobian makes scipy set up its sparse branch (an n-entry
        # identity, no dense n x n array); every piece is then replaced by a matrix-free one
        super().__init__(fun, t0, y0, t_bound, jac=lambda t, y: csc_matrix((n, n)), **kwargs)
        self.n_krylov = 0

        def jac(t, y):
            self.njev += 1
            return _DirectionalJacobian(self.fun, t, y)

        def lu(A):
            self.nlu += 1
            return A

        def count():
            self.n_krylov += 1

        def solve_lu(A, b):
            return gmres(A, b, rtol=KRYLOV_RTOL, restart=min(KRYLOV_RESTART, n),
                         maxiter=KRYLOV_MAXITER, count=count)

        self.njev = 0
        self.jac = jac
        self.J = jac(self.t, self.y)
        self.I = _Identity()
        self.lu = lu
        self.solve_lu = solve_lu
