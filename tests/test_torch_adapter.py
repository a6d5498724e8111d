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

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


# --- multi-class heads and conv nets in the .pt format (issue 11 item 5) ----------------------


def test_multiclass_mlp_head_converts_to_numpy():
    # refused before issue 11 ("out_features=2"); now K outputs, the same function as torch's
    from solvers.nets import HomogeneousMLP

    model = _seq(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 3, bias=False))
    net = from_torch(model)
    assert isinstance(net, HomogeneousMLP) and net.n_outputs == 3
    X = np.random.default_rng(0).normal(size=(6, 3))
    np.testing.assert_allclose(net.forward(X).reshape(6, 3),
                               model(torch.tensor(X)).detach().numpy(), rtol=1e-12, atol=1e-12)


def _cnn2d(seed=0):
    return _seq(nn.Conv2d(1, 3, 3, padding=1, bias=True), nn.ReLU(), nn.MaxPool2d(2),
                nn.Sequential(nn.Conv2d(3, 4, (2, 3), stride=(1, 2), bias=False),
                              nn.LeakyReLU(0.1), nn.Dropout(0.3), nn.Identity()),
                nn.AvgPool2d(1), nn.AdaptiveAvgPool2d((2, 1)), nn.Flatten(),
                nn.Linear(8, 5, bias=False), seed=seed)


def _cnn1d(seed=0):
    return _seq(nn.Conv1d(2, 3, 3, bias=False), nn.ReLU(), nn.MaxPool1d(2, stride=1),
                nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(2), nn.Flatten(0 + 1, -1),
                nn.Linear(6, 1, bias=False), seed=seed)


@pytest.mark.parametrize("make,shape", [(_cnn2d, (7, 1, 8, 8)), (_cnn1d, (7, 2, 11))])
def test_conv_nets_round_trip_into_a_torchnet(tmp_path, make, shape):
    from solvers.nets import TorchNet

    model = make()
    path = save_torch(tmp_path / "cnn.pt", model)
    net = load_torch(path)
    assert isinstance(net, TorchNet)
    X = np.random.default_rng(1).normal(size=shape)
    # bit-for-bit the same function as the saved module in eval mode (dropout a no-op)
    np.testing.assert_array_equal(net.outputs(X),
                                  model.eval()(torch.tensor(X)).detach().numpy().reshape(7, -1))
    # the degree comes from the graph: 3 weight layers on the 2-d net's path, 2 on the 1-d one
    assert net.degree == (3 if make is _cnn2d else 2)


def _payload(model, layers):
    return {"format": "marginflow-torch-v1", "layers": layers, "state_dict": model.state_dict()}


def test_forged_conv_spec_is_refused_before_allocation(tmp_path):
    # 1e5 × 1e5 × 3 × 3 float64 would be 720 GB; the spec is refused from its declared size
    p = tmp_path / "forged.pt"
    torch.save({"format": "marginflow-torch-v1", "state_dict": {},
                "layers": [{"type": "Conv2d", "in_channels": 100000, "out_channels": 100000,
                            "kernel_size": [3, 3], "stride": [1, 1], "padding": [0, 0],
                            "bias": False}]}, p)
    with pytest.raises(ValueError, match=r"declare .* MiB of weights .* nothing was allocated"):
        load_torch(p)


@pytest.mark.parametrize("edit,match", [
    (lambda L: L[0].update(kernel_size=[3]), r"layer spec 0 has kernel_size=\[3\]; it must be 2"),
    (lambda L: L[0].update(padding=[-1, 0]), r"padding=\[-1, 0\].*integer\(s\) >= 0"),
    (lambda L: L[0].update(bias="yes"), r"layer spec 0 has bias='yes'"),
    (lambda L: L[3]["layers"][2].update(p=2.0), r"layer spec 3.2 has p=2.0"),
    (lambda L: L[3]["layers"][0].update(out_channels=5), r"'3.0.weight'\] has shape"),
    (lambda L: L.append({"type": "BatchNorm2d"}), r"layer spec 8 .* is not one of"),
])
def test_inconsistent_conv_specs_are_refused(tmp_path, edit, match):
    from solvers.nets._torch_adapter import _tree_spec

    model = _cnn2d()
    layers = [_tree_spec(m, nn, str(i)) for i, m in enumerate(model)]
    edit(layers)
    p = tmp_path / "bad.pt"
    torch.save(_payload(model, layers), p)
    with pytest.raises(ValueError, match=match):
        load_torch(p)


def test_deeply_nested_specs_are_refused(tmp_path):
    spec = {"type": "Identity"}
    for _ in range(40):
        spec = {"type": "Sequential", "layers": [spec]}
    p = tmp_path / "deep.pt"
    torch.save({"format": "marginflow-torch-v1", "layers": [spec], "state_dict": {}}, p)
    with pytest.raises(ValueError, match=r"nested deeper than 16"):
        load_torch(p)


def test_non_homogeneous_conv_nets_are_refused_by_module(tmp_path):
    # a bias on the second conv: refused when saving, and when a forged file declares it
    model = _seq(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(),
                 nn.Sequential(nn.Conv2d(2, 2, 3, bias=True)), nn.Flatten(),
                 nn.Linear(8, 3, bias=False))
    with pytest.raises(NotHomogeneousError, match=r"module '2.0'.*bias"):
        save_torch(tmp_path / "x.pt", model)
    from solvers.nets._torch_adapter import _tree_spec

    p = tmp_path / "forged.pt"
    torch.save(_payload(model, [_tree_spec(m, nn, str(i)) for i, m in enumerate(model)]), p)
    with pytest.raises(NotHomogeneousError, match=r"module '2.0'.*bias"):
        load_torch(p)
    with pytest.raises(NotHomogeneousError, match=r"BatchNorm2d"):
        save_torch(tmp_path / "y.pt", _seq(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2),
                                           nn.Flatten(), nn.Linear(72, 2, bias=False)))


def test_constant_feature_is_refused_for_conv_nets(tmp_path):
    path = save_torch(tmp_path / "cnn.pt", _cnn2d())
    with pytest.raises(ValueError, match=r"constant_feature applies to flat MLPs only"):
        load_torch(path, constant_feature=True)


def test_save_torch_takes_the_torchnet_that_train_torch_returns(tmp_path):
    # train_torch(...).net is a TorchNet; save_torch refused it ("must be a torch.nn.Sequential")
    from solvers.nets import TorchNet, train_torch

    X = np.random.default_rng(0).normal(size=(12, 1, 8, 8))
    y = np.arange(12) % 5
    run = train_torch(_cnn2d(), X, y, steps=3)
    assert isinstance(run.net, TorchNet)
    net = load_torch(save_torch(tmp_path / "run.pt", run.net))
    assert isinstance(net, TorchNet) and net.degree == run.net.degree
    np.testing.assert_array_equal(net.flat(), run.net.flat())
    np.testing.assert_array_equal(net.outputs(X), run.net.outputs(X))
    # a TorchNet of a flat MLP still reads back as a HomogeneousMLP
    mlp = TorchNet(_seq(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False)))
    back = load_torch(save_torch(tmp_path / "mlp.pt", mlp))
    np.testing.assert_array_equal(back.flat(), mlp.flat())
