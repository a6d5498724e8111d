"""User models from sympy expressions (issue 10 §1): the generic entry-wise path against the
matrix-level factories (same flow to rounding), against hand-derived gradients of non-linear
models, homogeneity computed, and clear errors naming the block."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from theory.symbolic import (
    Model,
    compile_flow,
    deep_linear_net,
    derive_gradient_flow,
    diagonal_linear_net,
    linear_chain,
)

# Two float64 evaluations of the same formula in different operation orders (entries O(1),
# D <= 12): rounding only, as in tests/test_codegen.py.
RTOL, ATOL = 1e-12, 1e-13
# Central differences, h = 1e-6: truncation O(h²) ~ 1e-12, cancellation O(eps/h) ~ 1e-10.
FD_H, FD_RTOL = 1e-6, 1e-7


def sq(z):
    return z**2


PAIRS = [
    ("deep_linear", lambda: deep_linear_net([2, 3, 2]),
     lambda: Model.from_expression("dl", {"W1": (3, 2), "W2": (2, 3)},
                                   lambda W1, W2, x: W2 * W1 * x, input_dim=2), "squared"),
    ("diagonal", lambda: diagonal_linear_net(3),
     lambda: Model.from_expression("dg", {"u": (3,), "v": (3,)},
                                   lambda u, v, x: (u.applyfunc(sq) - v.applyfunc(sq)).T * x,
                                   input_dim=3), "logistic"),
    ("linear_chain", lambda: linear_chain(3, d=2),
     lambda: Model.from_expression("ch", {"w": (2,), "a2": (), "a3": ()},
                                   lambda w, a2, a3, x: a3 * a2 * w.T * x, input_dim=2), "exp"),
]


def _params(rng, model, loss, n=6):
    X = rng.standard_normal((n, model.input_dim))
    if loss == "squared":
        return {"X": X, "Y": rng.standard_normal((n, model.output_dim))}
    return {"X": X, "y": rng.choice([-1.0, 1.0], size=n)}


@pytest.mark.parametrize("weight_decay", [False, True])
@pytest.mark.parametrize(("name", "factory", "user", "loss"), PAIRS, ids=[p[0] for p in PAIRS])
def test_generic_path_matches_factory(name, factory, user, loss, weight_decay, rng):
    fac, usr = factory(), user()
    assert usr.blocks == fac.blocks
    assert usr.degree == fac.degree  # computed for the user model, declared by the factory
    p = _params(rng, fac, loss)
    if weight_decay:
        p["lam"] = 0.3
    a = compile_flow(derive_gradient_flow(fac, loss, weight_decay=weight_decay)).bind(**p)
    b = compile_flow(derive_gradient_flow(usr, loss, weight_decay=weight_decay)).bind(**p)
    for _ in range(3):
        y0 = rng.standard_normal(usr.n_params)
        ra, rb = a(0.0, y0), b(0.0, y0)
        np.testing.assert_allclose(rb, ra, rtol=RTOL, atol=ATOL * np.abs(ra).max())
        Ja, Jb = a.jac(0.0, y0), b.jac(0.0, y0)
        np.testing.assert_allclose(Jb, Ja, rtol=RTOL, atol=ATOL * np.abs(Ja).max())


def test_generic_path_cse_off_matches_on(rng):
    usr = PAIRS[1][2]()
    p = _params(rng, usr, "logistic")
    a = compile_flow(derive_gradient_flow(usr, "logistic"), cse=True).bind(**p)
    b = compile_flow(derive_gradient_flow(usr, "logistic"), cse=False).bind(**p)
    y0 = rng.standard_normal(usr.n_params)
    np.testing.assert_allclose(a(0, y0), b(0, y0), rtol=RTOL, atol=ATOL)


def _quad_net(m=3, d=2):
    return Model.from_expression("quad", {"U": (m, d), "v": (m,)},
                                 lambda U, v, x: v.T * (U * x).applyfunc(sq), input_dim=d)


def test_quadratic_activation_gradient_by_hand(rng):
    """f = Σ_j v_j (u_jᵀx)²; squared loss mean: hand-derived ∇ in numpy (independent)."""
    m, d, n = 3, 2, 7
    model = _quad_net(m, d)
    assert model.degree == 3
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, 1))
    f = compile_flow(derive_gradient_flow(model, "squared")).bind(X=X, Y=Y)
    U, v = rng.standard_normal((m, d)), rng.standard_normal(m)
    Z = X @ U.T                                   # (n, m) pre-activations
    F = (Z**2) @ v                                # (n,)
    R = (F - Y[:, 0]) / n                         # dL/dF for the mean squared loss
    gU = ((R[:, None] * 2 * Z * v[None, :]).T @ X)  # (m, d)
    gv = (Z**2).T @ R
    expected = -np.concatenate([gU.ravel(), gv])
    got = f(0.0, np.concatenate([U.ravel(), v]))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * np.abs(expected).max())


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_nonlinear_jacobian_against_finite_differences(loss, rng):
    model = Model.from_expression("tnet", {"U": (3, 2), "v": (3,)},
                                  lambda U, v, x: v.T * (U * x).applyfunc(sp.tanh), input_dim=2)
    assert model.degree is None  # tanh: not homogeneous
    f = compile_flow(derive_gradient_flow(model, loss, weight_decay=True)).bind(
        **_params(rng, model, loss), lam=0.1)
    y0 = rng.standard_normal(model.n_params)
    J = f.jac(0.0, y0)
    fd = np.column_stack([(f(0, y0 + FD_H * e) - f(0, y0 - FD_H * e)) / (2 * FD_H)
                          for e in np.eye(model.n_params)])
    np.testing.assert_allclose(J, fd, rtol=0, atol=FD_RTOL * np.abs(J).max())


def test_homogeneity_computed():
    assert _quad_net().degree == 3
    m = Model.from_expression("p", {"a": (), "b": ()}, lambda a, b, x: a * a * x + b * x,
                              input_dim=1)
    assert m.degree is None
    # not a polynomial in θ: degree 1 found from Euler's identity (exp of a 0-homogeneous ratio)
    m = Model.from_expression("e", {"a": (2,)},
                              lambda a, x: (a.T * x)[0, 0] * sp.exp(a[0, 0] / a[1, 0]),
                              input_dim=2)
    assert m.degree == 1
    m = Model.from_expression("mo", {"W": (2, 2)}, lambda W, x: W * W * x, input_dim=2)
    assert (m.output_dim, m.degree) == (2, 2)


def test_shape_mismatch_names_the_blocks():
    with pytest.raises(ValueError, match=r"shape mismatch.*U \(3, 2\)"):
        Model.from_expression("bad", {"U": (3, 2), "v": (2,)}, lambda U, v, x: v.T * U * x,
                              input_dim=2)
    U = sp.MatrixSymbol("U", 2, 3)
    x = sp.MatrixSymbol("x", 3, 1)
    with pytest.raises(ValueError, match=r"block 'U' is declared with shape \(3, 2\)"):
        Model.from_expression("bad", {"U": (3, 2)}, sp.OneMatrix(1, 2) * U * x, input_dim=3)


def test_unknown_symbols_and_strings_refused():
    W = sp.MatrixSymbol("W", 1, 2)
    x = sp.MatrixSymbol("x", 2, 1)
    with pytest.raises(ValueError, match="unknown symbol 'W'"):
        Model.from_expression("m", {"U": (1, 2)}, W * x, input_dim=2)
    c = sp.Symbol("c")
    with pytest.raises(ValueError, match=r"unknown symbol\(s\) \['c'\]"):
        Model.from_expression("m", {"U": (1, 2)}, lambda U, x: c * U * x, input_dim=2)
    with pytest.raises(TypeError, match="never parsed"):
        Model.from_expression("m", {"U": (1, 2)}, "U*x", input_dim=2)
    with pytest.raises(ValueError, match="does not depend on any parameter"):
        Model.from_expression("m", {"U": (1, 2)}, lambda U, x: sp.OneMatrix(1, 2) * x,
                              input_dim=2)


def test_non_differentiable_refused_naming_the_block():
    with pytest.raises(ValueError, match=r"Abs is not differentiable.*\['U'\]"):
        Model.from_expression("relu", {"U": (2, 2), "v": (2,)},
                              lambda U, v, x: v.T * (U * x).applyfunc(sp.Abs), input_dim=2)
    with pytest.raises(ValueError, match=r"Max is not differentiable.*\['U'\]"):
        Model.from_expression("relu", {"U": (2, 2), "v": (2,)},
                              lambda U, v, x: v.T * (U * x).applyfunc(lambda z: sp.Max(z, 0)),
                              input_dim=2)


@pytest.mark.parametrize("bad", ["x", "_p0", "lam", "class", 'a"""b'])
def test_reserved_or_hostile_block_names_refused(bad):
    with pytest.raises(ValueError, match="block|identifier"):
        Model.from_expression("m", {bad: (2,)}, lambda **kw: kw["x"].T * kw["x"], input_dim=2)
