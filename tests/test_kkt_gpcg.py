"""GPCG (gradient projection + CG) for the ℓ2 KKT cone QP against the interior point
(solvers/nets/kkt/_gpcg.py; docs/theory.md §7)."""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from solvers.nets import HomogeneousMLP
from solvers.nets.kkt import KKTConfig, check_kkt
from solvers.nets.kkt._gpcg import project_cone, solve_cone_qp_gpcg
from solvers.nets.kkt._qp import ConeStructure, cone_optimality, solve_cone_qp
from solvers.tolerances import TOLERANCES

# GPCG stops at kkt_working_set_rtol (1e-7) relative optimality; the ε it reaches then differs
# from the interior point's (kkt_qp_tol 1e-10) by at most a few times that, relative to ||θ̃||.
RTOL = 10 * TOLERANCES.kkt_working_set_rtol
#: A multiplier is in the support above this share of the largest; the two solvers' multipliers
#: differ by ~RTOL (relative), so instances with a reference multiplier within a factor 100 of the
#: threshold on either side (between SUPPORT_RTOL/100 and 100·SUPPORT_RTOL) are ambiguous and
#: skipped (assume), and both sides are thresholded alike.
SUPPORT_RTOL = 1e-4
#: The budget multiplier η follows from the optimality conditions, which GPCG meets to
#: kkt_working_set_rtol; η's relative error is that times the conditioning of the active Gram
#: block: below 100 for the budget test's instance (24 Gaussian rows in 40 dimensions).
ETA_RTOL = 100 * TOLERANCES.kkt_working_set_rtol


def _instance(seed, n, K, P, alpha):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n + K, P))
    th = rng.standard_normal(P)
    cone = ConeStructure(n, rng.integers(0, n, K), alpha)
    return A, th, cone, rng.uniform(0.0, 1.0, n)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(2, 30), K=st.integers(0, 8),
       P=st.integers(30, 60), alpha=st.sampled_from([0.0, 0.1]),
       budget=st.sampled_from([np.inf, 0.3]))
def test_gpcg_matches_interior_point(seed, n, K, P, alpha, budget):
    # P > n + K: G nonsingular, so the optimal ν (and the support) are unique
    A, th, cone, r = _instance(seed, n, K, P, alpha)
    G, b = A @ A.T, A @ th
    R, cs = np.linalg.norm(th), np.sqrt(np.diag(G))
    ref = solve_cone_qp(G, b, cone, tol=TOLERANCES.kkt_qp_tol, budget_row=r, budget=budget)
    res = solve_cone_qp_gpcg(G.__matmul__, np.diag(G), b, cone, col_scale=cs, obj_scale=R,
                             tol=TOLERANCES.kkt_working_set_rtol, budget_row=r, budget=budget)
    assert res.converged
    viol, comp = cone_optimality(G, b, res.nu, cone, cs, R, budget_row=r, budget=budget,
                                 eta=res.eta)
    assert max(viol, comp) <= TOLERANCES.kkt_optimality_rtol
    e_ref, e = np.linalg.norm(th - A.T @ ref.nu), np.linalg.norm(th - A.T @ res.nu)
    np.testing.assert_allclose(e, e_ref, rtol=0, atol=RTOL * R)
    assert float(r @ res.nu[:n]) <= budget * (1 + 1e-12)
    share = ref.nu[:n] / max(ref.nu[:n].max(), 1e-300)
    assume(not np.any((share > SUPPORT_RTOL / 100) & (share < 100 * SUPPORT_RTOL)))
    big = share > SUPPORT_RTOL
    np.testing.assert_array_equal(res.nu[:n] > SUPPORT_RTOL * max(res.nu[:n].max(), 1e-300), big)


def test_gpcg_budget_active():
    A, th, cone, r = _instance(3, 20, 4, 40, 0.0)
    G, b = A @ A.T, A @ th
    free = solve_cone_qp(G, b, cone, tol=TOLERANCES.kkt_qp_tol)
    budget = 0.5 * float(r @ free.nu[:20])  # half of what the unconstrained optimum uses
    res = solve_cone_qp_gpcg(G.__matmul__, np.diag(G), b, cone, col_scale=np.sqrt(np.diag(G)),
                             obj_scale=np.linalg.norm(th), tol=TOLERANCES.kkt_working_set_rtol,
                             budget_row=r, budget=budget)
    ref = solve_cone_qp(G, b, cone, tol=TOLERANCES.kkt_qp_tol, budget_row=r, budget=budget)
    assert res.eta > 0 and ref.eta > 0
    np.testing.assert_allclose(res.eta, ref.eta, rtol=ETA_RTOL)
    used = float(r @ res.nu[:20])
    assert (1 - TOLERANCES.kkt_optimality_rtol) * budget <= used <= budget * (1 + 1e-12)
    viol, comp = cone_optimality(G, b, res.nu, cone, np.sqrt(np.diag(G)), np.linalg.norm(th),
                                 budget_row=r, budget=budget, eta=res.eta)
    assert max(viol, comp) <= TOLERANCES.kkt_optimality_rtol


def test_project_cone_is_the_weighted_projection():
    # against a brute-force minimisation over a fine grid of λ for one kinked example
    rng = np.random.default_rng(0)
    cone = ConeStructure(1, np.zeros(3, dtype=int), 0.2)
    a, w = rng.standard_normal(4), rng.uniform(0.5, 2.0, 4)
    x = project_cone(a, cone, w)
    assert 0.2 * x[0] <= x[1:].min() and x[1:].max() <= x[0]
    lam = np.linspace(0, 5, 200001)
    mu = np.clip(a[1:, None], 0.2 * lam, lam)
    obj = w[0] * (lam - a[0]) ** 2 + (w[1:, None] * (mu - a[1:, None]) ** 2).sum(0)
    fx = w[0] * (x[0] - a[0]) ** 2 + (w[1:] * (x[1:] - a[1:]) ** 2).sum()
    assert fx <= obj.min() + 1e-12


def test_check_kkt_first_order_matches_interior_point():
    rng = np.random.default_rng(1)
    net = HomogeneousMLP.random([6, 30, 1], rng=rng)
    X = rng.standard_normal((120, 6))
    y = np.sign(net.forward(X))
    ipm = check_kkt(net, X, y, support_factor=1e9)
    fo = check_kkt(net, X, y, support_factor=1e9,
                   config=KKTConfig(first_order_min_variables=0))
    assert "gradient projection" in fo.method and "gradient projection" not in ipm.method
    assert fo.solver_status == "optimal"
    np.testing.assert_allclose(fo.epsilon_relative, ipm.epsilon_relative, rtol=0, atol=RTOL)
