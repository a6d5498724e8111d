"""TorchNet: homogeneity proved from the fx graph, degrees, multi-class margins, and the Gram
matrix from the layer structure against per-example gradients by plain autograd, one example at a
time (an independent computation)."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the optional extra, not our own module
nn = torch.nn

from solvers import NotHomogeneousError  # noqa: E402
from solvers.nets import TorchNet  # noqa: E402

#: Gram entries are sums of products computed in a different order than autograd's: rounding.
GRAM_RTOL = 1e-12


def _autograd_rows(module, X, y, rows, classes):
    """∇_θ q for each pair by plain autograd, one example at a time, float64."""
    net = copy.deepcopy(module).double().eval()
    out = []
    for r, c in zip(rows, classes, strict=True):
        net.zero_grad()
        f = net(torch.from_numpy(X[r:r + 1])).reshape(-1)
        q = y[r] * f[0] if f.numel() == 1 else f[y[r]] - f[c]
        q.backward()
        out.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy().copy())
    return np.array(out)


def _cnn(K=3):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(4, 6, 3, bias=False), nn.LeakyReLU(0.1)),
        nn.Flatten(), nn.Linear(24, 8, bias=False), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(8, K, bias=False))


class _Custom(nn.Module):
    """A custom module with a 1-D conv, average pooling and an equal-degree residual."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3, bias=False)
        self.pool = nn.AvgPool1d(2)
        self.a = nn.Linear(9, 9, bias=False)
        self.b = nn.Linear(9, 9, bias=False)
        self.head = nn.Linear(9, 4, bias=False)

    def forward(self, x):
        h = torch.flatten(self.pool(torch.relu(self.conv(x))), 1)
        return self.head(self.a(h) + self.b(h))            # both terms of degree 2


def _data(shape, n, K, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *shape))
    y = rng.integers(0, K, n) if K > 1 else rng.choice([-1, 1], n)
    return X, y


@pytest.mark.parametrize("make, shape, K, degree", [
    (lambda: _cnn(3), (1, 10, 10), 3, 4),
    (lambda: _cnn(1), (1, 10, 10), 1, 4),
    (_Custom, (2, 8), 4, 3),
])
def test_gram_equals_autograd_one_example_at_a_time(make, shape, K, degree):
    module = make()
    net = TorchNet(module)
    assert net.degree == degree
    X, y = _data(shape, 12, K)
    rows, classes = net.competitors(X, y)
    J = _autograd_rows(module, X, y, rows, classes)
    G = net.pair_gram(X, y, rows, classes, chunk_size=5)     # chunks that split the pairs
    np.testing.assert_allclose(G, J @ J.T, rtol=GRAM_RTOL, atol=GRAM_RTOL * np.abs(G).max())
    np.testing.assert_allclose(net.pair_gradients(X, y, rows, classes), J,
                               rtol=GRAM_RTOL, atol=GRAM_RTOL * np.abs(J).max())
    # Euler's identity for an L-homogeneous margin: ⟨∇q, θ⟩ = L q
    np.testing.assert_allclose(J @ net.flat(), degree * net.margins(X, y)[rows],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block_size", [1, 4, 7, 29, 30, 1000])
def test_blocked_gram_equals_one_block_and_autograd(block_size):
    # 30 pairs: block sizes that divide it, that do not, one row, and one block for everything.
    # The second convolution (216 weights) is stored as input + output-gradient and unfolded per
    # block; the first (36 weights + bias) as explicit gradients: both block paths run.
    module = _cnn(3)
    net = TorchNet(module)
    X, y = _data((1, 10, 10), 30, 3, seed=7)
    rows, classes = net.competitors(X, y)
    assert len(rows) == 30
    J = _autograd_rows(module, X, y, rows, classes)
    G = net.pair_gram(X, y, rows, classes, chunk_size=11, block_size=block_size)
    np.testing.assert_allclose(G, J @ J.T, rtol=GRAM_RTOL, atol=GRAM_RTOL * np.abs(G).max())
    np.testing.assert_allclose(G, net.pair_gram(X, y, rows, classes, block_size=30),
                               rtol=GRAM_RTOL, atol=GRAM_RTOL * np.abs(G).max())
    assert np.array_equal(G, G.T)   # the lower blocks are the mirrored upper blocks


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_gram_block_size_must_be_a_positive_int(bad):
    net = TorchNet(_cnn(3))
    X, y = _data((1, 10, 10), 4, 3)
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        net.pair_gram(X, y, np.arange(4), (y + 1) % 3, block_size=bad)


def test_multiclass_ties_give_one_pair_per_competitor():
    module = nn.Sequential(nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        module[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    net = TorchNet(module)
    X = np.array([[2.0, 1.0], [1.0, 3.0]])
    y = np.array([0, 1])
    rows, classes = net.competitors(X, y)
    # example 0: classes 1 and 2 tie at 1.0; example 1: class 2 ties with the true class
    assert sorted(zip(rows.tolist(), classes.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2)]
    np.testing.assert_allclose(net.margins(X, y), [1.0, 0.0])


def test_full_size_kernels_equal_the_mlp():
    # a conv layer whose kernel covers the whole input is a dense layer on the flattened input
    torch.manual_seed(1)
    conv = nn.Sequential(nn.Conv2d(1, 5, (3, 4), bias=False), nn.ReLU(), nn.Flatten(),
                         nn.Linear(5, 1, bias=False))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False), nn.ReLU(),
                        nn.Linear(5, 1, bias=False))
    with torch.no_grad():
        mlp[1].weight.copy_(conv[0].weight.reshape(5, 12))
        mlp[3].weight.copy_(conv[3].weight)
    X, y = _data((1, 3, 4), 15, 1, seed=3)
    a, b = TorchNet(conv), TorchNet(mlp)
    rows = np.arange(15)
    np.testing.assert_allclose(a.margins(X, y), b.margins(X, y), rtol=1e-13)
    np.testing.assert_allclose(a.pair_gram(X, y, rows, -np.ones(15, int)),
                               b.pair_gram(X, y, rows, -np.ones(15, int)), rtol=1e-12)


def test_scaling_theta():
    net = TorchNet(_cnn(3))
    X, y = _data((1, 10, 10), 8, 3, seed=5)
    rows, classes = net.competitors(X, y)
    c = 3.0
    big = net.scaled(c)
    np.testing.assert_allclose(big.margins(X, y), c ** 4 * net.margins(X, y), rtol=1e-12)
    np.testing.assert_allclose(big.pair_gram(X, y, rows, classes),
                               c ** 6 * net.pair_gram(X, y, rows, classes), rtol=1e-11)


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 1, bias=False)

    def forward(self, x):
        return self.a(x) if x.sum() > 0 else -self.a(x)


class _UnequalResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3, bias=False)
        self.b = nn.Linear(3, 1, bias=False)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.b(h + x)                                 # degree 1 + degree 0


@pytest.mark.parametrize("module, words", [
    (nn.Sequential(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 1, bias=False)),
     ["'1'", "BatchNorm1d"]),
    (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)), ["'2'", "bias", "degree 1"]),
    (nn.Sequential(nn.Linear(3, 4, bias=False), nn.Softmax(dim=1)), ["'1'", "Softmax"]),
    (nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 1, bias=False)),
     ["Tanh"]),
    (_UnequalResidual(), ["add", "degrees [1, 0]"]),
    (_Untraceable(), ["torch.fx", "control flow"]),
])
def test_non_homogeneous_modules_are_named(module, words):
    with pytest.raises(NotHomogeneousError) as exc:
        TorchNet(module)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_first_layer_bias_is_homogeneous_and_float32_is_converted():
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))  # float32
    net = TorchNet(module)
    assert net.degree == 2
    assert any("float32" in n for n in net.notes)
    assert module[0].weight.dtype == torch.float32          # the user's module is untouched
    X, y = _data((3,), 6, 2)
    np.testing.assert_allclose(net.scaled(2.0).margins(X, y), 4 * net.margins(X, y), rtol=1e-12)


def test_bad_labels():
    net = TorchNet(_cnn(3))
    X, _ = _data((1, 10, 10), 4, 3)
    with pytest.raises(ValueError, match="class indices in 0..2"):
        net.margins(X, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="labels ±1"):
        TorchNet(_cnn(1)).margins(X, np.array([0, 1, 1, 0]))


def test_kinks_at_relu_and_max_pool_ties():
    module = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        module[0].weight.fill_(1.0)
    net = TorchNet(module)
    X = np.array([[[[0.0, 1.0], [-1.0, 0.5]]],       # one ReLU input exactly at 0, no tie
                  [[[2.0, 2.0], [1.0, -3.0]]]])      # a max-pool tie at 2
    assert net.kink_counts(X) == {"1": 1, "2": 1}


def test_kink_scale_spans_chunks():
    # the threshold is rtol · max|z| over the whole batch, whichever chunks the passes use:
    # 0.15 is a near-kink at rtol = 0.1 only against the second example's scale 3
    module = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        module[0].weight.fill_(1.0)
    net = TorchNet(module)
    X = np.array([[[[0.15, 1.0], [-1.0, 0.5]]],
                  [[[3.0, 2.0], [1.0, -3.0]]]])
    whole = net.kink_counts(X, rtol=0.1)
    assert whole["1"] == 1
    assert net.kink_counts(X, rtol=0.1, chunk_size=1) == whole
