"""Derived quantities along trajectories (solvers.flows) against direct numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest

from solvers.flows import (
    Trajectory,
    angle_to,
    balanced_init,
    chain_flow,
    chain_imbalance,
    deep_linear_flow,
    diagonal_flow,
    direction_error,
    distance_to,
    effective_rank,
    end_to_end,
    infer_model,
    integrate,
    layer_imbalance,
    linear_flow,
    loss_along,
    margins_along,
    minnorm_flow,
    normalized_flow,
    normalized_margin_along,
    parameter_norms,
)
from solvers.losses import log_loss
from solvers.programs import solve_max_margin

EXACT_RTOL = 1e-12


def _fake(flow, states):
    return Trajectory(times=np.arange(len(states), dtype=float), states=states, blocks=flow.blocks,
                      status="success", message="", method="LSODA", log_time=False, rtol=1e-10,
                      atol=1e-12)


@pytest.fixture
def data(rng):
    X = rng.standard_normal((7, 4))
    return X, rng.standard_normal(7), np.where(X @ np.array([1.0, -1.0, 0.5, 2.0]) > 0, 1.0, -1.0)


def test_end_to_end_for_every_model(rng, data):
    X, y, _ = data
    cases = [
        (linear_flow(X, y), lambda p: p["w"]),
        (chain_flow(X, y, depth=4), lambda p: p["a2"] * p["a3"] * p["a4"] * p["w"]),
        (deep_linear_flow(X, y, widths=(4, 3, 2, 1)), lambda p: p["W3"] @ p["W2"] @ p["W1"]),
        (diagonal_flow(X, y), lambda p: p["u"] ** 2 - p["v"] ** 2),
    ]
    for flow, formula in cases:
        states = rng.standard_normal((3, flow.size))
        B = end_to_end(_fake(flow, states))
        for i in range(3):
            np.testing.assert_allclose(B[i], formula(flow.unpack(states[i])), rtol=EXACT_RTOL)
            # the flow's own map has the objective's shape ((d,) for 1-D targets): same numbers
            np.testing.assert_allclose(B[i].ravel(), flow.end_to_end(states[i]).ravel(),
                                       rtol=EXACT_RTOL)


def test_extra_blocks_rho_and_lambda(rng, data):
    X, _, lab = data
    nf = normalized_flow(X, lab, loss="exp")
    states = rng.standard_normal((2, nf.size))
    assert list(nf.blocks) == ["w", "rho"]                 # rho last, as in theory's flows
    np.testing.assert_allclose(end_to_end(_fake(nf, states)), states[:, -1:] * states[:, :-1],
                               rtol=EXACT_RTOL)
    mf = minnorm_flow(X, lab, loss="exp")
    states = rng.standard_normal((2, mf.size))
    np.testing.assert_allclose(end_to_end(_fake(mf, states)), states[:, :4], rtol=EXACT_RTOL)
    assert infer_model(mf.blocks) == "linear"


def test_loss_and_margins(rng, data):
    X, y, lab = data
    flow = linear_flow(X, lab, loss="logistic")
    states = 50 * rng.standard_normal((3, 4))
    tr = _fake(flow, states)
    q = margins_along(tr, X, lab)
    np.testing.assert_allclose(q, (states @ X.T) * lab, rtol=EXACT_RTOL)
    ll = loss_along(tr, X, lab, loss="logistic", log=True)
    np.testing.assert_allclose(ll, [log_loss(qi, "logistic") for qi in q], rtol=EXACT_RTOL)
    np.testing.assert_allclose(loss_along(tr, X, lab, loss="logistic"),
                               [flow.loss_value(s) for s in states], rtol=1e-10)
    reg = linear_flow(X, y)
    tr = _fake(reg, states)
    np.testing.assert_allclose(loss_along(tr, X, y, loss="squared"),
                               0.5 * np.mean((states @ X.T - y) ** 2, axis=1), rtol=EXACT_RTOL)


def test_normalised_margin_bounded_by_max_margin_and_approaches_it(data):
    X, _, lab = data
    svm = solve_max_margin(X, lab, norm=2)
    flow = linear_flow(X, lab, loss="exp")
    t = np.logspace(1, 60, 10)
    tr = integrate(flow, np.zeros(4), (0.0, 1e60), log_time=True, t_eval=t)
    gam = normalized_margin_along(tr, X, lab)
    # γ(w) = min_i q_i/||w|| <= γ_2 = max over unit directions (docs/theory.md §5), equality at the
    # SVM
    assert np.all(gam <= svm.margin * (1 + 1e-9))
    assert svm.margin - gam[-1] < 0.1 * (svm.margin - gam[0])


def test_parameter_norms(rng, data):
    X, y, _ = data
    flow = deep_linear_flow(X, y, widths=(4, 3, 1))
    states = rng.standard_normal((2, flow.size))
    norms = parameter_norms(_fake(flow, states))
    np.testing.assert_allclose(norms["total"], np.linalg.norm(states, axis=1), rtol=EXACT_RTOL)
    np.testing.assert_allclose(norms["W1"], np.linalg.norm(states[:, :12], axis=1),
                               rtol=EXACT_RTOL)


def test_imbalance_quantities(rng, data):
    X, y, _ = data
    deep = deep_linear_flow(X, y, widths=(4, 3, 3, 1))
    init = balanced_init((4, 3, 3, 1), rng=rng)
    states = np.stack([deep.pack(**init), rng.standard_normal(deep.size)])
    D = layer_imbalance(_fake(deep, states))
    assert len(D) == 2 and D[0].shape == (2, 3, 3)
    assert np.abs(D[0][0]).max() <= 1e-12 and np.abs(D[1][0]).max() <= 1e-12
    p = deep.unpack(states[1])
    np.testing.assert_allclose(D[0][1], p["W2"].T @ p["W2"] - p["W1"] @ p["W1"].T,
                               rtol=EXACT_RTOL)
    chain = chain_flow(X, y, depth=3)
    w, a = rng.standard_normal(4), rng.standard_normal(2)
    C = chain_imbalance(_fake(chain, chain.pack(w=w, a=a)[None, :]))
    np.testing.assert_allclose(C[0], [a[0] ** 2 - w @ w, a[1] ** 2 - a[0] ** 2], rtol=EXACT_RTOL)
    with pytest.raises(ValueError, match="chain"):
        chain_imbalance(_fake(deep, states))
    with pytest.raises(ValueError, match="deep linear"):
        layer_imbalance(_fake(chain, chain.pack(w=w, a=a)[None, :]))


def test_distance_direction_and_angle(data):
    X, y, _ = data
    flow = linear_flow(X, y)
    ref = np.array([1.0, 0.0, 0.0, 0.0])
    eps = 1e-9
    states = np.array([[0.0, 2.0, 0.0, 0.0], [3.0, 3 * np.tan(eps), 0.0, 0.0], [-1.0, 0, 0, 0]])
    tr = _fake(flow, states)
    np.testing.assert_allclose(distance_to(tr, ref), [np.sqrt(5), np.hypot(2, 3 * np.tan(eps)),
                                                      2.0], rtol=EXACT_RTOL)
    np.testing.assert_allclose(angle_to(tr, ref), [np.pi / 2, eps, np.pi], rtol=1e-9)
    np.testing.assert_allclose(direction_error(tr, 5 * ref), [np.sqrt(2), 2 * np.sin(eps / 2), 2],
                               rtol=1e-9)
    with pytest.raises(ValueError, match="zero"):
        direction_error(_fake(flow, np.zeros((1, 4))), ref)
    with pytest.raises(ValueError, match="reference"):
        distance_to(tr, np.ones(3))


def test_effective_rank():
    assert effective_rank(np.diag([1.0, 1.0, 0.0])) == pytest.approx(2.0, rel=EXACT_RTOL)
    assert effective_rank(np.outer([1.0, 2.0], [3.0, 1.0, 1.0])) == pytest.approx(1.0, rel=1e-12)
    assert effective_rank(np.zeros((2, 2))) == 0.0
    # strictly between 1 and 2 for unequal singular values
    assert 1.0 < effective_rank(np.diag([1.0, 0.1])) < 2.0


def test_infer_model_and_type_errors():
    assert infer_model({"W1": (2, 3), "W2": (1, 2)}) == "deep_linear"
    assert infer_model({"rho": (1,), "u": (2,), "v": (2,)}) == "diagonal"
    with pytest.raises(ValueError, match="cannot infer"):
        infer_model({"W2": (2, 3)})
    with pytest.raises(TypeError, match="Trajectory"):
        end_to_end(np.zeros((2, 3)))
