"""Tests of the column-generation route (``colgen``) of solve_min_nuclear_norm for ``d1 d2 > n``
(docs/theory.md §5.13): agreement with the CVXPY route on random and degenerate instances, exact
recovery of a planted low-rank matrix, and the shape rule that picks the route."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.errors import InconsistentSystemError
from solvers.programs import solve_min_nuclear_norm
from solvers.tolerances import TOLERANCES

from .strategies import seeds

# Two solutions, each certified to certificate_rtol (1e-6), are compared at 10x that.
TEST_RTOL = 10 * TOLERANCES.certificate_rtol


def _instance(rng, n, d1, d2, rank):
    A = rng.standard_normal((n, d1, d2))
    W0 = rng.standard_normal((d1, rank)) @ rng.standard_normal((rank, d2))
    return A, np.tensordot(A, W0, axes=2), W0


@settings(max_examples=10)
@given(seed=seeds, d1=st.integers(2, 8), d2=st.integers(2, 8), frac=st.floats(0.2, 0.9),
       rank=st.integers(1, 3),
       kind=st.sampled_from(["plain", "duplicated", "rank-deficient"]))
def test_colgen_matches_cvxpy(seed, d1, d2, frac, rank, kind):
    # The independent reference is the full conic program (Clarabel); the two values must agree
    # to the certificate tolerance. A pricing step that misses violated atoms leaves the master's
    # value below the optimum (too small a subspace is infeasible -> slacks) or its multipliers
    # dual-infeasible: either way the certificate rejects, and method="colgen" raises.
    rng = np.random.default_rng(seed)
    n = max(1, min(30, int(frac * d1 * d2)))
    A, y, _ = _instance(rng, n, d1, d2, min(rank, d1, d2))
    if kind == "duplicated":  # repeated measurements: the dual is not unique
        A, y = np.concatenate([A, A[:2]]), np.concatenate([y, y[:2]])
    elif kind == "rank-deficient":  # an extra measurement that is a combination of two others
        A = np.concatenate([A, (A[0] - 2.0 * A[-1])[None]])
        y = np.concatenate([y, [y[0] - 2.0 * y[-1]]])
    sol = solve_min_nuclear_norm(A, y, method="colgen")
    ref = solve_min_nuclear_norm(A, y, method="cvxpy-clarabel")
    assert sol.solver == "colgen" and sol.certificate.verified
    np.testing.assert_allclose(sol.value, ref.value, rtol=TEST_RTOL, atol=0)
    np.testing.assert_allclose(np.tensordot(A, sol.W, axes=2), y, rtol=0,
                               atol=TEST_RTOL * np.linalg.norm(y))


@pytest.mark.parametrize("d1, d2, rank, n", [(12, 10, 1, 80), (15, 15, 2, 150)])
def test_colgen_recovers_planted_low_rank(d1, d2, rank, n):
    # Recht, Fazel & Parrilo 2010 (SIAM Review 52(3); docs/theory.md §5.13): Gaussian sensing
    # recovers a rank-r matrix exactly by nuclear-norm minimisation once n is large enough
    # (their RIP bound is sufficient, not tight). Here n is about 3-4 times the r(d1 + d2 - r)
    # degrees of freedom: (12, 10, 1): 21 dof, n = 80; (15, 15, 2): 56 dof, n = 150.
    rng = np.random.default_rng(7)
    A, y, W0 = _instance(rng, n, d1, d2, rank)
    sol = solve_min_nuclear_norm(A, y, method="colgen")
    assert sol.solver == "colgen" and sol.certificate.verified
    err = np.linalg.norm(sol.W - W0) / np.linalg.norm(W0)
    assert err <= TEST_RTOL, err
    np.testing.assert_allclose(sol.value, np.linalg.svd(W0, compute_uv=False).sum(),
                               rtol=TEST_RTOL, atol=0)


def test_shape_rule_and_route_reason():
    rng = np.random.default_rng(3)
    A, y, _ = _instance(rng, 10, 4, 5, 1)  # d1 d2 = 20 > n = 10
    wide = solve_min_nuclear_norm(A, y)
    assert wide.solver == "cvxpy-clarabel"  # measured faster; colgen is the next route
    assert "then column generation" in wide.route_reason and "20 > n = 10" in wide.route_reason
    A, y, _ = _instance(rng, 12, 3, 3, 1)  # d1 d2 = 9 <= n = 12 (consistent: y from W0)
    tall = solve_min_nuclear_norm(A, y)
    assert tall.solver == "cvxpy-clarabel" and "9 <= n = 12" in tall.route_reason
    chosen = solve_min_nuclear_norm(A, y, method="colgen")
    assert chosen.solver == "colgen" and "chosen by the caller" in chosen.route_reason
    np.testing.assert_allclose(chosen.value, tall.value, rtol=TEST_RTOL, atol=0)
    d = json.loads(json.dumps(wide.to_dict()))
    assert d["route_reason"] == wide.route_reason and d["solver"] == "cvxpy-clarabel"


def test_inconsistent_measurements_still_raise_after_routes():
    # the least-squares consistency check now runs only when the routes fail; same error
    A = np.zeros((2, 3, 3))
    A[0, 0, 0] = A[1, 0, 0] = 1.0
    with pytest.raises(InconsistentSystemError, match="least-squares residual"):
        solve_min_nuclear_norm(A, np.array([1.0, 2.0]))


def test_large_matrices_put_column_generation_first():
    # d1 + d2 = 85 > COLGEN_FIRST_DIM: Clarabel's PSD cone of that size is the slow route; a
    # planted rank-1 matrix with n = 3 r (d1 + d2) Gaussian measurements is recovered
    from solvers.programs._nuclear_norm import COLGEN_FIRST_DIM

    rng = np.random.default_rng(3)
    d1, d2, n = 45, 40, 255
    assert d1 + d2 > COLGEN_FIRST_DIM and d1 * d2 > n
    W0 = np.outer(rng.standard_normal(d1), rng.standard_normal(d2))
    A = rng.standard_normal((n, d1, d2))
    y = np.einsum("nij,ij->n", A, W0)
    sol = solve_min_nuclear_norm(A, y)
    assert sol.solver == "colgen" and sol.certificate.verified
    assert "column generation over rank-one atoms first" in sol.route_reason
    np.testing.assert_allclose(sol.W, W0, atol=1e-5 * np.abs(W0).max())


@pytest.mark.parametrize("method", ["auto", "colgen"])
def test_a_nearly_consistent_system_is_still_called_inconsistent(method):
    # two identical measurements 1e-8 apart: least-squares residual 7e-9 (4.5e-9 of ||y||), above
    # consistency_rtol (1e-9) but within the certificate's rtol (1e-6), so column generation
    # certifies an answer; the consistency test (no longer run before the routes) must decide
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 3, 3))
    A[1] = A[0]
    y = np.array([1.0, 1.0 + 1e-8, 0.5, -0.3])
    with pytest.raises(InconsistentSystemError, match="least-squares residual"):
        solve_min_nuclear_norm(A, y, method=method)
