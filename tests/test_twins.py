"""Twin tests (issue 13): every flow kind × model, compiled symbolic RHS vs hand-written RHS.

For gradient flow, weight decay, Minnorm (regression and classification), the normalised flow of
Banburski et al. and the polar form of gradient flow, on the linear model, the linear chain, the
deep linear net and the diagonal net, ``theory.compile_flow(theory.derive_*_flow(...)).bind(...)``
and the ``solvers.*_flow(...)`` twin must

- have the same model name, the same blocks (names, shapes, order) and the same ``pack``/``unpack``;
- give the same velocity at random states, to rounding.

Matrix sensing has no symbolic twin (``theory.symbolic`` has no sensing loss), so it is not here.

Tolerance: both sides evaluate the same formula in float64 in a different order of operations
(generated straight-line code after CSE vs hand-written products), so they agree to a few ulps of
the largest term; ``TWIN_RTOL = 1e-12`` relative to the norm of the velocity (with the states and
data of order 1 used here, cancellation is at most a factor ~10-100 above eps = 2.2e-16).
"""

from __future__ import annotations

import numpy as np
import pytest

import solvers
import theory
from solvers import flows
from theory.reports import MODELS as REPORT_MODELS

TWIN_RTOL = 1e-12
"""Norm-relative agreement of the two float64 evaluations of one formula (see module docstring)."""

D, N = 3, 7
MODELS = {
    "linear": (lambda: theory.linear_model(D), {}),
    "linear_chain": (lambda: theory.linear_chain(3, D), {"depth": 3}),
    "deep_linear": (lambda: theory.deep_linear_net([D, 4, 2, 1]), {"widths": (D, 4, 2, 1)}),
    "diagonal": (lambda: theory.diagonal_linear_net(D), {}),
}
GRADIENT_FACTORIES = {
    "linear": flows.linear_flow, "linear_chain": flows.chain_flow,
    "deep_linear": flows.deep_linear_flow, "diagonal": flows.diagonal_flow,
}


def _data(loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    if loss == "squared":
        return X, rng.standard_normal(N)
    return X, np.where(rng.standard_normal(N) > 0, 1.0, -1.0)


def _bind(flow, X, y, **hyper):
    key = "Y" if any(d.name == "Y" for d in flow.data) else "y"
    return theory.compile_flow(flow).bind(X=X, **{key: y}, **hyper)


def _assert_twins(gen, hand, states):
    assert gen.model == hand.model
    assert gen.blocks == hand.blocks                     # same names, shapes and order
    assert gen.size == hand.size
    for s in states:
        blocks = hand.unpack(s)
        np.testing.assert_array_equal(gen.pack(blocks), s)       # one pack/unpack convention
        np.testing.assert_array_equal(hand.pack(**gen.unpack(s)), s)
        a, b = gen(0.0, s), hand(0.0, s)
        err = np.linalg.norm(a - b) / np.linalg.norm(b)
        assert err <= TWIN_RTOL, (gen.compiled.flow.kind, hand.model, err)


def _states(size, rng, count=4):
    return [rng.standard_normal(size) for _ in range(count)]


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("loss", ["squared", "logistic", "exp"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_gradient_and_weight_decay_twins(model, loss, weight_decay, rng):
    make, kw = MODELS[model]
    X, y = _data(loss)
    sym = theory.derive_gradient_flow(make(), loss, weight_decay=bool(weight_decay))
    gen = _bind(sym, X, y, **({"lam": weight_decay} if weight_decay else {}))
    hand = GRADIENT_FACTORIES[model](X, y, loss=loss, weight_decay=weight_decay, **kw)
    _assert_twins(gen, hand, _states(hand.size, rng))


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_minnorm_twins(model, task, rng):
    make, kw = MODELS[model]
    loss = "squared" if task == "regression" else "exp"
    X, y = _data(loss)
    gen = _bind(theory.derive_minnorm_flow(make(), task=task, n=N), X, y, alpha=0.7, beta=1.3)
    hand = flows.minnorm_flow(X, y, model=model, loss=loss, alpha=0.7, beta=1.3, **kw)
    assert list(hand.blocks)[-1] == "mu"
    # the projected (classification) flow lives on mu >= 0: solvers uses max(mu, 0) in the
    # primal equation, theory uses mu, which agree there (and the projection keeps mu >= 0)
    states = []
    for s in _states(hand.size, rng):
        s[-N:] = np.abs(s[-N:]) if task == "classification" else s[-N:]
        s[-2] = 0.0                       # one multiplier on the boundary of the projection
        states.append(s)
    _assert_twins(gen, hand, states)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("kind", ["normalized", "polar"])
@pytest.mark.parametrize("loss", ["exp", "logistic"])
def test_normalized_and_polar_twins(model, kind, loss, rng):
    make, kw = MODELS[model]
    X, y = _data(loss)
    derive = theory.derive_normalized_flow if kind == "normalized" else theory.derive_polar_flow
    factory = solvers.normalized_flow if kind == "normalized" else solvers.polar_flow
    gen = _bind(derive(make(), loss), X, y)
    hand = factory(X, y, model=model, loss=loss, **kw)
    assert list(hand.blocks)[-1] == "rho" and hand.blocks["rho"] == ()
    states = []
    for s in _states(hand.size, rng):
        s[:-1] /= np.linalg.norm(s[:-1])          # v on the unit sphere
        s[-1] = 2.0 + abs(s[-1])                  # rho > 0, away from 1 (rho = 1 hides rho^2)
        states.append(s)
    _assert_twins(gen, hand, states)


@pytest.mark.parametrize("model", list(MODELS))
def test_normalized_direction_is_rho_squared_times_polar(model, rng):
    # issue 13 item 1: the two ODEs have the same rho' and direction fields differing by rho^2
    make, kw = MODELS[model]
    X, y = _data("exp")
    nf = flows.normalized_flow(X, y, model=model, loss="exp", **kw)
    pf = _bind(theory.derive_polar_flow(make(), "exp"), X, y)
    s = rng.standard_normal(nf.size)
    s[:-1] /= np.linalg.norm(s[:-1])
    s[-1] = rho = 2.5
    a, b = nf(0.0, s), pf(0.0, s)
    np.testing.assert_allclose(a[-1], b[-1], rtol=TWIN_RTOL, atol=0)
    np.testing.assert_allclose(a[:-1], rho**2 * b[:-1], rtol=1e-11,
                               atol=TWIN_RTOL * np.linalg.norm(a[:-1]))


def test_polar_flow_is_plain_gradient_flow(rng):
    # the polar form is gradient flow in other coordinates: d/dt (rho v) = -grad L(rho v)
    X, y = _data("logistic")
    pf, gf = flows.polar_flow(X, y, model="deep_linear", widths=(D, 4, 2, 1)), \
        flows.deep_linear_flow(X, y, widths=(D, 4, 2, 1), loss="logistic")
    s = rng.standard_normal(pf.size)
    s[:-1] /= np.linalg.norm(s[:-1])
    s[-1] = rho = 1.9
    d = pf(0.0, s)
    theta_dot = d[-1] * s[:-1] + rho * d[:-1]
    g = gf(0.0, rho * s[:-1])
    assert np.linalg.norm(theta_dot - g) <= TWIN_RTOL * np.linalg.norm(g)


def test_model_vocabulary_is_shared():
    assert flows.MODELS == ("linear", "linear_chain", "deep_linear", "diagonal")
    assert {make().name for make, _ in MODELS.values()} == set(flows.MODELS)
    assert REPORT_MODELS == flows.MODELS
    assert flows.canonical_model("chain") == "linear_chain"        # old solvers spelling
    assert flows.canonical_model("deep-linear") == "deep_linear"   # CLI spelling
    with pytest.raises(ValueError, match="model must be one of"):
        flows.canonical_model("chian")


def test_pack_conventions_agree(rng):
    X, y = _data("squared")
    gen = _bind(theory.derive_minnorm_flow(theory.linear_chain(3, D), task="regression", n=N),
                X, y, alpha=1.0, beta=1.0)
    hand = flows.minnorm_flow(X, y, model="linear_chain", depth=3)
    w, a, mu = rng.standard_normal(D), rng.standard_normal(2), rng.standard_normal(N)
    ref = np.concatenate([w, a, mu])
    for f in (gen, hand):
        np.testing.assert_array_equal(f.pack(w=w, a2=a[0], a3=a[1], mu=mu), ref)
        np.testing.assert_array_equal(f.pack({"w": w, "a2": a[0], "a3": a[1], "mu": mu}), ref)
        np.testing.assert_array_equal(f.pack({"w": w}, a=a, mu=mu), ref)      # vector a
        with pytest.warns(DeprecationWarning, match="mu="):
            np.testing.assert_array_equal(f.pack(w=w, a=a, **{"lambda": mu}), ref)
        with pytest.raises(ValueError, match="both"):
            f.pack({"w": w}, w=w, a=a, mu=mu)
        stack = f.unpack(np.stack([ref, 2 * ref]))
        np.testing.assert_array_equal(stack["a3"], [a[1], 2 * a[1]])
