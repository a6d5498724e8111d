"""check_kkt on PyTorch networks (solvers.nets.kkt._torch): the same ε, δ and verdict as the numpy
HomogeneousMLP path on the same MLP; an independent CVXPY program on per-pair gradients by plain
autograd (one example at a time) for a CNN; invariance under θ → cθ down to 1e±300; bad input."""

import copy
import functools

import cvxpy as cp
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the optional extra, not our own module
nn = torch.nn

from solvers import NotFeasibleError, check_kkt  # noqa: E402
from solvers.nets import HomogeneousMLP, TorchNet, train_torch  # noqa: E402
from solvers.nets.kkt import KKTConfig  # noqa: E402
from solvers.nets.kkt._torch import check_kkt_torch  # noqa: E402
from solvers.tolerances import TOLERANCES  # noqa: E402
from tests.test_kkt import CLARABEL, CROSS_RTOL, KKT_EPS_RTOL  # noqa: E402

#: Both back-ends solve the same QP to TOLERANCES.kkt_qp_tol (1e-10, relative); they differ in the
#: order of floating-point sums (layer-structured Gram vs explicit per-example rows).
BACKEND_RTOL = 1e-7


def _trained_mlp(K, seed=0, n=24, steps=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    teacher = rng.normal(size=(3, max(K, 2)))
    y = (X @ teacher).argmax(1) if K > 1 else np.sign(X @ teacher[:, 0])
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(3, 8, bias=False), nn.ReLU(), nn.Linear(8, K, bias=False))
    r = train_torch(m, X, y, steps=steps, lr=0.2, loss="exp")
    assert r.status == "fitted"                        # premise of the margin problem
    return r.net, X, y


def _as_mlp(tn):
    W = [p.detach().numpy().copy() for p in tn.module.parameters()]
    return HomogeneousMLP(tuple(W), activation="relu")


@pytest.mark.parametrize("K", [1, 3])
def test_same_answer_as_the_numpy_backend(K):
    tn, X, y = _trained_mlp(K)
    a = check_kkt(_as_mlp(tn), X, y.astype(float) if K == 1 else y, support_factor=3.0)
    b = check_kkt(tn, X, y.astype(float) if K == 1 else y, support_factor=3.0)
    assert a.n_candidates == b.n_candidates > 3      # a real support, not one example
    assert b.exact and a.exact
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=BACKEND_RTOL)
    assert b.delta_relative == pytest.approx(a.delta_relative, rel=BACKEND_RTOL,
                                             abs=BACKEND_RTOL * a.delta_tol)
    np.testing.assert_array_equal(a.support, b.support)
    assert a.status == b.status
    assert b.euler_residual <= 1e-10
    assert b.extra["backend"] == "torch"


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(12, 6, bias=False), nn.ReLU(), nn.Linear(6, 3, bias=False))


#: the QP paths of the torch back-end: interior point (the default below 1000 variables) and
#: gradient projection + CG (forced from 0 variables)
GPCG = KKTConfig(first_order_min_variables=0)


def _check(tn, X, y, config, support_factor=2.0):
    """check_kkt's torch back-end with a given KKTConfig (check_kkt itself uses the default)."""
    return check_kkt_torch(tn, X, y, loss="logistic", eps_tol=TOLERANCES.kkt_eps_tol,
                           delta_tol=TOLERANCES.kkt_delta_tol, support_factor=support_factor,
                           kink_rtol=TOLERANCES.kink_rtol, max_dense_entries=60_000_000,
                           config=config)


def _trained_cnn():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(16, 1, 6, 6))
    y = TorchNet(_cnn()).outputs(X).argmax(1)        # the labels the net fits
    r = train_torch(_cnn(), X, y, steps=60, lr=0.2, loss="exp")
    return r.net.scaled(1.0 / r.net.parameter_norm()), X, y   # the reference: unit norm


@pytest.mark.parametrize("config, method", [(None, "interior-point"),
                                            (GPCG, "gradient projection")])
def test_cnn_matches_an_independent_cvxpy_program(config, method):
    tn, X, y = _trained_cnn()
    rep = _check(tn, X, y, config)
    assert rep.method.startswith(method)             # the path under test ran
    assert rep.solver_status == "optimal"
    # the reference: θ̃ and per-pair gradients by plain autograd, one example at a time
    net = copy.deepcopy(tn.module)
    for p in net.parameters():
        p.requires_grad_(True)
    F = tn.outputs(X)
    q = np.array([[F[i, y[i]] - F[i, j] if j != y[i] else np.inf for j in range(3)]
                  for i in range(len(y))])
    qmin, L = q.min(), tn.degree
    c = qmin ** (-1.0 / L)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(c)
    theta = np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])
    rows, qs = [], []
    for i in range(len(y)):
        for j in range(3):
            if j != y[i] and q[i, j] / qmin <= 2.0:
                net.zero_grad()
                out = net(torch.from_numpy(X[i:i + 1]))[0]
                (out[y[i]] - out[j]).backward()
                rows.append(np.concatenate([p.grad.numpy().ravel() for p in net.parameters()]))
                qs.append(q[i, j] / qmin)
    A = np.array(rows)
    lam = cp.Variable(A.shape[0], nonneg=True)
    R2 = float(theta @ theta)
    cp.Problem(cp.Minimize(cp.sum_squares(theta - A.T @ lam)),
               [(np.array(qs) - 1.0) @ lam <= rep.delta_tol * R2]).solve(**CLARABEL)
    resid = theta - A.T @ lam.value
    ref = float(np.linalg.norm(resid)) / np.sqrt(R2)
    assert rep.n_candidates == A.shape[0] > 3
    assert rep.epsilon_relative == pytest.approx(ref, rel=CROSS_RTOL, abs=KKT_EPS_RTOL * 1e-2)
    # ε by layer: the reference residual split by the parameters' layers (module paths)
    sizes = [p.numel() for p in net.parameters()]
    layers = [name.rsplit(".", 1)[0] for name, _ in net.named_parameters()]
    by_layer: dict = {}
    for layer, part in zip(layers, np.split(resid, np.cumsum(sizes)[:-1]), strict=True):
        by_layer[layer] = by_layer.get(layer, 0.0) + float(part @ part)
    top = max(by_layer, key=by_layer.get)
    name, value = rep.extra["epsilon_by_layer"][0]
    assert name == top
    assert value == pytest.approx(np.sqrt(by_layer[top]), rel=CROSS_RTOL, abs=KKT_EPS_RTOL * 1e-2
                                  * np.sqrt(R2))


@functools.lru_cache(maxsize=1)
def _trained_cnn_40():
    """Trained once, shared by two tests (read-only: the checks never modify the net)."""
    X = np.random.default_rng(2).normal(size=(40, 1, 6, 6))
    y = TorchNet(_cnn()).outputs(X).argmax(1)
    r = train_torch(_cnn(), X, y, steps=100, lr=0.2, loss="exp")
    assert r.status == "fitted"
    return r.net, X, y


def test_gpcg_path_equals_interior_point_path():
    tn, X, y = _trained_cnn_40()
    a = _check(tn, X, y, None, 5.0)
    b = _check(tn, X, y, GPCG, 5.0)
    assert a.method.startswith("interior-point") and b.method.startswith("gradient projection")
    assert a.solver_status == b.solver_status == "optimal"
    assert a.n_candidates == b.n_candidates > 40            # several competitors per example
    # both certified to TOLERANCES.kkt_optimality_rtol (1e-6, relative dual violation): ε agrees
    # far below the verdict's resolution
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=1e-6)
    np.testing.assert_array_equal(a.support, b.support)
    assert a.support.size > 3
    assert b.delta_relative == pytest.approx(a.delta_relative, rel=1e-4, abs=1e-8)


def test_newton_path_equals_interior_point_path():
    # KKTConfig.explicit_qp = "newton" (projected Newton, Cholesky face solves) on the same
    # program as the interior point: the same certified ε, support and status
    tn, X, y = _trained_cnn_40()
    a = _check(tn, X, y, None, 5.0)
    b = _check(tn, X, y, KKTConfig(first_order_min_variables=0, explicit_qp="newton"), 5.0)
    assert a.method.startswith("interior-point") and b.method.startswith("projected Newton")
    assert a.solver_status == b.solver_status == "optimal"
    assert a.n_candidates == b.n_candidates > 40
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=1e-6)
    np.testing.assert_array_equal(a.support, b.support)
    assert a.support.size > 3
    assert b.delta_relative == pytest.approx(a.delta_relative, rel=1e-4, abs=1e-8)
    assert a.status == b.status


def _self_labelled(seed, n=30):
    X = np.random.default_rng(3 + seed).normal(size=(n, 1, 6, 6))
    tn = TorchNet(_cnn(seed))
    y = tn.outputs(X).argmax(1)
    q = tn.margins(X, y)
    return tn, X, y, float(q.max() / q.min()) * 1.01      # every example a candidate


def _pair_margins(tn, X, y):
    """Every (example, competing class) pair's margin relative to the smallest, in the order of
    the check's candidates (row-major over examples, then classes)."""
    F = tn.outputs(X)
    q = np.array([F[i, y[i]] - F[i, j] for i in range(len(y)) for j in range(F.shape[1])
                  if j != y[i]])
    pairs = [(i, j) for i in range(len(y)) for j in range(F.shape[1]) if j != y[i]]
    return pairs, q / q.min()


def test_working_set_adds_violating_pairs_until_the_full_program_is_certified():
    # working set forced (from 0 candidates) from the 10 smallest-margin pairs, one pair added at
    # least per round (so at most half the working set more: several rounds); it must end at the
    # full program's optimum, certified
    ws = KKTConfig(working_set_min_candidates=0, working_set_initial=10, working_set_batch=1)
    # a random self-labelled net: support pairs outside the 10 smallest margins are needed
    tn, X, y, sf = _self_labelled(0)
    full, part = _check(tn, X, y, None, sf), _check(tn, X, y, ws, sf)
    assert full.extra["working_set_sizes"] == [full.n_candidates]      # the full program
    pairs, q = _pair_margins(tn, X, y)
    first = {pairs[k] for k in np.argsort(q, kind="stable")[:10]}
    support = {(r, c) for r, c, _ in full.extra["support_pairs"]}
    assert support - first                     # the initial working set misses support pairs
    assert full.solver_status == part.solver_status == "optimal"
    assert part.extra["working_set_sizes"][0] == 10 < part.n_candidates
    assert part.extra["working_set_rounds"] >= 2              # pairs were added
    assert part.extra["working_set_sizes"][-1] > 10
    assert part.extra["working_set_violation"] <= TOLERANCES.kkt_working_set_rtol
    assert "could lower ε" not in part.verdict
    # both certified to TOLERANCES.kkt_optimality_rtol (1e-6, relative dual violation)
    assert part.epsilon_relative == pytest.approx(full.epsilon_relative, rel=1e-6)
    np.testing.assert_array_equal(part.support, full.support)
    assert {(r, c) for r, c, _ in part.extra["support_pairs"]} == support
    assert part.status == full.status
    # past KKTConfig.working_set_max_share of the candidates every outside pair is added at once:
    # the second round is the full program
    share = _check(tn, X, y, KKTConfig(working_set_min_candidates=0, working_set_initial=10,
                                       working_set_max_share=0.01), sf)
    assert share.extra["working_set_sizes"] == [10, share.n_candidates]
    assert share.solver_status == "optimal"
    assert share.epsilon_relative == pytest.approx(full.epsilon_relative, rel=1e-6)
    # a trained net, from as many pairs as examples: the same certified optimum
    tn, X, y = _trained_cnn_40()
    ws40 = KKTConfig(working_set_min_candidates=0, working_set_initial=40, working_set_batch=1)
    full, part = _check(tn, X, y, None, 5.0), _check(tn, X, y, ws40, 5.0)
    assert part.extra["working_set_sizes"][0] == 40 < part.n_candidates
    assert full.solver_status == part.solver_status == "optimal"
    assert part.epsilon_relative == pytest.approx(full.epsilon_relative, rel=1e-6)
    np.testing.assert_array_equal(part.support, full.support)


def test_binary_working_set_from_few_examples_reaches_the_full_program():
    # one output: the working set is of examples; it starts from the 3 smallest margins, which
    # miss part of the support, and must end at the full program's certified optimum
    tn, X, y = _trained_mlp(1, n=40)
    y = y.astype(float)
    ws = KKTConfig(working_set_min_candidates=0, working_set_initial=3, working_set_batch=1)
    full, part = _check(tn, X, y, None, 3.0), _check(tn, X, y, ws, 3.0)
    first = set(np.argsort(tn.margins(X, y), kind="stable")[:3].tolist())
    assert set(full.support.tolist()) - first             # support outside the first set
    assert part.extra["working_set_sizes"][0] == 3 and part.extra["working_set_rounds"] >= 2
    assert full.solver_status == part.solver_status == "optimal"
    assert part.epsilon_relative == pytest.approx(full.epsilon_relative, rel=1e-6)
    np.testing.assert_array_equal(part.support, full.support)


def test_working_set_gram_grown_by_block_rows_is_the_pair_gram():
    from solvers.nets.kkt._torch import _BlockRowGram, _new_rows

    tn, X, y, _ = _self_labelled(1, n=12)
    rows = np.repeat(np.arange(12), 2)
    classes = np.array([j for i in range(12) for j in range(3) if j != y[i]])
    perm = np.random.default_rng(0).permutation(24)
    rows, classes = rows[perm], classes[perm]
    G = tn.pair_gram(X, y, rows, classes)
    grown, facs = _BlockRowGram(), []
    for a, b in ((0, 5), (5, 6), (6, 17), (17, 24)):          # four rounds of unequal sizes
        fac = tn._pair_factors(X, y, rows[a:b], classes[a:b])
        grown.append(_new_rows(tn, facs, fac))
        facs.append(fac)
    scale = np.abs(G).max()
    np.testing.assert_allclose(grown.dense(), G, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(grown.diagonal(), np.diag(G), rtol=1e-12, atol=1e-12 * scale)
    v = np.random.default_rng(1).normal(size=24)
    np.testing.assert_allclose(grown @ v, G @ v, rtol=1e-12, atol=1e-12 * scale * np.abs(v).sum())
    with pytest.raises(ValueError, match="block of new rows"):
        grown.append(np.zeros((2, 3)))


def test_working_set_round_cap_reports_an_upper_bound():
    ws = KKTConfig(working_set_min_candidates=0, working_set_initial=10, working_set_max_rounds=1)
    tn, X, y, sf = _self_labelled(0)
    full = _check(tn, X, y, None, sf)
    with pytest.warns(RuntimeWarning, match="upper bound"):
        part = _check(tn, X, y, ws, sf)
    assert part.extra["working_set_rounds"] == 1
    assert part.solver_status == "inaccurate"
    assert part.optimality_residual > TOLERANCES.kkt_optimality_rtol
    assert "could lower ε" in part.verdict and "cap of 1 round" in part.verdict
    assert part.epsilon_relative > full.epsilon_relative * (1 + 1e-6)   # the claim is true


def test_check_kkt_passes_config_to_the_torch_backend():
    tn, X, y, sf = _self_labelled(0, n=12)
    with pytest.warns(RuntimeWarning, match="upper bound"):   # one round: not certified
        rep = check_kkt(tn, X, y, support_factor=sf,
                        config=KKTConfig(working_set_min_candidates=0, working_set_initial=12,
                                         working_set_max_rounds=1))
    assert rep.extra["working_set_sizes"] == [12] < [rep.n_candidates]
    with pytest.raises(TypeError, match="config must be"):
        check_kkt(tn, X, y, config={"working_set_batch": 1})
    with pytest.raises(ValueError, match=f"max_dense_entries={rep.n_candidates ** 2}"):
        check_kkt(tn, X, y, support_factor=sf, max_dense_entries=100)
    with pytest.raises(ValueError, match="max_dense_entries=144.*working_set_initial"):
        check_kkt(tn, X, y, support_factor=sf, max_dense_entries=100,
                  config=KKTConfig(working_set_min_candidates=0, working_set_initial=12))


def test_pair_gram_between_is_the_block_of_the_full_pair_gram():
    tn, X, y, _ = _self_labelled(1, n=12)
    rows = np.repeat(np.arange(12), 2)
    classes = np.array([j for i in range(12) for j in range(3) if j != y[i]])
    G = tn.pair_gram(X, y, rows, classes)
    a = np.array([3, 5, 11, 0, 23])
    b = np.array([1, 2, 3, 19, 8, 5, 0, 23])             # overlapping, unsorted
    for chunk, block in ((512, 2048), (3, 2)):           # one block, and several of each
        got = tn.pair_gram_between(X, y, rows[a], classes[a], rows[b], classes[b],
                                   chunk_size=chunk, block_size=block)
        np.testing.assert_allclose(got, G[np.ix_(a, b)], rtol=1e-12,
                                   atol=1e-12 * np.abs(G).max())
    assert tn.pair_gram_between(X, y, rows[:0], classes[:0], rows, classes).shape == (0, 24)


def test_reduced_costs_by_forward_mode_equal_explicit_gradients():
    from solvers.nets.kkt._torch import _pair_directional
    from tests.test_torch_net import _autograd_rows

    tn, X, y, _ = _self_labelled(1, n=12)
    rows = np.repeat(np.arange(12), 2)
    classes = np.array([j for i in range(12) for j in range(3) if j != y[i]])
    gen = torch.Generator().manual_seed(0)
    tangent = {k: torch.randn(p.shape, generator=gen, dtype=torch.float64)
               for k, p in tn.module.named_parameters()}
    t = np.concatenate([tangent[k].numpy().ravel() for k in tn.parameter_names])
    module = copy.deepcopy(tn.module).requires_grad_(True)
    J = _autograd_rows(module, X, y, rows, classes)
    got = _pair_directional(tn, X, y, rows, classes, tangent)
    np.testing.assert_allclose(got, J @ t, rtol=1e-12, atol=1e-12 * np.abs(J @ t).max())


def test_scale_invariance_down_to_1e300():
    tn, X, y = _trained_mlp(3)
    base = check_kkt(tn, X, y)
    for c in (1e-300, 1e-100, 1e100, 1e300):
        rep = check_kkt(tn.scaled(c), X, y)
        assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=1e-6)
        assert rep.status == base.status
        assert rep.log_q_min == pytest.approx(base.log_q_min + tn.degree * np.log(c), rel=1e-9)


def test_bad_input():
    tn, X, y = _trained_mlp(3)
    with pytest.raises(ValueError, match="norm must be 1, 2 or 'inf'"):
        check_kkt(tn, X, y, norm=3)
    with pytest.raises(NotFeasibleError, match="margin <= 0"):
        check_kkt(tn, X, (y + 1) % 3)
    with pytest.raises(ValueError, match="class indices"):
        check_kkt(tn, X, y + 3)
    # the same argument checks as the numpy back-end (one shared function)
    with pytest.raises(ValueError, match="kink_rtol must be >= 0"):
        check_kkt(tn, X, y, kink_rtol=-1.0)
    with pytest.raises(ValueError, match=r"support_factor must be a finite float >= 1 \(cand"):
        check_kkt(tn, X, y, support_factor=0.5)
