"""Tests for theory.losses: symbolic losses against the numeric twins in solvers.losses."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from solvers import losses as numeric
from theory.symbolic import Sigmoid, Softplus, exp_loss, get_loss, logistic_loss, squared_loss

# sympy evalf at 30 digits vs scipy's expit/logaddexp in float64: a few ulps.
RTOL = 1e-13
ATOL = 1e-300


@pytest.mark.parametrize("x", [-30.0, -1.5, 0.0, 0.7, 40.0])
def test_sigmoid_softplus_evalf_match_definitions(x):
    xs = sp.Float(x, 30)
    # definitions: sigma(x) = 1/(1+e^{-x}), softplus(x) = log(1+e^x), evaluated by mpmath
    assert float(Sigmoid(xs).evalf(30)) == pytest.approx(float(1 / (1 + sp.exp(-xs))), rel=RTOL)
    assert float(Softplus(xs).evalf(30)) == pytest.approx(
        float(sp.log(1 + sp.exp(xs)).evalf(30)), rel=RTOL
    )


def test_softplus_derivative_is_sigmoid():
    x = sp.Symbol("x")
    assert sp.simplify(Softplus(x).diff(x) - Sigmoid(x)) == 0
    assert sp.simplify((Sigmoid(x).diff(x) - sp.diff(1 / (1 + sp.exp(-x)), x)).rewrite(sp.exp)) == 0


@pytest.mark.parametrize("loss", ["logistic", "exp"])
@pytest.mark.parametrize("q", [-20.0, -1.0, 0.0, 2.5, 30.0])
def test_ell_and_derivative_match_solvers_losses(loss, q):
    L = get_loss(loss)
    assert float(L.ell(sp.Float(q, 30)).evalf(30)) == pytest.approx(
        numeric.loss_value(np.array([q]), loss), rel=RTOL, abs=ATOL
    )
    assert float(L.ell_prime(sp.Float(q, 30)).evalf(30)) == pytest.approx(
        numeric.loss_derivative(np.array([q]), loss)[0], rel=RTOL, abs=ATOL
    )


def test_squared_output_gradient_is_residual_over_n(rng):
    # d/dF [ (1/2n) ||F - Y||^2 ] = (F - Y)/n, checked on explicit numbers
    n, k = 4, 2
    F = sp.MatrixSymbol("F", n, k)
    Y = sp.MatrixSymbol("Y", n, k)
    G = squared_loss().output_gradient(F, Y, n)
    Fv, Yv = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    val = np.array(
        G.xreplace({F: sp.ImmutableMatrix(Fv), Y: sp.ImmutableMatrix(Yv)}).doit().as_explicit(),
        float,
    )
    np.testing.assert_allclose(val, (Fv - Yv) / n, rtol=RTOL, atol=1e-15)


def test_classification_output_gradient_entrywise(rng):
    n = 3
    F = sp.MatrixSymbol("F", n, 1)
    y = sp.MatrixSymbol("y", n, 1)
    G = logistic_loss().output_gradient(F, y, n)
    Fv = rng.standard_normal((n, 1))
    yv = np.array([[1.0], [-1.0], [1.0]])
    val = np.array(
        G.xreplace({F: sp.ImmutableMatrix(Fv), y: sp.ImmutableMatrix(yv)}).as_explicit().evalf(),
        float,
    )
    # chain rule through q = y F: dL/dF_i = y_i ell'(q_i)
    expected = yv * numeric.loss_derivative(yv * Fv, "logistic")
    np.testing.assert_allclose(val, expected, rtol=RTOL, atol=1e-15)


def test_loss_metadata_and_names():
    assert squared_loss().reduction == "mean"
    assert logistic_loss().reduction == "sum" and exp_loss().reduction == "sum"
    assert get_loss("exp").name == "exp"
    assert "softplus" in logistic_loss().latex()
    assert logistic_loss().to_dict()["task"] == "classification"


def test_bad_loss_names_raise():
    with pytest.raises(ValueError, match="'hinge'"):
        get_loss("hinge")
    with pytest.raises(ValueError, match="regression loss"):
        _ = squared_loss().ell_prime
