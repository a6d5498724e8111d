"""Hypothesis strategies shared by the test suite: finite, bounded, small inputs only."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

__all__ = ["seeds", "separable_data", "underdetermined_system", "homogeneous_nets", "fitted_nets",
           "linear_net_widths", "shallow_problems"]

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _separable(seed: int, n: int, d: int, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Random data separable through the origin by a random unit direction with margin >= gap."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((n, d))
    s = X @ u
    y = np.where(s >= 0, 1.0, -1.0)
    # push every example at least `gap` away from the hyperplane u·x = 0
    X += np.outer(y * np.maximum(gap - np.abs(s), 0.0), u)
    return X, y


@st.composite
def separable_data(draw, *, n=(3, 12), d=(2, 5), gap=(0.1, 1.0)):
    """Draw ``(X, y)`` of shape ``(n, d)``, ``(n,)``, linearly separable through the origin."""
    seed = draw(seeds)
    nn = draw(st.integers(*n))
    dd = draw(st.integers(*d))
    g = draw(st.floats(*gap, allow_nan=False, allow_infinity=False))
    return _separable(seed, nn, dd, g)


@st.composite
def underdetermined_system(draw, *, n=(1, 5), extra=(1, 5)):
    """Draw ``(X, y)`` with ``X`` of shape ``(n, d)``, ``d > n``, full row rank (a.s.)."""
    seed = draw(seeds)
    nn = draw(st.integers(*n))
    dd = nn + draw(st.integers(*extra))
    rng = np.random.default_rng(seed)
    return rng.standard_normal((nn, dd)), rng.standard_normal(nn)


@st.composite
def homogeneous_nets(draw, *, depth=(1, 3), width=(1, 5), d=(1, 4), n=(1, 6)):
    """Draw ``(net, X, seed)``: a random :class:`solvers.HomogeneousMLP` (any activation),
    inputs ``X`` of shape ``(n, d_0)`` and a seed for further randomness in the test."""
    from solvers.nets import HomogeneousMLP

    seed = draw(seeds)
    L = draw(st.integers(*depth))
    sizes = [draw(st.integers(*d))] + [draw(st.integers(*width)) for _ in range(L - 1)] + [1]
    activation = draw(st.sampled_from(["relu", "leaky_relu", "linear"]))
    alpha = draw(st.floats(0.0, 0.5)) if activation == "leaky_relu" else 0.0
    rng = np.random.default_rng(seed)
    net = HomogeneousMLP.random(sizes, activation=activation, alpha=alpha, rng=rng)
    X = rng.standard_normal((draw(st.integers(*n)), sizes[0]))
    return net, X, seed


@st.composite
def fitted_nets(draw, *, depth=(1, 3), width=(1, 5), d=(1, 4), n=(2, 8)):
    """Draw ``(net, X, y, seed)``: a random network from :func:`homogeneous_nets` and labels
    ``y = sign f(x)`` it fits (rows with ``|f| <= 1e-3 max|f|`` dropped), so every margin is > 0."""
    from hypothesis import assume

    net, X, seed = draw(homogeneous_nets(depth=depth, width=width, d=d, n=n))
    f = net.forward(X)
    keep = np.abs(f) > 1e-3 * max(float(np.max(np.abs(f))), 1e-300)
    assume(np.max(np.abs(f)) > 1e-8 and keep.any())
    return net, X[keep], np.sign(f[keep]), seed


@st.composite
def linear_net_widths(draw, *, depth=(1, 4), width=(1, 4)):
    """Draw deep-linear-net widths ``(d_0, ..., d_L)``: small depth and widths (codegen tests)."""
    L = draw(st.integers(*depth))
    return [draw(st.integers(*width)) for _ in range(L + 1)]


@st.composite
def shallow_problems(draw, *, n=(2, 10), d=(1, 5), width=(1, 12)):
    """Draw ``(X, y, width, seed, activation)`` for :mod:`solvers.nets`: unit-sphere inputs
    ``(n, d)``, targets in ``[-1, 1]``, a small width, an init seed and an activation."""
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    nn, dd = draw(st.integers(*n)), draw(st.integers(*d))
    X = rng.standard_normal((nn, dd))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.uniform(-1.0, 1.0, nn)
    return X, y, draw(st.integers(*width)), seed % 2**16, draw(st.sampled_from(["relu", "gelu"]))


def hyperplane_data(rng, n: int, d: int, gap: float = 0.2, jitter: float = 0.1):
    """Gaussian examples labelled by a random hyperplane through 0 and pushed at least ``gap``
    from it (plus ``jitter`` times a uniform amount, so no two margins tie): ``(X, y)``."""
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((n, d))
    s = X @ u
    y = np.where(s >= 0, 1.0, -1.0)
    X += np.outer(y * (np.maximum(gap - np.abs(s), 0.0) + jitter * rng.random(n)), u)
    return X, y

