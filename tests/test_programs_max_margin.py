"""Tests of solvers.programs.solve_max_margin: hand-derived answers, duality, metamorphic
properties, cross-checks against scikit-learn and scipy's linprog, and every documented error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.optimize as so
from hypothesis import given
from hypothesis import strategies as st

import solvers.programs._max_margin as mm
from solvers.errors import NotSeparableError, SolverError
from solvers.programs import MarginSolution, solve_max_margin
from solvers.tolerances import TOLERANCES

from .strategies import hyperplane_data, separable_data

# Certificates accept residuals <= TOLERANCES.certificate_rtol (1e-6, itself 1000x the solver's
# 1e-9). Independent comparisons (two solutions, each certified to 1e-6) are held to 10x that.
TEST_RTOL = 10 * TOLERANCES.certificate_rtol
TEST_ATOL = 1e-12
NORMS = [1.0, 2.0, np.inf]


def pnorm(v, p):
    return float(np.linalg.norm(v, ord=p))


def geometric_margin(G, u, p):
    """min_i g_i·u / ||u||_p, computed here without the library."""
    return float(np.min(G @ u) / pnorm(u, p))


def dual_norm_exponent(p):
    return 1.0 if np.isinf(p) else (np.inf if p == 1 else p / (p - 1))


# --------------------------------------------------------------------------- known answers
# Two examples x1 = (1, 0), y1 = +1 and x2 = (0, 1), y2 = -1, so G = [[1, 0], [0, -1]] and the
# constraints are w1 >= 1, -w2 >= 1. Every lp norm is monotone in each |w_j|, so the minimiser is
# w = (1, -1) for all p, with ||w||_1 = 2, ||w||_2 = sqrt 2, ||w||_inf = 1; margins 1/2, 1/sqrt2, 1.
# Half-squared duals: z = G^T λ = (λ1, -λ2) must lie in ∂(½||·||²)(w).
#   p = 2: z = w, so λ = (1, 1).
#   p = 1: ∂ = {z : ||z||_inf <= 2, <z, w> >= 4} gives λ1 + λ2 >= 4 with λ1, λ2 <= 2: λ = (2, 2).
#   p = inf: ∂ = {z : ||z||_1 <= 1, <z, w> >= 1} gives λ1 + λ2 = 1 (not unique).
@pytest.mark.parametrize("p, margin, dual", [
    (2.0, 1 / np.sqrt(2), [1.0, 1.0]),
    (1.0, 0.5, [2.0, 2.0]),
    (np.inf, 1.0, None),
])
def test_two_points_by_hand(p, margin, dual):
    sol = solve_max_margin(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0]), norm=p)
    np.testing.assert_allclose(sol.w, [1.0, -1.0], rtol=TEST_RTOL, atol=1e-9)
    np.testing.assert_allclose(sol.margin, margin, rtol=TEST_RTOL)
    np.testing.assert_allclose(sol.direction, np.array([1.0, -1.0]) / pnorm([1, -1], p),
                               rtol=TEST_RTOL, atol=1e-9)
    if dual is not None:
        np.testing.assert_allclose(sol.dual, dual, rtol=TEST_RTOL, atol=1e-9)
    else:
        np.testing.assert_allclose(sol.dual.sum(), 1.0, rtol=TEST_RTOL)
    assert sol.support.tolist() == [0, 1]
    # (sol.status is the constant "optimal": a failed route raises; the certificate is the check)
    assert sol.certificate.verified and sol.certificate.status == "verified"


# One example x = (1, 2), y = +1: min ||w||_p s.t. w1 + 2 w2 >= 1. By Hölder,
# <w, x> <= ||w||_p ||x||_q, so gamma_p = ||x||_q (q the conjugate), attained at
#   p = 2: w = x / ||x||² = (0.2, 0.4), gamma = sqrt 5;
#   p = 1: all weight on the largest |x_j|: w = (0, 1/2), gamma = ||x||_inf = 2;
#   p = inf: w = (t, t), 3t = 1: w = (1/3, 1/3), gamma = ||x||_1 = 3;
#   p = 3: gamma = ||x||_{3/2} = (1 + 2^{3/2})^{2/3}.
# The single multiplier maximises λ - ½ λ² ||x||_q², so λ = 1 / ||x||_q² = 1 / gamma².
@pytest.mark.parametrize("p, w, gamma", [
    (2.0, [0.2, 0.4], np.sqrt(5.0)),
    (1.0, [0.0, 0.5], 2.0),
    (np.inf, [1 / 3, 1 / 3], 3.0),
    (3.0, None, (1 + 2**1.5) ** (2 / 3)),
])
def test_single_point_hoelder(p, w, gamma):
    sol = solve_max_margin(np.array([[1.0, 2.0]]), np.array([1.0]), norm=p)
    np.testing.assert_allclose(sol.margin, gamma, rtol=TEST_RTOL)
    np.testing.assert_allclose(sol.dual, [1.0 / gamma**2], rtol=TEST_RTOL)
    if w is not None:
        np.testing.assert_allclose(sol.w, w, rtol=TEST_RTOL, atol=1e-9)


def test_support_by_hand():
    # x = (1,0), (2,0) labelled +1 and (0,1) labelled -1: w = (1, -1) as above; example 1 has
    # y<w, x> = 2 > 1, so it is not a support example and its multiplier is 0.
    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    sol = solve_max_margin(X, np.array([1.0, 1.0, -1.0]))
    assert sol.support.tolist() == [0, 2]
    np.testing.assert_allclose(sol.dual, [1.0, 0.0, 1.0], atol=1e-9)


def test_dual_convention_l2_is_half_squared(rng):
    # The pinned convention: for p = 2, w = G^T λ (multipliers of min ½||w||²).
    X, y = _random_separable(rng, 60, 4)
    sol = solve_max_margin(X, y, norm=2)
    np.testing.assert_allclose((y[:, None] * X).T @ sol.dual, sol.w, rtol=TEST_RTOL,
                               atol=TEST_ATOL)
    assert np.all(sol.dual >= 0)


# ------------------------------------------------------------------------- property tests
@given(data=separable_data(), p=st.sampled_from(NORMS))
def test_strong_duality_recomputed(data, p):
    X, y = data
    sol = solve_max_margin(X, y, norm=p)
    G = y[:, None] * X
    q = dual_norm_exponent(p)
    primal = 0.5 * pnorm(sol.w, p) ** 2
    dual = sol.dual.sum() - 0.5 * pnorm(G.T @ sol.dual, q) ** 2
    assert np.all(sol.dual >= -TEST_ATOL)
    assert np.min(G @ sol.w) >= 1 - TEST_RTOL
    np.testing.assert_allclose(primal, dual, rtol=TEST_RTOL)


@given(data=separable_data(), p=st.sampled_from(NORMS), seed=st.integers(0, 2**16))
def test_no_perturbed_direction_has_larger_margin(data, p, seed):
    X, y = data
    G = y[:, None] * X
    sol = solve_max_margin(X, y, norm=p)
    assert geometric_margin(G, sol.w, p) == pytest.approx(sol.margin, rel=TEST_RTOL)
    rng = np.random.default_rng(seed)
    for eps in (1e-1, 1e-3):
        for _ in range(20):
            u = sol.direction + eps * rng.standard_normal(X.shape[1])
            assert geometric_margin(G, u, p) <= sol.margin * (1 + TEST_RTOL)


@given(data=separable_data(), p=st.sampled_from(NORMS), seed=st.integers(0, 2**16),
       c=st.floats(0.01, 100.0))
def test_metamorphic(data, p, seed, c):
    X, y = data
    ref = solve_max_margin(X, y, norm=p)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    j = int(rng.integers(X.shape[1]))
    flip = np.ones(X.shape[1])
    flip[j] = -1.0
    dup = int(rng.integers(len(y)))
    variants = {
        "permute": (solve_max_margin(X[perm], y[perm], norm=p), 1.0, np.ones(X.shape[1])),
        "scale": (solve_max_margin(c * X, y, norm=p), 1.0 / c, np.ones(X.shape[1])),
        "flip": (solve_max_margin(X * flip, y, norm=p), 1.0, flip),
        "duplicate": (solve_max_margin(np.vstack([X, X[dup]]), np.append(y, y[dup]), norm=p),
                      1.0, np.ones(X.shape[1])),
    }
    for name, (sol, wscale, sign) in variants.items():
        np.testing.assert_allclose(sol.margin, ref.margin / wscale, rtol=TEST_RTOL, err_msg=name)
        if p == 2.0:  # the ℓ2 minimiser is unique (strictly convex objective): compare w itself
            np.testing.assert_allclose(sol.w, wscale * sign * ref.w, rtol=TEST_RTOL,
                                       atol=TEST_RTOL * pnorm(ref.w, 2), err_msg=name)
        else:  # ℓ1/ℓ∞ minimisers need not be unique: the transformed w must be optimal too
            Gt = y[:, None] * X
            np.testing.assert_allclose(geometric_margin(Gt, sign * sol.w, p),
                                       ref.margin, rtol=TEST_RTOL, err_msg=name)


@given(data=separable_data())
def test_norm_ordering(data):
    # Unit balls nest, B_1 ⊂ B_2 ⊂ B_inf ⊂ sqrt(d) B_2, and gamma_p is a max over B_p.
    X, y = data
    g1, g2, ginf = (solve_max_margin(X, y, norm=p).margin for p in (1, 2, np.inf))
    d = X.shape[1]
    slack = 1 + TEST_RTOL
    assert g1 <= g2 * slack and g2 <= ginf * slack and ginf <= np.sqrt(d) * g2 * slack


# ---------------------------------------------------------------------------- cross-checks
def _random_separable(rng, n, d, gap=0.2):
    return hyperplane_data(rng, n, d, gap)


# libsvm stops when its KKT violation is below tol = 1e-10; its w then matches to ~1e-6.
SVC_RTOL = 1e-5


def test_matches_sklearn_svc(rng):
    from sklearn.svm import SVC

    X, y = _random_separable(rng, 80, 5)
    sol = solve_max_margin(X, y, norm=2)
    # SVC always fits an intercept b. Appending the mirror image (-x_i, -y_i) of every example
    # makes the problem symmetric under (w, b) -> (w, -b), so by uniqueness b = 0 and SVC solves
    # exactly the bias-free program (the constraints of a mirrored pair coincide).
    clf = SVC(kernel="linear", C=1e10, tol=1e-10).fit(np.vstack([X, -X]), np.append(y, -y))
    assert abs(clf.intercept_[0]) <= SVC_RTOL
    np.testing.assert_allclose(sol.w, clf.coef_.ravel(), rtol=SVC_RTOL,
                               atol=SVC_RTOL * pnorm(sol.w, 2))


@pytest.mark.parametrize("p", [1.0, np.inf])
def test_matches_linprog(rng, p):
    X, y = _random_separable(rng, 120, 6)
    G = y[:, None] * X
    n, d = G.shape
    if p == 1.0:  # min 1^T (a + b) s.t. G (a - b) >= 1, a, b >= 0
        res = so.linprog(np.ones(2 * d), A_ub=-np.hstack([G, -G]), b_ub=-np.ones(n),
                         bounds=(0, None), method="highs")
    else:  # min t s.t. G w >= 1, -t <= w_j <= t
        A = np.vstack([np.hstack([-G, np.zeros((n, 1))]),
                       np.hstack([np.eye(d), -np.ones((d, 1))]),
                       np.hstack([-np.eye(d), -np.ones((d, 1))])])
        c = np.append(np.zeros(d), 1.0)
        res = so.linprog(c, A_ub=A, b_ub=np.concatenate([-np.ones(n), np.zeros(2 * d)]),
                         bounds=[(None, None)] * d + [(0, None)], method="highs")
    assert res.status == 0
    sol = solve_max_margin(X, y, norm=p)
    np.testing.assert_allclose(sol.margin, 1.0 / res.fun, rtol=TEST_RTOL)


@pytest.mark.parametrize("p", [1.0, 2.0, np.inf, 1.5, 3.0])
def test_every_route_agrees(rng, p):
    X, y = _random_separable(rng, 40, 4)
    methods = {1.0: ["highs-cg", "highs", "cvxpy-clarabel"],
               np.inf: ["highs-cg", "highs", "cvxpy-clarabel"],
               2.0: ["working-set-nnls", "nnls", "cvxpy-clarabel", "cvxpy-osqp"]}
    margins = {m: solve_max_margin(X, y, norm=p, method=m).margin
               for m in methods.get(p, ["cvxpy-clarabel"])}
    # general p: only CVXPY solves it, so check the margin against random directions too
    G = y[:, None] * X
    ref = max(margins.values())
    for m, g in margins.items():
        np.testing.assert_allclose(g, ref, rtol=TEST_RTOL, err_msg=m)
    for u in rng.standard_normal((200, X.shape[1])):
        assert geometric_margin(G, u, p) <= ref * (1 + TEST_RTOL)


def test_working_set_needs_several_rounds(rng):
    # n >> the initial working set (max(2d, 100) = 100): the route must add violators and still
    # land on the same w as one NNLS over all examples.
    X, y = _random_separable(rng, 1500, 3)
    a = solve_max_margin(X, y, method="working-set-nnls")
    b = solve_max_margin(X, y, method="nnls")
    np.testing.assert_allclose(a.w, b.w, rtol=TEST_RTOL, atol=TEST_RTOL * pnorm(b.w, 2))


def test_to_dict_is_json(rng):
    X, y = _random_separable(rng, 10, 3)
    for p in NORMS:
        sol = solve_max_margin(X, y, norm=p)
        assert isinstance(sol, MarginSolution)
        d = json.loads(json.dumps(sol.to_dict()))
        assert d["status"] == "optimal" and d["certificate"]["verified"] is True


# ------------------------------------------------------------------------- errors, fallback
def _check_farkas(exc, X, y):
    mu = exc.certificate
    assert mu is not None and np.all(mu >= 0)
    np.testing.assert_allclose(mu.sum(), 1.0, rtol=1e-12)
    resid = np.linalg.norm((y[:, None] * X).T @ mu)
    assert resid <= TOLERANCES.farkas_atol * np.max(np.linalg.norm(X, axis=1))
    np.testing.assert_allclose(exc.residual, resid, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("method", ["auto", "nnls", "working-set-nnls", "cvxpy-clarabel"])
def test_not_separable_l2(method):
    # (1, 0) and (-1, 0) both labelled +1: mu = (1/2, 1/2) gives sum mu_i y_i x_i = 0.
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    y = np.array([1.0, 1.0, -1.0])
    with pytest.raises(NotSeparableError, match="not strictly linearly separable") as ei:
        solve_max_margin(X, y, method=method)
    _check_farkas(ei.value, X, y)
    np.testing.assert_allclose(ei.value.certificate, [0.5, 0.5, 0.0], atol=1e-9)


@pytest.mark.parametrize("p", [1.0, np.inf, 3.0])
def test_not_separable_other_norms(rng, p):
    X = rng.standard_normal((30, 3))
    y = np.where(rng.random(30) < 0.5, 1.0, -1.0)
    with pytest.raises(NotSeparableError) as ei:
        solve_max_margin(X, y, norm=p)
    _check_farkas(ei.value, X, y)


def test_zero_margin_counts_as_not_separable():
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(NotSeparableError, match=r"x = 0") as ei:
        solve_max_margin(X, np.array([1.0, -1.0]))
    np.testing.assert_allclose(ei.value.certificate, [1.0, 0.0])


@pytest.mark.parametrize("X, y, exc, match", [
    ([[1.0, np.nan]], [1.0], ValueError, "non-finite"),
    ([[1.0, 0.0]], [0.0], ValueError, "only -1 and \\+1"),
    ([[1.0, 0.0], [0.0, 1.0]], [1.0], ValueError, "1 entries but X has 2 rows"),
    (np.zeros((0, 2)), np.zeros(0), ValueError, "empty"),
    ([1.0, 2.0], [1.0, 1.0], ValueError, "must be 2-D"),
    ([["a", "b"]], [1.0], TypeError, "real numeric array"),
])
def test_bad_inputs(X, y, exc, match):
    with pytest.raises(exc, match=match):
        solve_max_margin(X, y)


@pytest.mark.parametrize("kw, match", [
    ({"norm": 0.5}, "p >= 1"),
    ({"norm": "l7"}, "norm must be"),
    ({"method": "gurobi"}, "method must be one of"),
    ({"method": "nnls", "norm": 1}, "does not solve norm"),
])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        solve_max_margin([[1.0, 0.0]], [1.0], **kw)


def test_unverifiable_raises_solver_error():
    # No float64 solution meets a certificate tolerance of 1e-30: every route must be rejected.
    with pytest.raises(SolverError, match="no solver returned a verified solution") as ei:
        solve_max_margin([[1.0, 2.0], [0.5, -1.0]], [1.0, -1.0], rtol=1e-30)
    assert [a["solver"] for a in ei.value.attempts] == [
        "working-set-nnls", "nnls", "kkt-equilibrated", "cvxpy-clarabel", "cvxpy-osqp",
        "cvxpy-scs"]
    assert all("certificate failed" in a["rejected"] or "status" in a["rejected"]
               for a in ei.value.attempts)


def test_wrong_answer_is_rejected_and_next_route_used(monkeypatch, rng):
    X, y = _random_separable(rng, 30, 3)
    good = solve_max_margin(X, y)

    def corrupted(Gs):
        out = mm._route_nnls(Gs)
        return mm.RouteOutcome(1.01 * out.w, out.dual, "optimal")  # feasible, not optimal

    monkeypatch.setattr(mm, "_route_working_set_nnls", corrupted)
    sol = solve_max_margin(X, y)
    assert sol.solver == "nnls"
    assert sol.attempts[0]["solver"] == "working-set-nnls"
    assert "duality gap" in sol.attempts[0]["rejected"]
    np.testing.assert_allclose(sol.w, good.w, rtol=TEST_RTOL, atol=TEST_RTOL)
