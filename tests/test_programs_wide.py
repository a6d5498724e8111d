"""Tests of the overparameterized (d > n) routes of solvers.programs: the ℓ2 Gram dual
(``dual-gram``) and ℓ1/ℓ∞ column generation (``colgen-ipm``), cross-checked against the
existing primal routes on random and degenerate instances, and the shape rule that picks them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import solvers.programs._wide as wide
from solvers.programs import solve_max_margin, solve_min_norm
from solvers.tolerances import TOLERANCES

from .strategies import hyperplane_data, seeds

# Two solutions, each certified to certificate_rtol (1e-6), are compared at 10x that.
TEST_RTOL = 10 * TOLERANCES.certificate_rtol

# the independent route for each norm: the primal program, never the route under test
REFERENCE = {2.0: "nnls", 1.0: "highs", np.inf: "highs"}
WIDE = {2.0: "dual-gram", 1.0: "colgen-ipm", np.inf: "colgen-ipm"}


def _wide_separable(rng, n, d, gap=0.2):
    return hyperplane_data(rng, n, d, gap)


def _degenerate(X, kind, rng):
    n, d = X.shape
    if kind == "duplicated columns":
        return np.hstack([X, X[:, : d // 2]])
    if kind == "zero columns":
        return np.hstack([X, np.zeros((n, 3))])
    if kind == "rank-deficient":  # rank 3 < n: every row in a 3-dim subspace of R^d
        B = rng.standard_normal((3, d))
        C = rng.standard_normal((n, 3))
        return C @ B
    if kind == "duplicated rows":
        return np.vstack([X, X[:2]])
    return X


@pytest.mark.parametrize("p", [2.0, 1.0, np.inf])
@given(seed=seeds, n=st.integers(2, 8), extra=st.integers(1, 25),
       kind=st.sampled_from(["plain", "duplicated columns", "zero columns", "rank-deficient",
                             "duplicated rows"]))
def test_wide_route_matches_primal_route(p, seed, n, extra, kind):
    rng = np.random.default_rng(seed)
    X, y = _wide_separable(rng, n, n + extra)
    X = _degenerate(X, kind, rng)
    if kind == "duplicated rows":
        y = np.concatenate([y, y[:2]])
    if kind == "rank-deficient":  # labels from a hyperplane in the rows' span
        y = np.where(X @ X[0] >= 0, 1.0, -1.0)
        y[0] = 1.0
        s = X @ X[0] / np.linalg.norm(X[0])
        assume(np.min(np.abs(s)) > 0.05 * np.max(np.linalg.norm(X, axis=1)))  # clear margin
    G = y[:, None] * X
    a = solve_max_margin(X, y, norm=p, method=WIDE[p])
    b = solve_max_margin(X, y, norm=p, method=REFERENCE[p])
    assert a.solver == WIDE[p] and b.solver == REFERENCE[p]
    np.testing.assert_allclose(a.margin, b.margin, rtol=TEST_RTOL)
    # the margin is attained by a.w on the data (independent of both solvers)
    np.testing.assert_allclose(np.min(G @ a.w), 1.0, rtol=TEST_RTOL)
    if p == 2.0:  # strictly convex: the minimiser itself is unique
        np.testing.assert_allclose(a.w, b.w, rtol=0, atol=TEST_RTOL * np.linalg.norm(b.w))


def test_ties_in_linf():
    # two identical features: every split of the weight between them is optimal for l1, and for
    # l_inf both sit at the bound; column generation must still certify the unique margin.
    X = np.array([[1.0, 1.0, 0.0, 0.2], [0.5, 0.5, 1.0, -0.3], [-0.2, -0.2, 0.4, 1.0]])
    y = np.array([1.0, -1.0, 1.0])
    for p in (1.0, np.inf):
        a = solve_max_margin(X, y, norm=p, method="colgen-ipm")
        b = solve_max_margin(X, y, norm=p, method="highs")
        np.testing.assert_allclose(a.margin, b.margin, rtol=TEST_RTOL)


def test_shape_rule_is_visible():
    rng = np.random.default_rng(0)
    X, y = _wide_separable(rng, 10, 40)
    sol = solve_max_margin(X, y)
    assert sol.solver == "dual-gram"
    d = json.loads(json.dumps(sol.to_dict()))
    assert "d = 40 > n = 10" in d["route_reason"]
    Xt, yt = _wide_separable(rng, 40, 10)
    sol = solve_max_margin(Xt, yt)
    assert sol.solver == "working-set-nnls" and "n = 40 >= d = 10" in sol.route_reason
    assert solve_max_margin(X, y, norm=1).solver == "colgen-ipm"
    assert solve_max_margin(X, y, norm=np.inf).route_reason.startswith("d = 40 > n = 10, ℓ∞")
    assert "requested" in solve_max_margin(X, y, method="nnls").route_reason


def test_all_support_vectors_give_the_min_norm_interpolant_of_the_margins():
    # d >> n Gaussian data: every example is a support vector, and w = G^T (G G^T)^{-1} 1 is the
    # minimum-norm solution of G w = 1 (computed here by lstsq, independently of the solver).
    rng = np.random.default_rng(1)
    X, y = _wide_separable(rng, 20, 400)
    G = y[:, None] * X
    sol = solve_max_margin(X, y)
    assert sol.solver == "dual-gram" and sol.support.size == 20
    w_ls = np.linalg.lstsq(G, np.ones(20), rcond=None)[0]
    np.testing.assert_allclose(sol.w, w_ls, rtol=0, atol=TEST_RTOL * np.linalg.norm(w_ls))


def test_active_set_drops_inactive_examples():
    # an example far beyond the margin must get λ = 0: the active set must drop it (and the
    # Schur-complement path is the one that solves the reduced system).
    rng = np.random.default_rng(2)
    X, y = _wide_separable(rng, 12, 60)
    X[0] = 50.0 * y[0] * (y[1:, None] * X[1:]).mean(axis=0)
    sol = solve_max_margin(X, y, method="dual-gram")
    ref = solve_max_margin(X, y, method="nnls")
    assert 0 not in sol.support and sol.dual[0] == 0.0
    np.testing.assert_allclose(sol.margin, ref.margin, rtol=TEST_RTOL)


def test_schur_solve_matches_direct_solve():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((30, 50))
    K = A @ A.T
    gs = wide._GramSolver(K)
    S = np.setdiff1d(np.arange(30), [4, 17])
    z = gs.solve(S)
    direct = np.linalg.solve(K[np.ix_(S, S)], np.ones(S.size))
    np.testing.assert_allclose(z[S], direct, rtol=1e-10)
    assert z[4] == 0.0 and z[17] == 0.0


# ------------------------------------------------------------------- general p: working set
@pytest.mark.parametrize("p", [1.5, 3.0])
@given(seed=seeds, d=st.integers(2, 4))
def test_general_p_working_set_matches_the_full_conic_program(p, seed, d):
    rng = np.random.default_rng(seed)
    X, y = _wide_separable(rng, 260, d)  # n > max(4d, 200): the working set is the default
    a = solve_max_margin(X, y, norm=p)
    b = solve_max_margin(X, y, norm=p, method="cvxpy-clarabel")
    assert a.solver == "working-set-clarabel" and "working set" in a.route_reason
    np.testing.assert_allclose(a.margin, b.margin, rtol=TEST_RTOL)
    G = y[:, None] * X
    for u in rng.standard_normal((100, d)):  # no direction beats the certified margin
        assert np.min(G @ u) / np.linalg.norm(u, ord=p) <= a.margin * (1 + TEST_RTOL)


# ---------------------------------------------------- basis pursuit by column generation
@given(seed=seeds, n=st.integers(1, 6), extra=st.integers(8, 40),
       kind=st.sampled_from(["plain", "duplicated columns", "zero columns", "rank-deficient"]))
def test_basis_pursuit_colgen_matches_the_full_lp(seed, n, extra, kind):
    rng = np.random.default_rng(seed)
    X = _degenerate(rng.standard_normal((n, 2 * n + extra)), kind, rng)
    w0 = np.zeros(X.shape[1])
    w0[rng.choice(X.shape[1], size=min(2, X.shape[1]), replace=False)] = rng.standard_normal(2)
    y = X @ w0  # consistent by construction, also for rank-deficient X
    assume(np.linalg.norm(y) > 1e-3)
    a = solve_min_norm(X, y, norm=1, method="colgen-ipm")
    b = solve_min_norm(X, y, norm=1, method="highs")
    assert a.solver == "colgen-ipm" and a.certificate.verified
    np.testing.assert_allclose(a.value, b.value, rtol=TEST_RTOL)
    np.testing.assert_allclose(X @ a.w, y, rtol=0, atol=TEST_RTOL * np.linalg.norm(y))


def test_basis_pursuit_recovers_a_sparse_vector_and_is_the_default_when_wide():
    # Candès & Tao (2005): with Gaussian X (n = 60, d = 600) a 5-sparse w0 is the unique
    # minimum-l1 interpolant with overwhelming probability; the solution must be w0 itself.
    rng = np.random.default_rng(4)
    X = rng.standard_normal((60, 600))
    w0 = np.zeros(600)
    w0[[3, 70, 200, 333, 599]] = [1.0, -2.0, 0.5, 3.0, -1.0]
    sol = solve_min_norm(X, X @ w0, norm=1)
    assert sol.solver == "colgen-ipm"
    np.testing.assert_allclose(sol.w, w0, rtol=0, atol=1e-6)


# ------------------------------------------- the dense interior point and the elastic start
@given(seed=seeds, m=st.integers(1, 6), k=st.integers(1, 12), boxed=st.booleans())
def test_dense_interior_point_matches_highs(seed, m, k, boxed):
    # min c^T x s.t. A x = b, 0 <= x <= u, with A = [Ad[:, jd] * sd, units]: the optimal value
    # must equal HiGHS's (simplex, an independent method) on the same LP written out densely.
    import scipy.optimize as so

    from solvers.programs import _colgen

    rng = np.random.default_rng(seed)
    Ad = rng.standard_normal((m, k))
    jd = np.concatenate([np.arange(k), np.arange(k)])
    sd = np.concatenate([np.ones(k), -np.ones(k)])
    iu, su = np.arange(m), np.ones(m)
    c = np.concatenate([rng.random(2 * k) + 0.1, np.full(m, 5.0)])
    u = np.concatenate([np.full(2 * k, 1.0 if boxed else np.inf), np.full(m, np.inf)])
    b = Ad @ rng.uniform(-0.4, 0.4, k)  # feasible (|x| <= 0.4 < 1 on the a - b split)
    lp = _colgen._DenseLP(Ad, jd, sd, iu, su, c, u, b)
    x, y = lp.solve(tol=TOLERANCES.solver_eps, accept=TOLERANCES.solver_eps)
    A = np.hstack([Ad[:, jd] * sd, np.eye(m)[:, iu] * su])
    bounds = [(0.0, None if np.isinf(ui) else ui) for ui in u]
    ref = so.linprog(c, A_eq=A, b_eq=b, bounds=bounds, method="highs")
    assert ref.status == 0
    np.testing.assert_allclose(c @ x, ref.fun, rtol=TEST_RTOL, atol=TEST_RTOL)
    np.testing.assert_allclose(A @ x, b, rtol=0, atol=TEST_RTOL * (1 + np.abs(b).max()))
    assert x.min() >= 0 and (x <= u).all()
    # y is dual feasible for the unbounded columns (reduced costs >= 0 up to the tolerance)
    rc = c - A.T @ y
    assert rc[~np.isfinite(u)].min() >= -TEST_RTOL * (1 + np.abs(c).max())


@pytest.mark.parametrize("scale", [1.0, 1e-6])
def test_basis_pursuit_elastic_start_from_one_column(scale):
    # initial=1: the first restricted LP cannot fit y and lives on its artificials. scale=1e-6
    # makes ||ν*||_∞ ~ 1e6 above the first penalty M = 1e3, so the penalty must grow before
    # the artificials leave; without that step the route raises Infeasible.
    from solvers.programs import _colgen

    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 300)) * scale
    w0 = np.zeros(300)
    w0[[2, 50, 120]] = [1.0, -2.0, 0.5]
    y = X @ w0
    w, nu = _colgen.basis_pursuit_colgen(X, y, initial=1)
    ref = solve_min_norm(X, y, norm=1, method="highs")
    np.testing.assert_allclose(np.abs(w).sum(), ref.value, rtol=TEST_RTOL)
    np.testing.assert_allclose(X @ w, y, rtol=0, atol=TEST_RTOL * np.linalg.norm(y))
    # dual feasibility of the LP multipliers on every feature (the pricing condition)
    assert np.abs(X.T @ nu).max() <= np.abs(w).sum() * (1 + TEST_RTOL)


@pytest.mark.parametrize("p", [1.0, np.inf])
def test_margin_colgen_from_a_small_feature_set(p):
    # initial=2: the ℓ1 restricted LP needs its artificials (two features do not separate 12
    # examples), the ℓ∞ one grows F by pricing and lets pinned features leave it; both must
    # end at the full LP's margin.
    from solvers.programs import _colgen

    rng = np.random.default_rng(6)
    X, y = _wide_separable(rng, 12, 80)
    G = y[:, None] * X
    w, lam = _colgen.margin_lp_colgen(G, p, initial=2)
    ref = solve_max_margin(X, y, norm=p, method="highs")
    margin = np.min(G @ w) / np.linalg.norm(w, ord=p)
    np.testing.assert_allclose(margin, ref.margin, rtol=TEST_RTOL)
    assert lam.min() >= 0


def test_colgen_reports_non_separable_data():
    from solvers.errors import NotSeparableError

    rng = np.random.default_rng(7)
    X, y = _wide_separable(rng, 6, 40)
    X = np.vstack([X, X[0]])
    y = np.concatenate([y, [-y[0]]])  # the same point with both labels
    for p in (1.0, np.inf):
        with pytest.raises(NotSeparableError):
            solve_max_margin(X, y, norm=p, method="colgen-ipm")


def test_normal_matrix_by_blocks_matches_the_dense_product(monkeypatch):
    # the normal matrix is accumulated over column blocks: 7 columns in blocks of 2 must give
    # the Cholesky factor of Ad diag(θ') Ad^T + diag(θ'') (computed here densely)
    from solvers.programs import _colgen

    rng = np.random.default_rng(8)
    Ad = rng.standard_normal((5, 7))
    lp = _colgen._DenseLP(Ad, np.arange(7), np.ones(7), np.arange(5), np.ones(5),
                          np.ones(12), np.full(12, np.inf), np.ones(5))
    theta = rng.random(12) + 0.1
    monkeypatch.setattr(_colgen, "_BLOCK", 2)
    U = np.triu(lp._factor(theta)[0])
    N = Ad @ np.diag(theta[:7]) @ Ad.T + np.diag(theta[7:])
    np.testing.assert_allclose(U.T @ U, N, rtol=1e-10, atol=1e-10 * np.abs(N).max())


def _small_lp(seed, m=6, k=12):
    from solvers.programs import _colgen

    rng = np.random.default_rng(seed)
    Ad = rng.standard_normal((m, k))
    jd = np.concatenate([np.arange(k), np.arange(k)])
    sd = np.concatenate([np.ones(k), -np.ones(k)])
    c = np.concatenate([rng.random(2 * k) + 0.1, np.full(m, 5.0)])
    b = Ad @ rng.uniform(-0.4, 0.4, k)
    args = (Ad, jd, sd, np.arange(m), np.ones(m), c, np.full(2 * k + m, np.inf), b)
    return _colgen._DenseLP(*args), args


@given(seed=seeds)
def test_interior_point_resumed_to_a_tighter_tolerance_continues_the_same_path(seed):
    # the ℓ1 rounds stop at a loose tolerance and, when nothing prices in, resume the same LP
    # to solver_eps: the iterates are deterministic, so loose + resume must be the strict
    # solve itself (same x, same iteration count); a resume that restarted would spend the
    # loose iterations twice, one that lost the state (x, w, y, z, v) would land elsewhere.
    from solvers.programs import _colgen

    eps = TOLERANCES.solver_eps
    strict, args = _small_lp(seed)
    xs, ys = strict.solve(tol=eps, accept=eps)
    lp = _colgen._DenseLP(*args)
    lp.solve(tol=_colgen._LOOSE_RTOL, accept=_colgen._LOOSE_RTOL)
    assume(lp.iterations < strict.iterations)  # the loose stop came before the strict one
    x, y = lp.solve(tol=eps, accept=eps, resume=True)
    assert lp.iterations == strict.iterations
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_array_equal(y, ys)


def test_interior_point_stalled_in_round_off_returns_its_best_iterate_early():
    # tol = 0 is never met: the iteration runs into round-off, and must return the best
    # iterate (<= accept) _STALL iterations after it stopped improving, not after max_iter;
    # that iterate is HiGHS's optimum (an independent method) to the accept tolerance
    import scipy.optimize as so

    from solvers.programs import _colgen

    lp, (Ad, jd, sd, iu, su, c, u, b) = _small_lp(3)
    x, _ = lp.solve(tol=0.0, accept=_colgen._PRICE_RTOL, max_iter=80)
    assert lp.iterations < 80
    A = np.hstack([Ad[:, jd] * sd, np.eye(Ad.shape[0])[:, iu] * su])
    ref = so.linprog(c, A_eq=A, b_eq=b, bounds=(0, None), method="highs")
    np.testing.assert_allclose(c @ x, ref.fun, rtol=10 * _colgen._PRICE_RTOL)
