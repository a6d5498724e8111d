"""TorchNet on networks written with torch's functional API (issue 11, gaps G1, G2, G3, G8).

- G1: ``torch.relu``, ``F.relu``, ``Tensor.relu()``, ``F.leaky_relu`` and ``F.max_pool1d/2d`` are
  made module calls (``_modularise``), so their kinks are counted like ``nn.ReLU``/``nn.MaxPool``
  modules'. The oracle is the same network written with modules: identical outputs, kink counts,
  pair Gram and KKT report. The rewrite keeps the parameter names and order; the rewritten
  module is checked against the traced original on the data (a mismatch raises).
- G2: ``F.dropout`` is refused unless it is a no-op in eval mode.
- G3: a wrongly shaped ``X`` is a ValueError naming its shape and what the net expects.
- G8: an unequal-degree residual inside a sub-block is named by the block's module path.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the optional extra, not our own module
nn = torch.nn
F = torch.nn.functional

from solvers import NotHomogeneousError, check_kkt  # noqa: E402
from solvers.nets import TorchNet, train_torch  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


#: The Gram from layer factors against per-example autograd: sums in another order, rounding only.
GRAM_RTOL = GRAM_ATOL = 1e-12


# --- G1: functional kink sites ------------------------------------------------------------------


class _Act(nn.Module):
    """2-2-1 MLP with a functional activation."""

    def __init__(self, act):
        super().__init__()
        self.a = nn.Linear(2, 2, bias=False)
        self.b = nn.Linear(2, 1, bias=False)
        self.act = act

    def forward(self, x):
        return self.b(self.act(self.a(x)))


class _Pool(nn.Module):
    """conv 1×1 on two channels → functional max-pool → flatten → linear."""

    def __init__(self, conv, pool, width):
        super().__init__()
        self.c = conv
        self.l = nn.Linear(width, 1, bias=False)
        self.pool = pool

    def forward(self, x):
        return self.l(torch.flatten(self.pool(self.c(x)), 1))


def _mlp(act):
    return nn.Sequential(nn.Linear(2, 2, bias=False), act, nn.Linear(2, 1, bias=False))


def _set(module, *weights):
    with torch.no_grad():
        for p, w in zip(module.parameters(), weights, strict=True):
            p.copy_(torch.tensor(w, dtype=p.dtype).reshape(p.shape))
    return module


W_MLP = ([[1.0, -1.0], [1.0, 1.0]], [[1.0, 1.0]])
# example 0: hidden unit 0 at its kink (z = 0) with gradient x ≠ 0; example 1: no kink
X_MLP = np.array([[1.0, 1.0], [2.0, 1.0]])
# the same network twice: functional, and with nn modules (the oracle)
ACTS = {
    "torch.relu": (torch.relu, nn.ReLU()),
    "F.relu": (F.relu, nn.ReLU()),
    "Tensor.relu": (lambda h: h.relu(), nn.ReLU()),
    "F.leaky_relu": (lambda h: F.leaky_relu(h, 0.1), nn.LeakyReLU(0.1)),
}
# example 0: two tied window maxima (u, v) = (1, 0) and (0, 1): different gradients; 1: no tie
X_POOL2 = np.array([[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [-1.0, -2.0]]],
                    [[[3.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 0.5]]]])
X_POOL1 = np.array([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, -1.0, -2.0]],
                    [[3.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 0.5]]])


def _pair(case):
    if case == "F.max_pool2d":
        conv = (nn.Conv2d(2, 1, 1, bias=False), nn.Conv2d(2, 1, 1, bias=False))
        fn = _Pool(conv[0], lambda h: F.max_pool2d(h, 2), 1)
        mod = nn.Sequential(conv[1], nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1, 1, bias=False))
        w, X = ([1.0, 1.0], [1.0]), X_POOL2
    elif case == "F.max_pool1d":
        conv = (nn.Conv1d(2, 1, 1, bias=False), nn.Conv1d(2, 1, 1, bias=False))
        fn = _Pool(conv[0], lambda h: F.max_pool1d(h, kernel_size=2, stride=1), 3)
        mod = nn.Sequential(conv[1], nn.MaxPool1d(2, stride=1), nn.Flatten(),
                            nn.Linear(3, 1, bias=False))
        w, X = ([1.0, 1.0], [1.0, 1.0, 1.0]), X_POOL1
    else:
        f, m = ACTS[case]
        fn, mod, w, X = _Act(f), _mlp(m), W_MLP, X_MLP
    return (_set(fn, *w), _set(mod, *w)), X


@pytest.mark.parametrize("case", [*ACTS, "F.max_pool2d", "F.max_pool1d"])
def test_functional_kinks_are_counted_like_module_kinks(case):
    (fn, mod), X = _pair(case)
    a, b = TorchNet(fn), TorchNet(mod)
    R = np.random.default_rng(0).normal(size=(64, *X.shape[1:]))  # incl. negative entries
    np.testing.assert_array_equal(a.outputs(R), b.outputs(R))     # the same arithmetic
    ka, kb = a.kink_counts(X), b.kink_counts(X)
    assert sum(kb.values()) == 1                                 # the oracle sees the kink
    assert list(ka.values()) == list(kb.values()), (ka, kb)
    assert a.parameter_names == tuple(n for n, _ in fn.named_parameters())
    y = np.array([1, 1])
    ra = check_kkt(fn, X, y, support_factor=10.0)                 # both examples candidates
    rb = check_kkt(mod, X, y, support_factor=10.0)
    assert rb.n_kink_pairs == 1                                  # a kink that matters
    assert (ra.n_kink_pairs, ra.exact) == (rb.n_kink_pairs, rb.exact)
    np.testing.assert_array_equal(ra.multipliers, rb.multipliers)
    assert ra.epsilon == rb.epsilon


class _Nested(nn.Module):
    """Functional kinks inside a nested block, an unused module declared first, a module
    registered under two names, an in-place F.relu."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Linear(2, 2)
        self.inp = nn.Linear(4, 6, bias=False)
        self.blocks = nn.ModuleList([_ReluBlock()])
        self.head = nn.Linear(6, 3, bias=False)
        self.alias = self.head

    def forward(self, x):
        return self.head(self.blocks[0](F.relu(self.inp(x), inplace=True)))


class _ReluBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 6, bias=False)

    def forward(self, x):
        return torch.relu(self.a(x)).relu()


def test_rewrite_keeps_parameters_and_reproduces_the_module():
    torch.manual_seed(0)
    user = _Nested()
    net = TorchNet(user)
    assert net.parameter_names == tuple(n for n, _ in user.named_parameters())
    assert list(net.module.state_dict()) == list(user.state_dict())
    np.testing.assert_array_equal(
        net.flat(), np.concatenate([p.detach().double().numpy().ravel()
                                    for p in user.parameters()]))
    X = np.random.default_rng(1).normal(size=(7, 4))
    ref = user.double().eval()(torch.from_numpy(X.copy())).detach().numpy()
    np.testing.assert_array_equal(net.outputs(X), ref)
    # the three functional ReLUs are modules now, found by the kink counts
    counts = net.kink_counts(X)
    assert len(counts) == 3 and set(counts) <= {n for n, _ in net.module.named_modules()}
    assert any("made modules" in note for note in net.notes)
    # wrapping the rewritten module again changes nothing
    again = TorchNet(net.module)
    assert again.parameter_names == net.parameter_names and again.degree == net.degree == 3
    assert again.kink_counts(X) == counts


class _Leaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 3, bias=False)
        self.b = nn.Linear(3, 1, bias=False)

    def forward(self, x):
        return self.b(F.leaky_relu(self.a(x), 0.1))


def test_a_rewrite_that_changes_the_outputs_is_caught():
    torch.manual_seed(0)
    net, X = TorchNet(_Leaky()), np.random.default_rng(0).normal(size=(5, 2))
    name = next(p for p in net._relus)
    dict(net.module.named_modules())[name].negative_slope = 0.3   # corrupt the inserted module
    with pytest.raises(RuntimeError, match="does not reproduce the traced original"):
        net.outputs(X)


def test_in_place_relu_gives_the_gram_and_kinks_of_the_plain_relu():
    """An in-place ReLU overwrites the previous layer's output: read there, its negative entries
    looked like kinks and that layer's output-gradient missed the ReLU's mask (a wrong Gram)."""
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(10, 2))
    inplace = nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(inplace=True),
                            nn.Linear(3, 1, bias=False))
    plain = nn.Sequential(inplace[0], nn.ReLU(), inplace[2])
    a, b = TorchNet(inplace), TorchNet(plain)
    assert a.kink_counts(X) == b.kink_counts(X) == {"1": 0}
    y, rows, classes = np.ones(10), np.arange(10), np.full(10, -1)
    J = b.pair_gradients(X, y, rows, classes)                  # plain autograd, per example
    np.testing.assert_allclose(a.pair_gram(X, y, rows, classes), J @ J.T,
                               rtol=GRAM_RTOL, atol=GRAM_ATOL)
    assert inplace[1].inplace and any("out of place" in n for n in a.notes)


class _InPlaceReused(nn.Module):
    def __init__(self, functional):
        super().__init__()
        self.a = nn.Linear(3, 3, bias=False)
        self.b = nn.Linear(3, 1, bias=False)
        self.act = (lambda h: F.relu(h, inplace=True)) if functional else nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.a(x)
        r = self.act(h)                     # h is now relu(h) as well
        return self.b(h + r)


@pytest.mark.parametrize("functional", [False, True])
def test_in_place_relu_whose_input_is_used_again_is_refused(functional):
    with pytest.raises(NotHomogeneousError, match=r"in-place ReLU.*'add'.*inplace=False"):
        TorchNet(_InPlaceReused(functional))


class _PaddedPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3, bias=False)
        self.l = nn.Linear(72, 3, bias=False)

    def forward(self, x):
        return self.l(torch.flatten(F.max_pool2d(self.c(x), 3, stride=1, padding=1), 1))


class _GlobalPool(_PaddedPool):
    def forward(self, x):
        h = self.c(x)
        return self.l(torch.flatten(F.max_pool2d(h, h.size(-1)), 1).repeat(1, 36))


@pytest.mark.parametrize("module, words", [
    (_PaddedPool(), ["operation (F.max_pool2d) 'max_pool2d'", "padding"]),
    (_GlobalPool(), ["kernel_size", "computed in forward", "nn.MaxPool2d"]),
])
def test_functional_max_pools_whose_ties_cannot_be_located_are_refused(module, words):
    with pytest.raises(NotHomogeneousError) as exc:
        TorchNet(module)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


# --- G2: F.dropout -----------------------------------------------------------------------------

class _FDrop(nn.Module):
    def __init__(self, call):
        super().__init__()
        self.a = nn.Linear(4, 8, bias=False)
        self.b = nn.Linear(8, 3, bias=False)
        self.call = call

    def forward(self, x):
        return self.b(self.call(self, torch.relu(self.a(x))))


@pytest.mark.parametrize("call", [
    lambda s, h: F.dropout(h, 0.5),
    lambda s, h: F.dropout(h),
    lambda s, h: F.dropout(h, p=0.2, training=True),
])
def test_random_functional_dropout_is_refused(call):
    with pytest.raises(NotHomogeneousError) as exc:
        TorchNet(_FDrop(call))
    for w in ("'dropout'", "F.dropout", "nn.Dropout", "training=self.training"):
        assert w in str(exc.value), (w, str(exc.value))


@pytest.mark.parametrize("call", [
    lambda s, h: F.dropout(h, 0.5, training=s.training),   # the module is traced in eval mode
    lambda s, h: F.dropout(h, 0.5, False),
    lambda s, h: F.dropout(h, p=0.0),
])
def test_functional_dropout_that_is_a_no_op_is_accepted(call):
    torch.manual_seed(0)
    module = _FDrop(call).train()
    net = TorchNet(module)
    X = np.random.default_rng(0).normal(size=(5, 4))
    plain = _FDrop(lambda s, h: h)
    plain.load_state_dict(module.state_dict())
    np.testing.assert_array_equal(net.outputs(X), TorchNet(plain).outputs(X))


# --- G3: X of a shape the network cannot take ---------------------------------------------

def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.Flatten(),
                         nn.Linear(72, 3, bias=False))


@pytest.mark.parametrize("run", ["check_kkt", "train_torch", "outputs"])
def test_flattened_images_are_a_value_error_naming_the_shape_and_the_fix(run):
    X, y = np.random.default_rng(0).normal(size=(6, 64)), np.arange(6) % 3
    calls = {"check_kkt": lambda: check_kkt(_cnn(), X, y),
             "train_torch": lambda: train_torch(_cnn(), X, y, steps=2),
             "outputs": lambda: TorchNet(_cnn()).outputs(X)}
    with pytest.raises(ValueError) as exc:
        calls[run]()
    for w in ("X has shape (6, 64)", "'0' (Conv2d)", "(1, H, W)", "X.reshape(6, 1, 8, 8)"):
        assert w in str(exc.value), (w, str(exc.value))


@pytest.mark.parametrize("shape, words", [
    ((6, 2, 8, 8), ["(2, 8, 8)", "expects examples of shape (1, H, W)", "(n, 1, H, W)"]),
    ((6, 1, 6, 6), ["took it", "module '3' (Linear, in_features 72)"]),
])
def test_wrong_channels_or_size_name_what_does_not_fit(shape, words):
    X = np.random.default_rng(0).normal(size=shape)
    with pytest.raises(ValueError) as exc:
        check_kkt(_cnn(), X, np.arange(6) % 3)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_mlp_with_the_wrong_width_names_in_features():
    net = TorchNet(nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(),
                                 nn.Linear(3, 1, bias=False)))
    with pytest.raises(ValueError, match=r"last dimension is 4.*X of shape \(n, 4\)"):
        net.margins(np.ones((3, 5)), np.ones(3))


# --- G8: the module path of an operation inside a block ------------------------------------

class _Block(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.l = nn.Linear(4, 4, bias=False)
        self.body = body

    def forward(self, x):
        return self.body(self, x)


class _Net(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.inp = nn.Linear(4, 4, bias=False)
        self.blocks = nn.Sequential(nn.Identity(), _Block(body))
        self.head = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        return self.head(self.blocks(self.inp(x)))


@pytest.mark.parametrize("body, words", [
    (lambda s, x: x + s.l(x), ["module 'blocks.1'", "add", "degrees [1, 2]"]),
    # a functional ReLU in the same block (rewritten) must not lose the scope
    (lambda s, x: torch.relu(x) + s.l(x), ["module 'blocks.1'", "add", "degrees [1, 2]"]),
    (lambda s, x: torch.tanh(s.l(x)), ["module 'blocks.1'", "tanh", "not known"]),
    (lambda s, x: F.dropout(s.l(x), 0.1), ["module 'blocks.1'", "'dropout'", "nn.Dropout"]),
])
def test_an_operation_inside_a_block_is_named_by_the_block_path(body, words):
    with pytest.raises(NotHomogeneousError) as exc:
        TorchNet(_Net(body))
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
