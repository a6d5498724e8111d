"""Tests of solvers.HomogeneousMLP against hand computations, finite differences and
identities (homogeneity, Euler), plus forward-mode vs reverse-mode cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from solvers.nets import HomogeneousMLP
from solvers.tolerances import TOLERANCES

from .strategies import homogeneous_nets

# Central differences with step H have truncation error O(H²·|f'''|) = 0 on the linear pieces
# (f is piecewise polynomial of degree L in θ, so the error is O(H²) times the third derivative,
# bounded for these O(1) nets) and rounding error ≈ eps·|f|/H ≈ 1e-16/1e-6 = 1e-10.
FD_STEP = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-7
# Identities that are exact in real arithmetic: only rounding error (≈ depth · width · 1e-16).
EXACT_RTOL, EXACT_ATOL = 1e-10, 1e-12


def _fd_jacobian(net, X, h=FD_STEP):
    theta = net.flat()
    J = np.empty((X.shape[0], theta.size))
    for p in range(theta.size):
        e = np.zeros_like(theta)
        e[p] = h
        fp, fm = net.with_flat(theta + e).forward(X), net.with_flat(theta - e).forward(X)
        J[:, p] = (fp - fm) / (2 * h)
    return J


def _min_abs_preactivation(net, X):
    zs = net.preactivations(X)
    return min((np.abs(z).min() for z in zs), default=np.inf)


def test_forward_pass_is_public_and_hand_computed():
    # issue 13: the training loop uses this public method (it read net._forward_all before)
    net = HomogeneousMLP((np.array([[1.0, 0.0], [0.0, -1.0]]), np.array([[1.0, 1.0]])))
    X = np.array([[2.0, -3.0], [-1.0, 1.0]])
    hs, zs = net.forward_pass(X)
    np.testing.assert_array_equal(zs[0], [[2.0, 3.0], [-1.0, -1.0]])
    np.testing.assert_array_equal(hs[1], [[2.0, 3.0], [0.0, 0.0]])
    np.testing.assert_array_equal(hs[-1] @ net.weights[-1].T, net.forward(X)[:, None])
    with pytest.raises(ValueError):
        net.forward_pass(np.ones((2, 3)))              # wrong input dimension, validated


def test_hand_computed_two_layer_relu():
    # W1 = [[1, 0], [0, -1]], W2 = [[1, 1]], x = (2, -3): z1 = (2, 3), h1 = (2, 3), f = 5.
    # ∂f/∂W1[j, k] = W2[0, j] · 1[z_j > 0] · x_k = x_k for both units; ∂f/∂W2 = h1 = (2, 3).
    net = HomogeneousMLP((np.array([[1.0, 0.0], [0.0, -1.0]]), np.array([[1.0, 1.0]])))
    X = np.array([[2.0, -3.0], [-1.0, 1.0]])
    # second row: z1 = (-1, -1), h1 = 0, f = 0, and every derivative vanishes except none.
    np.testing.assert_allclose(net.forward(X), [5.0, 0.0], rtol=0, atol=0)
    J = net.per_example_gradients(X)
    np.testing.assert_array_equal(J[0], [2.0, -3.0, 2.0, -3.0, 2.0, 3.0])
    np.testing.assert_array_equal(J[1], np.zeros(6))
    assert net.degree == 2 and net.n_params == 6
    assert net.blocks == {"W1": (2, 2), "W2": (1, 2)}


def test_leaky_relu_hand_computed():
    # σ(z) = max(z, αz), α = 0.1: W1 = [[1], [-1]], W2 = [[2, 3]], x = 4: z = (4, -4),
    # h = (4, -0.4), f = 8 - 1.2 = 6.8; ∂f/∂W1 = (2·1·4, 3·0.1·4) = (8, 1.2), ∂f/∂W2 = (4, -0.4).
    net = HomogeneousMLP((np.array([[1.0], [-1.0]]), np.array([[2.0, 3.0]])),
                         activation="leaky_relu", alpha=0.1)
    X = np.array([[4.0]])
    np.testing.assert_allclose(net.forward(X), [6.8], rtol=EXACT_RTOL)
    np.testing.assert_allclose(net.per_example_gradients(X)[0], [8.0, 1.2, 4.0, -0.4],
                               rtol=EXACT_RTOL)


def test_kink_convention_is_left_derivative():
    # z = 0 exactly: σ'(0) := 0 for ReLU, α for LeakyReLU (documented convention).
    W1, W2 = np.array([[1.0, -1.0]]), np.array([[2.0]])
    X = np.array([[1.0, 1.0]])
    relu = HomogeneousMLP((W1, W2))
    leaky = HomogeneousMLP((W1, W2), activation="leaky_relu", alpha=0.25)
    assert relu.activation_slopes(X)[0][0, 0] == 0.0
    assert leaky.activation_slopes(X)[0][0, 0] == 0.25
    np.testing.assert_array_equal(relu.per_example_gradients(X)[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(leaky.per_example_gradients(X)[0], [0.5, 0.5, 0.0])
    assert relu.kinks(X)[0].tolist() == [[True]]
    assert relu.clarke_interval == (0.0, 1.0) and leaky.clarke_interval == (0.25, 1.0)


@pytest.mark.parametrize("activation,alpha", [("relu", 0.0), ("leaky_relu", 0.2), ("linear", 0.0)])
@pytest.mark.parametrize("sizes", [(3, 1), (3, 4, 1), (2, 5, 3, 1)])
def test_gradients_match_finite_differences(sizes, activation, alpha, rng):
    net = HomogeneousMLP.random(sizes, activation=activation, alpha=alpha, rng=rng)
    X = rng.standard_normal((6, sizes[0]))
    # finite differences are only valid away from kinks: |z| ≫ FD_STEP · ||θ|| · ||x||
    assert _min_abs_preactivation(net, X) > 1e-3
    np.testing.assert_allclose(net.per_example_gradients(X), _fd_jacobian(net, X),
                               rtol=FD_RTOL, atol=FD_ATOL)


@given(homogeneous_nets())
def test_jvp_vjp_agree_with_jacobian(case):
    # jvp is forward mode and vjp reverse mode, written independently of the Jacobian assembly;
    # all three represent the same linear map, so J v, Jᵀ u must match to rounding.
    net, X, seed = case
    r = np.random.default_rng(seed)
    J = net.per_example_gradients(X)
    v = r.standard_normal(net.n_params)
    u = r.standard_normal(X.shape[0])
    np.testing.assert_allclose(net.jvp(X, v), J @ v, rtol=EXACT_RTOL,
                               atol=EXACT_ATOL * np.abs(J).sum())
    np.testing.assert_allclose(net.vjp(X, u), J.T @ u, rtol=EXACT_RTOL,
                               atol=EXACT_ATOL * np.abs(J).sum())


@given(homogeneous_nets(), st.floats(0.1, 10.0))
def test_homogeneity_and_euler_identity(case, c):
    # f(cθ) = c^L f(θ) (positive homogeneity) and ⟨∂f(x_i)/∂θ, θ⟩ = L f(x_i) (Euler, docs/theory.md
    # §7;
    # holds for the σ'(0) convention too: σ(z) = σ'(z) z for z ≠ 0 and both sides vanish at 0).
    net, X, _ = case
    L = net.degree
    f = net.forward(X)
    scale = np.abs(f).max() + 1.0
    np.testing.assert_allclose(net.with_flat(c * net.flat()).forward(X), c**L * f,
                               rtol=EXACT_RTOL, atol=EXACT_ATOL * c**L * scale)
    np.testing.assert_allclose(net.per_example_gradients(X) @ net.flat(), L * f,
                               rtol=EXACT_RTOL, atol=EXACT_ATOL * L * scale)


def test_chunking_does_not_change_the_jacobian(rng):
    net = HomogeneousMLP.random((4, 7, 5, 1), rng=rng)
    X = rng.standard_normal((23, 4))
    full = net.per_example_gradients(X)
    # BLAS may sum in a different order for a different chunk shape: equal up to rounding only
    np.testing.assert_allclose(net.per_example_gradients(X, chunk_size=5), full,
                               rtol=EXACT_RTOL, atol=EXACT_ATOL)
    out = np.empty_like(full)
    assert net.per_example_gradients(X, chunk_size=1, out=out) is out
    np.testing.assert_allclose(out, full, rtol=EXACT_RTOL, atol=EXACT_ATOL)


def test_slopes_override_acts_as_clarke_choice(rng):
    # Put the pair (example 0, unit 0) exactly at a kink, then compare the gradient with the Clarke
    # choice σ' = 1 (resp. 0) there against the ordinary gradient of a net nudged so that the
    # pre-activation is +EPS (resp. -EPS): by continuity of the one-sided pieces they differ by
    # O(EPS · ||θ|| · ||x||), an independent check of the slopes plumbing.
    EPS = 1e-7
    net = HomogeneousMLP.random((3, 4, 4, 1), rng=rng)
    X = rng.standard_normal((5, 3))
    W1 = net.weights[0].copy()
    x0 = X[0]
    W1[0] -= (W1[0] @ x0) / (x0 @ x0) * x0  # now z_1[0, 0] = W1[0]·x0 = 0
    net = net.with_weights((W1,) + net.weights[1:])
    assert abs(net.preactivations(X)[0][0, 0]) < 1e-14
    assert net.kinks(X)[0][0, 0]
    for side, choice in ((+1, 1.0), (-1, 0.0)):
        W1s = W1.copy()
        W1s[0] += side * EPS * x0 / (x0 @ x0)  # z_1[0, 0] = side · EPS
        nudged = net.with_weights((W1s,) + net.weights[1:])
        slopes = net.activation_slopes(X)
        slopes[0][0, 0] = choice
        np.testing.assert_allclose(net.per_example_gradients(X, slopes=slopes),
                                   nudged.per_example_gradients(X), rtol=0, atol=100 * EPS)
        v = rng.standard_normal(net.n_params)
        np.testing.assert_allclose(net.jvp(X, v, slopes=slopes), nudged.jvp(X, v), rtol=0,
                                   atol=100 * EPS * np.abs(v).sum())
        u = rng.standard_normal(5)
        np.testing.assert_allclose(net.vjp(X, u, slopes=slopes), nudged.vjp(X, u), rtol=0,
                                   atol=100 * EPS * np.abs(u).sum())


def test_flat_roundtrip_and_layout(rng):
    net = HomogeneousMLP.random((3, 2, 1), rng=rng)
    theta = net.flat()
    np.testing.assert_array_equal(theta[:6], net.weights[0].ravel())
    np.testing.assert_array_equal(theta[6:], net.weights[1].ravel())
    assert net.block_slices == {"W1": slice(0, 6), "W2": slice(6, 8)}
    np.testing.assert_array_equal(net.with_flat(theta).flat(), theta)
    assert net.block_names == ("W1", "W2")
    assert not net.weights[0].flags.writeable


def test_kinks_relative_tolerance():
    # Pre-activations of one example: (1e-9, 0.5, -2.0). Scale = 2; rtol=1e-6 → threshold 2e-6.
    W1 = np.array([[1e-9], [0.5], [-2.0]])
    net = HomogeneousMLP((W1, np.ones((1, 3))))
    X = np.array([[1.0], [0.0]])
    masks = net.kinks(X, rtol=TOLERANCES.kink_rtol)
    assert masks[0].tolist() == [[True, False, False], [True, True, True]]
    assert net.kinks(X, rtol=0.3)[0][0].tolist() == [True, True, False]
    lin = HomogeneousMLP((W1, np.ones((1, 3))), activation="linear")
    assert not lin.kinks(X)[0].any()


def test_input_validation_messages():
    W1, W2 = np.ones((3, 2)), np.ones((1, 3))
    with pytest.raises(ValueError, match=r"weights\[1\] \(W2\) has shape \(1, 4\)"):
        HomogeneousMLP((W1, np.ones((1, 4))))
    with pytest.raises(ValueError, match=r"cotangent is required for a network with K=2"):
        HomogeneousMLP((W1, np.ones((2, 3)))).per_example_gradients(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"cotangent must have shape \(4, 2\)"):
        HomogeneousMLP((W1, np.ones((2, 3)))).deltas(np.ones((4, 2)), cotangent=np.ones((4, 1)))
    with pytest.raises(ValueError, match="non-finite"):
        HomogeneousMLP((np.full((3, 2), np.nan), W2))
    with pytest.raises(ValueError, match="activation must be one of"):
        HomogeneousMLP((W1, W2), activation="tanh")
    with pytest.raises(ValueError, match="alpha must be 0 for activation='relu'"):
        HomogeneousMLP((W1, W2), alpha=0.1)
    with pytest.raises(ValueError, match="0 <= alpha < 1"):
        HomogeneousMLP((W1, W2), activation="leaky_relu", alpha=1.5)
    with pytest.raises(ValueError, match="must be 2-D"):
        HomogeneousMLP((np.ones(3), W2))
    with pytest.raises(ValueError, match="non-empty sequence"):
        HomogeneousMLP(())
    net = HomogeneousMLP((W1, W2))
    with pytest.raises(ValueError, match="expects d_0 = 2"):
        net.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"theta must have shape \(9,\)"):
        net.with_flat(np.ones(8))
    with pytest.raises(ValueError, match=r"u must have shape \(4,\)"):
        net.vjp(np.ones((4, 2)), np.ones(3))


def test_relabelling_hidden_units_is_a_symmetry(rng):
    # Permuting the units of hidden layer 1 (rows of W1, columns of W2) leaves f unchanged, and
    # the Jacobian columns permute accordingly (metamorphic check of the block layout).
    net = HomogeneousMLP.random((3, 5, 4, 1), activation="leaky_relu", alpha=0.1, rng=rng)
    X = rng.standard_normal((6, 3))
    perm = rng.permutation(5)
    W1, W2, W3 = net.weights
    other = net.with_weights((W1[perm], W2[:, perm], W3))
    np.testing.assert_allclose(other.forward(X), net.forward(X), rtol=EXACT_RTOL, atol=EXACT_ATOL)
    J, Jp = net.per_example_gradients(X), other.per_example_gradients(X)
    idx = np.arange(net.n_params)
    s1, s2 = net.block_slices["W1"], net.block_slices["W2"]
    idx[s1] = idx[s1].reshape(5, 3)[perm].ravel()
    idx[s2] = idx[s2].reshape(4, 5)[:, perm].ravel()
    np.testing.assert_allclose(Jp, J[:, idx], rtol=EXACT_RTOL, atol=EXACT_ATOL)


def test_multi_output_gradients_are_those_of_the_single_output_net_u_W_L(rng):
    # ∂(u_iᵀ f(x_i))/∂θ for K outputs must equal, on the hidden layers, the gradient of the
    # one-output net whose last layer is u_iᵀ W_L (an independent net), and u_i h_{L-1}ᵀ on W_L.
    net = HomogeneousMLP.random([4, 5, 3, 3], rng=rng, activation="leaky_relu", alpha=0.2)
    X = rng.standard_normal((6, 4))
    U = rng.standard_normal((6, 3))
    G = net.per_example_gradients(X, cotangent=U)
    assert net.n_outputs == 3 and net.forward(X).shape == (6, 3) == net.outputs(X).shape
    WL = net.weights[-1]
    nL = WL.size
    for i in range(6):
        one = HomogeneousMLP(net.weights[:-1] + ((U[i] @ WL)[None, :],),
                             activation="leaky_relu", alpha=0.2)
        g1 = one.per_example_gradients(X[i:i + 1])[0]
        np.testing.assert_allclose(G[i, :-nL], g1[:-WL.shape[1]], rtol=1e-12, atol=1e-14)
        h = one.preactivations(X[i:i + 1])[-1][0]
        h = np.where(h > 0, h, 0.2 * h)
        np.testing.assert_allclose(G[i, -nL:].reshape(WL.shape), np.outer(U[i], h), rtol=1e-12,
                                   atol=1e-14)
    # Jᵀu and J v agree with the explicit rows
    v = rng.standard_normal(net.n_params)
    np.testing.assert_allclose(net.vjp(X, U), G.sum(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.einsum("ik,ik->i", net.jvp(X, v), U), G @ v, rtol=1e-10,
                               atol=1e-12)
