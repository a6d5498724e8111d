"""train_torch: Lyu & Li's loss-based step with roll-back never increases the loss; its log-domain
loss equals torch's own cross-entropy/exponential loss recomputed independently."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the optional extra, not our own module
nn = torch.nn

from solvers.nets import TorchNet, train_torch  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _problem(K=3, n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    teacher = rng.normal(size=(4, K))
    y = (X @ teacher).argmax(axis=1)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 16, bias=False), nn.ReLU(), nn.Linear(16, K, bias=False))
    return net, X, y


def _independent_log_loss(module, X, y, loss):
    with torch.no_grad():
        out = copy.deepcopy(module).double()(torch.from_numpy(X))
        t = torch.from_numpy(y)
        if loss == "cross_entropy":
            return float(torch.log(nn.functional.cross_entropy(out, t, reduction="sum")))
        fy = out.gather(1, t.view(-1, 1))
        return float(torch.log((torch.exp(out - fy).sum(1) - 1).sum()))


@pytest.mark.parametrize("loss", ["cross_entropy", "exp"])
def test_loss_never_increases_and_matches_torch(loss):
    module, X, y = _problem()
    r = train_torch(module, X, y, loss=loss, steps=150, lr=0.5, record_every=1)
    assert np.all(np.diff(r.log_loss) <= 0)
    assert r.rollbacks > 0                  # lr = 0.5 is too large at first: roll-backs happen
    assert r.status == "fitted"
    np.testing.assert_allclose(r.log_loss[-1],
                               _independent_log_loss(r.net.module, X, y, loss), rtol=1e-10)
    assert r.normalized_margin[-1] > 0


def test_user_module_is_not_modified_and_result_is_a_torchnet():
    module, X, y = _problem()
    before = [p.detach().clone() for p in module.parameters()]
    r = train_torch(module, X, y, steps=5)
    assert isinstance(r.net, TorchNet)
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_bad_arguments():
    module, X, y = _problem()
    with pytest.raises(ValueError, match="loss must be one of"):
        train_torch(module, X, y, loss="hinge")
    with pytest.raises(ValueError, match="grow"):
        train_torch(module, X, y, grow=1.0)
    with pytest.raises(ValueError, match="class indices"):
        train_torch(module, X, y + 5)


def test_checkpoints_keep_copies_of_the_net_along_training():
    module, X, y = _problem()
    r = train_torch(module, X, y, steps=20, lr=0.5, checkpoints=(0, 5, 20, 999))
    assert sorted(r.snapshots) == [0, 5, 20]            # 999 was never reached
    np.testing.assert_array_equal(r.snapshots[20].flat(), r.net.flat())
    np.testing.assert_array_equal(r.snapshots[0].flat(), TorchNet(module).flat())
    assert not np.array_equal(r.snapshots[5].flat(), r.net.flat())


# --- fit_torch: minibatch phase until every example is fitted, then the float64 roll-back ---

def _cnn(seed, K=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(6 * 3 * 3, 32, bias=False), nn.ReLU(),
                         nn.Linear(32, K, bias=False))


def _independent_margins(module, X, y):
    """q_n from plain torch in float64, one example at a time (not TorchNet.margins)."""
    m = copy.deepcopy(module).double().eval()
    q = []
    with torch.no_grad():
        for x, t in zip(torch.from_numpy(X), y, strict=True):
            out = m(x[None])[0]
            q.append(float(out[t] - torch.cat([out[:t], out[t + 1:]]).max()))
    return np.array(q)


@pytest.fixture(scope="module")
def teacher_problem():
    """A random-teacher CNN problem: 8×8 Gaussian images, 3 classes from a teacher of the
    student's shape (outputs standardised so the classes are balanced)."""
    X = np.random.default_rng(0).normal(size=(90, 1, 8, 8))
    with torch.no_grad():
        F = _cnn(100).double()(torch.from_numpy(X))
    y = ((F - F.mean(0)) / F.std(0)).argmax(1).numpy()
    assert np.bincount(y, minlength=3).min() >= 15       # every class present
    return X, y


@pytest.fixture(scope="module")
def fitted(teacher_problem):
    from solvers.nets import fit_torch

    X, y = teacher_problem
    module = _cnn(1)
    return module, fit_torch(module, X, y, batch_size=16, lr=1e-2, max_epochs=200,
                             progress=False)


def test_fit_torch_fits_every_example_and_returns_float64(teacher_problem, fitted):
    X, y = teacher_problem
    module, r = fitted
    q0 = _independent_margins(module, X, y)
    assert (q0 <= 0).sum() > 20                          # far from fitted at initialisation
    assert r.status == "fitted"
    assert _independent_margins(r.net.module, X, y).min() > 0
    assert all(p.dtype == torch.float64 for p in r.net.module.parameters())
    # trained in float32: every parameter is a float32 value, held in float64
    assert all(torch.equal(p, p.float().double()) for p in r.net.module.parameters())
    assert r.epoch_fitted[-1] == len(y) and r.epochs == len(r.epoch_loss) >= 2
    assert r.epoch_fitted[:-1].max() < len(y)            # it stopped at the first fitted epoch
    assert any("float32" in note for note in r.net.notes)
    assert all(p.dtype == torch.float32 for p in module.parameters())   # the user's copy kept


def test_fit_torch_rollback_phase_continues_from_the_fitted_net(teacher_problem, fitted):
    from solvers.nets import fit_torch

    X, y = teacher_problem
    _, base = fitted
    r = fit_torch(_cnn(1), X, y, batch_size=16, lr=1e-2, max_epochs=200, progress=False,
                  rollback_steps=15, rollback_lr=0.005, chunk_size=32)
    assert r.rollback is not None and r.rollback.steps[-1] == 15
    # same seed: the same minibatch phase; the roll-back starts from its net
    np.testing.assert_array_equal(r.epoch_fitted, base.epoch_fitted)
    np.testing.assert_allclose(r.rollback.log_loss[0],
                               _independent_log_loss(base.net.module, X, y, "cross_entropy"),
                               rtol=1e-10)
    assert np.all(np.diff(r.rollback.log_loss) <= 0) and r.rollback.log_loss[-1] < \
        r.rollback.log_loss[0]
    np.testing.assert_array_equal(r.net.flat(), r.rollback.net.flat())
    assert r.status == "fitted" and _independent_margins(r.net.module, X, y).min() > 0


def test_fit_torch_reports_not_fitted_when_it_gives_up(teacher_problem):
    from solvers.nets import fit_torch

    X, y = teacher_problem
    r = fit_torch(_cnn(1), X, y, batch_size=16, lr=1e-6, max_epochs=2, rollback_steps=5,
                  progress=False)
    assert r.status == "not fitted" and r.epochs == 2 and r.rollback is None
    assert _independent_margins(r.net.module, X, y).min() <= 0
    assert any("not every example was fitted" in note for note in r.notes)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"max_epochs": 2.5}, "max_epochs must be a positive integer"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"dtype": "float16"}, "dtype must be one of"),
    ({"lr": -1.0}, "lr must be a finite positive number"),
    ({"rollback_steps": -1}, "rollback_steps must be a non-negative integer"),
    ({"rollback_loss": "hinge"}, "rollback_loss must be one of"),
])
def test_fit_torch_bad_arguments(teacher_problem, kwargs, match):
    from solvers.nets import fit_torch

    X, y = teacher_problem
    with pytest.raises(ValueError, match=match):
        fit_torch(_cnn(1), X, y, **kwargs)


def test_chunked_rollback_equals_the_full_batch_one():
    """The running log-sum-exp over chunks gives the full-batch value and gradient."""
    module, X, y = _problem(n=30)
    full = train_torch(module, X, y, steps=30, lr=0.5, record_every=1)
    chunked = train_torch(module, X, y, steps=30, lr=0.5, record_every=1, chunk_size=7)
    # equal up to float64 rounding of the reordered sums, amplified over 30 steps (the losses
    # are O(1); a wrong chunk weight e^{v_c − log 𝓛} changes them at O(1e-2) or more)
    np.testing.assert_allclose(chunked.log_loss, full.log_loss, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(chunked.net.flat(), full.net.flat(), rtol=1e-9, atol=1e-9)
    assert chunked.rollbacks == full.rollbacks > 0
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        train_torch(module, X, y, chunk_size=0)


@pytest.mark.parametrize("K", [1, 2, 3])
def test_log_loss_gradient_is_finite_at_margins_beyond_exp_underflow(K):
    """Once a margin passes ~745, softplus(s) underflows to 0 in the branch torch.where does not
    take; its gradient must not turn the whole step into NaN (found by a new-user audit:
    train_torch then rolled back every later step). The gradient is compared with the
    expansion's own: d log ℓ / d s = 1 − e^s/2 ≈ 1 for s ≪ 0, spread as a softmax over examples."""
    from solvers.nets._torch_training import _log_loss

    if K == 1:
        out = torch.tensor([[5.0], [800.0]], dtype=torch.float64, requires_grad=True)
        y = torch.tensor([1, 1])
    else:
        out = torch.zeros((2, K), dtype=torch.float64)
        out[0, 1:] = -5.0
        out[1, 1:] = -800.0
        out.requires_grad_(True)
        y = torch.tensor([0, 0])
    (g,) = torch.autograd.grad(_log_loss(torch, out, y, "cross_entropy"), out)
    assert torch.isfinite(g).all()
    # the far example's weight in the log-sum-exp is e^{-800}/… = 0: its gradient is exactly 0
    assert float(g[1].abs().max()) == 0.0
    assert float(g[0].abs().max()) > 0.5


@pytest.mark.parametrize("loss", ["cross_entropy", "exp"])
def test_smoothed_margin_is_a_lower_bound_of_the_normalised_margin(loss):
    """Lyu & Li's smoothed margin ℓ^{-1}(𝓛)/||θ||^L <= q_min/||θ||^L at every recorded step
    (𝓛 >= ℓ(q_min) and ℓ^{-1} is decreasing; docs/theory.md §7.1), recomputed here from the
    torch loss and the net's norm; and training raises it."""
    module, X, y = _problem()
    r = train_torch(module, X, y, loss=loss, steps=300, lr=0.5, record_every=1)
    sm, nm = r.smoothed_margin, r.normalized_margin
    assert sm.shape == nm.shape == r.steps.shape
    assert np.all(sm <= nm + 1e-12)
    log_L = _independent_log_loss(r.net.module, X, y, loss)
    inv = -log_L if loss == "exp" else -np.log(np.expm1(np.exp(log_L)))
    rho = np.linalg.norm(r.net.flat())
    np.testing.assert_allclose(sm[-1], inv / rho ** r.net.degree, rtol=1e-9)
    assert sm[-1] > 0 and sm[-1] > sm[0]
    assert r.to_dict()["smoothed_margin"] == sm.tolist()
