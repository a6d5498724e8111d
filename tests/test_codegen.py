"""Tests for theory.codegen: generated code against subs().evalf(), against a hand-written numpy
right-hand side, CSE on vs off, the Jacobian against finite differences and the entry-wise
sympy Jacobian, numerical stability of the logistic form, parameter validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from scipy.special import expit

from solvers.losses import loss_derivative
from tests.strategies import linear_net_widths
from theory.symbolic import (
    LAM,
    N_EXAMPLES,
    compile_flow,
    deep_linear_net,
    derive_gradient_flow,
    derive_minnorm_flow,
    diagonal_linear_net,
    linear_chain,
    linear_model,
)

# Two float64 evaluations of the same rhs by different operation orders: rounding only
# (depth <= 6, entries O(1)), far above eps = 2.2e-16 and far below any derivation error.
RTOL = 1e-12
ATOL = 1e-13
# Central differences with h = 1e-6: truncation O(h^2 |f'''|) ~ 1e-12, cancellation
# O(eps |f| / h) ~ 1e-10 relative to the Jacobian scale.
FD_H = 1e-6
FD_RTOL = 1e-7


def _data(rng, n, model, loss):
    X = rng.standard_normal((n, model.input_dim))
    if loss == "squared":
        return {"X": X, "Y": rng.standard_normal((n, model.output_dim))}
    return {"X": X, "y": rng.choice([-1.0, 1.0], size=n)}


def _evalf_rhs(flow, params, y, n):
    """The rhs by explicit substitution of numbers into the full symbolic expression + evalf."""
    values = flow.unpack(y)
    rep = {N_EXAMPLES: n}
    for b in flow.block_list:
        rep[b.symbol] = sp.ImmutableMatrix(np.reshape(values[b.name], b.symbol.shape))
    for d in flow.data:
        rows, cols = d.symbol.shape
        rep[d.symbol] = sp.ImmutableMatrix(np.reshape(params[d.name], (n, cols)))
    for h in flow.hyper:
        rep[h] = params[str(h)]
    out = []
    for e in flow.rhs.values():
        ex = sp.ImmutableMatrix(e.xreplace(rep).doit().as_explicit())
        out.append(np.array(ex.evalf(30), dtype=float).ravel())
    return np.concatenate(out)


SUBS_CASES = [
    (deep_linear_net([2, 3, 2]), "squared", False),
    (deep_linear_net([2, 2, 2, 1]), "logistic", True),
    (linear_chain(3, d=2), "exp", False),
    (diagonal_linear_net(2), "logistic", True),
    (linear_model(3), "squared", True),
]


@pytest.mark.parametrize(("model", "loss", "wd"), SUBS_CASES, ids=lambda c: getattr(c, "name", c))
def test_generated_code_matches_subs_evalf(model, loss, wd, rng):
    n = 3
    flow = derive_gradient_flow(model, loss, weight_decay=wd)
    params = _data(rng, n, model, loss)
    if wd:
        params["lam"] = 0.25
    f = compile_flow(flow).bind(**params)
    y = rng.standard_normal(flow.size)
    np.testing.assert_allclose(f(0.0, y), _evalf_rhs(flow, f.params, y, n), rtol=RTOL, atol=ATOL)


def test_minnorm_generated_code_matches_subs_evalf(rng):
    n = 3
    flow = derive_minnorm_flow(linear_chain(2, d=2), task="regression", n=n)
    params = {"X": rng.standard_normal((n, 2)), "Y": rng.standard_normal(n), "alpha": 0.7,
              "beta": 1.3}
    f = compile_flow(flow).bind(**params)
    y = rng.standard_normal(flow.size)
    np.testing.assert_allclose(f(0.0, y), _evalf_rhs(flow, f.params, y, n), rtol=RTOL, atol=ATOL)


# --- a hand-written vectorised numpy reference (independent of theory and of solvers.flows) ----
def _hand_deep_linear(Ws, X, target, loss, lam=0.0):
    """W_l' = -(W_L..W_{l+1})^T G (W_{l-1}..W_1)^T - lam W_l with G = dL/dE, E = W_L..W_1."""
    n = X.shape[0]
    prefix = [Ws[0]]
    for W in Ws[1:]:
        prefix.append(W @ prefix[-1])
    E = prefix[-1]
    F = X @ E.T
    if loss == "squared":
        G = (F - target).T @ X / n  # (1/2n)||F - Y||^2
    else:
        y = target.reshape(-1, 1)
        ell_p = -expit(-y * F) if loss == "logistic" else -np.exp(-y * F)
        G = (y * ell_p).T @ X
    out = []
    suffix = None
    grads = [None] * len(Ws)
    for l in range(len(Ws) - 1, -1, -1):
        left = G if suffix is None else suffix.T @ G
        grads[l] = left @ prefix[l - 1].T if l > 0 else left
        suffix = Ws[l] if suffix is None else suffix @ Ws[l]
    for W, g in zip(Ws, grads, strict=True):
        out.append((-g - lam * W).ravel())
    return np.concatenate(out)


@pytest.mark.parametrize("loss", ["squared", "logistic", "exp"])
@pytest.mark.parametrize("widths", [[3, 4, 1], [2, 3, 3, 2, 1], [4, 1]], ids=str)
def test_generated_matches_hand_written_numpy(widths, loss, rng):
    if loss != "squared" and widths[-1] != 1:
        pytest.skip("classification needs one output")
    m = deep_linear_net(widths)
    n = 7
    params = _data(rng, n, m, loss)
    params["lam"] = 0.1
    cf = compile_flow(derive_gradient_flow(m, loss, weight_decay=True), jacobian=False)
    y = rng.standard_normal(cf.size) * 0.5
    Ws = list(cf.unpack(y).values())
    target = params["Y"] if loss == "squared" else params["y"]
    ref = _hand_deep_linear(Ws, params["X"], target, loss, lam=0.1)
    np.testing.assert_allclose(cf.rhs(0.0, y, params), ref, rtol=RTOL, atol=ATOL)


@settings(max_examples=5)
@given(widths=linear_net_widths(depth=(1, 3), width=(1, 3)))
def test_generated_matches_hand_written_property(widths):
    rng = np.random.default_rng(sum(widths))
    m = deep_linear_net(widths)
    params = _data(rng, 5, m, "squared")
    cf = compile_flow(derive_gradient_flow(m, "squared"), jacobian=False)
    y = rng.standard_normal(cf.size) * 0.5
    ref = _hand_deep_linear(list(cf.unpack(y).values()), params["X"], params["Y"], "squared")
    np.testing.assert_allclose(cf.rhs(0.0, y, params), ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("model", "loss"),
    [(deep_linear_net([2, 3, 2, 1]), "logistic"), (linear_chain(4, d=2), "squared"),
     (diagonal_linear_net(3), "exp")],
    ids=lambda c: getattr(c, "name", c),
)
def test_cse_on_and_off_agree(model, loss, rng):
    flow = derive_gradient_flow(model, loss, weight_decay=True)
    params = {**_data(rng, 6, model, loss), "lam": 0.2}
    on, off = compile_flow(flow, cse=True), compile_flow(flow, cse=False)
    y = rng.standard_normal(flow.size) * 0.6
    np.testing.assert_allclose(on.rhs(0, y, params), off.rhs(0, y, params), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(on.jac(0, y, params), off.jac(0, y, params), rtol=RTOL, atol=ATOL)
    assert on.source != off.source


@pytest.mark.parametrize(
    ("model", "loss"),
    [(deep_linear_net([2, 2, 1]), "logistic"), (linear_chain(3, d=1), "exp"),
     (diagonal_linear_net(2), "squared"), (deep_linear_net([1, 2, 2]), "squared")],
    ids=lambda c: getattr(c, "name", c),
)
def test_jacobian_matches_entrywise_sympy_jacobian_and_finite_differences(model, loss, rng):
    n = 2
    params = {**_data(rng, n, model, loss), "lam": 0.3}
    fm = compile_flow(derive_gradient_flow(model, loss, weight_decay=True)).bind(**params)
    fe = compile_flow(
        derive_gradient_flow(model, loss, weight_decay=True, method="entrywise", n=n)
    ).bind(**params)
    y = rng.standard_normal(len(fm.pack({k: np.zeros(s) for k, s in fm.blocks.items()})))
    J = fm.jac(0.0, y)
    # exact second method: sympy's .jacobian of the entry-wise rhs
    np.testing.assert_allclose(J, fe.jac(0.0, y), rtol=RTOL, atol=ATOL)
    I = np.eye(y.size)
    fd = np.array([(fm(0, y + FD_H * e) - fm(0, y - FD_H * e)) / (2 * FD_H) for e in I]).T
    np.testing.assert_allclose(J, fd, rtol=0, atol=FD_RTOL * max(1.0, np.abs(J).max()))


def test_minnorm_classification_jacobian_matches_finite_differences(rng):
    n = 4
    flow = derive_minnorm_flow(deep_linear_net([2, 2, 1]), task="classification", n=n)
    f = compile_flow(flow).bind(X=rng.standard_normal((n, 2)),
                                y=rng.choice([-1.0, 1.0], size=n), alpha=1.0, beta=0.5)
    y = rng.standard_normal(flow.size)
    y[-n:] = np.abs(y[-n:]) + 0.1  # multipliers strictly positive: away from the projection kink
    J = f.jac(0.0, y)
    fd = np.array(
        [(f(0, y + FD_H * e) - f(0, y - FD_H * e)) / (2 * FD_H) for e in np.eye(y.size)]
    ).T
    np.testing.assert_allclose(J, fd, rtol=0, atol=FD_RTOL * max(1.0, np.abs(J).max()))


@pytest.mark.parametrize("loss", ["logistic", "exp"])
def test_classification_code_is_stable_at_extreme_margins(loss):
    # margins q = +-800: naive log(1 + exp(-q)) / 1/(1+exp(q)) overflow; the generated code must
    # give -ell'(q) exactly as solvers.losses does (expit / exp in the log domain)
    X = np.array([[1.0], [1.0]])
    y = np.array([1.0, -1.0])
    cf = compile_flow(derive_gradient_flow(linear_model(1), loss), jacobian=False)
    for w in (800.0, -0.5):
        q = y * (X[:, 0] * w)
        with np.errstate(over="raise"):
            if loss == "exp" and np.max(-q) > 700:
                continue  # the exp-loss gradient itself is not representable there
            got = cf.rhs(0.0, np.array([w]), {"X": X, "y": y})
        expected = -np.sum(y * loss_derivative(q, loss) * X[:, 0])  # w' = -sum y_i ell'(q_i) x_i
        np.testing.assert_allclose(got, [expected], rtol=RTOL, atol=0)
    if loss == "logistic":
        # at q = (800, -800): ell'(800) ~ -e^{-800} underflows to 0, ell'(-800) = -1 exactly
        got = cf.rhs(0.0, np.array([800.0]), {"X": X, "y": y})
        assert np.isfinite(got).all() and got[0] == pytest.approx(-1.0, abs=0)


def test_source_docstring_and_layout():
    cf = compile_flow(derive_gradient_flow(deep_linear_net([2, 3, 1]), "logistic"))
    assert "W1: y[0:6] reshaped to (3, 2)" in cf.source
    assert "'y': (n,) labels" in cf.source
    assert "_expit(" in cf.source and "@" in cf.source  # stable sigmoid, matrix products
    assert cf.rhs.__doc__ is not None and "State layout" in cf.rhs.__doc__
    json.dumps(cf.to_dict())
    assert cf.blocks == {"W1": (3, 2), "W2": (1, 3)}


def test_bound_flow_integrates_with_solve_ivp(rng):
    # A BoundFlow drives scipy's stiff solver with the generated Jacobian; the loss decreases
    from scipy.integrate import solve_ivp

    m = deep_linear_net([2, 2, 1])
    X, Y = rng.standard_normal((5, 2)), rng.standard_normal((5, 1))
    f = compile_flow(derive_gradient_flow(m, "squared")).bind(X=X, Y=Y)
    y0 = rng.standard_normal(6) * 0.5
    sol = solve_ivp(f, (0, 2.0), y0, method="Radau", jac=f.jac, rtol=1e-8, atol=1e-10)
    assert sol.success

    def loss(y):
        W = f.unpack(y)
        return 0.5 * np.mean(np.sum((X @ W["W1"].T @ W["W2"].T - Y) ** 2, axis=1))

    assert loss(sol.y[:, -1]) < loss(y0)


def test_bind_validates_params(rng):
    cf = compile_flow(derive_gradient_flow(deep_linear_net([2, 2, 1]), "logistic",
                                           weight_decay=True))
    X = rng.standard_normal((4, 2))
    y = np.array([1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="missing \\['lam'\\]"):
        cf.bind(X=X, y=y)
    with pytest.raises(ValueError, match="unexpected \\['Y'\\]"):
        cf.bind(X=X, y=y, lam=0.1, Y=y)
    with pytest.raises(ValueError, match="shape \\(n, 2\\)"):
        cf.bind(X=X.T, y=y, lam=0.1)
    with pytest.raises(ValueError, match="labels in"):
        cf.bind(X=X, y=np.array([1.0, 0.0, 1.0, 1.0]), lam=0.1)
    with pytest.raises(ValueError, match="n = 4"):
        cf.bind(X=X, y=y[:3], lam=0.1)
    with pytest.raises(ValueError, match=">= 0"):
        cf.bind(X=X, y=y, lam=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        cf.bind(X=np.full((4, 2), np.nan), y=y, lam=0.1)
    with pytest.raises(ValueError, match="missing 'lam'"):
        cf.rhs(0.0, np.zeros(4), {"X": X, "y": y})
    with pytest.raises(TypeError, match="GradientFlow"):
        compile_flow("not a flow")
    assert LAM.name == "lam"


def test_compiled_without_jacobian_integrates_with_implicit_methods(rng):
    # issue 13 item 4: BoundFlow.jac must be None (not a callable that raises) without a Jacobian,
    # so implicit methods fall back to finite differences
    from solvers import integrate

    m = deep_linear_net([2, 3, 1])
    params = _data(rng, 5, m, "squared")
    with_jac = compile_flow(derive_gradient_flow(m, "squared")).bind(**params)
    without = compile_flow(derive_gradient_flow(m, "squared"), jacobian=False).bind(**params)
    assert without.jac is None and callable(with_jac.jac)
    y0 = 0.5 * rng.standard_normal(without.size)
    a = integrate(without, y0, (0.0, 5.0), method="Radau", rtol=1e-10, atol=1e-12)
    b = integrate(with_jac, y0, (0.0, 5.0), method="Radau", rtol=1e-10, atol=1e-12)
    # two runs of one ODE at rtol 1e-10: agreement well above the integrator's tolerance
    np.testing.assert_allclose(a.states[-1], b.states[-1], rtol=1e-7, atol=1e-9)
