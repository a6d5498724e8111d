"""The ℓ2 working set at scale (issue 11): the Gram matrix extended by new rows each round
(:class:`solvers.nets.kkt._problem.IncrementalGram`), warm-started gradient projection + CG
on it, and the one-triangle products (``dsymv``) — against a from-scratch Gram matrix, against
``G @ v`` and against the interior-point QP on the full candidate program (docs/theory.md §7.7).
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from solvers.nets import HomogeneousMLP
from solvers.nets.kkt import KKTConfig, check_kkt
from solvers.nets.kkt._problem import IncrementalGram, build_problem
from solvers.nets.kkt._solve import _symmetric_product
from solvers.tolerances import TOLERANCES
from tests.test_kkt import _kinked_instance, _symmetric_svm_net

#: GPCG stops at kkt_working_set_rtol (1e-7) relative optimality, the interior point at
#: kkt_qp_tol (1e-10); their ε then differ by at most a few times the former, relative to ||θ̃||
#: (as in tests/test_kkt_gpcg.py).
RTOL = 10 * TOLERANCES.kkt_working_set_rtol
#: Support threshold (share of the largest multiplier); the two solvers' multipliers differ by
#: ~RTOL relative, so instances with a reference multiplier within a factor 10 of the threshold
#: on either side are ambiguous and skipped (assume).
SUPPORT_RTOL = 1e-5
#: Entries of two Gram matrices computed by the same products in a different grouping (blocks of
#: rows vs the whole matrix): BLAS reorders sums, so they agree to a few ulps of the largest entry.
GRAM_RTOL = 1e-13

#: the new path: working set from one example, one added per round at least, every subproblem
#: solved by warm-started GPCG (no interior point)
NEW = KKTConfig(working_set_initial=2, working_set_batch=1, first_order_min_variables=0)
#: the reference: interior point on the full candidate program
IP = KKTConfig(first_order_min_variables=10**9)


def _problem(seed, n=30, d=6, m=8, n_kinks=5):
    rng = np.random.default_rng(seed)
    net, X, y = _kinked_instance(rng, n, d, m, n_kinks, 2.0)
    prob = build_problem(net, X, y, p=2.0, loss="logistic", support_factor=1e9,
                         kink_rtol=TOLERANCES.kink_rtol)
    kl = np.concatenate([np.full(k.sum(), t) for t, k in enumerate(prob.kinks)])
    ke, ku = (np.concatenate(a) for a in zip(*[np.nonzero(k) for k in prob.kinks], strict=True))
    return prob, (kl, ke, ku)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_gram_equals_a_from_scratch_gram(seed):
    prob, kinfo = _problem(seed)
    assert kinfo[1].size >= 3  # premise: kink columns interleave with the examples
    full = prob.layered_gram(prob.slopes, kinfo, gram=True)
    ws = IncrementalGram(prob.layered_gram(prob.slopes, kinfo, gram=False))
    order = np.random.default_rng(seed).permutation(prob.nc)
    for batch in np.array_split(order, 4):  # examples in a random order, four extensions
        ws.add(batch)
        cols = ws.columns
        ref = full.G[np.ix_(cols, cols)]
        np.testing.assert_allclose(ws.G, ref, rtol=0, atol=GRAM_RTOL * np.abs(ref).max())
        np.testing.assert_array_equal(ws.G, ws.G.T)
        np.testing.assert_array_equal(ws.b, full.b[cols])
        # the cone's kink → example map points at the right example column
        ke_full = kinfo[1][ws.kinks]
        np.testing.assert_array_equal(ws.examples[ws.kink_example], ke_full)
    assert set(ws.examples) == set(range(prob.nc)) and ws.kinks.size == kinfo[1].size
    # the from-scratch Gram matrix itself against the explicit columns (an independent formula)
    rows, krows, _ = prob.explicit_rows(prob.slopes, [(kinfo[1], kinfo[2])])
    A = np.vstack([rows, krows])
    np.testing.assert_allclose(full.G, A @ A.T, rtol=0, atol=1e-12 * np.abs(full.G).max())


def test_extend_keeps_the_old_multipliers_in_place():
    prob, kinfo = _problem(3)
    ws = IncrementalGram(prob.layered_gram(prob.slopes, kinfo, gram=False))
    ws.add(np.arange(10))
    n0, k0 = ws.examples.size, ws.kinks.size
    nu = np.arange(1.0, n0 + k0 + 1)
    cols_old = ws.columns
    ws.add(np.arange(10, prob.nc))
    x = ws.extend(nu, n0, k0)
    pos = {c: i for i, c in enumerate(ws.columns)}
    np.testing.assert_array_equal(x[[pos[c] for c in cols_old]], nu)
    assert np.count_nonzero(x) == nu.size


def test_symmetric_product_equals_the_dense_product():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((50, 80))
    G = A @ A.T
    G = 0.5 * (G + G.T)
    v = rng.standard_normal(50)
    np.testing.assert_allclose(_symmetric_product(G)(v), G @ v, rtol=0,
                               atol=1e-13 * np.abs(G).sum(axis=1).max())
    # a non-contiguous matrix falls back to G @ v (still the product)
    Gs = np.asfortranarray(G)[::1, ::1].T[:40, :40]
    np.testing.assert_allclose(_symmetric_product(Gs)(v[:40]), Gs @ v[:40], rtol=1e-14)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(8, 20), d=st.integers(5, 8),
       m=st.integers(6, 10), n_kinks=st.integers(0, 4),
       delta_tol=st.sampled_from([1e-2, 1e6]))
def test_new_path_matches_the_interior_point(seed, n, d, m, n_kinks, delta_tol):
    net, X, y = _kinked_instance(np.random.default_rng(seed), n, d, m, n_kinks, 2.0)
    ref = check_kkt(net, X, y, working_set=False, config=IP, delta_tol=delta_tol,
                    support_factor=1e9)
    assume(net.n_params > X.shape[0] + ref.n_kink_pairs)  # G nonsingular: unique optimal ν
    new = check_kkt(net, X, y, working_set=True, config=NEW, delta_tol=delta_tol,
                    support_factor=1e9)
    assert "gradient projection + CG" in new.method and "working set" in new.method
    assert new.solver_status == "optimal" == ref.solver_status
    assert abs(new.epsilon_relative - ref.epsilon_relative) <= RTOL
    assert new.delta <= new.delta_budget * (1 + 1e-9)
    share = ref.multipliers / max(ref.multipliers.max(), 1e-300)
    assume(not np.any((share > SUPPORT_RTOL / 10) & (share < 10 * SUPPORT_RTOL)))
    np.testing.assert_array_equal(
        new.multipliers > SUPPORT_RTOL * max(new.multipliers.max(), 1e-300),
        share > SUPPORT_RTOL)


def test_new_path_at_an_exact_kkt_point(rng):
    net, X, y, lam = _symmetric_svm_net(rng, n_half=20, d=3)
    rep = check_kkt(net, X, y, working_set=True, support_factor=1e6, config=NEW)
    assert "gradient projection + CG" in rep.method
    assert rep.solver_status == "optimal"
    # ε/||θ̃|| = 0 exactly at this point; GPCG stops at relative optimality 1e-7
    assert rep.epsilon_relative <= RTOL
    np.testing.assert_allclose(rep.multipliers, lam, rtol=0, atol=RTOL * 10 * lam.max())


@pytest.mark.parametrize("seed", [5])
def test_new_path_with_the_budget_active(seed):
    net, X, y = _kinked_instance(np.random.default_rng(seed), 20, 6, 8, 3, 2.0)
    free = check_kkt(net, X, y, working_set=False, config=IP, delta_tol=1e6, support_factor=1e9)
    delta_tol = 0.3 * free.delta_relative  # below the unconstrained optimum's δ: active
    ref = check_kkt(net, X, y, working_set=False, config=IP, delta_tol=delta_tol,
                    support_factor=1e9)
    new = check_kkt(net, X, y, working_set=True, config=NEW, delta_tol=delta_tol,
                    support_factor=1e9)
    assert ref.delta == pytest.approx(ref.delta_budget, rel=1e-6)  # premise: the budget binds
    assert ref.epsilon_relative > free.epsilon_relative + 100 * RTOL  # and it costs ε
    assert new.solver_status == "optimal"
    assert abs(new.epsilon_relative - ref.epsilon_relative) <= RTOL
    assert new.delta <= new.delta_budget * (1 + 1e-9)
    assert new.delta == pytest.approx(new.delta_budget, rel=1e-4)


def test_dead_units_are_not_kinks_and_leave_the_program_alone():
    # the bench_kkt.py --dead construction at small size: dead units (incoming rows 1e-9 of the
    # largest) appended to a net; they add no kink pairs, and since their outgoing weights are 0
    # here θ̃ gains only ~1e-9-sized entries: ε equals that of the net without them
    rng = np.random.default_rng(7)
    net, X, y = _kinked_instance(rng, 30, 6, 8, 3, 2.0)
    W1, W2 = net.weights
    rows = rng.standard_normal((5, W1.shape[1]))
    rows *= 1e-9 * np.linalg.norm(W1, axis=1).max() / np.linalg.norm(rows, axis=1)[:, None]
    dead = HomogeneousMLP((np.vstack([W1, rows]), np.hstack([W2, np.zeros((1, 5))])))
    a = check_kkt(net, X, y, support_factor=1e9)
    b = check_kkt(dead, X, y, support_factor=1e9)
    assert b.extra["n_dead_units"] == 5 and a.extra["n_dead_units"] == 0
    assert b.n_kink_pairs == a.n_kink_pairs
    assert abs(b.epsilon_relative - a.epsilon_relative) <= RTOL


# --- the exact, sort-based projection onto the cone C (solvers/nets/kkt/_gpcg.py) -------------

#: The exact projection computes λ = t/s from sums of at most a dozen terms here: its optimality
#: conditions hold to a few ulps of the largest term Σ|w_j a_j| of the example, far below 1e-12.
PROJ_RTOL = 1e-12
#: The bisection reference stops at a bracket of 4e-16 relative and the objective is flat
#: (quadratic) at the optimum, so both objectives agree to rounding of the objective itself.
PROJ_OBJ_RTOL = 1e-12
#: Clarabel's default feasibility/gap tolerances are 1e-8; the projection is unique (strictly
#: convex objective), so its point agrees with the exact one to ~sqrt(1e-8)·scale at worst.
CVX_ATOL = 1e-5


def _project_cone_bisection(a, cone, w):
    """The previous implementation (bisection on φ_e', then the closed form on its piece): kept
    here as an independent reference for :func:`project_cone`."""
    n, K, al = cone.n, cone.K, cone.alpha
    out = np.empty_like(a)
    out[:n] = np.maximum(a[:n], 0.0)
    if K == 0:
        return out
    ke = cone.kink_example
    ex, grp = np.unique(ke, return_inverse=True)
    c, wk = a[n:], w[n:]
    ae, we = a[ex], w[ex]
    ne = ex.size

    def dphi(lv):
        lk = lv[grp]
        t = np.where(c < al * lk, al * (al * lk - c), np.where(c > lk, lk - c, 0.0)) * wk
        return we * (lv - ae) + np.bincount(grp, weights=t, minlength=ne)

    cmax = np.full(ne, -np.inf)
    np.maximum.at(cmax, grp, c)
    if al > 0:
        cmax = np.maximum(cmax, cmax / al)
    hi = np.maximum(np.maximum(ae, cmax), 0.0)
    lo = np.zeros(ne)
    zero = dphi(lo) >= 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        pos = dphi(mid) >= 0.0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
        if np.all(zero | (hi - lo <= 4e-16 * np.maximum(hi, 1e-300))):
            break
    lv = np.where(zero, 0.0, 0.5 * (lo + hi))
    out[ex] = lv
    out[n:] = np.clip(c, al * lv[grp], lv[grp])
    return out


def _projection_residual(x, a, cone, w):
    """Largest violation of the optimality conditions of ``argmin_{ν∈C} Σ w(ν − a)²``, relative
    to the example's scale: ``x ∈ C``, ``g = w(a − x)`` in the polar cone (for every example,
    ``g_e + Σ_k max(α g_k, g_k) <= 0``: the extreme rays of C are λ_e = 1, μ_k ∈ {α, 1}) and
    ``gᵀx = 0``."""
    n, al, ke = cone.n, cone.alpha, cone.kink_example
    lam, mu = x[:n], x[n:]
    g = w * (a - x)
    scale = np.abs(w * a)[:n] + np.bincount(ke, weights=np.abs(w * a)[n:], minlength=n) + 1e-300
    feas = max(float(np.max(-lam / scale, initial=0.0)),
               float(np.max((al * lam[ke] - mu) / scale[ke], initial=0.0)),
               float(np.max((mu - lam[ke]) / scale[ke], initial=0.0)))
    polar = g[:n] + np.bincount(ke, weights=np.maximum(al * g[n:], g[n:]), minlength=n)
    comp = (g[:n] * lam + np.bincount(ke, weights=g[n:] * mu, minlength=n)) / scale
    return max(feas, float(np.max(polar / scale, initial=0.0)), float(np.max(np.abs(comp))))


_vals = st.one_of(st.floats(-10.0, 10.0), st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0]))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 6), K=st.integers(0, 10),
       alpha=st.sampled_from([0.0, 0.1, 0.5]))
def test_exact_projection_meets_its_optimality_conditions_and_matches_bisection(data, n, K,
                                                                                  alpha):
    # a wrong breakpoint order, a missed Δs at a/α, or the wrong side of a tie (values drawn
    # from a small set make ties and exact zeros common) leaves a polar-cone or complementarity
    # violation of order 1 and a larger objective than the bisection's
    from solvers.nets.kkt._gpcg import project_cone
    from solvers.nets.kkt._qp import ConeStructure
    ke = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=K, max_size=K)), dtype=int)
    a = np.array(data.draw(st.lists(_vals, min_size=n + K, max_size=n + K)))
    w = np.array(data.draw(st.lists(st.floats(0.1, 10.0), min_size=n + K, max_size=n + K)))
    cone = ConeStructure(n, ke, alpha)
    x = project_cone(a, cone, w)
    assert _projection_residual(x, a, cone, w) <= PROJ_RTOL
    ref = _project_cone_bisection(a, cone, w)
    f, f_ref = float(w @ (x - a) ** 2), float(w @ (ref - a) ** 2)
    assert f <= f_ref + PROJ_OBJ_RTOL * max(float(w @ a**2), 1e-300)


def test_exact_projection_against_a_conic_solver():
    # brute force: the projection as a QP for Clarabel (through cvxpy), on random instances with
    # several kinks per example
    import cvxpy as cp

    from solvers.nets.kkt._gpcg import project_cone
    from solvers.nets.kkt._qp import ConeStructure
    rng = np.random.default_rng(7)
    for alpha in (0.0, 0.2):
        for _ in range(10):
            n, K = 4, 9
            cone = ConeStructure(n, rng.integers(0, n, K), alpha)
            a, w = rng.standard_normal(n + K) * 3.0, rng.uniform(0.2, 5.0, n + K)
            v = cp.Variable(n + K)
            lam_k, mu = v[cone.kink_example], v[n:]
            prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(w, cp.square(v - a)))),
                              [v[:n] >= 0, mu >= alpha * lam_k, mu <= lam_k])
            prob.solve(solver=cp.CLARABEL)
            assert prob.status == "optimal"
            np.testing.assert_allclose(project_cone(a, cone, w), v.value, rtol=0,
                                       atol=CVX_ATOL * np.abs(a).max())


def test_exact_projection_with_groups_of_very_different_magnitude():
    # found by hypothesis: example 1 (values ~1e-100, a kink at 2.2e-308) follows examples of
    # magnitude ~1; one shared cumulative sum lost its increments to cancellation and put its
    # λ on the wrong piece (residual 0.96). Each group is now summed at its own scale.
    from solvers.nets.kkt._gpcg import project_cone
    from solvers.nets.kkt._qp import ConeStructure
    a = np.array([1.0917108781585387, 6.920097509365189e-100, 2.0, 1.5, 2.0, 6.983597359850222,
                  2.0, 0.5, 0.0, 2.2250738585072014e-308, -1.0])
    w = np.array([1.1, 0.2735693369480849, 0.6, 3.493831623703886, 9.0, 6.152532397514517, 1.0,
                  8.736755542671206, 8.735041642150815, 8.296725177542212, 1.2308611463799397])
    cone = ConeStructure(4, np.array([2, 0, 2, 3, 2, 1, 0]), 0.1)
    x = project_cone(a, cone, w)
    assert _projection_residual(x, a, cone, w) <= PROJ_RTOL
    # example 1 alone, in closed form: μ = αλ is active, so λ = (w_e a_e + α w_k a_k)/(w_e + α² w_k)
    lam1 = (w[1] * a[1] + 0.1 * w[9] * a[9]) / (w[1] + 0.01 * w[9])
    assert x[1] == pytest.approx(lam1, rel=1e-12)
