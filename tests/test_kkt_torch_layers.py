"""check_kkt on PyTorch networks of every supported layer type (issue 11, "Correctness"):

- an independent check: θ̃ and the per-pair gradients by plain autograd, one example at a time,
  and the KKT program written out in CVXPY, for Conv1d/Conv2d (first-layer bias), ReLU/LeakyReLU,
  MaxPool/AvgPool/AdaptiveAvgPool, Flatten, Dropout, Identity, nested Sequential, a custom
  module traced by torch.fx, a one-output head and a multi-class head with tied competitors;
- a reduction: a convolution against its unfolded dense matrix;
- metamorphic: permuting the classes, duplicating the examples, scaling θ;
- conversions: float32 / bfloat16 modules are accepted, converted, and the report says so;
- bad inputs: each kind of non-homogeneous module is refused, naming its module path and type.
"""

import copy

import cvxpy as cp
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the optional extra, not our own module
nn = torch.nn

from solvers import NotHomogeneousError, check_kkt  # noqa: E402
from solvers.nets import TorchNet  # noqa: E402
from tests.test_kkt import CLARABEL, CROSS_RTOL, KKT_EPS_RTOL, META_RTOL  # noqa: E402
from tests.test_torch_net import GRAM_RTOL, _autograd_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


#: A δ budget large enough that many pairs carry multipliers, so ε is well below 1 and the
#: comparison with the reference is not decided by λ = 0.
DELTA_TOL = 0.5


class _Custom(nn.Module):
    """Traced by torch.fx: 1-D conv with a bias on the data, module ReLUs, an equal-degree
    residual (degree 2 + degree 2) and a 3-class head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.act = nn.ReLU()
        self.pool = nn.AvgPool1d(2)
        self.a = nn.Linear(9, 6, bias=False)
        self.b = nn.Linear(9, 6, bias=False)
        self.head = nn.Linear(6, 3, bias=False)

    def forward(self, x):
        h = torch.flatten(self.pool(self.act(self.conv(x))), 1)
        return self.head(self.a(h) + self.b(h))


def _conv1d():
    return nn.Sequential(nn.Conv1d(2, 4, 3), nn.LeakyReLU(0.1), nn.AvgPool1d(2),
                         nn.AdaptiveAvgPool1d(3), nn.Flatten(), nn.Linear(12, 3, bias=False))


def _conv2d_tied():
    net = nn.Sequential(nn.Sequential(nn.Conv2d(1, 3, 3, bias=False), nn.ReLU()),
                        nn.MaxPool2d(2), nn.Dropout(0.3), nn.Identity(),
                        nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(),
                        nn.Linear(12, 4, bias=False))
    with torch.no_grad():
        net[6].weight[2] = net[6].weight[1]      # classes 1 and 2 always tie
    return net


def _conv2d_binary():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(27, 5, bias=False), nn.ReLU(),
                         nn.Linear(5, 1, bias=False))


NETS = {  # name: (factory, input shape, tie between classes 1 and 2)
    "conv1d-leaky-avg-adaptive-bias": (_conv1d, (2, 10), False),
    "nested-conv2d-maxpool-dropout-identity-tie": (_conv2d_tied, (1, 6, 6), True),
    "conv2d-padding-avgpool-binary": (_conv2d_binary, (1, 6, 6), False),
    "custom-fx-module-residual": (_Custom, (2, 8), False),
}


def _self_labelled(make, shape, seed=0, n=40):
    """A random net (float64) and data it labels itself; examples with a small margin (or a
    label among tied classes, margin 0) are dropped, so every kept example is fitted."""
    torch.manual_seed(seed)
    module = make().double()
    net = TorchNet(module)
    X = np.random.default_rng(seed).normal(size=(n, *shape))
    F = net.outputs(X)
    y = np.where(F[:, 0] > 0, 1, -1) if F.shape[1] == 1 else F.argmax(1)
    q = net.margins(X, y)
    keep = q > 1e-2 * np.abs(F).max()
    X, y = X[keep], y[keep]
    # every (example, competitor) pair a candidate: a program with many multipliers
    Q = y[:, None] * F[keep] if F.shape[1] == 1 else \
        F[keep][np.arange(len(y)), y][:, None] - F[keep]
    Q[Q == 0] = np.inf if F.shape[1] > 1 else Q[Q == 0]
    return module, net, X, y, float(Q.max(where=np.isfinite(Q), initial=0) / q[keep].min()) * 1.01


def _reference(module, X, y, support_factor, delta_tol):
    """ε/||θ̃||, the candidate pairs and L from plain autograd (one example at a time) and CVXPY."""
    net = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        F = net(torch.from_numpy(X)).reshape(len(y), -1).numpy()
    K = F.shape[1]
    if K == 1:
        Q = (y * F[:, 0])[:, None]
        pairs = [(i, -1) for i in range(len(y))]
    else:
        Q = np.array([[F[i, y[i]] - F[i, j] if j != y[i] else np.inf for j in range(K)]
                      for i in range(len(y))])
        pairs = [(i, j) for i in range(len(y)) for j in range(K) if j != y[i]]
    q_min = Q.min()
    # θ̃ = θ / q_min^{1/L}, L from Euler's identity of the net itself: ⟨∇q, θ⟩ = L q
    theta = np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])
    i0, j0 = pairs[int(np.argmin([Q[i, max(j, 0)] for i, j in pairs]))]
    g0 = _autograd_rows(net, X, y, [i0], [j0])[0]
    L = round(float(g0 @ theta) / q_min)
    theta_t = theta / q_min ** (1.0 / L)
    with torch.no_grad():
        for p in net.parameters():
            p.div_(q_min ** (1.0 / L))
    cand = [(i, j) for i, j in pairs if Q[i, max(j, 0)] / q_min <= support_factor]
    A = _autograd_rows(net, X, y, [i for i, _ in cand], [j for _, j in cand])
    qs = np.array([Q[i, max(j, 0)] / q_min for i, j in cand])
    lam = cp.Variable(A.shape[0], nonneg=True)
    R2 = float(theta_t @ theta_t)
    cp.Problem(cp.Minimize(cp.sum_squares(theta_t - A.T @ lam)),
               [(qs - 1.0) @ lam <= delta_tol * R2]).solve(**CLARABEL)
    eps = float(np.linalg.norm(theta_t - A.T @ lam.value)) / np.sqrt(R2)
    return eps, cand, L


@pytest.mark.parametrize("name", sorted(NETS))
def test_every_layer_type_matches_an_independent_cvxpy_program(name):
    make, shape, tie = NETS[name]
    module, net, X, y, sf_all = _self_labelled(make, shape)
    # every pair a candidate; with tied competitors also only the near-maximal ones (40% of the
    # examples),
    # where a tie must give both competitors of an example a constraint
    q = net.margins(X, y)
    sf_near = float(np.quantile(q / q.min(), 0.4))
    for sf in [sf_all, sf_near] if tie else [sf_all]:
        rep = check_kkt(net, X, y, support_factor=sf, delta_tol=DELTA_TOL)
        ref, cand, L = _reference(module, X, y, sf, DELTA_TOL)
        # premises: exact (no near-kink pair), a real program (several multipliers, ε < 1)
        assert rep.n_kink_pairs == 0 and rep.exact and rep.solver_status == "optimal"
        assert rep.degree == L
        assert rep.n_candidates == len(cand) > 8
        assert ref < 0.99 and rep.support.size > 3
        if sf == sf_near:  # more candidate pairs than candidate examples: the tied pairs
            assert len(cand) > len({i for i, _ in cand})
            assert {j for _, j, _ in rep.extra["support_pairs"]} >= {1, 2}
        assert rep.epsilon_relative == pytest.approx(ref, rel=CROSS_RTOL,
                                                     abs=KKT_EPS_RTOL * 1e-2)


def test_conv_layer_equals_its_unfolded_dense_matrix():
    # A convolution (stride 2, padding 1, 2 → 3 channels) is a linear map of the flattened
    # input whose dense matrix D(k) is linear in the kernel k: D = E k. Replacing the conv by
    # nn.Linear(D) gives the same outputs, and the conv net's gradients are the dense net's
    # chained through E (∇_k q = Eᵀ ∇_D q), so its pair Gram matrix is J_D E Eᵀ J_Dᵀ + the head's.
    from torch.func import jacfwd

    torch.manual_seed(2)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False).double()
    cnet = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(48, 4, bias=False)).double()
    eye = torch.eye(2 * 7 * 7, dtype=torch.float64).reshape(-1, 2, 7, 7)

    def dense(k):
        return nn.functional.conv2d(eye, k, stride=2, padding=1).reshape(98, 48).T

    D = dense(conv.weight.detach())
    E = jacfwd(dense)(conv.weight.detach()).reshape(48 * 98, -1).numpy()   # (P_dense, P_conv)
    dnet = nn.Sequential(nn.Flatten(), nn.Linear(98, 48, bias=False), nn.ReLU(),
                         nn.Linear(48, 4, bias=False)).double()
    with torch.no_grad():
        dnet[1].weight.copy_(D)
        dnet[3].weight.copy_(cnet[3].weight)
    X = np.random.default_rng(4).normal(size=(10, 2, 7, 7))
    a, b = TorchNet(cnet), TorchNet(dnet)
    np.testing.assert_allclose(a.outputs(X), b.outputs(X), rtol=1e-12, atol=1e-12)
    y = a.outputs(X).argmax(1)
    rows, classes = a.competitors(X, y)
    Jd = _autograd_rows(dnet, X, y, rows, classes)                # plain autograd, dense net
    Jc = np.hstack([Jd[:, :48 * 98] @ E, Jd[:, 48 * 98:]])
    G = a.pair_gram(X, y, rows, classes)                          # unfold, layer structure
    np.testing.assert_allclose(G, Jc @ Jc.T, rtol=GRAM_RTOL, atol=GRAM_RTOL * np.abs(G).max())
    np.testing.assert_allclose(a.margins(X, y), b.margins(X, y), rtol=1e-12, atol=1e-12)


def test_metamorphic_class_permutation_duplication_and_scaling():
    module, net, X, y, sf = _self_labelled(_conv2d_tied, (1, 6, 6), seed=1)
    kw = {"support_factor": sf, "delta_tol": DELTA_TOL}
    base = check_kkt(net, X, y, **kw)
    assert base.support.size > 3 and base.epsilon_relative < 0.95    # a non-trivial program
    # permuting the classes: rows of the head and the labels
    perm = np.array([3, 0, 2, 1])
    pmod = copy.deepcopy(module)
    with torch.no_grad():
        pmod[6].weight.copy_(module[6].weight[torch.from_numpy(perm)])
    rep = check_kkt(pmod, X, np.argsort(perm)[y], **kw)
    assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=META_RTOL)
    assert rep.n_candidates == base.n_candidates
    np.testing.assert_allclose(rep.multipliers, base.multipliers, rtol=CROSS_RTOL,
                               atol=CROSS_RTOL * base.multipliers.max())
    # duplicating every example: the same ε; a duplicated example's multiplier may split
    rep = check_kkt(net, np.concatenate([X, X]), np.concatenate([y, y]), **kw)
    assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=META_RTOL)
    assert rep.n_candidates == 2 * base.n_candidates
    n = len(y)
    np.testing.assert_allclose(rep.multipliers[:n] + rep.multipliers[n:], base.multipliers,
                               rtol=CROSS_RTOL, atol=CROSS_RTOL * base.multipliers.max())
    # scaling θ by c > 0: ε/||θ̃|| and the verdict unchanged
    for c in (1e-3, 30.0):
        rep = check_kkt(net.scaled(c), X, y, **kw)
        assert rep.epsilon_relative == pytest.approx(base.epsilon_relative, rel=META_RTOL)
        assert rep.status == base.status


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_low_precision_modules_are_converted_and_the_report_says_so(dtype):
    low = _conv2d_binary().to(getattr(torch, dtype))
    high = copy.deepcopy(low).double()        # the same (rounded) weights in float64
    net = TorchNet(high)
    X = np.random.default_rng(5).normal(size=(30, 1, 6, 6))
    y = np.where(net.outputs(X)[:, 0] > 0, 1, -1)
    keep = net.margins(X, y) > 1e-2 * np.abs(net.outputs(X)).max()
    X, y = X[keep], y[keep]
    rep = check_kkt(low, X, y)               # the user's module, not converted by hand
    ref = check_kkt(high, X, y)
    assert low[0].weight.dtype == getattr(torch, dtype)    # the user's module is untouched
    assert rep.epsilon_relative == pytest.approx(ref.epsilon_relative, rel=1e-12)
    assert any(f"torch.{dtype} to torch.float64" in note for note in rep.extra["notes"])
    assert not any("float64" in note for note in ref.extra["notes"])
    # ... and the printed report says so (it only did in extra["notes"] and the CLI)
    assert f"note: parameters converted from torch.{dtype} to torch.float64" in rep.summary()
    assert "converted" not in ref.summary()


class _SoftmaxInside(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3, bias=False)
        self.b = nn.Linear(3, 3, bias=False)

    def forward(self, x):
        return self.b(torch.softmax(self.a(x), dim=1))


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4, bias=False)

    def forward(self, x):
        return x + torch.relu(self.a(x))              # degree d + degree d + 1


class _ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 4, bias=False)
        self.blocks = nn.Sequential(_Block())
        self.head = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        return self.head(self.blocks(self.inp(x)))


def _in_cnn(layer):
    """``layer`` at module path '1.1' of a small CNN (nested, so the path has two parts)."""
    return nn.Sequential(nn.Conv2d(1, 2, 3, bias=False),
                         nn.Sequential(nn.ReLU(), layer), nn.Flatten(),
                         nn.Linear(72, 3, bias=False))


IMG, VEC = (1, 8, 8), (4,)


@pytest.mark.parametrize("module, shape, words", [
    (_in_cnn(nn.BatchNorm2d(2)), IMG, ["'1.1'", "BatchNorm2d"]),
    (_in_cnn(nn.GroupNorm(1, 2)), IMG, ["'1.1'", "GroupNorm"]),
    (_in_cnn(nn.LayerNorm([2, 6, 6])), IMG, ["'1.1'", "LayerNorm"]),
    (_in_cnn(nn.Sigmoid()), IMG, ["'1.1'", "Sigmoid"]),
    (_in_cnn(nn.GELU()), IMG, ["'1.1'", "GELU"]),
    (_in_cnn(nn.ELU()), IMG, ["'1.1'", "ELU"]),
    (_in_cnn(nn.Conv2d(2, 2, 1)), IMG, ["'1.1'", "Conv2d has a bias", "degree 1"]),
    (_in_cnn(nn.MaxPool2d(3, stride=1, padding=1)), IMG, ["'1.1'", "padding"]),
    (_in_cnn(nn.AdaptiveMaxPool2d(6)), IMG, ["'1.1'", "AdaptiveMaxPool2d"]),
    (nn.Sequential(nn.Linear(4, 3, bias=False), nn.LogSoftmax(dim=1)), VEC,
     ["'1'", "LogSoftmax"]),
    (_SoftmaxInside(), VEC, ["softmax", "not known to be positively homogeneous"]),
    (_ResNet(), VEC, ["add", "degrees [1, 2]"]),
])
def test_each_non_homogeneous_module_type_is_named(module, shape, words):
    X = np.random.default_rng(0).normal(size=(6, *shape))
    with torch.no_grad():                 # each module runs as written (no shape mistakes)
        module.eval()(torch.from_numpy(X).float())
    with pytest.raises(NotHomogeneousError) as exc:
        check_kkt(module, X, np.arange(6) % 3)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
