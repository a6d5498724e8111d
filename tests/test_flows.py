"""Tests for theory.flows: hand-derived cases, matrix-level vs entry-wise derivation, weight decay,
Minnorm equilibria at known KKT points, normalized flow as a change of variables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from theory.symbolic import (
    LAM,
    N_EXAMPLES,
    compile_flow,
    deep_linear_net,
    derive_gradient_flow,
    derive_minnorm_flow,
    derive_normalized_flow,
    derive_polar_flow,
    diagonal_linear_net,
    linear_chain,
    linear_model,
)

# float64 evaluations of the same quantity by two methods (a handful of flops): rounding only.
NUM_RTOL = 1e-12
NUM_ATOL = 1e-13


def _explicit(expr, n):
    return sp.ImmutableMatrix(expr.xreplace({N_EXAMPLES: n}).doit().as_explicit())


def test_scalar_chain_squared_loss_hand_derived():
    # f = a w x (chain of depth 2, d = 1); L = (1/2n) sum_i (a w x_i - y_i)^2.
    # By hand: dL/da = (1/n) sum_i (a w x_i - y_i) w x_i, dL/dw = (1/n) sum_i (a w x_i - y_i) a x_i.
    n = 3
    flow = derive_gradient_flow(linear_chain(2, d=1), "squared")
    a, w = flow.model.block("a2").symbol[0, 0], flow.model.block("w").symbol[0, 0]
    X = sp.MatrixSymbol("X", N_EXAMPLES, 1)
    Y = sp.MatrixSymbol("Y", N_EXAMPLES, 1)
    x = [X[i, 0] for i in range(n)]
    y = [Y[i, 0] for i in range(n)]
    a_dot = -sum((a * w * x[i] - y[i]) * w * x[i] for i in range(n)) / n
    w_dot = -sum((a * w * x[i] - y[i]) * a * x[i] for i in range(n)) / n
    rhs = flow.rhs
    got_w = _explicit(rhs["w"], n)[0, 0]
    got_a = _explicit(rhs["a2"], n)[0, 0]
    # compare after mapping matrix elements X[i, 0], Y[i, 0] (any shape) to plain symbols
    assert sp.expand(_plain(got_a, n) - _plain(a_dot, n)) == 0
    assert sp.expand(_plain(got_w, n) - _plain(w_dot, n)) == 0


def _rename(expr, n):
    """Map elements of n-symbolic data matrices (X[i,j] with shape (n, d)) to the concrete ones."""
    rep = {}
    for e in expr.atoms(sp.matrices.expressions.matexpr.MatrixElement):
        p = e.parent
        if p.shape[0] == N_EXAMPLES:
            rep[e] = sp.MatrixSymbol(p.name, n, p.shape[1])[e.i, e.j]
    return expr.xreplace(rep)


def _plain(expr, n):
    """Replace matrix elements X[i, j] (of any shape) by plain symbols X_i_j."""
    elements = expr.atoms(sp.matrices.expressions.matexpr.MatrixElement)
    rep = {e: sp.Symbol(f"{e.parent.name}_{e.i}_{e.j}") for e in elements}
    return expr.xreplace(rep)


def test_deep_linear_rhs_has_theory_form():
    # docs/theory.md §2: W_l' = -(W_L ... W_{l+1})^T G (W_{l-1} ... W_1)^T, G = dL/dE
    flow = derive_gradient_flow(deep_linear_net([2, 3, 4, 1]), "squared")
    W1, W2, W3 = (b.symbol for b in flow.block_list)
    defs = dict(flow.definitions)
    G = next(s for s in defs if s.name == "G")
    rhs = flow.rhs
    full = dict(zip([s for s, _ in flow.definitions], [None] * len(defs), strict=True))
    assert full  # definitions exist: E, prefixes, G, suffixes
    expected_W2 = -(W3.T * _expand_G(flow, G) * W1.T)
    assert (rhs["W2"] - expected_W2).doit().expand().doit() == sp.ZeroMatrix(4, 3)
    expected_W1 = -((W3 * W2).T * _expand_G(flow, G))
    assert (rhs["W1"] - expected_W1).doit().expand().doit() == sp.ZeroMatrix(3, 2)


def _expand_G(flow, G):
    from theory.symbolic._matcalc import expand_definitions

    return expand_definitions(flow.definitions, [G])[0]


CASES = [
    (linear_model(2), "squared"),
    (linear_model(2), "logistic"),
    (linear_chain(3, d=2), "exp"),
    (linear_chain(2, d=2), "squared"),
    (deep_linear_net([2, 2, 1]), "logistic"),
    (deep_linear_net([2, 3, 2]), "squared"),
    (diagonal_linear_net(2), "exp"),
    (diagonal_linear_net(2), "squared"),
]


@pytest.mark.parametrize(("model", "loss"), CASES, ids=lambda c: getattr(c, "name", c))
@pytest.mark.parametrize("weight_decay", [False, True])
def test_matrix_level_agrees_with_entrywise(model, loss, weight_decay, rng):
    # two derivations (matrix calculus + structural chain rule vs scalar .diff per entry),
    # evaluated through the generated code (itself checked against evalf in test_codegen)
    n = 3
    fm = derive_gradient_flow(model, loss, weight_decay=weight_decay)
    fe = derive_gradient_flow(model, loss, weight_decay=weight_decay, method="entrywise", n=n)
    assert fe.blocks == fm.blocks and fe.method == "entrywise"
    X = rng.standard_normal((n, model.input_dim))
    params = {"X": X, fm.data[1].name: (
        rng.standard_normal((n, model.output_dim))
        if loss == "squared"
        else rng.choice([-1.0, 1.0], size=n)
    )}
    if weight_decay:
        params["lam"] = 0.3
    cm = compile_flow(fm, jacobian=False).bind(**params)
    ce = compile_flow(fe, jacobian=False).bind(**params)
    for _ in range(3):
        y = rng.standard_normal(fm.size)
        np.testing.assert_allclose(cm(0.0, y), ce(0.0, y), rtol=NUM_RTOL, atol=NUM_ATOL)


def test_matrix_level_agrees_with_entrywise_symbolically():
    # exact: the two symbolic right-hand sides of a small squared-loss net expand to the same
    # polynomials in the entries
    n = 2
    m = deep_linear_net([2, 2, 1])
    fm = derive_gradient_flow(m, "squared")
    fe = derive_gradient_flow(m, "squared", method="entrywise", n=n)
    for b, e_ent in zip(m.block_list, fe.rhs_list, strict=True):
        vm = _rename(_explicit(fm.rhs[b.name], n), n)
        diff = sp.ImmutableMatrix(vm - e_ent).applyfunc(sp.expand)
        assert diff == sp.zeros(*b.symbol.shape)


@pytest.mark.parametrize("widths", [[3, 4, 2, 1], [2, 3, 3, 3]], ids=str)
def test_suffix_and_backprop_chain_rules_agree(widths, rng):
    # metamorphic: two ways of sharing partial products give the same flow
    m = deep_linear_net(widths)
    loss = "exp" if widths[-1] == 1 else "squared"
    n = 5
    params = {"X": rng.standard_normal((n, widths[0]))}
    if loss == "squared":
        params["Y"] = rng.standard_normal((n, widths[-1]))
    else:
        params["y"] = rng.choice([-1.0, 1.0], size=n)
    fs = derive_gradient_flow(m, loss, chain_rule="suffix")
    fb = derive_gradient_flow(m, loss, chain_rule="backprop")
    assert {s.name[0] for s, _ in fs.definitions} >= {"S"}
    assert {s.name[0] for s, _ in fb.definitions} >= {"B"}
    cs, cb = (compile_flow(f).bind(**params) for f in (fs, fb))
    y = rng.standard_normal(fs.size) * 0.5
    np.testing.assert_allclose(cs(0, y), cb(0, y), rtol=NUM_RTOL, atol=NUM_ATOL)
    np.testing.assert_allclose(cs.jac(0, y), cb.jac(0, y), rtol=NUM_RTOL, atol=NUM_ATOL)
    with pytest.raises(ValueError, match="chain_rule"):
        derive_gradient_flow(m, loss, chain_rule="forward")


def test_weight_decay_adds_minus_lambda_theta():
    m = deep_linear_net([2, 2, 1])
    f0 = derive_gradient_flow(m, "squared")
    f1 = derive_gradient_flow(m, "squared", weight_decay=True)
    for b, r0, r1 in zip(m.block_list, f0.rhs_list, f1.rhs_list, strict=True):
        assert (r1 - r0 + LAM * b.symbol).doit() == sp.ZeroMatrix(*b.symbol.shape)
    assert f1.hyper == (LAM,) and f0.hyper == ()


def test_derivation_size_is_linear_in_depth():
    # number of definitions grows linearly (prefixes + suffixes + E + G), independent of width
    counts = {}
    for L in (3, 6, 12):
        for width in (2, 7):
            f = derive_gradient_flow(deep_linear_net([width] * (L + 1)), "squared")
            counts[(L, width)] = len(f.definitions)
    assert counts[(3, 2)] == counts[(3, 7)] and counts[(12, 2)] == counts[(12, 7)]
    assert counts[(12, 2)] - counts[(6, 2)] == 2 * (counts[(6, 2)] - counts[(3, 2)])


def test_minnorm_regression_equilibrium_is_min_norm_solution(rng):
    # Bansal et al. 2018 (docs/theory.md §8), beta = 1: equilibria solve theta = X^T mu, X theta =
    # y,
    # i.e. theta* = X^+ y (min-norm interpolant), mu* = (X X^T)^{-1} y. Independent: numpy pinv.
    n, d = 3, 5
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    cf = compile_flow(derive_minnorm_flow(linear_model(d), task="regression", n=n))
    f = cf.bind(X=X, Y=y, alpha=1.0, beta=1.0)
    theta = np.linalg.pinv(X) @ y
    mu = np.linalg.solve(X @ X.T, y)
    r = f(0.0, cf.pack({"w": theta, "mu": mu}))
    np.testing.assert_allclose(r, 0.0, atol=1e-12)
    # and a non-equilibrium (the least-squares solution from a non-zero offset) moves
    r = f(0.0, cf.pack({"w": theta + np.linalg.svd(X)[2][-1], "mu": mu}))
    assert np.linalg.norm(r) > 0.1


def test_minnorm_classification_equilibrium_at_hand_svm():
    # x1 = (1, 1), y1 = +1; x2 = (-1, -1), y2 = -1. SVM: min ||w||^2/2 s.t. w1 + w2 >= 1
    # gives w* = (1/2, 1/2); stationarity w* = sum mu_i y_i x_i = (mu1 + mu2)(1, 1), symmetric
    # mu = (1/4, 1/4). Margins q_i = 1, so mu' = alpha (1 - q) = 0.
    X = np.array([[1.0, 1.0], [-1.0, -1.0]])
    y = np.array([1.0, -1.0])
    cf = compile_flow(derive_minnorm_flow(linear_model(2), task="classification", n=2))
    f = cf.bind(X=X, y=y, alpha=2.0, beta=1.0)
    r = f(0.0, cf.pack({"w": [0.5, 0.5], "mu": [0.25, 0.25]}))
    np.testing.assert_allclose(r, 0.0, atol=1e-15)
    # projection keeps mu >= 0: an inactive constraint (q > 1) with mu = 0 has rate 0
    r = f(0.0, cf.pack({"w": [1.0, 1.0], "mu": [0.0, 0.0]}))
    np.testing.assert_allclose(cf.unpack(r)["mu"], 0.0, atol=0)
    np.testing.assert_allclose(cf.unpack(r)["w"], [-1.0, -1.0], rtol=NUM_RTOL)


@pytest.mark.parametrize("kind", ["polar", "normalized"])
@pytest.mark.parametrize("model", [deep_linear_net([2, 3, 1]), linear_chain(3, d=2)], ids=str)
def test_polar_and_normalized_flows_against_plain_gradient_flow(model, kind, rng):
    # theta = rho v: rho' = <v, theta'> and (I - vv^T) theta' = rho * (polar v'), theta' from the
    # plain flow; the normalised flow's v' is rho^2 times the polar one (docs/theory.md §9)
    n = 6
    X, y = rng.standard_normal((n, model.input_dim)), np.sign(rng.standard_normal(n))
    gd = compile_flow(derive_gradient_flow(model, "exp")).bind(X=X, y=y)
    derive = derive_polar_flow if kind == "polar" else derive_normalized_flow
    nf = compile_flow(derive(model, "exp")).bind(X=X, y=y)
    v = rng.standard_normal(model.n_params)
    v /= np.linalg.norm(v)
    rho = 1.7
    clock = 1.0 if kind == "polar" else rho**2
    theta_dot = gd(0.0, rho * v)
    rho_dot = v @ theta_dot
    out = nf(0.0, np.concatenate([v, [rho]]))
    np.testing.assert_allclose(out[-1], rho_dot, rtol=NUM_RTOL, atol=NUM_ATOL)
    np.testing.assert_allclose(out[:-1], clock * (theta_dot - rho_dot * v) / rho, rtol=1e-11,
                               atol=NUM_ATOL)
    # the direction stays on the sphere: <v, v'> = 0
    assert abs(v @ out[:-1]) <= 1e-12 * np.linalg.norm(out[:-1]) + NUM_ATOL


def test_flow_metadata_latex_dict_and_layout(rng):
    f = derive_gradient_flow(deep_linear_net([2, 3, 1]), "logistic", weight_decay=True)
    assert f.blocks == {"W1": (3, 2), "W2": (1, 3)} and f.size == 9
    tex = f.latex()
    assert r"\dot{W_{1}}" in tex and r"\sigma" in tex
    json.dumps(f.to_dict())
    vals = {"W1": rng.standard_normal((3, 2)), "W2": rng.standard_normal((1, 3))}
    y = f.pack(vals)
    np.testing.assert_array_equal(y[:6], vals["W1"].ravel())  # C order, block order
    back = f.unpack(y)
    np.testing.assert_array_equal(back["W2"], vals["W2"])


def test_bad_arguments_raise():
    m = deep_linear_net([2, 2])
    with pytest.raises(ValueError, match="'hinge'"):
        derive_gradient_flow(m, "hinge")
    with pytest.raises(ValueError, match="k = 1"):
        derive_gradient_flow(deep_linear_net([2, 2]), "logistic")
    with pytest.raises(ValueError, match="needs the number of examples"):
        derive_gradient_flow(m, "squared", method="entrywise")
    with pytest.raises(ValueError, match="method"):
        derive_gradient_flow(m, "squared", method="symbolic")
    with pytest.raises(TypeError, match="Model"):
        derive_gradient_flow("linear", "squared")
    with pytest.raises(ValueError, match="task"):
        derive_minnorm_flow(m, task="ranking", n=3)
    f = derive_gradient_flow(deep_linear_net([2, 2, 2]), "squared")
    with pytest.raises(ValueError, match="missing \\['W2'\\]"):
        f.pack({"W1": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="shape \\(2, 2\\)"):
        f.pack({"W1": np.zeros((2, 2)), "W2": np.zeros(4)})
    with pytest.raises(ValueError, match="flat state of shape \\(8,\\)"):
        f.unpack(np.zeros(7))
