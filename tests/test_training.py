"""Tests of solvers.nets against certified max-margin programs (solvers.programs),
conservation laws with their O(lr) discretisation error, and the Lyu & Li / Tsilivis et al.
monotonicity claims."""

from __future__ import annotations

import json

import numpy as np
import pytest

from solvers.errors import IntegrationError, NotFeasibleError
from solvers.nets import HomogeneousMLP, layer_balance, margins, train
from solvers.programs import solve_max_margin

# The max-margin programs are certified to TOLERANCES.certificate_rtol = 1e-6; the direction errors
# asserted below (≥ 1e-2) are far above it, so solver error cannot decide a test.
DIRECTION_TOL = 3e-2
# Rounding-level checks (a few float64 operations, n ≤ 20 examples).
RTOL, ATOL = 1e-12, 1e-14


@pytest.fixture
def linear_data():
    """12 points in R³ separable through the origin by u = (1, -2, 0.5) with a gap ≥ 0.3."""
    rng = np.random.default_rng(1)
    u = np.array([1.0, -2.0, 0.5])
    X = rng.standard_normal((12, 3))
    y = np.sign(X @ u)
    X += 0.3 * y[:, None] * u / np.linalg.norm(u)
    return X, y


@pytest.fixture
def relu_data():
    """Labels of a random 2-layer teacher, keeping points with |f| > 0.1 (no ties)."""
    rng = np.random.default_rng(3)
    teacher = HomogeneousMLP.random((3, 6, 1), rng=rng)
    X = rng.standard_normal((20, 3))
    f = teacher.forward(X)
    keep = np.abs(f) > 0.1
    return X[keep], np.sign(f[keep]), HomogeneousMLP.random((3, 10, 1), rng=rng)


def _linear(d, value=0.01):
    return HomogeneousMLP((np.full((1, d), value),), activation="linear")


@pytest.mark.parametrize("method,norm,lr", [("gd", 2, 0.5), ("sign", np.inf, 0.2),
                                            ("coordinate", 1, 0.2)])
def test_steepest_descent_converges_in_direction_to_the_lp_max_margin(linear_data, method, norm,
                                                                     lr):
    # Gunasekar et al. 2018 / Tsilivis et al. 2024 (Soudry et al. 2018 for ℓ2): on a linear model
    # steepest descent w.r.t. ||·||_p converges in direction to the ℓp max-margin solution. The
    # rate is slow (O(1/log t) for GD), so check a trend: the error shrinks with the horizon, and
    # is small at the end. Reference: the certified program of solvers.programs.
    X, y = linear_data
    sol = solve_max_margin(X, y, norm=norm)
    errs, gaps = [], []
    for steps in (300, 3000):
        r = train(_linear(3), X, y, method=method, steps=steps, lr=lr, record_every=steps)
        assert r.status == "completed"
        w = r.net.flat()
        errs.append(np.linalg.norm(w / np.linalg.norm(w, ord=norm) - sol.direction, ord=norm))
        gaps.append(sol.margin - r.history.normalized_margin[-1])
    assert errs[1] < 0.5 * errs[0]
    assert errs[1] < DIRECTION_TOL
    # the normalised margin never exceeds the maximum (up to the certificate tolerance)
    assert -1e-6 * sol.margin <= gaps[1] < gaps[0]


@pytest.mark.parametrize("method", ["sign", "coordinate"])
def test_algorithms_own_smoothed_margin_increases_once_fitted(linear_data, method):
    # Tsilivis, Vardi & Kempe 2024: once the data are fitted, the smoothed margin in the
    # algorithm's norm is non-decreasing along the steepest-descent flow. With discrete steps the
    # total decrease is a discretisation error that must vanish as lr → 0 (measured: ≈ lr²).
    X, y = linear_data
    neg = []
    for lr in (0.2, 0.05):
        r = train(_linear(3), X, y, method=method, steps=int(100 / lr), lr=lr, record_every=1)
        h = r.history
        fitted = h.q_min > 0
        s = h.smoothed_margin_alg[fitted]
        neg.append(float(-np.minimum(np.diff(s), 0.0).sum()))
        assert s[-1] > s[0]
        assert h.norm == {"sign": np.inf, "coordinate": 1.0}[method]
    assert neg[1] <= 0.25 * neg[0] + 1e-12


def test_minnorm_reaches_the_svm_itself_with_its_multipliers(linear_data):
    # docs/theory.md §8 (Bansal et al. 2018): the primal–dual flow with β = 1 has the KKT points of
    # min ½||w||² s.t. y_i⟨w, x_i⟩ ≥ 1 as equilibria; on a linear model (strongly convex) it
    # converges to the SVM w* and its multipliers λ* (exponentially fast). Reference: the
    # certified program's w and dual.
    X, y = linear_data
    sol = solve_max_margin(X, y, norm=2)
    r = train(_linear(3), X, y, method="minnorm", steps=3000, lr=0.05, record_every=1000)
    np.testing.assert_allclose(r.net.flat(), sol.w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r.multipliers, sol.dual, rtol=1e-6, atol=1e-6)


def test_smoothed_margin_non_decreasing_along_small_step_gd(relu_data):
    # Lyu & Li 2019, Theorem 4.1 (gradient flow; GD with small steps): once 𝓛 < 1 (exp loss) the
    # smoothed margin γ̃ = log(1/𝓛)/ρ^L is non-decreasing. Start where log 𝓛 < -1, plain small
    # steps (measured: no decrease at all for lr ≤ 0.04 on this problem).
    X, y, net = relu_data
    pre = train(net, X, y, method="gd", steps=600, lr=0.01, record_every=600)
    assert pre.history.log_loss[-1] < -1.0
    r = train(pre.net, X, y, method="gd", adaptive=False, steps=2000, lr=0.04, record_every=1)
    s = r.history.smoothed_margin
    assert r.n_rejected == 0
    assert np.all(np.diff(s) >= -1e-12 * np.abs(s[1:]))
    assert s[-1] > s[0]


def test_layer_balance_drift_is_first_order_in_lr(relu_data):
    # Du, Hu & Lee 2018: ||W_2||² − ||W_1||² is conserved by gradient flow; GD with step η drifts
    # by O(η) over a fixed flow time T (O(η²) per step × T/η steps). Halving η must halve the
    # drift (measured ratios 2.08, 2.04).
    X, y, net = relu_data
    T = 2.0
    drift = []
    for lr in (0.02, 0.01):
        r = train(net, X, y, method="gd", adaptive=False, steps=int(round(T / lr)), lr=lr,
                  loss="logistic", record_every=10**6)
        assert r.n_rejected == 0
        np.testing.assert_allclose(np.exp(r.history.log_time[-1]), T, rtol=1e-12)
        drift.append(abs(float(layer_balance(r.net)[0] - layer_balance(net)[0])))
    assert 1.7 < drift[0] / drift[1] < 2.3


def test_late_phase_far_below_underflow(relu_data):
    # The loss-based step reaches 𝓛 < 1e-300 in a few thousand steps (here 2500); every recorded
    # quantity stays finite, and the Lyu & Li sandwich γ̄ − ρ^{−L} log n ≤ γ̃ ≤ γ̄ holds at each
    # record.
    X, y, net = relu_data
    r = train(net, X, y, method="gd", steps=2500, lr=0.05, record_every=50)
    h = r.history
    assert h.log_loss[-1] < np.log(1e-300)
    for name in ("log_loss", "q_min", "normalized_margin", "smoothed_margin", "rho"):
        assert np.all(np.isfinite(getattr(h, name))), name
    gap = np.log(X.shape[0]) / h.rho**2
    slack = 1e-10 * np.abs(h.normalized_margin_l2)
    assert np.all(h.smoothed_margin <= h.normalized_margin_l2 + slack)
    assert np.all(h.normalized_margin_l2 - gap - slack <= h.smoothed_margin)
    # Euler's identity ⟨∇q_i, θ⟩ = L q_i at the trained network (docs/theory.md §7)
    J = r.net.per_example_gradients(X)
    q = margins(r.net, X, y)
    np.testing.assert_allclose(y * (J @ r.net.flat()), 2 * q, rtol=1e-10)


def test_kkt_hook_and_history_records(relu_data):
    X, y, net = relu_data
    calls = []

    def kkt_fn(cur):
        calls.append(1)
        if min(margins(cur, X, y)) <= 0:
            raise NotFeasibleError("misclassified")
        return float(np.linalg.norm(cur.flat()))  # any float: the hook only records it

    r = train(net, X, y, method="gd", steps=40, lr=0.05, record_every=5, kkt_every=10,
              kkt_fn=kkt_fn)
    h = r.history
    assert h.step.tolist() == list(range(0, 41, 5))
    on = h.step % 10 == 0
    assert len(calls) == int(on.sum())
    assert np.all(np.isnan(h.kkt_residual[~on]))
    feasible = on & (h.q_min > 0)
    np.testing.assert_allclose(h.kkt_residual[feasible], h.rho[feasible], rtol=RTOL)
    assert np.all(np.isnan(h.kkt_residual[on & (h.q_min <= 0)]))
    assert h.layer_norms.shape == (len(h), 2)
    json.dumps(r.to_dict())
    assert r.history.time.shape == (len(h),)


def test_divergence_raises_with_partial_history(linear_data):
    X, y = linear_data
    net = HomogeneousMLP.random((3, 4, 1), seed=0)
    with pytest.raises(IntegrationError, match="diverged") as info:
        train(net, X, y, method="gd", adaptive=False, backtrack=False, steps=50, lr=1e200)
    assert info.value.trajectory is not None


def test_bad_arguments_are_named(linear_data):
    X, y = linear_data
    net = _linear(3)
    with pytest.raises(ValueError, match="method must be one of"):
        train(net, X, y, method="adam")
    with pytest.raises(ValueError, match="adaptive='loss' does not apply"):
        train(net, X, y, method="minnorm", adaptive=True)
    with pytest.raises(ValueError, match="kkt_every was given without kkt_fn"):
        train(net, X, y, kkt_every=5)
    with pytest.raises(ValueError, match="lr must be"):
        train(net, X, y, lr=-1.0)
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        train(net, X, (y + 1) / 2)
    with pytest.raises(ValueError, match="loss must be one of"):
        train(net, X, y, loss="hinge")
    with pytest.raises(ValueError, match="expects d_0 = 3"):
        train(net, X[:, :2], y)


def test_loss_norm_step_coincides_with_loss_step_for_linear_models(linear_data):
    # η_k = s/(𝓛 ρ^{2L-2}) reduces to s/𝓛 when L = 1: the two runs are the same computation.
    X, y = linear_data
    a = train(_linear(3), X, y, steps=200, lr=0.5, adaptive="loss", record_every=50)
    b = train(_linear(3), X, y, steps=200, lr=0.5, adaptive="loss_norm", record_every=50)
    np.testing.assert_array_equal(a.net.flat(), b.net.flat())


def test_loss_norm_step_is_stable_and_keeps_the_smoothed_margin_monotone(relu_data):
    # For L = 2 the curvature-matched step never needs backtracking here, and along it the
    # smoothed margin is non-decreasing once 𝓛 < 1 (Lyu & Li 2019, Thm 4.1, small steps;
    # measured: no decrease at lr = 0.1, a total decrease of 8e-7 at lr = 0.2).
    X, y, net = relu_data
    r = train(net, X, y, method="gd", adaptive="loss_norm", steps=2000, lr=0.1, record_every=1)
    h = r.history
    assert r.n_rejected == 0
    s = h.smoothed_margin[h.log_loss < 0]
    assert s.size > 100
    assert np.all(np.diff(s) >= -1e-12 * np.abs(s[1:]))
    # the recorded step is the documented rule: log η_k = log lr − log 𝓛 − 2 log ρ (L = 2)
    expected = np.log(0.1) - h.log_loss[:-1] - 2 * np.log(h.rho[:-1])
    np.testing.assert_allclose(h.log_lr[:-1], expected, rtol=1e-12)


# ------------------------------------------------------------------ roll-back schedule (issue 11.4)
def test_rollback_schedule_decreases_the_loss_and_reaches_the_kkt_regime():
    # Lyu & Li's loss-based schedule with roll-back: every recorded step (record_every=1) must
    # strictly decrease log 𝓛 (rejected steps are never taken), and on this small 2-layer net
    # the run reaches ε/||θ̃|| below the KKT tolerance TOLERANCES.kkt_eps_tol (0.01; measured
    # 2.1e-3 after 3000 steps, while adaptive='loss' — lr/𝓛 capped at lr — stops at 2.5e-2).
    from solvers.nets.kkt import check_kkt
    from solvers.tolerances import TOLERANCES

    gen = np.random.default_rng(0)
    X = gen.standard_normal((16, 2))
    y = np.sign(X @ np.array([1.0, -0.5]))
    net = HomogeneousMLP.random([2, 8, 1], rng=gen, scale=0.5)
    res = train(net, X, y, method="gd", loss="exp", steps=3000, lr=0.05, adaptive="rollback",
                record_every=1)
    assert res.status == "completed" and res.n_rejected > 0  # the roll-back was exercised
    ll = np.asarray(res.history.log_loss)
    assert ll.size == 3001 and np.all(np.diff(ll) < 0)
    rep = check_kkt(res.net, X, y, loss="exp")
    assert rep.epsilon_relative <= TOLERANCES.kkt_eps_tol and rep.is_kkt


def test_rollback_needs_backtracking_and_a_shrink_above_one():
    net = HomogeneousMLP.random([2, 3, 1], seed=0)
    X = np.eye(2)
    y = np.array([1.0, -1.0])
    with pytest.raises(ValueError, match="adaptive='rollback' .* needs backtrack=True"):
        train(net, X, y, adaptive="rollback", backtrack=False, steps=1)
    with pytest.raises(ValueError, match="lr_shrink must be > 1; got 1.0"):
        train(net, X, y, adaptive="rollback", lr_shrink=1.0, steps=1)


# ------------------------------------------------------------------ multi-class losses (issue 11.1)
@pytest.mark.parametrize("loss", ["logistic", "exp"])
def test_multiclass_step_is_minus_lr_times_the_finite_difference_gradient(loss):
    # one plain GD step (adaptive=False, no backtracking) must move θ by −lr ∇𝓛, with ∇𝓛 of the
    # cross-entropy / multi-class exp loss computed independently by central differences of
    # exp(multiclass_log_loss) (h = 1e-6: truncation O(h²) ~1e-12, rounding ~1e-10 relative)
    from solvers.nets import class_margins, multiclass_log_loss

    gen = np.random.default_rng(3)
    net = HomogeneousMLP.random([3, 5, 4], rng=gen)
    X = gen.standard_normal((7, 3))
    y = gen.integers(0, 4, 7)

    def L_of(theta):
        return np.exp(multiclass_log_loss(class_margins(net.with_flat(theta).outputs(X), y),
                                          loss))

    theta = net.flat()
    h = 1e-6
    grad = np.array([(L_of(theta + h * e) - L_of(theta - h * e)) / (2 * h)
                     for e in np.eye(theta.size)])
    res = train(net, X, y, method="gd", loss=loss, steps=1, lr=1e-3, adaptive=False,
                backtrack=False)
    np.testing.assert_allclose(res.net.flat() - theta, -1e-3 * grad, rtol=1e-6,
                               atol=1e-9 * np.abs(1e-3 * grad).max())


def test_multiclass_rollback_training_fits_and_decreases_the_loss():
    from solvers.nets import margins

    gen = np.random.default_rng(1)
    teacher = HomogeneousMLP.random([3, 6, 3], rng=gen)
    X = gen.standard_normal((24, 3))
    y = teacher.outputs(X).argmax(axis=1)
    net = HomogeneousMLP.random([3, 10, 3], rng=gen, scale=0.5)
    res = train(net, X, y, method="gd", loss="logistic", steps=400, lr=0.05,
                adaptive="rollback", record_every=1)
    ll = np.asarray(res.history.log_loss)
    assert np.all(np.diff(ll) < 0)
    assert res.history.q_min[-1] == pytest.approx(margins(res.net, X, y).min(), rel=1e-12)
    with pytest.raises(ValueError, match="y must hold class indices 0…2"):
        train(net, X, np.where(y == 0, -1, y), steps=1)
