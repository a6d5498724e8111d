"""The KKT problem object (rescaled net, candidates, kinks), the solver configuration, the named
KKT conditions of the report, and checks at extreme weight scales (issue 14 item 10)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from solvers.nets import HomogeneousMLP
from solvers.nets.kkt import KKTConfig, check_kkt
from solvers.nets.kkt._problem import build_problem
from tests.test_kkt import KKT_EPS_RTOL, META_RTOL, NOT_KKT_EPS, _symmetric_svm_net

SCALES = [1e-300, 1e-100, 1.0, 1e100, 1e300]


def _fitted_net(rng, sizes, n=24, activation="relu"):
    net = HomogeneousMLP.random(sizes, rng=rng, activation=activation,
                                alpha=0.1 if activation == "leaky_relu" else 0.0)
    X = rng.standard_normal((n, sizes[0]))
    f = net.forward(X)
    keep = np.abs(f) > 1e-3 * np.abs(f).max()
    return net, X[keep], np.sign(f[keep])


def _scaled(net, c):
    return HomogeneousMLP(tuple(c * W for W in net.weights), activation=net.activation,
                          alpha=net.alpha)


# ------------------------------------------------------------------ scale (issue 14 item 10)
@pytest.mark.parametrize("kind", ["kkt", "random2", "random3"])
def test_huge_and_tiny_weights_are_checked_like_the_net(rng, kind):
    # θ ↦ cθ multiplies q by c^L (1e±600 for L = 2: the forward pass over/underflows in float64)
    # but leaves θ̃ = θ / q_min^{1/L}, hence ε/||θ̃||, δ/||θ̃||² and the verdict, unchanged. The
    # program sees the same θ̃ up to rounding, so they agree to META_RTOL (the metamorphic
    # tolerance of tests/test_kkt.py); log q_min moves by exactly L log c.
    if kind == "kkt":
        net, X, y, _ = _symmetric_svm_net(rng)
    else:
        net, X, y = _fitted_net(rng, [3, 6, 1] if kind == "random2" else [3, 5, 4, 1])
    base = check_kkt(net, X, y)
    assert base.is_kkt == (kind == "kkt")  # premise: both verdicts are exercised
    L = net.degree
    for c in SCALES:
        rep = check_kkt(_scaled(net, c), X, y)
        assert rep.status == base.status, c
        assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=META_RTOL,
                                                     abs=KKT_EPS_RTOL * 1e-3), c
        assert rep.delta_relative == pytest.approx(base.delta_relative, rel=META_RTOL,
                                                   abs=KKT_EPS_RTOL * 1e-3), c
        assert rep.n_candidates == base.n_candidates and rep.n_kink_pairs == base.n_kink_pairs
        assert rep.log_q_min == pytest.approx(base.log_q_min + L * math.log(c), rel=1e-12,
                                              abs=1e-9)
        assert rep.normalised_margin == pytest.approx(base.normalised_margin, rel=1e-9)
        json.dumps(rep.to_dict(), allow_nan=True)


def test_huge_weights_report_q_min_through_its_logarithm(rng):
    net, X, y = _fitted_net(rng, [3, 6, 1])
    rep = check_kkt(_scaled(net, 1e300), X, y)
    assert rep.q_min == math.inf  # 1e600 is not a float64 ...
    q_min = float((y * net.forward(X)).min())  # ... its logarithm is
    assert rep.log_q_min == pytest.approx(math.log(q_min) + 2 * math.log(1e300), rel=1e-13)
    assert np.isfinite(rep.epsilon) and np.all(np.isfinite(rep.multipliers))


def test_a_zero_layer_is_infeasible_not_a_crash(rng):
    from solvers.errors import NotFeasibleError

    net, X, y = _fitted_net(rng, [3, 4, 1])
    zero = HomogeneousMLP((net.weights[0], 0.0 * net.weights[1]))
    with pytest.raises(NotFeasibleError, match=f"{X.shape[0]} of {X.shape[0]}"):
        check_kkt(zero, X, y)


# ------------------------------------------------------------------ the problem object
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_kink_rows_are_the_slope_derivative_of_the_example_rows(rng, activation):
    # The gradient of q_e is affine in the slope s of one (e, unit) pair (other slopes fixed), so
    # the kink row must equal rows(s = 1) − rows(s = 0), both from the network's own
    # per_example_gradients: an independent formula for every layer of a 3-layer net.
    net, X, y = _fitted_net(rng, [3, 5, 4, 1], n=6, activation=activation)
    prob = build_problem(net, X, y, p=2.0, loss="logistic", support_factor=1e9, kink_rtol=0.0)
    free = [(np.array([0, 2, 2]), np.array([1, 0, 3])) for _ in prob.zs]
    for t in range(len(free)):
        pairs = [(e, u) if s == t else (np.zeros(0, int), np.zeros(0, int))
                 for s, (e, u) in enumerate(free)]
        rows, krows, kex = prob.explicit_rows(prob.slopes, pairs)
        assert krows.shape == (3, prob.P) and kex.tolist() == [0, 2, 2]
        for k, (e, u) in enumerate(zip(*free[t], strict=True)):
            one = [s.copy() for s in prob.slopes]
            zero = [s.copy() for s in prob.slopes]
            one[t][e, u], zero[t][e, u] = 1.0, 0.0
            g1 = prob.net.per_example_gradients(prob.Xc[e:e + 1], slopes=[s[e:e + 1] for s in one])
            g0 = prob.net.per_example_gradients(prob.Xc[e:e + 1],
                                                slopes=[s[e:e + 1] for s in zero])
            want = prob.U[e, 0] * (g1[0] - g0[0])
            np.testing.assert_allclose(krows[k], want, rtol=1e-12,
                                       atol=1e-12 * np.abs(want).max())
        # the example rows carry the free pairs' slopes at 0 (their share is in the kink rows)
        zeroed = [s.copy() for s in prob.slopes]
        zeroed[t][free[t]] = 0.0
        want = prob.U * prob.net.per_example_gradients(prob.Xc, slopes=zeroed)
        np.testing.assert_allclose(rows, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_problem_is_built_on_the_networks_forward_pass(rng):
    net, X, y = _fitted_net(rng, [3, 5, 4, 1])
    prob = build_problem(net, X, y, p=2.0, loss="logistic", support_factor=1.5, kink_rtol=1e-6)
    q = y * net.forward(X)
    assert prob.log_q_min == pytest.approx(math.log(q.min()), rel=1e-13)
    np.testing.assert_allclose(prob.qc, q[prob.cand] / q.min(), rtol=1e-12)
    assert prob.qc.min() == 1.0 and prob.primal_feasibility <= 1e-12
    # θ̃ = θ / q_min^{1/L}
    np.testing.assert_allclose(prob.theta, net.flat() / q.min() ** (1 / 3), rtol=1e-12)
    for z, h, s in zip(prob.zs, prob.hs[1:], prob.slopes, strict=True):
        np.testing.assert_array_equal(h, np.maximum(z, 0.0))
        np.testing.assert_array_equal(s, (z > 0).astype(float))


# ------------------------------------------------------------------ config and conditions
@pytest.mark.parametrize("kw", [{"working_set_initial": 0}, {"working_set_batch": -1},
                                {"working_set_max_share": 0.0}, {"working_set_max_share": 1.5},
                                {"working_set_max_rounds": 2.5}, {"phase2_slack": -1.0}])
def test_config_rejects_bad_values_naming_them(kw):
    (name, _), = kw.items()
    with pytest.raises(ValueError, match=f"KKTConfig.{name}"):
        KKTConfig(**kw)


def test_config_must_be_a_kktconfig(rng):
    net, X, y = _fitted_net(rng, [3, 4, 1])
    with pytest.raises(TypeError, match="config must be a solvers.nets.kkt.KKTConfig"):
        check_kkt(net, X, y, config={"working_set_initial": 4})


def test_report_names_the_kkt_conditions(rng):
    net, X, y, _ = _symmetric_svm_net(rng)
    rep = check_kkt(net, X, y)
    cond = rep.conditions
    assert list(cond) == ["stationarity", "complementary_slackness", "primal_feasibility",
                          "dual_feasibility"]
    assert all(c["satisfied"] for c in cond.values())
    assert cond["stationarity"]["residual"] == rep.epsilon_relative
    assert cond["complementary_slackness"]["residual"] == rep.delta_relative
    assert json.loads(json.dumps(rep.to_dict()))["conditions"] == cond
    # off the KKT point, stationarity is the condition that fails
    theta = net.flat()
    off = net.with_flat(theta + 0.1 * np.linalg.norm(theta) / np.sqrt(theta.size)
                        * rng.standard_normal(theta.size))
    rep2 = check_kkt(off, X, y)
    assert rep2.epsilon_relative > NOT_KKT_EPS
    assert rep2.conditions["stationarity"]["satisfied"] is False
    assert rep2.conditions["primal_feasibility"]["satisfied"]
    assert rep2.conditions["dual_feasibility"]["satisfied"]


# ------------------------------------------------------------------ dead units (issue 11 item 3)
def test_dead_units_are_not_counted_as_kinks(rng):
    # 4 hidden units of layer 1 with incoming rows at 1e-9 of the layer and zero outgoing
    # weights: every example's pre-activation there is ~1e-9 of the layer's, so the kink rule
    # alone flags 4 pairs per candidate. Recognised as dead they add no kink pairs, and the net
    # equals the net with those units removed up to O(1e-9) in θ̃ (no ε contribution): same
    # n_kink_pairs, same ε to 1e-6 relative (far above the 1e-9 perturbation, far below ε).
    net, X, y = _fitted_net(rng, [3, 6, 5, 1], n=30)
    W1, W2, W3 = net.weights
    scale = np.linalg.norm(W1, axis=1).max()
    W1d = np.vstack([W1, 1e-9 * scale * rng.standard_normal((4, 3))])
    W2d = np.hstack([W2, np.zeros((5, 4))])
    dead = HomogeneousMLP((W1d, W2d, W3))
    base = check_kkt(net, X, y, support_factor=1e9)
    rep = check_kkt(dead, X, y, support_factor=1e9)
    assert rep.extra["n_dead_units"] == 4 and base.extra["n_dead_units"] == 0
    assert rep.n_kink_pairs == base.n_kink_pairs
    assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=1e-6)
    assert rep.exact == base.exact
    # with the dead-unit rule off (kink_rtol = 0 never flags a nonzero row) nothing is a kink
    assert check_kkt(dead, X, y, support_factor=1e9, kink_rtol=0.0).n_kink_pairs == 0


def test_an_exactly_zero_unit_makes_the_check_an_upper_bound(rng):
    net, X, y = _fitted_net(rng, [3, 6, 1], n=20)
    W1, W2 = net.weights
    zero = HomogeneousMLP((np.vstack([W1, np.zeros((1, 3))]), np.hstack([W2, [[0.5]]])))
    rep = check_kkt(zero, X, y)
    assert rep.extra["n_dead_units"] == 1 and rep.exact is False


@pytest.mark.parametrize("sizes, K", [([3, 5, 4, 1], 1), ([3, 4, 5, 4, 1], 1), ([3, 5, 4, 3], 3)])
def test_layered_gram_equals_the_explicit_columns(rng, sizes, K):
    # G = Σ_l (D_l D_lᵀ) ∘ (H_{l-1} H_{l-1}ᵀ) and its products against the explicit (N, P)
    # columns (checked against per_example_gradients above), with free kink pairs in every
    # hidden layer of a deep net, one output or K classes.
    if K == 1:
        net, X, y = _fitted_net(rng, sizes, n=8)
    else:
        net = HomogeneousMLP.random(sizes, rng=rng)
        X = rng.standard_normal((8, sizes[0]))
        y = net.outputs(X).argmax(axis=1)
    prob = build_problem(net, X, y, p=2.0, loss="logistic", support_factor=1e9, kink_rtol=0.0)
    free = [(np.array([0, 2, 2, 5]) % prob.nc, np.array([1, 0, 3, 2])) for _ in prob.zs]
    kl = np.concatenate([np.full(4, t) for t in range(len(free))])
    ke = np.concatenate([e for e, _ in free])
    ku = np.concatenate([u for _, u in free])
    rows, krows, _ = prob.explicit_rows(prob.slopes, free)
    A = np.vstack([rows, krows])
    lg = prob.layered_gram(prob.slopes, (kl, ke, ku))
    GA = A @ A.T
    np.testing.assert_allclose(lg.G, GA, rtol=1e-12, atol=1e-12 * np.abs(GA).max())
    np.testing.assert_allclose(lg.b, A @ prob.theta, rtol=1e-12,
                               atol=1e-12 * np.abs(A @ prob.theta).max())
    nu = rng.random(A.shape[0])
    v = A.T @ nu
    np.testing.assert_allclose(lg.combination(nu), v, rtol=1e-12, atol=1e-12 * np.abs(v).max())
    r = rng.standard_normal(prob.P)
    np.testing.assert_allclose(lg.apply(r), A @ r, rtol=1e-10, atol=1e-12 * np.abs(A @ r).max())
    np.testing.assert_allclose(lg.example_norms(), np.linalg.norm(rows, axis=1), rtol=1e-12)


@pytest.mark.parametrize("sizes", [[4, 6, 5, 1], [4, 6, 5, 3]])
def test_working_set_on_a_deep_net_equals_the_full_solve(rng, sizes):
    # the working set certifies its point for the full candidate QP (pricing by A r); on a
    # 3-layer net (one output or 3 classes) it must reach the full program's ε (CROSS_RTOL).
    from tests.test_kkt import CROSS_RTOL

    if sizes[-1] == 1:
        net, X, y = _fitted_net(rng, sizes, n=60)
    else:
        net = HomogeneousMLP.random(sizes, rng=rng)
        X = rng.standard_normal((90, sizes[0]))
        F = net.outputs(X)
        y = F.argmax(axis=1)
        X = X[np.sort(F, axis=1)[:, -1] - np.sort(F, axis=1)[:, -2] > 1e-2 * np.abs(F).max()]
        X, y = X[:60], net.outputs(X[:60]).argmax(axis=1)
    # every example a candidate, δ budget inactive: the support is a large share of them
    kw = {"support_factor": 1e9, "kink_rtol": 0.0, "delta_tol": 1e6}
    full = check_kkt(net, X, y, working_set=False, **kw)
    ws = check_kkt(net, X, y, working_set=True, **kw,
                   config=KKTConfig(working_set_initial=4, working_set_batch=2))
    assert ws.extra["working_set_rounds"] >= 2 and full.n_candidates > 8
    assert ws.solver_status == "optimal" == full.solver_status
    assert ws.epsilon == pytest.approx(full.epsilon, rel=CROSS_RTOL)
