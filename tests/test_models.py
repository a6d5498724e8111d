"""Tests for theory.models: block layout, degree of homogeneity, output convention F = X E^T."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from theory.symbolic import deep_linear_net, diagonal_linear_net, linear_chain, linear_model

# Evaluating a small product exactly in sympy floats (15 digits) then in numpy: rounding only.
EVAL_RTOL = 1e-12
EVAL_ATOL = 1e-12


def _evaluate(expr, values: dict) -> np.ndarray:
    """Evaluate a matrix expression by explicit substitution (independent of codegen)."""
    rep = {}
    for sym, val in values.items():
        rep[sym] = sp.ImmutableMatrix(np.asarray(val, dtype=float).reshape(sym.shape))
    return np.array(sp.ImmutableMatrix(expr.xreplace(rep).doit().as_explicit()).evalf(), float)


def _random_values(model, rng):
    return {b.symbol: rng.standard_normal(b.symbol.shape) for b in model.block_list}


def test_block_layouts_follow_theory_table():
    # docs/theory.md §1: W_l in R^{d_l x d_{l-1}}; chain has w then scalars a_2..a_L
    assert deep_linear_net([2, 3, 4, 1]).blocks == {"W1": (3, 2), "W2": (4, 3), "W3": (1, 4)}
    assert linear_chain(3, d=2).blocks == {"w": (2,), "a2": (), "a3": ()}
    assert linear_model(5).blocks == {"w": (5,)}
    assert diagonal_linear_net(4).blocks == {"u": (4,), "v": (4,)}
    assert deep_linear_net([2, 3, 4, 1]).n_params == 6 + 12 + 4


@pytest.mark.parametrize(
    "model",
    [linear_model(3), linear_chain(4, d=2), deep_linear_net([2, 3, 2, 1]), diagonal_linear_net(3)],
    ids=lambda m: m.name,
)
def test_degree_matches_measured_homogeneity(model, rng):
    # measure L from E(c theta) = c^L E(theta) at c = 2: L = log2(|E(2θ)| / |E(θ)|)
    vals = _random_values(model, rng)
    E1 = _evaluate(model.end_to_end, vals)
    E2 = _evaluate(model.end_to_end, {k: 2.0 * v for k, v in vals.items()})
    measured = np.log2(np.linalg.norm(E2) / np.linalg.norm(E1))
    assert measured == pytest.approx(model.degree, rel=EVAL_RTOL, abs=1e-9)


def test_deep_linear_output_is_X_times_transposed_product(rng):
    # docs/theory.md §0: f(x) = W_L ... W_1 x, so with one example per row F = X W_1^T ... W_L^T
    m = deep_linear_net([3, 4, 2])
    vals = _random_values(m, rng)
    n = 5
    X = rng.standard_normal((n, 3))
    Xs = m.data_symbol(n)
    F = _evaluate(m.output(Xs), {**vals, Xs: X})
    W1, W2 = (vals[b.symbol] for b in m.block_list)
    np.testing.assert_allclose(F, X @ W1.T @ W2.T, rtol=EVAL_RTOL, atol=EVAL_ATOL)


def test_chain_and_diagonal_outputs_match_definitions(rng):
    m = linear_chain(3, d=2)
    w, a2, a3 = rng.standard_normal(2), rng.standard_normal(), rng.standard_normal()
    vals = {m.block("w").symbol: w, m.block("a2").symbol: a2, m.block("a3").symbol: a3}
    x = rng.standard_normal(2)
    E = _evaluate(m.end_to_end, vals)
    assert E.shape == (1, 2)
    assert (E @ x).item() == pytest.approx(a3 * a2 * (w @ x), rel=EVAL_RTOL)
    d = diagonal_linear_net(3)
    u, v = rng.standard_normal(3), rng.standard_normal(3)
    E = _evaluate(d.end_to_end, {d.block("u").symbol: u, d.block("v").symbol: v})
    np.testing.assert_allclose(E.ravel(), u * u - v * v, rtol=EVAL_RTOL, atol=EVAL_ATOL)


def test_to_dict_is_json():
    json.dumps(deep_linear_net([2, 2, 1]).to_dict())


@pytest.mark.parametrize(
    ("factory", "arg", "match"),
    [
        (deep_linear_net, [3], "at least"),
        (deep_linear_net, [3, 0], "widths\\[1\\]"),
        (deep_linear_net, 3, "sequence"),
        (linear_chain, 0, "depth"),
        (linear_model, 2.5, "d must be"),
        (diagonal_linear_net, -1, "d must be"),
    ],
)
def test_bad_dimensions_raise(factory, arg, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory(arg)


def test_unknown_block_name_raises():
    with pytest.raises(ValueError, match="no block 'W9'"):
        deep_linear_net([2, 2]).block("W9")
