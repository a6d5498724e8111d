"""Tests of solvers.nets: Jacobian vs finite differences, one GD step by hand, the exact PL
inequality, batch/single agreement, run statuses, the width search and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings

from solvers.nets import (
    init_shallow,
    minimal_width,
    shallow_forward,
    shallow_jacobian,
    threshold_width,
    train_shallow,
    train_shallow_batch,
)
from solvers.tolerances import TOLERANCES
from tests.strategies import shallow_problems

#: Central differences with step FD_STEP: ReLU is piecewise linear, so away from kinks the
#: difference is exact up to rounding (~eps·|f|/h ≈ 1e-10); GELU adds O(h²·f''') ≈ 1e-10.
FD_STEP = 1e-5
FD_RTOL = 1e-6
FD_ATOL = 1e-8
#: Agreement of quantities computed twice in float64 by different routes (a few roundings).
ROUND_RTOL = 1e-10
#: The PL inequality is accepted up to the eigensolver's rounding, relative to λ_max.
PL_ATOL = TOLERANCES.pl_rtol


def _sphere(rng, n, d):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_jacobian_matches_central_differences(rng, activation):
    X = _sphere(rng, 7, 4)
    W, a = init_shallow(4, 5, seed=3)
    J = shallow_jacobian(X, W, a, activation=activation)
    theta = np.concatenate([W.ravel(), a])
    assert J.shape == (7, theta.size)

    def f(th):
        return shallow_forward(X, th[:20].reshape(5, 4), th[20:], activation=activation)

    fd = np.empty_like(J)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = FD_STEP
        fd[:, k] = (f(theta + e) - f(theta - e)) / (2 * FD_STEP)
    # no pre-activation within FD_STEP·max|x| of a kink, so ReLU differences are exact
    assert np.min(np.abs(X @ W.T)) > 10 * FD_STEP
    np.testing.assert_allclose(J, fd, rtol=FD_RTOL, atol=FD_ATOL)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_first_step_and_pl_ratio_match_a_hand_computed_gd_step(rng, activation):
    """Step size, gradient and the recorded PL ratio, recomputed from the (FD-checked) Jacobian:
    η = 1/(safety λ_max(J₀J₀ᵀ)/n), ∇𝓛 = J₀ᵀ r₀ / n, θ₁ = θ₀ − η ∇𝓛, 𝓛₁ = ||f(θ₁) − y||²/(2n)."""
    n, d, m, safety = 9, 3, 6, 2.0
    X, y = _sphere(rng, n, d), rng.choice([-1.0, 1.0], n)
    W, a = init_shallow(d, m, seed=5)
    J = shallow_jacobian(X, W, a, activation=activation)
    r = shallow_forward(X, W, a, activation=activation) - y
    eta = 1.0 / (safety * np.linalg.eigvalsh(J @ J.T)[-1] / n)
    grad = J.T @ r / n
    theta1 = np.concatenate([W.ravel(), a]) - eta * grad
    r1 = shallow_forward(X, theta1[:m * d].reshape(m, d), theta1[m * d:],
                         activation=activation) - y
    loss0, loss1 = 0.5 * r @ r / n, 0.5 * r1 @ r1 / n

    run = train_shallow(X, y, m, seed=5, activation=activation, max_steps=3, record_every=1,
                        track_pl=True, safety=safety)
    np.testing.assert_allclose(run.eta, eta, rtol=ROUND_RTOL)
    np.testing.assert_allclose(run.losses[:2], [loss0, loss1], rtol=ROUND_RTOL)
    np.testing.assert_allclose(run.pl_ratio[0], grad @ grad / (2 * loss0), rtol=ROUND_RTOL)
    np.testing.assert_allclose(run.pl_mu[0], np.linalg.eigvalsh(J @ J.T)[0] / n,
                               rtol=ROUND_RTOL, atol=1e-14)


@settings(max_examples=15)
@given(shallow_problems())
def test_pl_inequality_holds_at_every_recorded_step(problem):
    X, y, width, seed, activation = problem
    run = train_shallow(X, y, width, seed=seed, activation=activation, max_steps=200,
                        record_every=10, track_pl=True)
    assert run.pl_mu.size >= 1
    # ||∇𝓛||²/(2𝓛) ≥ λ_min(JJᵀ)/n exactly (∇𝓛 = Jᵀr/n); slack = eigensolver rounding
    assert np.all(run.pl_ratio >= run.pl_mu - PL_ATOL * run.pl_scale)
    assert np.all(run.pl_mu <= run.pl_scale * (1 + ROUND_RTOL))


def test_batch_runs_equal_single_runs(rng):
    seeds = [3, 4, 5]
    Xs = np.stack([_sphere(rng, 12, 5) for _ in seeds])
    ys = rng.choice([-1.0, 1.0], (3, 12))
    batch = train_shallow_batch(Xs, ys, 6, seeds=seeds, max_steps=400, record_every=20)
    for s, run in enumerate(batch):
        single = train_shallow(Xs[s], ys[s], 6, seed=seeds[s], max_steps=400, record_every=20)
        assert (run.status, run.steps) == (single.status, single.steps)
        np.testing.assert_allclose(run.losses, single.losses, rtol=ROUND_RTOL)


def test_statuses(rng):
    X, y = _sphere(rng, 8, 3), rng.choice([-1.0, 1.0], 8)
    ok = train_shallow(X, y, 64, seed=0, max_steps=5000)
    assert ok.status == "converged" and ok.success
    assert ok.final_loss <= TOLERANCES.shallow_loss_tol
    assert ok.losses[-1] == ok.final_loss        # the record ends with the final loss
    short = train_shallow(X, y, 64, seed=0, max_steps=2)
    assert short.status == "budget exhausted" and not short.success and short.steps == 2
    # a width-1 network cannot fit 40 random signs (it has d+1 = 4 parameters): it plateaus
    Xb, yb = _sphere(rng, 40, 3), rng.choice([-1.0, 1.0], 40)
    flat = train_shallow(Xb, yb, 1, seed=0, max_steps=4000)
    assert flat.status == "stalled" and not flat.success and flat.steps < 4000
    boom = train_shallow(X, y, 16, seed=0, max_steps=200, safety=0.01)
    assert boom.status == "diverged" and not boom.success
    json.dumps(ok.to_dict())


def test_threshold_width_by_hand():
    widths = np.array([2, 4, 8, 16])
    succ = np.array([[0, 0, 0, 0], [1, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 1]], dtype=bool)
    # rates 0, .75, .75, 1: at rate .75 every width from 4 on qualifies -> 4
    assert threshold_width(widths, succ, 0.75) == 4
    # at rate 1 only 16 -> 16; if the largest width fails, -1
    assert threshold_width(widths, succ, 1.0) == 16
    assert threshold_width(widths[:3], succ[:3], 1.0) == -1
    # non-monotone: 4 qualifies but 8 does not at rate .8 -> the threshold is 16
    succ2 = succ.copy()
    succ2[1] = True
    assert threshold_width(widths, succ2, 0.8) == 16


def test_minimal_width_is_consistent_with_independent_runs(rng):
    seeds = [0, 1, 2, 3]
    Xs = np.stack([_sphere(rng, 16, 6) for _ in seeds])
    ys = rng.choice([-1.0, 1.0], (4, 16))
    ws = minimal_width(Xs, ys, seeds=seeds, success_rate=0.75, start=4, max_steps=1500,
                       resolution=0.0)
    assert ws.found and ws.status == "found"
    for m, row in zip(ws.widths, ws.successes, strict=True):
        again = [r.success for r in train_shallow_batch(Xs, ys, int(m), seeds=seeds,
                                                        max_steps=1500)]
        assert list(row) == again
    rate = dict(zip(ws.widths.tolist(), ws.rates().tolist(), strict=True))
    assert rate[ws.m_star] >= 0.75
    if ws.lower:
        assert ws.lower == ws.m_star - 1 and rate[ws.lower] < 0.75   # resolution 0: adjacent
    json.dumps(ws.to_dict())


def test_minimal_width_reports_failure(rng):
    Xs = _sphere(rng, 12, 4)[None]
    ys = rng.choice([-1.0, 1.0], (1, 12))
    ws = minimal_width(Xs, ys, seeds=[0], success_rate=1.0, start=2, max_width=8, max_steps=1)
    assert not ws.found and ws.m_star == -1
    assert "raise max_width or max_steps" in ws.status
    assert ws.budget_bound.all()


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"width": 0}, ValueError, "width must be a positive integer"),
    ({"width": 2.5}, ValueError, "width must be a positive integer"),
    ({"activation": "tanh"}, ValueError, "activation must be one of"),
    ({"safety": -1.0}, ValueError, "safety must be positive"),
    ({"loss_tol": "small"}, TypeError, "loss_tol must be a real number"),
    ({"max_steps": 0}, ValueError, "max_steps must be a positive integer"),
    ({"stall_rtol": 1.5}, ValueError, "stall_rtol must be in"),
    ({"seed": -3}, TypeError, "seed must be a non-negative int"),
])
def test_bad_arguments(rng, kwargs, exc, match):
    X, y = _sphere(rng, 5, 2), rng.choice([-1.0, 1.0], 5)
    args = {"width": 3, **kwargs}
    with pytest.raises(exc, match=match):
        train_shallow(X, y, args.pop("width"), **args)


def test_bad_data(rng):
    X = _sphere(rng, 5, 2)
    with pytest.raises(ValueError, match="y has 4 entries but X has 5 rows"):
        train_shallow(X, np.ones(4), 3)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        train_shallow(bad, np.ones(5), 3)
    with pytest.raises(ValueError, match="one seed per data set"):
        train_shallow_batch(X[None], np.ones((1, 5)), 3, seeds=[0, 1])
    with pytest.raises(ValueError, match="Xs must be 3-D"):
        train_shallow_batch(X, np.ones((1, 5)), 3, seeds=[0])
    with pytest.raises(ValueError, match="W has shape"):
        shallow_jacobian(X, np.ones((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match="success_rate must be in"):
        minimal_width(X[None], np.ones((1, 5)), seeds=[0], success_rate=0.0)
