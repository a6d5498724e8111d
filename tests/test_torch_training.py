"""train_torch: Lyu & Li's loss-based step with roll-back never increases the loss; its log-domain
loss equals torch's own cross-entropy/exponential loss recomputed independently."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the optional extra, not our own module
nn = torch.nn

from solvers.nets import TorchNet, train_torch  # noqa: E402


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
