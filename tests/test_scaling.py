"""Issue 14.11: a row or a column scaled by 10^k, k in [-12, 12], gives a certified answer (of the
scaled problem, certified on the data as given), or an error that says why nothing was certified.

Every certified answer is checked independently of marginflow's float64 arithmetic: the returned
``w`` and multipliers are converted to exact rationals (``fractions.Fraction``), and weak duality
brackets the margin, ``min_i g_i.w / ||w||_p <= γ_p <= 1 / sqrt(2 D(λ))`` with
``D(λ) = 1ᵀλ − ½||Gᵀλ||_q²`` (docs/theory.md §5.1, §5.3) — a proof, whatever code produced the
pair. The bracket must be tight to the certificate's tolerance and contain the reported margin.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from solvers.errors import PrecisionLimitError, SolverError
from solvers.programs import solve_max_margin, solve_min_norm
from solvers.tolerances import TOLERANCES

from .strategies import hyperplane_data, seeds

RTOL = TOLERANCES.certificate_rtol
KS = [0, 3, 6, 9, 12, -3, -6, -9, -12]
NORMS = [2.0, 1.0, np.inf]
LIMIT_MSG = "no solver returned a verified solution at rtol = 1e-06, and float64 resolution"


def _fr(a):
    return [Fraction(float(v)) for v in np.ravel(a)]


def _norm_sq(v, p):
    """``||v||_p²`` exactly for p in {1, 2, inf} (``v`` a list of Fractions)."""
    if p == 2.0:
        return sum(x * x for x in v)
    n = sum(abs(x) for x in v) if p == 1.0 else max(abs(x) for x in v)
    return n * n


def _dual_exp(p):
    return {2.0: 2.0, 1.0: np.inf}.get(p, 1.0)


def _check_margin_exactly(X, y, sol, p):
    """Weak-duality bracket of γ_p from ``sol.w`` and ``sol.dual`` in rational arithmetic."""
    G = y[:, None] * X
    w = _fr(sol.w)
    rows = [_fr(g) for g in G]
    m = min(sum(a * b for a, b in zip(g, w, strict=True)) for g in rows)
    assert m >= 1 - Fraction(RTOL)  # feasible to the certificate's tolerance, exactly
    lower_sq = m * m / _norm_sq(w, p)  # γ >= m / ||w||
    lam = _fr(sol.dual)
    assert min(lam) >= 0
    support = [i for i, v in enumerate(lam) if v != 0]
    z = [sum(lam[i] * rows[i][j] for i in support) for j in range(len(w))]
    D = sum(lam) - _norm_sq(z, _dual_exp(p)) / 2
    assert D > 0
    upper_sq = 1 / (2 * D)  # ½||w*||² >= D(λ), γ = 1/||w*||
    assert lower_sq <= upper_sq * (1 + Fraction(1, 10**12))  # weak duality (exact, sanity)
    assert upper_sq <= lower_sq * (1 + 6 * Fraction(RTOL))  # the pair proves γ to ~3 rtol
    g_sq = Fraction(float(sol.margin)) ** 2  # the reported margin, to the certificate's rtol
    assert lower_sq * (1 - 2 * Fraction(RTOL)) <= g_sq <= upper_sq * (1 + 2 * Fraction(RTOL))


def _scaled(X, kind, k, index=0):
    X = X.copy()
    if kind == "row":
        X[index] *= 10.0**k
    else:
        X[:, index] *= 10.0**k
    return X


# --------------------------------------------------------------------------- max margin, grid
# Main raised SolverError or a false "infeasible" for row x 1e-12 (ℓ2), row x 1e-9/1e-12 (ℓ1,
# ℓ∞), column x 1e6..1e12 (all norms); session 3 certified all of them but ℓ∞ with a column
# x 1e12 (PrecisionLimitError: the multipliers' rounding, amplified by the column's scale in
# z = Gᵀλ, moved the stationarity residual by ~1e-4). That one is now certified by refining the
# multipliers with exact residuals and choosing their float64 rounding (docs/theory.md §5.9).
@pytest.mark.parametrize("p", NORMS, ids=["l2", "l1", "linf"])
@pytest.mark.parametrize("kind", ["row", "col"])
@pytest.mark.parametrize("k", KS)
def test_max_margin_row_and_column_scaling_grid(p, kind, k):
    X, y = hyperplane_data(np.random.default_rng(0), 30, 5, 0.3)
    Xs = _scaled(X, kind, k)
    sol = solve_max_margin(Xs, y, norm=p)
    assert sol.certificate.verified and sol.status == "optimal"
    _check_margin_exactly(Xs, y, sol, p)
    if (kind, k, p) == ("col", 12, np.inf):  # PrecisionLimitError before the exact refinement
        assert sol.solver.endswith("+exact-refine")


def test_max_margin_scaling_a_row_by_k_leaves_the_answer_when_the_row_is_inactive():
    # scaling an inactive row up keeps w* (same KKT point): the grid above also checks values
    X, y = hyperplane_data(np.random.default_rng(0), 30, 5, 0.3)
    for p in NORMS:
        base = solve_max_margin(X, y, norm=p)
        i = int(np.argmax((y[:, None] * X) @ base.w))
        for k in (6, 12):
            sol = solve_max_margin(_scaled(X, "row", k, i), y, norm=p)
            np.testing.assert_allclose(sol.margin, base.margin, rtol=4 * RTOL, atol=0)


@given(seed=seeds, n=st.integers(6, 16), d=st.integers(2, 5), k=st.integers(-12, 12),
       kind=st.sampled_from(["row", "col"]), which=st.integers(0, 15))
def test_l2_any_row_or_column_scaled(seed, n, d, k, kind, which):
    X, y = hyperplane_data(np.random.default_rng(seed), n, d, 0.2)
    Xs = _scaled(X, kind, k, which % (n if kind == "row" else d))
    sol = solve_max_margin(Xs, y, norm=2)
    _check_margin_exactly(Xs, y, sol, 2.0)


@pytest.mark.parametrize("p", [1.0, np.inf], ids=["l1", "linf"])
@given(seed=seeds, n=st.integers(6, 16), d=st.integers(2, 5), k=st.integers(-12, 12),
       which=st.integers(0, 15))
def test_lp_norms_any_row_scaled(p, seed, n, d, k, which):
    X, y = hyperplane_data(np.random.default_rng(seed), n, d, 0.2)
    Xs = _scaled(X, "row", k, which % n)
    sol = solve_max_margin(Xs, y, norm=p)
    _check_margin_exactly(Xs, y, sol, p)


@pytest.mark.parametrize("p", [1.0, np.inf], ids=["l1", "linf"])
@given(seed=seeds, n=st.integers(6, 16), d=st.integers(2, 5), k=st.integers(-12, 12),
       which=st.integers(0, 4))
@example(seed=0, n=6, d=2, k=9, which=0)  # d = 2: the median of two columns hid the big one
@example(seed=2, n=8, d=2, k=9, which=0)  # PrecisionLimitError before the exact refinement
@example(seed=5, n=13, d=5, k=-9, which=0)  # HiGHS returned s = 0 here before the rescale
@example(seed=8, n=13, d=3, k=-12, which=2)  # PrecisionLimitError before the exact refinement
@settings(max_examples=50)  # the two halves of k were two tests of 25 examples each
def test_lp_norms_any_column_scaled(p, seed, n, d, k, which):
    # |k| in [9, 12]: the multipliers' float64 floor reaches rtol (a big column, or a small one
    # that carries the separation); certified since the exact refinement (docs/theory.md §5.9)
    X, y = hyperplane_data(np.random.default_rng(seed), n, d, 0.2)
    Xs = _scaled(X, "col", k, which % d)
    sol = solve_max_margin(Xs, y, norm=p)
    _check_margin_exactly(Xs, y, sol, p)


def test_linf_column_x_1e9_certified_by_exact_refinement():
    # found by hypothesis (dev profile): the route's gap 1.09e-6 is within 64x of its float64
    # floor (4.8e-7: the multipliers' rounding amplified by the column's 1e9) — PrecisionLimitError
    # before; the refined multipliers certify at rtol = 1e-6 (docs/theory.md §5.9)
    X, y = hyperplane_data(np.random.default_rng(2), 8, 2, 0.2)
    Xs = _scaled(X, "col", 9, 0)
    sol = solve_max_margin(Xs, y, norm=np.inf)
    assert sol.certificate.verified and sol.solver.endswith("+exact-refine")
    assert sol.certificate.duality_gap <= RTOL
    _check_margin_exactly(Xs, y, sol, np.inf)


@pytest.mark.parametrize("p", [1.0, np.inf], ids=["l1", "linf"])
def test_lp_norms_with_the_separating_column_scaled_down(p):
    # the margin is ~1e-9 of the unit rows: HiGHS stopped 32% short of it at its absolute
    # tolerances (dual residual 0.56, SolverError) until the margin variable was rescaled
    X, y = hyperplane_data(np.random.default_rng(22), 16, 3, 0.2)
    Xs = _scaled(X, "col", -9, 0)
    sol = solve_max_margin(Xs, y, norm=p)
    _check_margin_exactly(Xs, y, sol, p)


@pytest.mark.parametrize("p", [1.0, np.inf], ids=["l1", "linf"])
@pytest.mark.parametrize("k", [-10, -12])
def test_lp_norms_separating_column_x_1e_10_certified_by_exact_refinement(p, k):
    # the margin is ~1e-11 of the data's scale: every route's multipliers fail within 64x of the
    # float64 floor of the dual residual / gap (floors 1.2e-6..4e-4, above rtol 1e-6), which was
    # PrecisionLimitError; refined with exact residuals, then rounded on the float64 grid, they
    # certify (docs/theory.md §5.9)
    X, y = hyperplane_data(np.random.default_rng(5), 13, 5, 0.2)
    Xs = _scaled(X, "col", k, 0)
    sol = solve_max_margin(Xs, y, norm=p)
    assert sol.certificate.verified and sol.solver.endswith("+exact-refine")
    _check_margin_exactly(Xs, y, sol, p)


# ---------------------------------------------------------------------------- min norm, grid
def _check_min_norm_exactly(X, y, sol, p):
    """Exact residual and exact duality gap (weak duality: ½||w*||² >= D(ν) for every ν)."""
    w, nu = _fr(sol.w), _fr(sol.dual)
    rows = [_fr(x) for x in X]
    yf = _fr(y)
    r_sq = sum((sum(a * b for a, b in zip(x, w, strict=True)) - t) ** 2
               for x, t in zip(rows, yf, strict=True))
    assert r_sq <= Fraction(RTOL) ** 2 * sum(t * t for t in yf)
    z = [sum(nu[i] * rows[i][j] for i in range(len(rows))) for j in range(len(w))]
    D = sum(a * b for a, b in zip(yf, nu, strict=True)) - _norm_sq(z, _dual_exp(p)) / 2
    P = _norm_sq(w, p) / 2
    assert abs(P - D) <= 2 * Fraction(RTOL) * P


def _min_norm_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((10, 40)), rng.standard_normal(10)


@pytest.mark.parametrize("p", NORMS, ids=["l2", "l1", "linf"])
@pytest.mark.parametrize("k", KS)
def test_min_norm_scaling_an_equation_changes_nothing(p, k):
    # x_i w = y_i and c x_i w = c y_i are the same equation; main said "inconsistent" for
    # |k| >= 9 (least squares on unequilibrated rows)
    X, y = _min_norm_data()
    base = solve_min_norm(X, y, norm=p)
    Xs, ys = _scaled(X, "row", k), y.copy()
    ys[0] *= 10.0**k
    sol = solve_min_norm(Xs, ys, norm=p)
    _check_min_norm_exactly(Xs, ys, sol, p)
    np.testing.assert_allclose(sol.value, base.value, rtol=4 * RTOL, atol=0)


# X-only scaling of one row by 1e±12 makes rounding the route's w to float64 move
# ||Xw − y|| / ||y|| by up to ~1e-4 (floors 2e-5..9e-5 measured on these data), and the ℓ∞
# multipliers of a column x 1e12 likewise: PrecisionLimitError before the exact refinement
# (docs/theory.md §5.9). Before the certificate evaluated A w exactly, two of these were
# "verified" in float64 with a true residual of 3e-4 (caught by the rational check below).
_MN_REFINED = {("row", k, p) for k in (12, -12) for p in NORMS} | {("col", 12, np.inf)}


@pytest.mark.parametrize("p", NORMS, ids=["l2", "l1", "linf"])
@pytest.mark.parametrize("kind", ["row", "col"])
@pytest.mark.parametrize("k", KS)
def test_min_norm_row_or_column_of_X_scaled(p, kind, k):
    X, y = _min_norm_data()
    Xs = _scaled(X, kind, k)
    sol = solve_min_norm(Xs, y, norm=p)
    assert sol.certificate.verified
    _check_min_norm_exactly(Xs, y, sol, p)
    if (kind, k, p) in _MN_REFINED:
        assert sol.solver.endswith("+exact-refine")
    # the reported residual is the certified one (it was evaluated in float64: 7.8e-6 ||y||
    # for a w whose exact residual is 6e-17 ||y||)
    assert sol.residual <= RTOL * np.linalg.norm(y)


@pytest.mark.parametrize("p", NORMS, ids=["l2", "l1", "linf"])
@given(seed=seeds, n=st.integers(2, 6), extra=st.integers(1, 6), k=st.integers(-12, 12),
       kind=st.sampled_from(["row", "col"]), which=st.integers(0, 11))
@example(seed=2, n=3, extra=2, k=9, kind="col", which=0)  # ℓ∞: PrecisionLimitError before
def test_min_norm_any_row_or_column_of_X_scaled(p, seed, n, extra, k, kind, which):
    # |k| in [9, 12] reaches float64's floor for the route's answer (ℓ∞ gap ~1.2e-6 at a column
    # x 1e9; residual ~1e-4 at a row x 1e±12); certified since the exact refinement (§5.9)
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, n + extra)), rng.standard_normal(n)
    Xs = _scaled(X, kind, k, which % (n if kind == "row" else n + extra))
    sol = solve_min_norm(Xs, y, norm=p)
    _check_min_norm_exactly(Xs, y, sol, p)


# ------------------------------------------- float64's floor: refinement on the float64 grid
def _exact_solve_2x2(X, y):
    a, b, c, d = (Fraction(float(v)) for v in np.ravel(X))
    y0, y1 = (Fraction(float(v)) for v in y)
    det = a * d - b * c
    return [(y0 * d - b * y1) / det, (a * y1 - y0 * c) / det]


def _exact_relative_residual(X, y, w):
    rows, yf = [_fr(x) for x in X], _fr(y)
    r_sq = sum((sum(a * b for a, b in zip(x, w, strict=True)) - t) ** 2
               for x, t in zip(rows, yf, strict=True))
    return float(r_sq / sum(t * t for t in yf)) ** 0.5


def test_an_ill_conditioned_full_rank_system_is_not_called_inconsistent():
    # cond(X) = 4e12 > 1 / rank_rtol: least squares cut the small singular value and main said
    # "X w = y has no solution ... X has rank 2 < n = 2" — false: X is nonsingular (its exact
    # determinant is checked below), so every y has a solution. No route verifies here (the
    # float64 w nearest any solution misses row 0 by >= 2e-5: w_1 + w_2 lies on the 2^-13 grid
    # for |w_j| in [2^39, 2^40), 0.1 does not), so the honest answer is a SolverError
    X, y = np.array([[1.0, 1.0], [1.0, 1.0 + 1e-12]]), np.array([0.1, 1.0])
    a, b, c, d = (Fraction(float(v)) for v in X.ravel())
    assert a * d - b * c != 0
    with pytest.raises(SolverError) as ei:
        solve_min_norm(X, y)
    assert "has no solution" not in str(ei.value)


def test_wide_routes_are_refined_too():
    # d > n (column generation, docs/theory.md §5.8): ℓ1 max margin with a column x 1e10 (the
    # gap 1.09e-6 within 64x of its floor: an off-support |z_k| just above ||w||_1) and ℓ∞
    # min-norm with a row of X x 1e-12 were PrecisionLimitError before the exact refinement
    X, y = hyperplane_data(np.random.default_rng(5), 12, 40, 0.2)
    Xs = _scaled(X, "col", 10, 5)
    sol = solve_max_margin(Xs, y, norm=1)
    assert sol.solver.endswith("+exact-refine")
    _check_margin_exactly(Xs, y, sol, 1.0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 60)), rng.standard_normal(8)
    Xs = _scaled(X, "row", -12)
    sol = solve_min_norm(Xs, y, norm=np.inf)
    assert sol.solver == "highs-colgen+exact-refine"
    _check_min_norm_exactly(Xs, y, sol, np.inf)


def test_the_min_norm_floor_is_not_intrinsic_to_float64():
    # docs/theory.md §5.9 (b): with one row of X x 1e-12, ||w*|| = 3.6e12. The float64 vector
    # nearest to the exact solution w* (computed in rationals) misses X w = y by 2.2e-5 ||y||
    # (> rtol: the "floor" u|X||w*| is real for that rounding), yet a float64 vector 2e-11
    # (relative) away from w* meets it to 3e-11: the floor bounds one rounding, not every
    # float64 vector. PrecisionLimitError before the exact refinement.
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((2, 2)), rng.standard_normal(2)
    Xs = _scaled(X, "row", -12)
    w_star = _exact_solve_2x2(Xs, y)
    nearest = [Fraction(float(v)) for v in w_star]
    assert _exact_relative_residual(Xs, y, nearest) > 10 * RTOL
    sol = solve_min_norm(Xs, y)
    assert sol.certificate.verified and sol.solver.endswith("+exact-refine")
    assert _exact_relative_residual(Xs, y, _fr(sol.w)) <= 1e-3 * RTOL
    _check_min_norm_exactly(Xs, y, sol, 2.0)
    rel = max(abs(Fraction(float(a)) - b) / abs(b) for a, b in zip(sol.w, w_star, strict=True))
    assert rel < 1e-9  # the same answer, to far below rtol


def test_grid_search_beats_iterative_refinement_alone():
    # one equation x.w = 1 with |x_j| ~ 1e12 and w ~ 1e-12·1e12: no float64 correction below
    # the spacing of w exists, so refinement alone stalls at ~u |x||w|; the lattice of
    # integer ulp moves of three entries reaches far below it (exact residuals throughout)
    from solvers.programs._certificate import exact_residuals, refine_on_float64_grid

    x = np.array([[1e12 * np.pi, -1e12 * np.e, 1e12 * np.sqrt(2.0)]])
    xf = _fr(x)
    w2 = (1 - xf[0] * Fraction(0.3) - xf[1] * Fraction(0.7)) / xf[2]  # x.w = 1 exactly
    w0 = np.array([0.3, 0.7, float(w2)])  # its nearest float64: residual ~ u |x_2 w_2| ~ 1e-4
    t, scale = np.array([1.0]), np.array([1e-9])
    r0 = abs(float(exact_residuals(x, w0, t)[0]))
    v1, r1 = refine_on_float64_grid(x, w0, t, scale, free=np.ones(3, dtype=bool),
                                    lattice=False)
    v2, r2 = refine_on_float64_grid(x, w0, t, scale, free=np.ones(3, dtype=bool))
    assert r0 > 1e-6 and abs(r1[0]) > 1e-6  # the float64 floor: ~u |x||w| ~ 1e-4
    assert abs(r2[0]) <= 1e-9 and abs(float(exact_residuals(x, v2, t)[0])) == abs(r2[0])
    assert np.max(np.abs(v2 - w0) / np.abs(w0)) < 1e-9


def test_refinement_that_overflows_proposes_nothing():
    # TwoProduct splits 2^27 λ: multipliers near the float64 maximum overflow it; the refinement
    # is only a proposal and must say "none" instead of raising inside the certificate
    from solvers.programs._certificate import refine_multipliers

    A = np.array([[1e10, 1.0], [-1e10, 1.0]])  # z_0 = 1e10 λ_0 − 1e10 λ_1: inf − inf
    assert refine_multipliers(A, np.array([1.0, 1.0]), np.array([1e300, 1e300]), np.inf,
                              rtol=RTOL) is None


def test_above_the_size_cap_nothing_is_refined(monkeypatch):
    # the refinement holds ~6 copies of the constraint matrix: above REFINE_MAX_ENTRIES it is
    # skipped, and a case it would certify keeps the session-3 PrecisionLimitError
    import solvers.programs._certificate as cert_mod

    monkeypatch.setattr(cert_mod, "REFINE_MAX_ENTRIES", 10)
    X, y = _min_norm_data()
    with pytest.raises(PrecisionLimitError, match=LIMIT_MSG):
        solve_min_norm(_scaled(X, "row", 12), y)
    X, y = hyperplane_data(np.random.default_rng(0), 30, 5, 0.3)
    with pytest.raises(PrecisionLimitError, match=LIMIT_MSG):
        solve_max_margin(_scaled(X, "col", 12), y, norm=np.inf)


def test_nearest_plane_recovers_a_lattice_point():
    from solvers.programs._certificate import _lll, _nearest_plane

    basis = np.array([[1.0, 0.0, 0.0], [1e3, 1.0, 0.0], [7.0, 1e4, 1.0]]) @ np.diag([1, 0.5, 3])
    kappa = np.array([3.0, -7.0, 12.0])
    red, U = _lll(basis)
    assert np.allclose(U @ basis, red, rtol=0, atol=1e-9)
    assert abs(round(abs(np.linalg.det(U)))) == 1  # unimodular
    assert np.array_equal(_nearest_plane(red, U, kappa @ basis), kappa)


def test_what_the_grid_search_cannot_reach_stays_a_precision_limit():
    # a square 6 x 6 system with one row x 1e-12: ||w*|| ~ 1e14, five rows must cancel terms
    # ~1e14 and the grid of w has one spare dimension: refinement and the search find nothing
    # that verifies, so the error stays PrecisionLimitError with its floors and the rtol that
    # would certify the best candidate (docs/theory.md §5.9)
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((6, 6)), rng.standard_normal(6)
    with pytest.raises(PrecisionLimitError, match=LIMIT_MSG) as ei:
        solve_min_norm(_scaled(X, "row", -12), y)
    assert "searching the float64 grid" in str(ei.value)
    res = ei.value.residuals
    assert set(res) == {"primal infeasibility"}
    assert RTOL < res["primal infeasibility"]["residual"] <= 64 * res[
        "primal infeasibility"]["float64 floor"]


# ----------------------------------------------------------------- breast cancer, raw features
@pytest.fixture(scope="module")
def breast_cancer():
    datasets = pytest.importorskip("sklearn.datasets")  # a third-party optional dependency
    X, t = datasets.load_breast_cancer(return_X_y=True)
    return X, 2.0 * t - 1.0


@pytest.mark.parametrize("p", NORMS, ids=["l2", "l1", "linf"])
def test_breast_cancer_is_certified_in_every_row_order(breast_cancer, p):
    # issue 14.11: main raised SolverError for ℓ2 and, for ℓ1, NotSeparableError or SolverError
    # depending on the row order. The ℓ2 margin lies in [3.3e-5, 4.9e-5] (issue, from an LP).
    X, y = breast_cancer
    margins = []
    for seed in (None, 0, 1):
        idx = (np.arange(len(y)) if seed is None
               else np.random.default_rng(seed).permutation(len(y)))
        sol = solve_max_margin(X[idx], y[idx], norm=p)
        assert sol.certificate.verified
        _check_margin_exactly(X[idx], y[idx], sol, p)
        margins.append(sol.margin)
    np.testing.assert_allclose(margins, margins[0], rtol=4 * RTOL, atol=0)
    if p == 2.0:
        assert 3.3e-5 <= margins[0] <= 4.9e-5
