"""The PyTorch adapter against torch itself: outputs and per-example gradients of the converted
numpy network match torch's forward and torch.func (vmap of jacrev), an independent autodiff."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from solvers.errors import NotHomogeneousError  # noqa: E402
from solvers.nets import (  # noqa: E402
    augment_constant_feature,
    from_torch,
    load_torch,
    save_torch,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models: torch's intra-op threads only contend on the shared cores (25x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Two float64 implementations of the same arithmetic (different summation order): rounding only.
RTOL, ATOL = 1e-12, 1e-12


def _seq(*layers, seed=0):
    torch.manual_seed(seed)  # torch's own init; the global torch RNG is reseeded per test
    return nn.Sequential(*layers).to(torch.float64)


def _torch_jacobian(model, X):
    """Per-example ∂f(x_i)/∂θ by torch.func, columns in the order of model.parameters()."""
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, x):
        return functional_call(model, p, (x[None, :],))[0, 0]

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, torch.as_tensor(X))
    return torch.cat([jac[k].reshape(X.shape[0], -1) for k in params], dim=1).numpy()


@pytest.mark.parametrize("act,activation,alpha", [
    (nn.ReLU, "relu", 0.0), (lambda: nn.LeakyReLU(0.1), "leaky_relu", 0.1), (None, "linear", 0.0)])
def test_outputs_and_gradients_match_torch(act, activation, alpha, rng):
    if act is None:
        # a deep linear net: consecutive Linears without activation are accepted only when
        # there is no activation anywhere
        model = _seq(nn.Linear(4, 6, bias=False), nn.Identity(), nn.Linear(6, 5, bias=False),
                     nn.Linear(5, 1, bias=False))
    else:
        model = _seq(nn.Flatten(), nn.Linear(4, 6, bias=False), act(),
                     nn.Linear(6, 5, bias=False), act(), nn.Linear(5, 1, bias=False))
    net = from_torch(model)
    assert (net.activation, net.alpha, net.degree) == (activation, alpha, 3)
    X = rng.standard_normal((7, 4))
    with torch.no_grad():
        ref = model(torch.as_tensor(X))[:, 0].numpy()
    np.testing.assert_allclose(net.forward(X), ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(net.per_example_gradients(X), _torch_jacobian(model, X),
                               rtol=RTOL, atol=ATOL)


def test_constant_feature_folds_the_first_bias(rng):
    model = _seq(nn.Linear(3, 5, bias=True), nn.ReLU(), nn.Linear(5, 1, bias=False))
    net = from_torch(model, constant_feature=True)
    assert net.weights[0].shape == (5, 4)
    X = rng.standard_normal((6, 3))
    with torch.no_grad():
        ref = model(torch.as_tensor(X))[:, 0].numpy()
    Xa = augment_constant_feature(X)
    np.testing.assert_allclose(net.forward(Xa), ref, rtol=RTOL, atol=ATOL)
    # gradients w.r.t. (W1 | b1, W2) equal torch's w.r.t. (W1, b1, W2) after reordering columns
    J = _torch_jacobian(model, X)  # columns: W1 (15), b1 (5), W2 (5)
    Jw1, Jb1, Jw2 = J[:, :15].reshape(6, 5, 3), J[:, 15:20], J[:, 20:]
    ours = np.concatenate([np.concatenate([Jw1, Jb1[:, :, None]], axis=2).reshape(6, -1), Jw2],
                          axis=1)
    np.testing.assert_allclose(net.per_example_gradients(Xa), ours, rtol=RTOL, atol=ATOL)
    # homogeneity in θ with x augmented: f(cθ; [x, 1]) = c² f(θ; [x, 1])
    np.testing.assert_allclose(net.with_flat(3.0 * net.flat()).forward(Xa), 9.0 * ref,
                               rtol=1e-10, atol=1e-12)
    # no bias + constant_feature: the constant column gets weight 0, same layout
    plain = from_torch(_seq(nn.Linear(3, 5, bias=False), nn.ReLU(), nn.Linear(5, 1, bias=False)),
                       constant_feature=True)
    np.testing.assert_array_equal(plain.weights[0][:, -1], 0.0)


@pytest.mark.parametrize("layers,match", [
    (lambda: [nn.Linear(3, 4, bias=True), nn.ReLU(), nn.Linear(4, 1, bias=False)],
     r"layer 0 \(Linear\): has a nonzero bias.*constant_feature=True"),
    (lambda: [nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=True)],
     r"layer 2 \(Linear\): has a nonzero bias.*after the first layer"),
    (lambda: [nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 1, bias=False)],
     r"layer 1 \(Tanh\): is not positively homogeneous"),
    (lambda: [nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 1, bias=False)],
     r"layer 1 \(BatchNorm1d\)"),
    (lambda: [nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False), nn.ReLU()],
     r"layer 3 \(ReLU\): an activation after the last Linear"),
    (lambda: [nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False)],
     r"out_features=2"),
    (lambda: [nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 4, bias=False),
              nn.Linear(4, 1, bias=False)],
     r"layer 3 \(Linear\): follows a Linear layer without an activation"),
    (lambda: [nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 4, bias=False),
              nn.LeakyReLU(0.2), nn.Linear(4, 1, bias=False)],
     r"activations differ"),
    (lambda: [nn.Linear(3, 4, bias=False), nn.LeakyReLU(-0.5), nn.Linear(4, 1, bias=False)],
     r"negative_slope=-0.5"),
])
def test_non_homogeneous_models_are_refused_by_layer(layers, match):
    with pytest.raises(NotHomogeneousError, match=match):
        from_torch(_seq(*layers()))


def test_bias_on_second_layer_refused_even_with_constant_feature():
    model = _seq(nn.Linear(3, 4, bias=True), nn.ReLU(), nn.Linear(4, 1, bias=True))
    with pytest.raises(NotHomogeneousError, match="layer 2"):
        from_torch(model, constant_feature=True)


def test_nan_weights_and_wrong_type_refused():
    model = _seq(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        from_torch(model)
    with pytest.raises(TypeError, match="nn.Sequential"):
        from_torch(object())


def test_save_and_load_round_trip(tmp_path, rng):
    model = _seq(nn.Linear(3, 5, bias=True), nn.LeakyReLU(0.05), nn.Linear(5, 1, bias=False))
    path = save_torch(tmp_path / "m.pt", model, constant_feature=True)
    net = load_torch(path, constant_feature=True)
    ref = from_torch(model, constant_feature=True)
    np.testing.assert_array_equal(net.flat(), ref.flat())
    assert (net.activation, net.alpha) == ("leaky_relu", 0.05)
    # a pickled whole model and a bare state_dict are refused with a pointer to save_torch
    torch.save(model, tmp_path / "whole.pt")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_torch(tmp_path / "whole.pt")
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ValueError, match="not in the 'marginflow-torch-v1' format"):
        load_torch(tmp_path / "sd.pt")
    with pytest.raises(ValueError, match="does not exist"):
        load_torch(tmp_path / "missing.pt")


def test_trained_torch_model_end_to_end(rng):
    # Train a bias-free ReLU net in torch (float64, exp loss summed, plain GD) until it separates
    # the data, convert it, and check it with solvers.check_kkt; the numpy margins must equal
    # torch's y·f(x).
    from solvers.nets import kkt
    X = rng.standard_normal((30, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)  # XOR-like: needs the hidden layer
    model = _seq(nn.Linear(2, 20, bias=False), nn.ReLU(), nn.Linear(20, 1, bias=False), seed=1)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        loss = torch.exp(-yt * model(Xt)[:, 0]).sum()
        loss.backward()
        opt.step()
    net = from_torch(model)
    with torch.no_grad():
        q_torch = (yt * model(Xt)[:, 0]).numpy()
    np.testing.assert_allclose(y * net.forward(X), q_torch, rtol=RTOL, atol=ATOL)
    assert q_torch.min() > 0, "the torch training run did not separate the data"
    report = kkt.check_kkt(net, X, y)
    # the status is the decision on the named residuals against the report's own tolerances
    decided = (report.epsilon_relative <= report.eps_tol
               and report.delta_relative <= report.delta_tol * (1 + 1e-9))
    assert report.is_kkt == decided
    assert report.status == ("approximate_kkt" if decided else "not_kkt")
    assert np.isfinite(report.epsilon) and report.epsilon <= report.natural_epsilon
