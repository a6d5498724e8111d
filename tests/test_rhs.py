"""Hand-written right-hand sides (solvers.flows) against independent derivatives and formulas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from solvers.flows import (
    balanced_init,
    chain_flow,
    deep_linear_flow,
    diagonal_flow,
    integrate,
    linear_flow,
    minnorm_flow,
    normalized_flow,
    normalized_margin_along,
    sensing_flow,
)
from solvers.losses import loss_derivative, loss_weights
from solvers.programs import solve_max_margin
from tests.strategies import separable_data

FD_STEP = 1e-6
FD_RTOL = 1e-6     # central differences: truncation O(h²)·|f'''| ~ 1e-12, rounding ε|f|/h ~ 1e-10
EXACT_RTOL = 1e-12  # two float64 evaluations of the same formula


def _data(rng, n=6, d=4, k=2):
    X = rng.standard_normal((n, d))
    return X, rng.standard_normal(n), rng.standard_normal((n, k)), np.where(
        rng.standard_normal(n) > 0, 1.0, -1.0)


def _fd_grad(f, y0):
    g = np.empty_like(y0)
    for i in range(y0.size):
        e = np.zeros_like(y0)
        e[i] = FD_STEP
        g[i] = (f(y0 + e) - f(y0 - e)) / (2 * FD_STEP)
    return g


def _flows(rng):
    X, y, Y, lab = _data(rng)
    A = rng.standard_normal((5, 3, 4))
    return [
        linear_flow(X, y), linear_flow(X, Y), linear_flow(X, lab, loss="logistic"),
        linear_flow(X, lab, loss="exp"), chain_flow(X, y, depth=3),
        chain_flow(X, lab, depth=4, loss="exp"), deep_linear_flow(X, Y, widths=(4, 3, 5, 2)),
        deep_linear_flow(X, lab, widths=(4, 3, 1), loss="logistic"), diagonal_flow(X, y),
        diagonal_flow(X, lab, loss="logistic"), sensing_flow(A, rng.standard_normal(5),
                                                             widths=(4, 2, 3)),
    ]


def test_every_flow_is_minus_the_gradient_of_its_loss(rng):
    for flow in _flows(rng):
        y0 = 0.5 * rng.standard_normal(flow.size)
        fd = _fd_grad(flow.loss_value, y0)
        np.testing.assert_allclose(flow(0.0, y0), -fd, rtol=FD_RTOL, atol=FD_RTOL,
                                   err_msg=f"{flow.model}/{flow.loss}")


def test_linear_flows_match_textbook_formulas(rng):
    X, y, _, lab = _data(rng)
    w = rng.standard_normal(4)
    # squared (mean): ẇ = −Xᵀ(Xw − y)/n
    np.testing.assert_allclose(linear_flow(X, y)(0, w), -X.T @ (X @ w - y) / 6, rtol=EXACT_RTOL)
    # logistic (sum): ẇ = −Σ ℓ'(q_i) y_i x_i with ℓ'(q) = −σ(−q)
    q = lab * (X @ w)
    expected = -(loss_derivative(q, "logistic") * lab) @ X
    np.testing.assert_allclose(linear_flow(X, lab, loss="logistic")(0, w), expected,
                               rtol=EXACT_RTOL)
    # the shift trick agrees with solvers.losses.loss_weights: −∇𝓛 = e^{log_scale} Σ w_i y_i x_i
    wts, log_scale = loss_weights(q, "exp")
    np.testing.assert_allclose(linear_flow(X, lab, loss="exp")(0, w),
                               np.exp(log_scale) * (wts * lab) @ X, rtol=EXACT_RTOL)


def test_log_domain_gradient_at_tiny_losses():
    # margins ~700: the loss is ~1e-304, the gradient still representable and exact
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    lab = np.array([1.0, 1.0])
    w = np.array([700.0, 705.0])
    for loss in ("exp", "logistic"):
        g = linear_flow(X, lab, loss=loss)(0, w)
        # closed form: ℓ'(q) = −e^{−q} (exp) and −σ(−q) = −e^{−q}/(1 + e^{−q}) ≈ −e^{−q}
        np.testing.assert_allclose(g, np.exp(-w), rtol=1e-14)
        assert np.all(g > 0)


@pytest.mark.parametrize("loss", ["squared", "logistic", "exp"])
def test_linear_jacobian_matches_finite_differences(rng, loss):
    X, y, _, lab = _data(rng)
    flow = linear_flow(X, y if loss == "squared" else lab, loss=loss, weight_decay=0.1)
    w = rng.standard_normal(4)
    J = flow.jac(0.0, w)
    J_fd = np.column_stack([
        (flow(0, w + FD_STEP * e) - flow(0, w - FD_STEP * e)) / (2 * FD_STEP) for e in np.eye(4)
    ])
    np.testing.assert_allclose(J, J_fd, rtol=FD_RTOL, atol=FD_RTOL)
    assert deep_linear_flow(X, y, widths=(4, 2, 1)).jac is None


def test_weight_decay_adds_minus_lambda_theta(rng):
    X, _, Y, _ = _data(rng)
    plain = deep_linear_flow(X, Y, widths=(4, 3, 2))
    decayed = deep_linear_flow(X, Y, widths=(4, 3, 2), weight_decay=0.25)
    y0 = rng.standard_normal(plain.size)
    np.testing.assert_allclose(decayed(0, y0), plain(0, y0) - 0.25 * y0, rtol=EXACT_RTOL)


def test_deep_linear_matches_theory_formula(rng):
    # docs/theory.md §2: Ẇ_l = −(W_L⋯W_{l+1})ᵀ G (W_{l−1}⋯W_1)ᵀ, G = (W Xᵀ − Yᵀ) X / n
    X, _, Y, _ = _data(rng)
    flow = deep_linear_flow(X, Y, widths=(4, 3, 5, 2))
    W1, W2, W3 = (rng.standard_normal(s) for s in flow.blocks.values())
    G = (W3 @ W2 @ W1 @ X.T - Y.T) @ X / 6
    expected = np.concatenate([(-(W3 @ W2).T @ G).ravel(), (-W3.T @ G @ W1.T).ravel(),
                               (-G @ (W2 @ W1).T).ravel()])
    np.testing.assert_allclose(flow(0, flow.pack(W1=W1, W2=W2, W3=W3)), expected,
                               rtol=EXACT_RTOL, atol=EXACT_RTOL)


def test_chain_equals_deep_net_with_unit_widths(rng):
    # metamorphic: a_3 a_2 ⟨w, x⟩ is the deep linear net with W1 = wᵀ, W2 = [[a_2]], W3 = [[a_3]]
    X, y, _, _ = _data(rng)
    chain = chain_flow(X, y, depth=3)
    deep = deep_linear_flow(X, y, widths=(4, 1, 1, 1))
    w, a = rng.standard_normal(4), rng.standard_normal(2)
    dc = chain.unpack(chain(0, chain.pack(w=w, a=a)))
    dd = deep.unpack(deep(0, deep.pack(W1=w[None, :], W2=a[:1, None], W3=a[1:, None])))
    np.testing.assert_allclose(dc["w"], dd["W1"][0], rtol=EXACT_RTOL)
    np.testing.assert_allclose([dc["a2"], dc["a3"]], [dd["W2"][0, 0], dd["W3"][0, 0]],
                               rtol=EXACT_RTOL)


def test_diagonal_matches_formula(rng):
    X, y, _, _ = _data(rng)
    u, v = rng.standard_normal(4), rng.standard_normal(4)
    g = X.T @ (X @ (u * u - v * v) - y) / 6
    flow = diagonal_flow(X, y)
    np.testing.assert_allclose(flow(0, flow.pack(u=u, v=v)),
                               np.concatenate([-2 * u * g, 2 * v * g]), rtol=EXACT_RTOL)


def test_minnorm_vanishes_at_kkt_points(rng):
    # regression: θ* = X⁺y = Xᵀλ* with λ* = (XXᵀ)^{-1} y is an equilibrium (β = α = 1)
    X = rng.standard_normal((3, 5))
    y = rng.standard_normal(3)
    lam = np.linalg.solve(X @ X.T, y)
    flow = minnorm_flow(X, y)
    out = flow(0, flow.pack(w=X.T @ lam, mu=lam))
    assert np.max(np.abs(out)) <= 1e-12
    # classification: the SVM solution with its certified multipliers (w = Σ λ_i y_i x_i)
    Xc = rng.standard_normal((8, 3))
    yc = np.where(Xc @ np.array([1.0, 2.0, -1.0]) > 0, 1.0, -1.0)
    svm = solve_max_margin(Xc, yc, norm=2)
    flow = minnorm_flow(Xc, yc, loss="logistic")
    out = flow(0, flow.pack(w=svm.w, mu=svm.dual))
    assert np.max(np.abs(out)) <= 1e-6 * (1 + np.linalg.norm(svm.w))     # certificate 1e-6
    # and away from it the flow moves
    assert np.max(np.abs(flow(0, flow.pack(w=2 * svm.w, mu=svm.dual)))) > 0.1


def test_minnorm_projection_keeps_inactive_multipliers_at_zero(rng):
    Xc = np.array([[2.0, 0.0], [-2.0, 0.0]])
    yc = np.array([1.0, -1.0])
    flow = minnorm_flow(Xc, yc, loss="exp")
    # q_i = 2w_1 = 4 > 1: constraints slack, λ = 0 must not go negative
    d = flow.unpack(flow(0, flow.pack(w=np.array([2.0, 0.0]), mu=np.zeros(2))))
    np.testing.assert_array_equal(d["mu"], 0.0)


def test_minnorm_old_multiplier_name_still_packs_with_a_deprecation_warning():
    flow = minnorm_flow(np.array([[2.0, 0.0], [-2.0, 0.0]]), np.array([1.0, -1.0]), loss="exp")
    mu = np.array([0.5, 1.5])
    with pytest.warns(DeprecationWarning, match="mu="):
        old = flow.pack(w=np.array([1.0, 2.0]), **{"lambda": mu})
    np.testing.assert_array_equal(old, flow.pack(w=np.array([1.0, 2.0]), mu=mu))
    np.testing.assert_array_equal(flow.unpack(old)["mu"], mu)


@settings(max_examples=5)
@given(separable_data(n=(4, 8), d=(2, 3)))
def test_normalised_flow_keeps_unit_norm_and_raises_margin(data):
    X, y = data
    flow = normalized_flow(X, y, loss="exp")
    svm = solve_max_margin(X, y, norm=2)
    v0 = np.ones(X.shape[1]) / np.sqrt(X.shape[1])
    traj = integrate(flow, flow.pack(w=v0, rho=1.0), (0.0, 1e4), log_time=True)
    v = traj.block("w")
    # ||v|| = 1 is conserved (d/dt ||v||² = −2ρ vᵀ(I − vvᵀ)g = 0)
    assert np.abs(np.linalg.norm(v, axis=1) - 1).max() <= 1e-7
    # the margin of v ends positive and higher than it started, never above the certified max
    # margin (it is a min over examples of a unit-norm direction); not necessarily monotone
    gam = normalized_margin_along(traj, X, y)
    assert gam[-1] > 0 and gam[-1] > gam[0]
    assert gam.max() <= svm.margin * (1 + 1e-6)
    # once θ = ρv fits every example, ρ̇ = −⟨v, ∇𝓛⟩ = Σ −ℓ'(q_i) y_i⟨v, x_i⟩ has the sign of ρ:
    # |ρ| grows (ρ may have crossed 0 from a misclassifying start, then θ = ρv with v flipped)
    fitted = gam[:-1] > 0
    assert np.all(np.diff(np.abs(traj.block("rho")))[fitted] >= -1e-9)


def test_balanced_init_is_balanced(rng):
    init = balanced_init((3, 5, 4, 2), scale=0.7, rng=rng)
    Ws = [init[f"W{l}"] for l in (1, 2, 3)]
    for l in range(2):
        D = Ws[l + 1].T @ Ws[l + 1] - Ws[l] @ Ws[l].T
        assert np.linalg.norm(D) <= 1e-12


@pytest.mark.parametrize("make, match", [
    (lambda X, y, lab: linear_flow(X, y, loss="hinge"), "loss"),
    (lambda X, y, lab: linear_flow(X, y, loss="logistic"), "-1 and \\+1"),
    (lambda X, y, lab: chain_flow(X, y, depth=1), "depth"),
    (lambda X, y, lab: deep_linear_flow(X, y, widths=(3, 2, 1)), "widths"),
    (lambda X, y, lab: linear_flow(X, y, weight_decay=-1.0), "weight_decay"),
    (lambda X, y, lab: minnorm_flow(X, lab, loss="exp", model="mlp"), "model"),
    (lambda X, y, lab: sensing_flow(np.zeros((2, 3, 4)), np.zeros(3), widths=(4, 3)),
     "measurement"),
])
def test_bad_arguments(rng, make, match):
    X, y, _, lab = _data(rng)
    with pytest.raises(ValueError, match=match):
        make(X, y, lab)


def test_wrong_state_shape(rng):
    X, y, _, _ = _data(rng)
    with pytest.raises(ValueError, match="state has shape"):
        linear_flow(X, y)(0.0, np.zeros(5))
