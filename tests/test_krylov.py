"""BDF-Krylov with a preconditioner (issue 9.3): the layer-wise Gauss–Newton blocks of the deep
linear flow against an independently computed Hessian, and the preconditioned integrator against
LSODA and the matrix exponential."""

import numpy as np
import pytest
from scipy.linalg import expm

from solvers.datasets import make_whitened_regression
from solvers.flows import deep_linear_flow, integrate, layerwise_gauss_newton


def _hessian_fd(flow, y, h=1e-6):
    """-d(rhs)/dy by central differences: the Hessian of the loss (the flow is -grad)."""
    n = y.size
    H = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        H[:, j] = -(flow(0.0, y + e) - flow(0.0, y - e)) / (2 * h)
    return 0.5 * (H + H.T)


def test_gauss_newton_blocks_are_the_exact_hessian_blocks_at_an_interpolating_point():
    """At a zero-residual point the Gauss–Newton matrix is the Hessian: the preconditioner must
    invert I + c H_ll exactly on each layer block (H by finite differences, independent)."""
    widths = (3, 4, 2, 2)
    rng = np.random.default_rng(0)
    X, _ = make_whitened_regression(20, 3, 2, seed=1)
    Ws = [rng.standard_normal((widths[i + 1], widths[i])) for i in range(3)]
    Y = X @ (Ws[2] @ Ws[1] @ Ws[0]).T                     # the net interpolates Y exactly
    flow = deep_linear_flow(X, Y, widths=widths)
    y = np.concatenate([W.ravel() for W in Ws])
    H = _hessian_fd(flow, y)
    apply = layerwise_gauss_newton(X, widths)(0.0, y)
    c = 0.7
    sizes = np.cumsum([0] + [W.size for W in Ws])
    for i in range(3):
        sl = slice(sizes[i], sizes[i + 1])
        block = np.eye(sizes[i + 1] - sizes[i]) + c * H[sl, sl]
        v = np.zeros(y.size)
        v[sl] = rng.standard_normal(sizes[i + 1] - sizes[i])
        w = np.zeros(y.size)
        w[sl] = block @ v[sl]
        # finite-difference Hessian: error O(h²) ~ 1e-10 relative, well inside 1e-6
        np.testing.assert_allclose(apply(c, w)[sl], v[sl], rtol=1e-6, atol=1e-8)


def test_layerwise_gauss_newton_rejects_widths_that_do_not_match_x():
    with pytest.raises(ValueError, match="widths must be"):
        layerwise_gauss_newton(np.ones((5, 3)), (4, 2))


def test_preconditioned_bdf_krylov_matches_the_matrix_exponential_on_a_stiff_linear_flow():
    """ẏ = A y with eigenvalues down to -1e4; the preconditioner is the exact inverse of the
    diagonal part of I - cA (a Jacobi preconditioner): the result must still be that of BDF."""
    rng = np.random.default_rng(3)
    P = 40
    Q, _ = np.linalg.qr(rng.standard_normal((P, P)))
    A = -(Q * np.logspace(0, 4, P)) @ Q.T
    d = np.diag(A).copy()
    y0 = rng.standard_normal(P)
    t = np.linspace(0.0, 2.0, 5)
    traj = integrate(lambda s, y: A @ y, y0, (0.0, 2.0), method="BDF-Krylov", t_eval=t,
                     preconditioner=lambda s, y: (lambda c, v: v / (1.0 - c * d)))
    exact = np.array([expm(A * s) @ y0 for s in t])
    err = np.linalg.norm(traj.states - exact) / np.linalg.norm(exact)
    assert traj.ok and err < 1e-8, err


@pytest.mark.parametrize("log_time", [False, True])
def test_preconditioned_bdf_krylov_agrees_with_lsoda_on_a_deep_linear_flow(log_time):
    X, Y = make_whitened_regression(24, 4, 3, seed=2)
    widths = (4, 5, 5, 3)
    flow = deep_linear_flow(X, Y, widths=widths)
    y0 = 0.8 * np.random.default_rng(4).standard_normal(flow.size)
    t = np.linspace(0.0, 20.0, 11)
    a = integrate(flow, y0, (0.0, 20.0), method="BDF-Krylov", t_eval=t, log_time=log_time,
                  preconditioner=layerwise_gauss_newton(X, widths))
    b = integrate(flow, y0, (0.0, 20.0), method="LSODA", t_eval=t)
    # both at rtol 1e-10: agreement to 1e-7 leaves room for the error accumulated over ~1e3 steps
    np.testing.assert_allclose(a.states, b.states, rtol=1e-7, atol=1e-9)


def test_a_wrong_preconditioner_slows_gmres_but_not_the_answer():
    """Right preconditioning controls the true residual: a preconditioner that is no
    approximation at all (a random scaling) may cost iterations but not accuracy."""
    X, Y = make_whitened_regression(24, 4, 3, seed=2)
    flow = deep_linear_flow(X, Y, widths=(4, 5, 3))
    y0 = 0.5 * np.random.default_rng(5).standard_normal(flow.size)
    scale = np.random.default_rng(6).uniform(0.5, 2.0, flow.size)
    t = np.linspace(0.0, 5.0, 6)
    a = integrate(flow, y0, (0.0, 5.0), method="BDF-Krylov", t_eval=t,
                  preconditioner=lambda s, y: (lambda c, v: scale * v))
    b = integrate(flow, y0, (0.0, 5.0), method="LSODA", t_eval=t)
    np.testing.assert_allclose(a.states, b.states, rtol=1e-7, atol=1e-9)


def test_preconditioner_must_be_callable():
    with pytest.raises(TypeError, match="preconditioner must be callable"):
        integrate(lambda t, y: -y, [1.0], (0.0, 1.0), method="BDF-Krylov", preconditioner=3)
