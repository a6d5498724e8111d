"""Tests of solvers.programs.solve_min_nuclear_norm and sensing_operator_from_regression."""

from __future__ import annotations

import json

import numpy as np
import pytest

from solvers.errors import InconsistentSystemError, SolverError
from solvers.programs import (
    NuclearNormSolution,
    sensing_operator_from_regression,
    solve_min_nuclear_norm,
)
from solvers.tolerances import TOLERANCES

TEST_RTOL = 10 * TOLERANCES.certificate_rtol  # each solution certified to 1e-6


def test_diagonal_by_hand():
    # Measurements W11 = 1, W22 = -2 (A_0 = e1 e1^T, A_1 = e2 e2^T); W12, W21 free.
    # Upper bound: W = diag(1, -2) has ||W||_* = 3. Lower bound (weak duality with the plain
    # dual max y^T ν s.t. ||Σ ν_i A_i||_op <= 1): ν = (1, -1) gives diag(1, -1), operator norm 1,
    # and y^T ν = 1 + 2 = 3. So the optimum is 3, attained at diag(1, -2) (the only point where
    # <diag(1,-1), W> = ||W||_*, given the measurements).
    A = np.zeros((2, 2, 2))
    A[0, 0, 0] = A[1, 1, 1] = 1.0
    sol = solve_min_nuclear_norm(A, np.array([1.0, -2.0]))
    np.testing.assert_allclose(sol.value, 3.0, rtol=TEST_RTOL)
    np.testing.assert_allclose(sol.W, np.diag([1.0, -2.0]), atol=TEST_RTOL)
    # half-squared convention: ν = ||W||_* × (plain dual) = 3 × (1, -1)
    np.testing.assert_allclose(sol.dual, [3.0, -3.0], rtol=TEST_RTOL)
    # (sol.status is the constant "optimal": a failed route raises; the certificate is the check)
    assert sol.certificate.verified and sol.certificate.status == "verified"


@pytest.mark.parametrize("n, d, k", [(3, 6, 2), (4, 5, 3)])
def test_regression_form_matches_closed_form(rng, n, d, k):
    # W x_i = Y_i for all i: every Schatten norm is minimised by W = (X⁺ Y)^T (docs/theory.md §5):
    # its rows lie in the row space of X, and any other solution adds a null(X) component
    # orthogonal to it, which cannot decrease any unitarily invariant norm.
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, k))
    A, b = sensing_operator_from_regression(X, Y)
    assert A.shape == (n * k, k, d)
    sol = solve_min_nuclear_norm(A, b)
    W0 = (np.linalg.pinv(X) @ Y).T
    np.testing.assert_allclose(sol.W, W0, rtol=TEST_RTOL, atol=TEST_RTOL * np.abs(W0).max())
    np.testing.assert_allclose(X @ sol.W.T, Y, rtol=TEST_RTOL, atol=TEST_RTOL)


def test_sensing_operator_layout():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    Y = np.array([[5.0, 6.0], [7.0, 8.0]])
    A, b = sensing_operator_from_regression(X, Y)
    W = np.array([[1.0, -1.0], [0.5, 2.0]])
    # <A_m, W> for m = i k + j must equal (W x_i)_j
    np.testing.assert_allclose(np.tensordot(A, W, axes=2), (X @ W.T).ravel())
    np.testing.assert_allclose(b, Y.ravel())


def test_dual_convention_and_scaling(rng):
    A = rng.standard_normal((5, 3, 4))
    y = rng.standard_normal(5)
    sol = solve_min_nuclear_norm(A, y)
    Z = np.tensordot(sol.dual, A, axes=1)
    # half-squared convention: Z ∈ ∂(½||·||_*²)(W), so ||Z||_op = ||W||_* and <Z, W> = ||W||_*²
    np.testing.assert_allclose(np.linalg.norm(Z, 2), sol.value, rtol=TEST_RTOL)
    np.testing.assert_allclose(np.sum(Z * sol.W), sol.value**2, rtol=TEST_RTOL)
    # scaling A by c scales W by 1/c
    c = 7.0
    scaled = solve_min_nuclear_norm(c * A, y)
    np.testing.assert_allclose(scaled.value, sol.value / c, rtol=TEST_RTOL)
    # permuting the measurements changes nothing
    perm = rng.permutation(5)
    np.testing.assert_allclose(solve_min_nuclear_norm(A[perm], y[perm]).value, sol.value,
                               rtol=TEST_RTOL)


def test_to_dict_is_json(rng):
    sol = solve_min_nuclear_norm(rng.standard_normal((3, 2, 2)), rng.standard_normal(3))
    assert isinstance(sol, NuclearNormSolution)
    assert json.loads(json.dumps(sol.to_dict()))["certificate"]["verified"] is True


def test_inconsistent_raises():
    # W11 = 1 and W11 = 2: least squares W11 = 1.5, residual sqrt(0.5)
    A = np.zeros((2, 2, 2))
    A[:, 0, 0] = 1.0
    with pytest.raises(InconsistentSystemError, match="no W satisfies") as ei:
        solve_min_nuclear_norm(A, np.array([1.0, 2.0]))
    np.testing.assert_allclose(ei.value.residual, np.sqrt(0.5), rtol=1e-12)


@pytest.mark.parametrize("A, y, exc, match", [
    (np.ones((2, 2)), [1.0, 1.0], ValueError, "must be 3-D"),
    (np.ones((2, 2, 2)), [1.0], ValueError, "1 entries but A has 2"),
    (np.full((1, 2, 2), np.nan), [1.0], ValueError, "non-finite"),
])
def test_bad_inputs(A, y, exc, match):
    with pytest.raises(exc, match=match):
        solve_min_nuclear_norm(A, y)


def test_bad_regression_inputs():
    with pytest.raises(ValueError, match="Y has 3 rows but X has 2"):
        sensing_operator_from_regression(np.ones((2, 2)), np.ones((3, 1)))


def test_unverifiable_raises_solver_error(rng):
    with pytest.raises(SolverError) as ei:
        solve_min_nuclear_norm(rng.standard_normal((3, 2, 2)), rng.standard_normal(3),
                               rtol=1e-30, method="cvxpy-clarabel")
    assert ei.value.attempts[0]["solver"] == "cvxpy-clarabel"
