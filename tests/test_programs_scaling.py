"""Badly scaled, huge, tiny, complex and degenerate inputs to solvers.programs (issues 14.11 and
13.5): invariances that hold exactly, errors that say what was (not) proved, and the certificate
of the trivial answer."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from solvers import MarginBelowResolutionError, MarginflowError
from solvers.errors import NotSeparableError, SolverError
from solvers.programs import solve_max_margin, solve_min_norm, solve_min_nuclear_norm
from solvers.tolerances import TOLERANCES

from .strategies import hyperplane_data, seeds

TEST_RTOL = 10 * TOLERANCES.certificate_rtol
NORMS = [2.0, 1.0, np.inf]


def _separable(seed, n=30, d=5, gap=0.3):
    return hyperplane_data(np.random.default_rng(seed), n, d, gap)


# ------------------------------------------------------------------- issue 13.5: y = 0
def test_zero_targets_have_a_true_certificate():
    X = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    for p in NORMS:
        sol = solve_min_norm(X, np.zeros(2), norm=p)
        c = sol.certificate
        assert sol.solver == "trivial" and np.all(sol.w == 0) and np.all(sol.dual == 0)
        # was primal_value = dual_value = 0.5 for w = 0 (a fabricated certificate)
        assert c.verified and c.primal_value == 0.0 and c.dual_value == 0.0
        assert c.primal_infeasibility == 0.0 and c.duality_gap == 0.0
    A = np.zeros((2, 2, 2))
    A[0, 0, 0] = A[1, 1, 1] = 1.0
    sol = solve_min_nuclear_norm(A, np.zeros(2))
    assert sol.value == 0.0 and sol.certificate.verified
    assert sol.certificate.primal_value == 0.0 and sol.certificate.dual_value == 0.0


def test_tiny_targets_are_not_mistaken_for_zero():
    # ||y|| underflows to 0 for y ~ 1e-170, but y != 0: the answer is not w = 0
    X = np.array([[1.0, 1.0]])
    sol = solve_min_norm(X, np.array([2e-170]))
    assert sol.solver != "trivial"
    np.testing.assert_allclose(sol.w, [1e-170, 1e-170], rtol=TEST_RTOL)


# ---------------------------------------------------- issue 14.11: scaling that is exact
@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("c", [2.0**-990, 1e-300, 1e-12, 1e12, 1e300])
def test_global_scaling(p, c):
    # gamma_p(cX) = c gamma_p(X): was an OverflowError in np.linalg.norm for X * 1e300
    X, y = _separable(0)
    base = solve_max_margin(X, y, norm=p)
    sol = solve_max_margin(c * X, y, norm=p)
    assert sol.certificate.verified
    np.testing.assert_allclose(sol.margin, c * base.margin, rtol=TEST_RTOL)
    np.testing.assert_allclose(sol.direction, base.direction, rtol=0, atol=TEST_RTOL)


@pytest.mark.parametrize("c", [1e-300, 1e300])
def test_min_norm_global_scaling(c):
    # w(cX, y) = w(X, y) / c: was an OverflowError for X * 1e300
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((3, 6)), rng.standard_normal(3)
    for p in NORMS:
        base = solve_min_norm(X, y, norm=p)
        sol = solve_min_norm(c * X, y, norm=p)
        np.testing.assert_allclose(sol.value * c, base.value, rtol=TEST_RTOL)


@pytest.mark.parametrize("p", NORMS)
@given(seed=seeds, k=st.integers(0, 12))
def test_scaling_a_non_support_row_up_changes_nothing(p, seed, k):
    # if y_i <w*, x_i> > 1 then y_i <w*, c x_i> > 1 for c >= 1: w* stays optimal (same KKT point)
    X, y = _separable(seed)
    base = solve_max_margin(X, y, norm=p)
    margins = (y[:, None] * X) @ base.w
    i = int(np.argmax(margins))
    assert margins[i] > 1.0 + 1e-3
    Xs = X.copy()
    Xs[i] *= 10.0**k
    sol = solve_max_margin(Xs, y, norm=p)
    np.testing.assert_allclose(sol.margin, base.margin, rtol=TEST_RTOL)


@pytest.mark.parametrize("c", [1e-6, 1e-8])
def test_l2_with_a_tiny_row_matches_the_lp_bound(c):
    # one row x c: l2 raised SolverError (c = 1e-6) or a false NotSeparableError (c = 1e-8).
    # Independent check: the l2 margin lies between the l_inf margin / sqrt(d) and the l_inf
    # margin (unit balls: B_2 ⊂ B_inf ⊂ sqrt(d) B_2), and no direction of 200 random ones beats it.
    X, y = _separable(0)
    X[0] *= c
    sol = solve_max_margin(X, y, norm=2)
    g_inf = solve_max_margin(X, y, norm=np.inf).margin
    d = X.shape[1]
    assert g_inf / np.sqrt(d) * (1 - TEST_RTOL) <= sol.margin <= g_inf * (1 + TEST_RTOL)
    G = y[:, None] * X
    np.testing.assert_allclose(np.min(G @ sol.direction), sol.margin, rtol=TEST_RTOL)
    # a second, independent algorithm (Cholesky active set on the Gram dual, not an LDP)
    ref = solve_max_margin(X, y, norm=2, method="dual-gram")
    np.testing.assert_allclose(sol.margin, ref.margin, rtol=TEST_RTOL)


def test_zero_columns_and_tiny_columns_do_not_matter_in_l2():
    # a column x 1e-12 changes the l2 margin by at most 1e-12 relative; a zero column not at all
    X, y = _separable(1)
    base = solve_max_margin(X, y)
    Xt = X.copy()
    Xt[:, 0] *= 1e-12
    drop = solve_max_margin(X[:, 1:], y)
    sol = solve_max_margin(Xt, y)
    np.testing.assert_allclose(sol.margin, drop.margin, rtol=TEST_RTOL)
    zero = solve_max_margin(np.hstack([X, np.zeros((X.shape[0], 2))]), y)
    np.testing.assert_allclose(zero.margin, base.margin, rtol=TEST_RTOL)


# ----------------------------------------- what is (not) proved: separability decisions
@pytest.mark.slow  # ~45 s: every route of the l2 and l1 chains is tried and rejected
def test_breast_cancer_is_never_called_not_separable():
    # issue 14.11: the raw data are separable (LP: min y<w, x> = 1 for some w; the l_inf
    # margin is certified below); l2 used to raise NotSeparableError "not strictly separable".
    datasets = pytest.importorskip("sklearn.datasets")
    X, t = datasets.load_breast_cancer(return_X_y=True)
    y = 2.0 * t - 1.0
    g_inf = solve_max_margin(X[::-1], y[::-1], norm=np.inf)
    assert g_inf.margin > 0 and g_inf.certificate.verified
    for p in (2.0, 1.0):
        try:
            sol = solve_max_margin(X, y, norm=p)
        except NotSeparableError:  # the false claim
            pytest.fail(f"norm={p}: separable data reported as not separable")
        except (SolverError, MarginBelowResolutionError):
            continue  # honest: not certified at this tolerance
        assert sol.certificate.verified and sol.margin <= g_inf.margin * (1 + TEST_RTOL) * 30


def _exact_gordan(G, mu):
    """Residual of sum_i mu_i g_i in exact rational arithmetic (mu rounded to Fractions)."""
    fr = [Fraction(float(m)) for m in mu]
    s = sum(fr)
    return max(abs(sum(fr[i] * Fraction(float(G[i, j])) for i in range(len(fr))) / s)
               for j in range(G.shape[1]))


def test_not_separable_is_proved_and_small_margins_are_undecided():
    # (a) x and -x with the same label: an exact Gordan certificate
    X = np.array([[1.0, 2.0], [-1.0, -2.0], [0.3, 1.0]])
    y = np.array([1.0, 1.0, -1.0])
    with pytest.raises(NotSeparableError) as ei:
        solve_max_margin(X, y)
    assert _exact_gordan(y[:, None] * X, ei.value.certificate) < 1e-15
    # (b) separable, but with angular margin 1e-9 (between farkas_proof_atol and farkas_atol):
    # neither a margin nor non-separability can be certified -> undecided, with a true bound
    eps = 1e-9
    X = np.array([[1.0, eps], [-1.0, eps], [0.0, 1.0]])
    y = np.ones(3)
    with pytest.raises(MarginBelowResolutionError, match="undecided at this tolerance") as ei:
        solve_max_margin(X, y)
    exc = ei.value
    # the true l2 margin is eps (w = (0, 1/eps) is forced by the first two constraints): the
    # reported upper bound must not be below it, and the error is not a non-separability claim
    assert exc.upper_bound >= eps * (1 - 1e-9)
    assert isinstance(exc, MarginflowError) and not isinstance(exc, NotSeparableError)
    np.testing.assert_allclose(exc.certificate.sum(), 1.0, rtol=1e-12)


# -------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("rtol", [-1e-6, float("nan"), 0.0, 1.5, float("inf")])
def test_bad_rtol(rtol):
    X, y = _separable(0, n=5, d=2)
    with pytest.raises(ValueError, match="rtol must be a relative tolerance"):
        solve_max_margin(X, y, rtol=rtol)
    with pytest.raises(ValueError, match="rtol must be a relative tolerance"):
        solve_min_norm(X, y, rtol=rtol)


def test_norm_strings():
    X, y = _separable(0, n=6, d=3)
    assert solve_max_margin(X, y, norm="2").margin == solve_max_margin(X, y, norm=2).margin
    assert solve_max_margin(X, y, norm=" 1 ").norm == 1.0
    with pytest.raises(ValueError, match="norm must satisfy p >= 1"):
        solve_max_margin(X, y, norm="nan")
    with pytest.raises(ValueError, match="norm must"):
        solve_max_margin(X, y, norm="__import__('os')")


@pytest.mark.parametrize("which", ["X", "y"])
def test_complex_input_is_refused(which):
    X, y = _separable(0, n=5, d=2)
    args = {"X": X.astype(complex), "y": y} if which == "X" else {"X": X, "y": y + 0j}
    with pytest.raises(TypeError, match=f"{which} must be real"):
        solve_max_margin(args["X"], args["y"])
    with pytest.raises(TypeError, match=f"{which} must be real"):
        solve_min_norm(args["X"], args["y"])


def test_a_row_below_the_float_range_is_undecided_not_at_x_equals_0():
    # ||(1e-170, 1e-170)||^2 underflows to 0: main reported "examples lie at x = 0", not
    # separable. The data are separable (w = (1, 1)) with l2 margin exactly ||g_3|| = sqrt2e-170
    # (u = (1, 1)/sqrt2 attains it and no margin exceeds the smallest example's norm).
    X = np.array([[1.0, 0.2], [0.1, -1.0], [1e-170, 1e-170]])
    y = np.array([1.0, -1.0, 1.0])
    with pytest.raises(MarginBelowResolutionError, match="undecided") as ei:
        solve_max_margin(X, y)
    np.testing.assert_allclose(ei.value.upper_bound, np.sqrt(2) * 1e-170, rtol=1e-12)
