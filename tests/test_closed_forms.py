"""Tests for theory.closed_forms: Saxe mode dynamics (sympy and numeric, against the ODE, a
numerical integration and the compiled deep-linear flow), Arora-Cohen-Hazan end-to-end dynamics
against the compiled flow at balanced points, the Gunasekar projection against an integrated
least-squares flow."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from solvers.tolerances import TOLERANCES
from theory.symbolic import (
    compile_flow,
    deep_linear_net,
    derive_gradient_flow,
    linear_chain,
    linear_model,
)
from theory.symbolic._closed_forms import (
    RANK_RTOL,
    U0,
    S,
    T,
    U,
    arora_end_to_end_expression,
    arora_end_to_end_rhs,
    gunasekar_projection,
    psd_power,
    saxe_mode_ode,
    saxe_mode_solution,
    saxe_mode_strength,
    saxe_mode_time,
    saxe_time_integral,
)

# Integrator tolerances and the agreement required between an integrated trajectory and an
# exact closed form: the DOP853 global error at rtol 1e-12 stays below ~1e-10 here.
ODE_RTOL = 1e-12
ODE_ATOL = 1e-14
TRAJ_RTOL = 1e-8
TRAJ_ATOL = 1e-10
# Two float64 evaluations of exactly equal quantities (eigendecompositions, products of O(1)
# matrices): rounding only.
EXACT_RTOL = 1e-10
EXACT_ATOL = 1e-12


def test_dsolve_solution_is_saxe_formula_and_solves_the_ode():
    u = saxe_mode_solution()
    ref = S * sp.exp(2 * S * T) / (sp.exp(2 * S * T) - 1 + S / U0)  # Saxe et al. 2014, eq. (7)
    assert sp.simplify(u - ref) == 0
    assert sp.simplify(sp.diff(u, T) - 2 * u * (S - u)) == 0
    assert sp.simplify(u.subs(T, 0) - U0) == 0
    ode = saxe_mode_ode(2)
    assert sp.simplify(ode.rhs.subs(ode.lhs.args[0], u) - sp.diff(u, T)) == 0


def test_numeric_depth2_equals_sympy_solution_including_overflow_regime():
    f = sp.lambdify((T, S, U0), saxe_mode_solution(), "mpmath")
    for t, s, u0 in [(0.3, 1.2, 0.01), (2.0, 0.5, 3.0), (40.0, 2.0, 1e-6)]:
        assert saxe_mode_strength(t, s, u0) == pytest.approx(float(f(t, s, u0)), rel=1e-13)
    # t = 1e4: e^{2st} overflows float64; the stable form returns s
    assert saxe_mode_strength(1e4, 2.0, 1e-3) == 2.0


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_time_integral_differentiates_to_the_ode(depth):
    # dt/du = 1/(L u^{2-2/L}(s - u)): the separable integral of docs/theory.md §4, at sample points
    t_of_u = saxe_time_integral(depth)
    lhs = sp.diff(t_of_u, U)
    rhs = 1 / (depth * U ** (2 - sp.Rational(2, depth)) * (S - U))
    for u, s, u0 in [(0.3, 1.0, 0.1), (0.05, 2.0, 0.01)]:
        vals = {U: u, S: s, U0: u0}
        a = complex(lhs.subs(vals).evalf(30))
        b = float(rhs.subs(vals).evalf(30))
        # 30-digit evaluation, compared in float64: a few ulps
        assert a.real == pytest.approx(b, rel=1e-14, abs=0) and abs(a.imag) < 1e-20
    assert abs(complex(t_of_u.subs({U: 0.1, S: 1.0, U0: 0.1}).evalf(30))) < 1e-14  # t(u0) = 0


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("u0", [0.01, 3.0])
def test_mode_strength_matches_integrated_ode(depth, u0):
    s = 1.7
    ts = np.array([0.0, 0.3, 1.0, 3.0, 8.0])
    u = saxe_mode_strength(ts, s, u0, depth=depth)
    sol = solve_ivp(lambda t, x: depth * x ** (2 - 2 / depth) * (s - x), (0, ts[-1]), [u0],
                    t_eval=ts, method="DOP853", rtol=ODE_RTOL, atol=ODE_ATOL)
    np.testing.assert_allclose(u, sol.y[0], rtol=TRAJ_RTOL, atol=TRAJ_ATOL)
    # limits: t = 0 gives u0 exactly; t -> infinity gives s
    assert u[0] == pytest.approx(u0, rel=1e-14)
    assert saxe_mode_strength(1e3, s, u0, depth=depth) == pytest.approx(s, rel=1e-12)
    # saxe_mode_time inverts saxe_mode_strength (before saturation, where t(u) is well
    # conditioned: near u = s, dt/du blows up and t is determined only to ~eps / (s - u))
    if depth > 1:
        np.testing.assert_allclose(saxe_mode_time(u[1:3], s, u0, depth=depth), ts[1:3],
                                   rtol=1e-9)


@pytest.mark.parametrize("depth", [2, 3])
def test_compiled_deep_linear_flow_follows_saxe(depth, rng):
    # Whitened inputs (X^T X / n = I), targets Y = X A^T with A = s1 e1 e1^T + s2 e2 e2^T,
    # balanced init aligned with the modes: W_l = diag(c) with c_j = u0_j^{1/L}. Then each mode
    # strength u_j = (W_L...W_1)_{jj} follows u' = L u^{2-2/L}(s_j - u) (Saxe et al. 2014).
    n, d = 8, 2
    Q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    X = np.sqrt(n) * Q
    s_vals, u0 = np.array([2.0, 0.7]), np.array([0.05, 0.02])
    Y = X @ np.diag(s_vals).T
    m = deep_linear_net([d] * (depth + 1))
    f = compile_flow(derive_gradient_flow(m, "squared"), jacobian=False).bind(X=X, Y=Y)
    y0 = f.pack({b: np.diag(u0 ** (1 / depth)) for b in m.blocks})
    ts = np.array([0.5, 2.0, 6.0])
    sol = solve_ivp(f, (0, ts[-1]), y0, t_eval=ts, method="DOP853", rtol=ODE_RTOL, atol=ODE_ATOL)
    for k, t in enumerate(ts):
        Ws = list(f.unpack(sol.y[:, k]).values())
        E = np.linalg.multi_dot(Ws[::-1]) if depth > 1 else Ws[0]
        expected = saxe_mode_strength(t, s_vals, u0, depth=depth)
        np.testing.assert_allclose(np.diag(E), expected, rtol=TRAJ_RTOL, atol=TRAJ_ATOL)
        np.testing.assert_allclose(E - np.diag(np.diag(E)), 0.0, atol=TRAJ_ATOL)


def test_scalar_chain_follows_depth_L_mode_dynamics():
    # chain a3 a2 w x with x whitened (mean x^2 = 1) and y = s x: loss (1/2)(u - s)^2 with
    # u = a3 a2 w; balanced init a_l = w = u0^{1/3} gives the depth-3 mode ODE.
    X = np.array([[1.0], [-1.0]])
    s, u0 = 1.5, 0.01
    f = compile_flow(derive_gradient_flow(linear_chain(3), "squared"), jacobian=False).bind(
        X=X, Y=s * X[:, 0])
    y0 = np.full(3, u0 ** (1 / 3))
    sol = solve_ivp(f, (0, 4.0), y0, method="DOP853", rtol=ODE_RTOL, atol=ODE_ATOL)
    np.testing.assert_allclose(np.prod(sol.y[:, -1]), saxe_mode_strength(4.0, s, u0, depth=3),
                               rtol=TRAJ_RTOL)


def _balanced(depth, d, rng):
    # W = U S V^T; W_1 = R_1 S^{1/L} V^T, W_l = R_l S^{1/L} R_{l-1}^T, W_L = U S^{1/L} R_{L-1}^T
    U_, sv, Vt = np.linalg.svd(rng.standard_normal((d, d)))
    R = [np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(depth - 1)]
    root = np.diag(sv ** (1 / depth))
    lefts = R + [U_]
    rights = [Vt] + [r.T for r in R]
    return [lefts[l] @ root @ rights[l] for l in range(depth)]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_arora_end_to_end_rhs_matches_product_rule_of_compiled_flow(depth, rng):
    d, n = 3, 10
    m = deep_linear_net([d] * (depth + 1))
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    f = compile_flow(derive_gradient_flow(m, "squared"), jacobian=False).bind(X=X, Y=Y)
    Ws = _balanced(depth, d, rng)
    for l in range(depth - 1):  # D_l = 0: the ACH hypothesis holds at this point
        np.testing.assert_allclose(Ws[l + 1].T @ Ws[l + 1], Ws[l] @ Ws[l].T, atol=EXACT_ATOL)
    y = np.concatenate([W.ravel() for W in Ws])
    dW = list(f.unpack(f(0.0, y)).values())
    # d/dt (W_L ... W_1) = sum_l W_L..W_{l+1} dW_l W_{l-1}..W_1 (product rule)
    E_dot = np.zeros((d, d))
    for l in range(depth):
        left = np.eye(d)
        for W in Ws[l + 1:]:
            left = W @ left
        right = np.eye(d)
        for W in Ws[:l]:
            right = W @ right
        E_dot += left @ dW[l] @ right
    E = np.linalg.multi_dot(Ws[::-1]) if depth > 1 else Ws[0]
    G = (X @ E.T - Y).T @ X / n  # dL/dE of (1/2n)||X E^T - Y||^2
    np.testing.assert_allclose(arora_end_to_end_rhs(E, G, depth=depth), E_dot,
                               rtol=EXACT_RTOL, atol=EXACT_ATOL)


def test_arora_expression_matches_numeric_form(rng):
    # depth 1 is plain gradient flow; depth 2 evaluated through sympy's explicit matrix powers
    # at a full-rank W (sqrt of PSD by eigendecomposition in sympy) equals the numpy form
    e1 = arora_end_to_end_expression(1, 2, 3)
    assert e1 == -sp.MatrixSymbol("G", 2, 3)
    e2 = arora_end_to_end_expression(2, 2, 2)
    assert r"\frac{1}{2}" in sp.latex(e2)
    Wv = np.array([[2.0, 0.5], [0.3, 1.5]])
    Gv = np.array([[0.2, -1.0], [0.7, 0.4]])
    W, G = sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("G", 2, 2)
    val = e2.xreplace({W: sp.ImmutableMatrix(Wv), G: sp.ImmutableMatrix(Gv)}).doit()
    val = np.array(sp.N(sp.ImmutableMatrix(val), 30), dtype=float)
    np.testing.assert_allclose(val, arora_end_to_end_rhs(Wv, Gv, depth=2), rtol=EXACT_RTOL,
                               atol=EXACT_ATOL)


def test_arora_formula_fails_off_balance(rng):
    d, n, depth = 3, 10, 2
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    W1, W2 = rng.standard_normal((d, d)), rng.standard_normal((d, d))  # unbalanced
    E = W2 @ W1
    G = (X @ E.T - Y).T @ X / n
    E_dot = W2 @ (-W2.T @ G) + (-G @ W1.T) @ W1
    assert np.linalg.norm(arora_end_to_end_rhs(E, G, depth=depth) - E_dot) > 1e-2


def test_psd_power():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    half = psd_power(A, 0.5)
    np.testing.assert_allclose(half @ half, A, rtol=EXACT_RTOL)
    np.testing.assert_allclose(psd_power(np.zeros((2, 2)), 0.0), np.eye(2))
    with pytest.raises(ValueError, match="positive semidefinite"):
        psd_power(np.array([[1.0, 0.0], [0.0, -1.0]]), 0.5)


def test_gunasekar_projection_is_limit_of_least_squares_flow(rng):
    # gradient flow on (1/2n)||Xw - y||^2 from w0 stays in w0 + row(X) and interpolates
    n, d = 3, 6
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    w0 = rng.standard_normal(d)
    w_star = gunasekar_projection(X, y, w0)
    # independent characterisation: X w* = y and w* - w0 in row(X) (orthogonal to null(X))
    np.testing.assert_allclose(X @ w_star, y, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    null = np.linalg.svd(X)[2][n:]
    np.testing.assert_allclose(null @ (w_star - w0), 0.0, atol=EXACT_ATOL)
    f = compile_flow(derive_gradient_flow(linear_model(d), "squared")).bind(X=X, Y=y)
    lam_min = np.linalg.eigvalsh(X @ X.T / n).min()
    Tend = 40.0 / lam_min  # residual decays as exp(-lam_min t): e^{-40} ~ 4e-18
    sol = solve_ivp(f, (0, Tend), w0, method="LSODA", jac=f.jac, rtol=ODE_RTOL, atol=ODE_ATOL)
    np.testing.assert_allclose(sol.y[:, -1], w_star, rtol=TRAJ_RTOL, atol=TRAJ_ATOL)


def test_gunasekar_rank_tolerance_mirrors_solvers_tolerances():
    assert RANK_RTOL == TOLERANCES.rank_rtol


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="u0"):
        saxe_mode_strength(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="s \\(the singular value"):
        saxe_mode_strength(1.0, -1.0, 0.1)
    with pytest.raises(ValueError, match="depth"):
        saxe_mode_strength(1.0, 1.0, 0.1, depth=0)
    with pytest.raises(ValueError, match="t must be"):
        saxe_mode_strength(-1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        gunasekar_projection(np.ones((3, 4)), np.ones(2))
    with pytest.raises(ValueError, match="same shape"):
        arora_end_to_end_rhs(np.ones((2, 3)), np.ones((3, 2)), depth=2)


#: norm-relative agreement of two float64 evaluations of the same rank-1 formula (eigh's backward
#: error is O(n eps ||M||); n = 4 here)
RANK1_RTOL = 1e-13


@pytest.mark.parametrize("seed", range(5))
def test_psd_power_keeps_zero_eigenvalues_zero_rank_one(seed):
    # issue 13 item 3: W^T W of a scalar-output end-to-end map (widths 4 -> 3 -> 3 -> 1) has rank
    # 1; its fractional powers are exactly (w w^T)^p = ||w||^(2p - 2) w w^T. Before the rank
    # tolerance, eigenvalues ~1e-17 raised to 1/3 gave errors ~1e-6 relative.
    rng = np.random.default_rng(seed)
    Ws = [rng.standard_normal((3, 4)), rng.standard_normal((3, 3)), rng.standard_normal((1, 3))]
    W = Ws[2] @ Ws[1] @ Ws[0]
    w = W[0]
    n2 = float(w @ w)
    for p in (1 / 3, 2 / 3, 0.5):
        exact = n2 ** (p - 1) * np.outer(w, w)
        got = psd_power(W.T @ W, p)
        assert np.linalg.norm(got - exact) <= RANK1_RTOL * np.linalg.norm(exact), p
    # Arora et al.'s end-to-end rhs, depth 3, against the rank-1 closed form
    G = rng.standard_normal((1, 4))
    L = 3
    exact = -sum(n2 ** ((j - 1) / L) * (G @ (n2 ** ((L - j) / L - 1) * np.outer(w, w))
                                        if j < L else G) for j in range(1, L + 1))
    got = arora_end_to_end_rhs(W, G, depth=L)
    assert np.linalg.norm(got - exact) <= RANK1_RTOL * np.linalg.norm(exact)
