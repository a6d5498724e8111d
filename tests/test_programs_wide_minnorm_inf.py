"""Tests of ℓ∞ minimum-norm interpolation by column generation (``solve_min_norm(norm="inf")``,
route ``highs-colgen``, docs/theory.md §5.12), cross-checked against the full LP (route
``highs``) on random and degenerate instances of both shapes, and the shape rule that picks it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.optimize as so
from hypothesis import assume, example, given
from hypothesis import strategies as st

import solvers.programs._minnorm_inf as minnorm_inf
from solvers.programs import solve_min_norm
from solvers.programs._min_norm import min_norm_certificate
from solvers.tolerances import TOLERANCES

from .strategies import seeds

# Two solutions, each certified to certificate_rtol (1e-6), are compared at 10x that.
TEST_RTOL = 10 * TOLERANCES.certificate_rtol

KINDS = ["plain", "duplicated columns", "zero columns", "rank-deficient", "duplicated rows",
         "ties"]


def _instance(rng, n, d, kind):
    """``(X, y)`` with ``X w = y`` consistent (``y = X w0``) for every kind."""
    X = rng.standard_normal((n, d))
    if kind == "duplicated columns":
        X = np.hstack([X, X[:, : max(1, d // 2)]])
    elif kind == "zero columns":
        X = np.hstack([X, np.zeros((n, 3))])
    elif kind == "rank-deficient":  # rank min(2, n) < n (when n > 2): rows in a 2-dim subspace
        X = rng.standard_normal((n, 2)) @ rng.standard_normal((2, d))
    elif kind == "duplicated rows":
        X = np.vstack([X, X[:2]])
    elif kind == "ties":  # integer data: many features with equal |price|, many equal LP optima
        X = rng.integers(-1, 2, size=(n, d)).astype(float)
    w0 = rng.standard_normal(X.shape[1])
    return X, X @ w0


@pytest.mark.parametrize("wide", [True, False], ids=["d>2n", "d<=2n"])
@given(seed=seeds, n=st.integers(1, 8), kind=st.sampled_from(KINDS))
@example(seed=0, n=1, kind="plain").via("one equation")
@example(seed=3, n=6, kind="ties").via("ties in ℓ∞")
def test_colgen_matches_the_full_lp(wide, seed, n, kind):
    rng = np.random.default_rng(seed)
    d = 3 * n + 10 if wide else n + 1 + seed % (n + 1)
    X, y = _instance(rng, n, d, kind)
    assume(np.linalg.norm(y) > 1e-3 and np.any(X))
    a = solve_min_norm(X, y, norm="inf", method="highs-colgen")
    b = solve_min_norm(X, y, norm="inf", method="highs")
    assert a.solver == "highs-colgen" and a.certificate.verified
    np.testing.assert_allclose(a.value, b.value, rtol=TEST_RTOL)
    # independent of both solvers: a.w interpolates and its norm is what it claims
    np.testing.assert_allclose(X @ a.w, y, rtol=0, atol=TEST_RTOL * np.linalg.norm(y))
    np.testing.assert_allclose(np.max(np.abs(a.w)), a.value, rtol=1e-12)
    # weak duality, recomputed here: y^T ν' <= ||w||_∞ for any ν' with ||X^T ν'||_1 <= 1
    nu1 = a.dual / np.abs(X.T @ a.dual).sum()
    assert y @ nu1 <= a.value * (1 + TEST_RTOL)
    np.testing.assert_allclose(y @ nu1, a.value, rtol=TEST_RTOL)
    # the default first free set (max(2n, 50) features) holds every feature at these sizes, so
    # the pricing rounds are exercised with a one-feature start, certified on the data
    w, nu = minnorm_inf.min_norm_inf_colgen(X, y, initial=1)
    assert min_norm_certificate(X, y, w, nu, np.inf).verified
    np.testing.assert_allclose(np.max(np.abs(w)), b.value, rtol=TEST_RTOL)


def test_pricing_brings_in_the_features_a_bad_start_left_out():
    # initial=1 free feature with n = 12: the first restricted LP is far from optimal (its
    # value is the sum of a handful of columns), so only the pricing rounds can reach the
    # full LP's value; stopping after one round (or pricing with the wrong sign) fails here.
    rng = np.random.default_rng(5)
    X, y = _instance(rng, 12, 200, "plain")
    w, nu = minnorm_inf.min_norm_inf_colgen(X, y, initial=1)
    b = solve_min_norm(X, y, norm="inf", method="highs")
    np.testing.assert_allclose(np.max(np.abs(w)), b.value, rtol=TEST_RTOL)
    np.testing.assert_allclose(X @ w, y, rtol=0, atol=TEST_RTOL * np.linalg.norm(y))
    # at most n coordinates strictly inside (-t, t) for a basic solution (§5.12)
    t = np.max(np.abs(w))
    assert np.sum(np.abs(w) < t * (1 - 1e-9)) <= 12


def test_never_builds_the_full_lp(monkeypatch):
    rng = np.random.default_rng(6)
    X, y = _instance(rng, 20, 2000, "plain")
    widths = []
    real = so.linprog

    def spy(c, *args, **kwargs):
        widths.append(len(c))
        return real(c, *args, **kwargs)

    monkeypatch.setattr(minnorm_inf.so, "linprog", spy)
    sol = solve_min_norm(X, y, norm="inf")
    assert sol.solver == "highs-colgen"
    assert widths and max(widths) < 2000 // 4  # the full LP has d + 1 = 2001 columns


def test_shape_rule_is_visible():
    rng = np.random.default_rng(7)
    X, y = _instance(rng, 10, 40, "plain")
    sol = solve_min_norm(X, y, norm="inf")
    assert sol.solver == "highs-colgen"
    d = json.loads(json.dumps(sol.to_dict()))
    assert d["route_reason"].startswith("d = 40 > 2n = 20: column")
    Xn, yn = _instance(rng, 10, 15, "plain")
    sol = solve_min_norm(Xn, yn, norm="inf")
    assert sol.solver == "highs" and sol.route_reason == "n = 10, d = 15: the full program"
    assert solve_min_norm(X, y, norm="inf", method="highs").route_reason == (
        "method='highs' requested")
    assert solve_min_norm(X, 0 * y, norm="inf").route_reason.startswith("y = 0")


def test_colgen_rejects_other_norms():
    with pytest.raises(ValueError, match="method='highs-colgen' solves norm='inf' only"):
        solve_min_norm(np.eye(2, 5), np.ones(2), norm=2, method="highs-colgen")


def test_scaled_data_give_the_same_certified_answer():
    # metamorphic: X -> c X scales the minimum ℓ∞ norm by 1/c (exact powers of two inside)
    rng = np.random.default_rng(8)
    X, y = _instance(rng, 15, 300, "plain")
    a = solve_min_norm(X, y, norm="inf")
    b = solve_min_norm(X * 1e200, y, norm="inf")
    assert a.solver == b.solver == "highs-colgen"
    np.testing.assert_allclose(b.value * 1e200, a.value, rtol=TEST_RTOL)
