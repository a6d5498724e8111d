"""Multi-class KKT check (docs/theory.md §7.8; Lyu & Li 2019's multi-class margin
``q_n = f_{y_n}(x_n) − max_{j≠y_n} f_j(x_n)``) and the multi-class margin helpers."""

from __future__ import annotations

import json

import cvxpy as cp
import numpy as np
import pytest

from solvers.losses import log_loss
from solvers.nets import HomogeneousMLP, class_margins, margins, multiclass_log_loss
from solvers.nets.kkt import check_kkt
from tests.test_kkt import (
    CLARABEL,
    CROSS_RTOL,
    KKT_EPS_RTOL,
    META_RTOL,
    _symmetric_svm_net,
)


def _as_two_class(net):
    """The 2-output net with last layer ``[a; −a]/√2`` (same ||θ||, same layer balance)."""
    a = net.weights[-1]
    return HomogeneousMLP(net.weights[:-1] + (np.vstack([a, -a]) / np.sqrt(2.0),),
                          activation=net.activation, alpha=net.alpha)


def _fitted_binary(rng, sizes, n=20):
    net = HomogeneousMLP.random(sizes, rng=rng)
    X = rng.standard_normal((n, sizes[0]))
    f = net.forward(X)
    keep = np.abs(f) > 1e-3 * np.abs(f).max()
    return net, X[keep], np.sign(f[keep])


def _fitted_multiclass(rng, sizes, n=18, tie=False):
    """A random K-output net and the labels it fits (argmax), margins bounded away from 0.
    ``tie``: classes 1 and 2 get identical output rows, so every example of class 0 has two
    exactly tied competitors."""
    net = HomogeneousMLP.random(sizes, rng=rng)
    if tie:
        WL = net.weights[-1].copy()
        WL[2] = WL[1]
        net = HomogeneousMLP(net.weights[:-1] + (WL,))
    X = rng.standard_normal((4 * n, sizes[0]))
    F = net.outputs(X)
    y = F.argmax(axis=1)
    q = class_margins(F, y).min(axis=1)
    keep = np.flatnonzero(q > 1e-2 * np.abs(F).max())[:n]
    return net, X[keep], y[keep]


# ------------------------------------------------------------------ reduction to binary
@pytest.mark.parametrize("kind", ["kkt", "random2", "random3"])
def test_two_class_net_reduces_to_the_binary_check(rng, kind):
    # a ↦ [a; −a]/√2 is an isometry onto a subspace containing θ̃ and every ∇(f_0 − f_1) (the
    # last-layer block of ∇(f_0 − f_1) is [h; −h] = √2 T(h)), and f_0 − f_1 = √2 · (binary f):
    # the two KKT programs are the same up to a rescaling of the constraint, so ε/||θ̃||, δ/||θ̃||²
    # and the verdict agree (META_RTOL, the metamorphic tolerance of tests/test_kkt.py).
    if kind == "kkt":
        net, X, y, _ = _symmetric_svm_net(rng)
    else:
        net, X, y = _fitted_binary(rng, [3, 6, 1] if kind == "random2" else [3, 5, 4, 1])
    kw = {}
    if kind != "kkt":
        # every example a candidate and a large δ budget: several multipliers, ε clearly below 1
        # (with the defaults these nets have one candidate and ε ≈ 0.9999, where a wrong
        # competitor cotangent, e.g. e_y − 0.9 e_j, moves ε by less than META_RTOL)
        q = y * net.forward(X)
        kw = {"support_factor": float(q.max() / q.min()) * 1.01, "delta_tol": 0.5}
    binary = check_kkt(net, X, y, **kw)
    multi = check_kkt(_as_two_class(net), X, (y < 0).astype(int), **kw)  # +1 → 0, −1 → 1
    assert binary.is_kkt == (kind == "kkt")  # premise: both verdicts are exercised
    assert binary.support.size > 1           # premise: a program with several multipliers
    assert multi.status == binary.status
    assert multi.epsilon_relative == pytest.approx(binary.epsilon_relative, rel=META_RTOL,
                                                   abs=KKT_EPS_RTOL * 1e-3)
    assert multi.delta_relative == pytest.approx(binary.delta_relative, rel=META_RTOL,
                                                 abs=KKT_EPS_RTOL * 1e-3)
    assert multi.n_candidates == binary.n_candidates
    assert multi.support.tolist() == binary.support.tolist()
    assert multi.extra["n_classes"] == 2
    lab = (y < 0).astype(int)
    pairs = multi.extra["support_pairs"]
    assert pairs and all(c == 1 - lab[i] for i, c, _ in pairs)  # the competitor is the other class
    assert sorted(i for i, _, _ in pairs) == multi.support.tolist()
    json.dumps(multi.to_dict())


# ------------------------------------------------------------------ independent program
def _reference_epsilon(net, X, y, support_factor, delta_tol, residual=False):
    """ε/||θ̃|| from per-pair gradients of independent one-output nets (last layer
    W_L[y] − W_L[j]) and the KKT program written out in CVXPY (no kinks at θ̃); with
    ``residual``, also the residual vector ``θ̃ − Aᵀλ`` (unique: a projection)."""
    F = net.outputs(X)
    Q = class_margins(F, y)
    q_min = Q.min()
    L = net.degree
    tnet = net.with_flat(net.flat() / q_min ** (1.0 / L))
    theta = tnet.flat()
    WL = tnet.weights[-1]
    rows, qs = [], []
    for i, j in zip(*np.nonzero(Q / q_min <= support_factor), strict=True):
        diff = HomogeneousMLP(tnet.weights[:-1] + ((WL[y[i]] - WL[j])[None, :],))
        g = diff.per_example_gradients(X[i:i + 1])[0]  # hidden layers
        full = np.zeros(theta.size)
        nL = WL.size
        full[:-nL] = g[:-WL.shape[1]]
        h = diff.preactivations(X[i:i + 1])[-1][0]
        blk = np.zeros(WL.shape)
        blk[y[i]] = np.maximum(h, 0.0)
        blk[j] = -np.maximum(h, 0.0)
        full[-nL:] = blk.ravel()
        rows.append(full)
        qs.append(Q[i, j] / q_min)
    A = np.array(rows)
    lam = cp.Variable(A.shape[0], nonneg=True)
    R2 = float(theta @ theta)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(theta - A.T @ lam)),
                      [(np.array(qs) - 1.0) @ lam <= delta_tol * R2])
    prob.solve(**CLARABEL)
    r = theta - A.T @ lam.value
    if residual:
        return float(np.linalg.norm(r)) / np.sqrt(R2), A.shape[0], r, np.sqrt(R2)
    return float(np.linalg.norm(r)) / np.sqrt(R2), A.shape[0]


@pytest.mark.parametrize("sizes, tie", [([3, 6, 3], False), ([3, 6, 3], True),
                                        ([3, 4, 5, 4], False), ([3, 4, 5, 3], True)])
def test_multiclass_epsilon_matches_an_independent_cvxpy_program(rng, sizes, tie):
    net, X, y = _fitted_multiclass(rng, sizes, tie=tie)
    rep = check_kkt(net, X, y, support_factor=2.0)
    assert rep.n_kink_pairs == 0  # premise of the reference (generic random net)
    ref, n_pairs = _reference_epsilon(net, X, y, 2.0, rep.delta_tol)
    assert rep.n_candidates == n_pairs
    if tie:  # premise: tied competitors give two constraints for the same example
        assert n_pairs > len(set(np.flatnonzero(class_margins(net.outputs(X), y).min(axis=1)
                                                / margins(net, X, y).min() <= 2.0)))
    # two solvers on the same convex program (ours: QP to 1e-10 + polish; Clarabel to 1e-10)
    assert rep.epsilon_relative == pytest.approx(ref, rel=CROSS_RTOL, abs=KKT_EPS_RTOL * 1e-2)
    assert rep.exact and rep.solver_status == "optimal"
    assert rep.euler_residual <= 1e-10


def test_epsilon_by_layer_splits_the_independent_residual(rng):
    # issue 11 item 5 for numpy MLPs (.npz files): ε split by layer, W1 … WL, against the
    # residual θ̃ − Aᵀλ of the CVXPY program (unique, a projection), layer by layer
    net, X, y = _fitted_multiclass(rng, [3, 4, 5, 4], tie=True)
    Q = class_margins(net.outputs(X), y)
    sf = float(Q[np.isfinite(Q)].max() / Q.min()) * 1.01     # every pair a candidate
    rep = check_kkt(net, X, y, support_factor=sf, delta_tol=0.5)
    ref, _, r, R = _reference_epsilon(net, X, y, sf, rep.delta_tol, residual=True)
    assert rep.exact and 0.05 < ref < 0.99 and rep.support.size > 1   # premise: a real program
    got = dict(rep.extra["epsilon_by_layer"])
    assert list(got) == sorted(got, key=lambda k: -got[k])             # largest first
    parts = np.split(r, np.cumsum([W.size for W in net.weights])[:-1])
    assert sorted(got) == ["W1", "W2", "W3"]
    for layer, part in zip(["W1", "W2", "W3"], parts, strict=True):
        assert got[layer] == pytest.approx(np.linalg.norm(part), rel=CROSS_RTOL,
                                           abs=KKT_EPS_RTOL * 1e-2 * R)
    assert np.sqrt(sum(v * v for v in got.values())) == pytest.approx(rep.epsilon, rel=1e-9)
    # the working-set path (its last product Aᵀν reused) gives the same split
    ws = check_kkt(net, X, y, support_factor=sf, delta_tol=0.5, working_set=True)
    assert ws.extra["working_set_rounds"] >= 1
    for layer, value in ws.extra["epsilon_by_layer"]:
        assert value == pytest.approx(got[layer], rel=1e-6, abs=KKT_EPS_RTOL * 1e-2 * R)
    # not claimed where ε is not one exact program's residual: ℓ1/ℓ∞ programs
    assert "epsilon_by_layer" not in check_kkt(net, X, y, norm=1).extra


# ------------------------------------------------------------------ metamorphic
def test_multiclass_metamorphic_permutation_scaling_duplication(rng):
    net, X, y = _fitted_multiclass(rng, [3, 6, 4], tie=True)
    base = check_kkt(net, X, y)
    # permuting the classes (rows of W_L and the labels)
    perm = np.array([2, 0, 3, 1])
    inv = np.argsort(perm)
    pnet = HomogeneousMLP(net.weights[:-1] + (net.weights[-1][perm],))
    rep = check_kkt(pnet, X, inv[y])
    assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=META_RTOL)
    np.testing.assert_allclose(rep.multipliers, base.multipliers, rtol=META_RTOL,
                               atol=META_RTOL * base.multipliers.max())
    # scaling θ by c > 0
    for c in (1e-3, 7.0, 1e200):
        rep = check_kkt(net.with_flat(c * net.flat()), X, y)
        assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=META_RTOL)
        assert rep.status == base.status
    # duplicating every example: same ε (the multiplier of an example may split between copies)
    rep = check_kkt(net, np.vstack([X, X]), np.concatenate([y, y]))
    assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=META_RTOL)
    n = X.shape[0]
    np.testing.assert_allclose(rep.multipliers[:n] + rep.multipliers[n:], base.multipliers,
                               rtol=CROSS_RTOL, atol=CROSS_RTOL * base.multipliers.max())


def test_multiclass_bad_labels_say_what_to_pass(rng):
    net, X, y = _fitted_multiclass(rng, [3, 5, 3])
    with pytest.raises(ValueError, match=r"y must hold class indices 0…2 .*found \[-1\]"):
        check_kkt(net, X, np.where(y == 0, -1, y))
    with pytest.raises(ValueError, match=r"y must hold integer class indices"):
        check_kkt(net, X, y + 0.5)
    with pytest.raises(ValueError, match=r"y must have shape"):
        check_kkt(net, X, y[:-1])


def test_misclassified_multiclass_examples_are_counted(rng):
    from solvers.errors import NotFeasibleError

    net, X, y = _fitted_multiclass(rng, [3, 5, 3])
    wrong = y.copy()
    wrong[:3] = (wrong[:3] + 1) % 3
    with pytest.raises(NotFeasibleError, match=rf"3 of {X.shape[0]} example\(s\)"):
        check_kkt(net, X, wrong)


# ------------------------------------------------------------------ margin helpers
def test_class_margins_and_losses_reduce_to_binary_for_two_classes(rng):
    q = rng.uniform(-2.0, 5.0, 9)
    y = rng.integers(0, 2, 9)
    F = np.zeros((9, 2))
    F[np.arange(9), y] = q  # f_y − f_other = q
    Q = class_margins(F, y)
    np.testing.assert_array_equal(Q.min(axis=1), q)
    assert np.all(np.isinf(Q[np.arange(9), y]))
    for loss in ("logistic", "exp"):
        assert multiclass_log_loss(Q, loss) == pytest.approx(log_loss(q, loss), rel=1e-13)


def test_multiclass_log_loss_is_exact_far_below_1e_300():
    # two examples, K = 3, all competitors at margin m: CE = 2 log(1 + 2e^{−m}) ≈ 4 e^{−m},
    # exp loss = 4 e^{−m}; for m = 1000 (𝓛 ≈ 1e-434) log 𝓛 = log 4 − m to double precision.
    m = 1000.0
    Q = np.full((2, 3), m)
    Q[:, 0] = np.inf
    for loss in ("logistic", "exp"):
        assert multiclass_log_loss(Q, loss) == pytest.approx(np.log(4.0) - m, rel=1e-15)
    # moderate values against the direct formula
    Q = np.array([[np.inf, 0.3, 1.2], [-0.5, np.inf, 2.0]])
    ce = np.log(np.log1p(np.exp(-0.3) + np.exp(-1.2)) + np.log1p(np.exp(0.5) + np.exp(-2.0)))
    assert multiclass_log_loss(Q, "logistic") == pytest.approx(ce, rel=1e-14)


def test_margins_of_a_multiclass_net_are_lyu_li_margins(rng):
    net = HomogeneousMLP.random([3, 5, 4], rng=rng)
    X = rng.standard_normal((7, 3))
    y = rng.integers(0, 4, 7)
    F = net.outputs(X)
    want = np.array([F[i, y[i]] - np.max(np.delete(F[i], y[i])) for i in range(7)])
    np.testing.assert_allclose(margins(net, X, y), want, rtol=1e-14, atol=1e-15)


def test_multiclass_summary_names_support_pairs_with_their_competing_class(rng):
    net, X, y = _fitted_multiclass(rng, [3, 6, 3], tie=True)
    rep = check_kkt(net, X, y)
    pairs = rep.extra["support_pairs"]
    assert pairs and all(c != y[i] for i, c, _ in pairs)  # the competitor is never the label
    assert sorted({i for i, _, _ in pairs}) == rep.support.tolist()
    assert "(example, competing class, λ)" in rep.summary()


@pytest.mark.parametrize("norm", [1, np.inf])
def test_multiclass_l1_linf_checks_run_on_the_explicit_columns(rng, norm):
    # ℓ1/ℓ∞ use the explicit (candidate pair, P) columns with the output cotangents; the
    # optimised ε can never exceed the natural multipliers' (a feasible point of the same LP)
    net, X, y = _fitted_multiclass(rng, [3, 5, 3], tie=True)
    rep = check_kkt(net, X, y, norm=norm)
    assert rep.norm == ("1" if norm == 1 else "inf")
    assert rep.epsilon <= rep.natural_epsilon * (1 + 1e-9)
    assert rep.extra["n_classes"] == 3 and rep.solver_status == "optimal"
