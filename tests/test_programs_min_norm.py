"""Tests of solvers.programs.solve_min_norm: hand-derived answers, the ℓ2 null-space
characterisation, duality, metamorphic properties, a CVXPY cross-check and the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from solvers.errors import InconsistentSystemError, SolverError
from solvers.programs import MinNormSolution, solve_min_norm
from solvers.tolerances import TOLERANCES

from .strategies import underdetermined_system

TEST_RTOL = 10 * TOLERANCES.certificate_rtol  # certified to 1e-6 each; compared at 1e-5
NORMS = [1.0, 2.0, np.inf]


def pnorm(v, p):
    return float(np.linalg.norm(v, ord=p))


# One equation w1 + w2 = 2.
#   p = 2: w = X^T (X X^T)^{-1} y = (1, 1), value sqrt 2; ν solves w = X^T ν: ν = 1.
#   p = inf: |w_j| <= t and w1 + w2 = 2 force t >= 1, attained at (1, 1): value 1.
#   p = 1: |w1| + |w2| >= |w1 + w2| = 2, attained by any (s, 2 - s), 0 <= s <= 2: value 2
#          (the minimiser is not unique, so only the value is checked).
@pytest.mark.parametrize("p, value, w", [
    (2.0, np.sqrt(2.0), [1.0, 1.0]),
    (np.inf, 1.0, [1.0, 1.0]),
    (1.0, 2.0, None),
])
def test_one_equation_by_hand(p, value, w):
    sol = solve_min_norm(np.array([[1.0, 1.0]]), np.array([2.0]), norm=p)
    np.testing.assert_allclose(sol.value, value, rtol=TEST_RTOL)
    if w is not None:
        np.testing.assert_allclose(sol.w, w, rtol=TEST_RTOL)
    np.testing.assert_allclose(sol.w.sum(), 2.0, rtol=TEST_RTOL)
    # (sol.status is the constant "optimal": a failed route raises; the certificate is the check)
    assert sol.certificate.verified and sol.certificate.status == "verified"


def test_l2_is_orthogonal_to_null_space(rng):
    # The minimum-ℓ2-norm solution is the unique solution with no component in null(X).
    X = rng.standard_normal((4, 9))
    y = rng.standard_normal(4)
    sol = solve_min_norm(X, y)
    N = scipy.linalg.null_space(X)
    np.testing.assert_allclose(N.T @ sol.w, 0.0, atol=TEST_RTOL * pnorm(sol.w, 2))
    np.testing.assert_allclose(X @ sol.w, y, rtol=TEST_RTOL, atol=TEST_RTOL * pnorm(y, 2))
    # dual convention: w = X^T ν (half-squared program)
    np.testing.assert_allclose(X.T @ sol.dual, sol.w, rtol=TEST_RTOL, atol=1e-12)


def test_rank_deficient_consistent_system(rng):
    # duplicate rows: consistent, and the closed form must still be the minimum-norm solution
    X = rng.standard_normal((3, 6))
    X = np.vstack([X, X[:1]])
    y = rng.standard_normal(3)
    y = np.append(y, y[0])
    sol = solve_min_norm(X, y)
    N = scipy.linalg.null_space(X)
    np.testing.assert_allclose(N.T @ sol.w, 0.0, atol=TEST_RTOL * pnorm(sol.w, 2))


@given(data=underdetermined_system(), p=st.sampled_from(NORMS))
def test_strong_duality_recomputed(data, p):
    X, y = data
    sol = solve_min_norm(X, y, norm=p)
    q = 1.0 if np.isinf(p) else (np.inf if p == 1 else p / (p - 1))
    primal = 0.5 * pnorm(sol.w, p) ** 2
    dual = y @ sol.dual - 0.5 * pnorm(X.T @ sol.dual, q) ** 2
    np.testing.assert_allclose(primal, dual, rtol=TEST_RTOL)
    np.testing.assert_allclose(X @ sol.w, y, rtol=TEST_RTOL, atol=TEST_RTOL * pnorm(y, 2))


@given(data=underdetermined_system(), p=st.sampled_from(NORMS), c=st.floats(0.01, 100.0),
       seed=st.integers(0, 2**16))
def test_metamorphic(data, p, c, seed):
    X, y = data
    ref = solve_min_norm(X, y, norm=p).value
    perm = np.random.default_rng(seed).permutation(len(y))
    # scaling X by c scales w (and the value) by 1/c; scaling y by c scales it by c;
    # permuting the equations changes nothing
    np.testing.assert_allclose(solve_min_norm(c * X, y, norm=p).value, ref / c, rtol=TEST_RTOL)
    np.testing.assert_allclose(solve_min_norm(X, c * y, norm=p).value, ref * c, rtol=TEST_RTOL)
    np.testing.assert_allclose(solve_min_norm(X[perm], y[perm], norm=p).value, ref,
                               rtol=TEST_RTOL)


@given(data=underdetermined_system())
def test_norm_ordering(data):
    # ||w||_inf <= ||w||_2 <= ||w||_1 for every w, so the minima over {Xw = y} are ordered too.
    X, y = data
    v1, v2, vinf = (solve_min_norm(X, y, norm=p).value for p in (1, 2, np.inf))
    assert vinf <= v2 * (1 + TEST_RTOL) and v2 <= v1 * (1 + TEST_RTOL)


@pytest.mark.parametrize("p", [1.0, 2.0, np.inf, 1.5, 4.0])
def test_matches_cvxpy(rng, p):
    import cvxpy as cp

    X = rng.standard_normal((5, 12))
    y = rng.standard_normal(5)
    w = cp.Variable(12)
    cp.Problem(cp.Minimize(cp.norm(w, p)), [X @ w == y]).solve(
        solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    sol = solve_min_norm(X, y, norm=p)
    np.testing.assert_allclose(sol.value, pnorm(w.value, p), rtol=TEST_RTOL)


def test_zero_targets_give_zero():
    sol = solve_min_norm(np.ones((2, 3)), np.zeros(2))
    assert sol.solver == "trivial" and np.all(sol.w == 0)


def test_to_dict_is_json(rng):
    sol = solve_min_norm(rng.standard_normal((2, 4)), rng.standard_normal(2), norm=np.inf)
    assert isinstance(sol, MinNormSolution)
    d = json.loads(json.dumps(sol.to_dict()))
    assert d["norm"] == "inf" and d["certificate"]["verified"] is True


def test_inconsistent_system_raises():
    # w1 = 1 and w1 = 2: least squares gives w1 = 1.5 with residuals ±0.5, ||r|| = sqrt(0.5).
    X = np.array([[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(InconsistentSystemError, match="has no solution") as ei:
        solve_min_norm(X, np.array([1.0, 2.0]))
    np.testing.assert_allclose(ei.value.residual, np.sqrt(0.5), rtol=1e-12)


@pytest.mark.parametrize("X, y, kw, exc, match", [
    ([[1.0, 0.0]], [[1.0, 2.0]], {}, ValueError, "Solve one target column"),
    ([[1.0, 0.0]], [1.0, 2.0], {}, ValueError, "2 entries but X has 1 rows"),
    ([[1.0, np.inf]], [1.0], {}, ValueError, "non-finite"),
    ([[1.0, 0.0]], [1.0], {"norm": 0}, ValueError, "p >= 1"),
    ([[1.0, 0.0]], [1.0], {"method": "lstsq", "norm": 1}, ValueError, "norm=2 only"),
    ([[1.0, 0.0]], [1.0], {"method": "highs"}, ValueError, "norm=1 or 'inf' only"),
    ([[1.0, 0.0]], [1.0], {"method": "qr"}, ValueError, "method must be one of"),
])
def test_bad_inputs(X, y, kw, exc, match):
    with pytest.raises(exc, match=match):
        solve_min_norm(X, y, **kw)


def test_unverifiable_raises_solver_error(rng):
    # random data: round-off alone keeps some residual above 1e-30, so nothing may verify
    X, y = rng.standard_normal((3, 7)), rng.standard_normal(3)
    with pytest.raises(SolverError, match="no solver returned a verified solution") as ei:
        solve_min_norm(X, y, norm=1, rtol=1e-30, method="highs")
    assert ei.value.attempts[0]["solver"] == "highs"


@pytest.mark.parametrize("norm", [1, 2, np.inf])
def test_inconsistent_wide_system_raises(norm):
    # d = 6 > 2n: consistency is tested after the routes (they cannot be certified here), with
    # the same criterion and the same residual as for tall systems
    X = np.array([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    with pytest.raises(InconsistentSystemError, match="has no solution") as ei:
        solve_min_norm(X, np.array([1.0, 2.0]), norm=norm)
    np.testing.assert_allclose(ei.value.residual, np.sqrt(0.5), rtol=1e-12)


@pytest.mark.parametrize("norm", [1, np.inf])
def test_wide_consistent_system_skips_the_least_squares_test(norm, rng, monkeypatch):
    # the certified answer's own residual proves consistency; the SVD-based test is not run
    calls = []
    real = np.linalg.lstsq
    monkeypatch.setattr(np.linalg, "lstsq", lambda *a, **k: calls.append(1) or real(*a, **k))
    X = rng.standard_normal((5, 40))
    sol = solve_min_norm(X, X @ rng.standard_normal(40), norm=norm)
    assert sol.certificate.verified and calls == []
