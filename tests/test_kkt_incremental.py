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
