"""Tests of solvers.nets: hand computations, an mpmath oracle in the deep-underflow regime,
the Lyu & Li sandwich bound, and scale invariance."""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from solvers.nets import (
    HomogeneousMLP,
    layer_balance,
    layer_norms,
    margin_summary,
    margins,
    min_margin,
    normalized_margin,
    smoothed_margin,
    support_mask,
    unit_balance,
)

from .strategies import homogeneous_nets

# Quantities computed by a few float64 operations from the same inputs: rounding only.
RTOL, ATOL = 1e-12, 1e-14


def _linear(w):
    return HomogeneousMLP((np.asarray(w, dtype=float).reshape(1, -1),))


def test_linear_model_by_hand():
    # w = (3, 4): ||w||_1 = 7, ||w||_2 = 5, ||w||_inf = 4. Rows x = (1, 0), (0, 1), (1, 1) with
    # labels (+1, +1, -1): q = (3, 4, -7), q_min = -7.
    net = _linear([3.0, 4.0])
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([1.0, 1.0, -1.0])
    np.testing.assert_array_equal(margins(net, X, y), [3.0, 4.0, -7.0])
    assert min_margin(net, X, y) == -7.0
    for norm, value in ((1, 7.0), (2, 5.0), ("inf", 4.0), (3, (27 + 64) ** (1 / 3))):
        np.testing.assert_allclose(normalized_margin(net, X, y, norm=norm), -7.0 / value, rtol=RTOL)
    s = margin_summary(net, X, y)
    assert s.status == "not separated: 1 of 3 examples have q_i <= 0"
    # exp loss: 𝓛 = e^{-3} + e^{-4} + e^{7}; γ̃ = -log 𝓛 / 5
    L = np.exp(-3.0) + np.exp(-4.0) + np.exp(7.0)
    np.testing.assert_allclose(s.smoothed_margin, -np.log(L) / 5.0, rtol=RTOL)
    json.dumps(s.to_dict())


@pytest.mark.parametrize("loss", ["exp", "logistic"])
def test_smoothed_margin_far_below_underflow_against_mpmath(loss, rng):
    # Scale a separating net by c so that q_min ≈ 2000: 𝓛 ≈ e^{-2000} underflows float64 (< 1e-300).
    # Oracle: mpmath at 60 digits evaluates ℓ^{-1}(Σ ℓ(q_i)) directly from the definition.
    net = HomogeneousMLP.random((3, 5, 1), rng=rng)
    X = rng.standard_normal((8, 3))
    y = np.sign(net.forward(X))
    q0 = margins(net, X, y)
    c = np.sqrt(2000.0 / q0.min())  # degree 2: q scales by c²
    big = net.with_flat(c * net.flat())
    q = margins(big, X, y)
    assert q.min() > 1000.0 and np.exp(-q.min()) < 1e-300
    with mpmath.workdps(60):
        qs = [mpmath.mpf(float(v)) for v in q]
        if loss == "exp":
            total = mpmath.fsum(mpmath.exp(-v) for v in qs)
            inv = float(-mpmath.log(total))
        else:
            total = mpmath.fsum(mpmath.log1p(mpmath.exp(-v)) for v in qs)
            inv = float(-mpmath.log(mpmath.expm1(total)))
    rho = float(np.linalg.norm(big.flat()))
    expected = inv / rho**2
    np.testing.assert_allclose(smoothed_margin(big, X, y, loss=loss), expected, rtol=RTOL)


@given(homogeneous_nets(n=(2, 6)), st.floats(0.2, 5.0))
def test_lyu_li_sandwich_and_scale_invariance(case, c):
    # Lyu & Li 2019 (exp loss): γ̄ − ρ^{−L} log n ≤ γ̃ ≤ γ̄, from e^{−q_min} ≤ 𝓛 ≤ n e^{−q_min}.
    net, X, _ = case
    f = net.forward(X)
    y = np.where(f >= 0, 1.0, -1.0)
    s = margin_summary(net, X, y, loss="exp")
    assume(s.rho > 0.0)
    gap = np.log(X.shape[0]) / s.rho ** net.degree
    slack = 1e-12 * (abs(s.normalized_margin_l2) + gap + 1.0)
    gbar = s.normalized_margin_l2
    assert gbar - gap - slack <= s.smoothed_margin <= gbar + slack
    # γ̄_p is invariant under θ → cθ (degree-L homogeneity), for every p
    scaled = net.with_flat(c * net.flat())
    for p in (1, 2, np.inf):
        np.testing.assert_allclose(normalized_margin(scaled, X, y, norm=p),
                                   normalized_margin(net, X, y, norm=p), rtol=1e-10, atol=1e-14)


def test_permuting_examples_changes_nothing(rng):
    net = HomogeneousMLP.random((3, 4, 1), rng=rng)
    X = rng.standard_normal((9, 3))
    y = np.sign(net.forward(X))
    perm = rng.permutation(9)
    a, b = margin_summary(net, X, y), margin_summary(net, X[perm], y[perm])
    np.testing.assert_allclose(a.smoothed_margin, b.smoothed_margin, rtol=RTOL)
    assert a.q_min == b.q_min and a.n_support == b.n_support


def test_balance_by_hand():
    # W1 = [[1, 2], [0, 3]] (rows = units), W2 = [[4, 5]]:
    # ||W1||² = 1 + 4 + 9 = 14, ||W2||² = 41 → layer balance 41 − 14 = 27.
    # unit 1: in 1 + 4 = 5, out 16 → −11; unit 2: in 9, out 25 → −16.
    net = HomogeneousMLP((np.array([[1.0, 2.0], [0.0, 3.0]]), np.array([[4.0, 5.0]])))
    np.testing.assert_allclose(layer_norms(net), [np.sqrt(14.0), np.sqrt(41.0)], rtol=RTOL)
    np.testing.assert_allclose(layer_balance(net), [27.0], rtol=RTOL)
    np.testing.assert_allclose(unit_balance(net)[0], [-11.0, -16.0], rtol=RTOL)


def test_support_mask():
    q = np.array([1.0, 1.0 + 1e-9, 1.5, 1.0000001])
    assert support_mask(q).tolist() == [True, True, False, True]
    assert support_mask(q, rtol=0.0).tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="non-empty 1-D"):
        support_mask(np.ones((2, 2)))


def test_bad_input_is_named(rng):
    net = HomogeneousMLP.random((2, 3, 1), rng=rng)
    X = rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        margins(net, X, np.array([0.0, 1.0, 1.0, 0.0]))
    with pytest.raises(TypeError, match="HomogeneousMLP"):
        margins(object(), X, np.ones(4))
    with pytest.raises(ValueError, match="norm must"):
        normalized_margin(net, X, np.ones(4), norm=0.5)
