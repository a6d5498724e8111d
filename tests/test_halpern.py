"""Halpern-anchored gradient descent
(docs/theory.md §9) against closed forms and the tight O(1/k) bound."""

from __future__ import annotations

import json

import numpy as np
import pytest

from solvers.flows import halpern, halpern_least_squares
from solvers.programs import solve_min_norm

EXACT_RTOL = 1e-10     # float64 recurrences over ≤ 1e4 steps: rounding ~1e-13 relative
RATE_BAND = (-1.1, -0.9)  # fitted slope of log error vs log k; Halpern's rate is 1/k


def _system(rng, n=4, d=9):
    return rng.standard_normal((n, d)), rng.standard_normal(n)


def _null_projector(X):
    return np.eye(X.shape[1]) - np.linalg.pinv(X) @ X


def test_null_space_component_is_exactly_anchor_plus_error_over_k_plus_1(rng):
    # T = I − η∇𝓛 leaves the null space of X untouched, so e_k = P_N(θ_k − θ_a) obeys
    # e_{k+1} = (1 − 1/(k+2)) e_k, hence e_K = e_0 / (K + 1) exactly.
    X, y = _system(rng)
    theta0, anchor = rng.standard_normal(9), rng.standard_normal(9)
    K = 500
    with pytest.warns(UserWarning, match="max_iter"):
        res = halpern_least_squares(X, y, theta0=theta0, anchor=anchor, max_iter=K, tol=0.0)
    P = _null_projector(X)
    e0 = P @ (theta0 - anchor)
    assert res.iterations == K and res.status == "max_iter"
    np.testing.assert_allclose(P @ (res.theta - anchor), e0 / (K + 1), rtol=0,
                               atol=EXACT_RTOL * np.linalg.norm(e0))


def test_residual_obeys_lieder_bound_with_anchor_at_init(rng):
    # Lieder 2021, Thm 2.1: with θ_a = θ_0, ||θ_k − Tθ_k|| <= 2||θ_0 − θ*|| / (k + 1) for every
    # fixed point θ*; take θ* = the projection θ_0 + X⁺(y − Xθ_0).
    X, y = _system(rng)
    theta0 = 3 * rng.standard_normal(9)
    with pytest.warns(UserWarning):
        res = halpern_least_squares(X, y, theta0=theta0, anchor=theta0, max_iter=2000, tol=0.0)
    star = theta0 + np.linalg.pinv(X) @ (y - X @ theta0)
    k = np.arange(res.residuals.size)
    bound = 2 * np.linalg.norm(theta0 - star) / (k + 1)
    assert np.all(res.residuals <= bound * (1 + EXACT_RTOL))
    # the bound is tight up to a constant: late residuals are within a factor 20 of it
    assert res.residuals[-1] >= bound[-1] / 20


def test_reaches_min_norm_interpolant_from_any_init_at_rate_1_over_k(rng):
    X, y = _system(rng)
    w_mn = solve_min_norm(X, y, norm=2).w
    for scale in (0.0, 1.0, 10.0):
        theta0 = scale * rng.standard_normal(9)
        errs = []
        ks = (500, 1000, 2000, 4000)
        for K in ks:
            with pytest.warns(UserWarning):
                res = halpern_least_squares(X, y, theta0=theta0, max_iter=K, tol=0.0)
            errs.append(np.linalg.norm(res.theta - w_mn))
        slope = np.polyfit(np.log(ks), np.log(errs), 1)[0]
        assert RATE_BAND[0] <= slope <= RATE_BAND[1]
        # O(1/k) constant: the null-space part is exactly ||P_N θ0||/(k+1); in the row space the
        # anchored recursion e_{k+1} = (1−β_k)(I−ηH)e_k − β_k w* settles at e ≈ −β_k (ηH)^{-1} w*,
        # of norm <= κ ||w*|| / (k+2) with κ = λ_max/λ_min⁺ of H = XᵀX/n (η = 1/λ_max)
        ev = np.linalg.eigvalsh(X @ X.T / 4)
        kappa = ev[-1] / ev[0]
        assert ks[-1] * errs[-1] <= 2 * (np.linalg.norm(theta0) + kappa * np.linalg.norm(w_mn))


def test_generic_halpern_matches_least_squares_wrapper_and_is_permutation_invariant(rng):
    X, y = _system(rng)
    H, b = X.T @ X / 4, X.T @ y / 4
    eta = 1.0 / np.linalg.eigvalsh(H)[-1]
    theta0 = rng.standard_normal(9)
    with pytest.warns(UserWarning):
        a = halpern(lambda th: H @ th - b, theta0, step=eta, max_iter=300, tol=0.0)
    perm = rng.permutation(4)
    with pytest.warns(UserWarning):
        c = halpern_least_squares(X[perm], y[perm], theta0=theta0, max_iter=300, tol=0.0)
    np.testing.assert_allclose(a.theta, c.theta, rtol=EXACT_RTOL, atol=EXACT_RTOL)


def test_converged_status_and_to_dict(rng):
    X, y = _system(rng, n=2, d=3)
    res = halpern_least_squares(X, y, max_iter=10**6, tol=1e-3)
    assert res.status == "converged"
    assert res.residuals[-1] <= 1e-3 * (1 + np.linalg.norm(res.theta))
    d = json.loads(json.dumps(res.to_dict()))
    assert d["status"] == "converged" and len(d["theta"]) == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"step": 0.0}, "step"),
    ({"step": np.nan}, "step"),
    ({"step": 1.0, "anchor": np.zeros(2)}, "anchor"),
    ({"step": 1.0, "max_iter": 0}, "max_iter"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        halpern(lambda th: th, np.ones(3), **kwargs)


def test_too_large_step_reports_divergence():
    with pytest.raises(ValueError, match="step"):
        halpern(lambda th: 1e3 * th, np.ones(2), step=10.0, max_iter=10**4, tol=0.0)


def test_converged_means_the_anchor_projection_not_just_a_minimiser():
    # X = [[1, 0]], y = [1]: every θ = (1, t) is a minimiser (zero fixed-point residual), but the
    # Halpern limit from anchor 0 is X⁺y = (1, 0). Starting at the minimiser (1, 100), the result
    # may only be called converged once the null-space component (here θ_2) is below tolerance.
    import warnings

    import numpy as np

    from solvers.flows import halpern_least_squares

    X, y = np.array([[1.0, 0.0]]), np.array([1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = halpern_least_squares(X, y, theta0=np.array([1.0, 100.0]), max_iter=2000, tol=1e-6)
    assert res.status == "max_iter"  # θ_2 decays like 100/(k+1): not certified in 2000 steps
    np.testing.assert_allclose(res.theta[1], 100.0 / (res.iterations + 1), rtol=1e-9)
    res = halpern_least_squares(X, y, theta0=np.array([1.0, 1.0]), max_iter=100_000, tol=1e-4)
    assert res.status == "converged"  # θ_2 = 1/(k+1): certified after ~5e3 steps
    np.testing.assert_allclose(res.theta, [1.0, 0.0], rtol=0, atol=4e-4)  # 2·tol·(1+||θ||)
