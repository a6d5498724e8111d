"""Tests of ``marginflow kkt`` (theory.cli._kkt): through a parser built with ``register`` and,
once the lead wires the command, through ``theory.cli.main``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from solvers.errors import NotFeasibleError
from theory.cli import _kkt as cli_kkt

# The hand-derived KKT point of tests/test_kkt.py::test_hand_derived_linear_kkt_point:
# w* = (1, -1) on x1 = (1, 0) (+1), x2 = (0, 1) (-1), x3 = (3, 0) (+1); multipliers (1, 1, 0).
X = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
Y = np.array([1.0, -1.0, 1.0])
W = np.array([[1.0, -1.0]])
KKT_EPS_RTOL = 1e-6  # far above the QP's 1e-10 tolerance (see tests/test_kkt.py)


def _parser():
    parser = argparse.ArgumentParser(prog="marginflow")
    cli_kkt.register(parser.add_subparsers(dest="command"))
    return parser


@pytest.fixture
def files(tmp_path):
    wpath, dpath = tmp_path / "net.npz", tmp_path / "data.npz"
    np.savez(wpath, W1=W, activation=np.array("linear"))
    np.savez(dpath, X=X, y=Y)
    return str(wpath), str(dpath)


def test_summary_output(files, capsys):
    wpath, dpath = files
    args = _parser().parse_args(["kkt", "--weights", wpath, "--data", dpath])
    assert cli_kkt.run(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("approximate KKT point (stationary)")
    assert "max margin" not in out.lower()


def test_json_output(files, capsys):
    wpath, dpath = files
    args = _parser().parse_args(["kkt", "--weights", wpath, "--data", dpath, "--json",
                                 "--norm", "inf"])
    assert cli_kkt.run(args) == 0
    rep = json.loads(capsys.readouterr().out)
    # w* = (1, -1) is also the ℓ∞ max-margin point (w1 >= 1, w2 <= -1 force ||w||∞ >= 1), and
    # both coordinates are tied at the max: y1 x1 + y2 x2 = (1, -1) is in ∂(½||w||∞²), so KKT
    assert rep["norm"] == "inf" and rep["status"] == "approximate_kkt"
    assert len(rep["multipliers"]) == 3


def test_json_l2_multipliers(files, capsys):
    wpath, dpath = files
    args = _parser().parse_args(["kkt", "--weights", wpath, "--data", dpath, "--json"])
    assert cli_kkt.run(args) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["epsilon_relative"] <= KKT_EPS_RTOL
    np.testing.assert_allclose(rep["multipliers"], [1.0, 1.0, 0.0], rtol=1e-8, atol=1e-8)


def test_not_kkt_still_exits_zero(tmp_path, capsys):
    wpath, dpath = tmp_path / "net.npz", tmp_path / "data.npz"
    np.savez(wpath, W1=np.array([[1.0, -3.0]]), activation=np.array("linear"))
    np.savez(dpath, X=X, y=Y)
    args = _parser().parse_args(["kkt", "--weights", str(wpath), "--data", str(dpath)])
    assert cli_kkt.run(args) == 0
    assert capsys.readouterr().out.startswith("not an approximate KKT point")


def test_bad_input_raises(tmp_path, files):
    wpath, _ = files
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=X, y=-Y)  # every point misclassified
    args = _parser().parse_args(["kkt", "--weights", wpath, "--data", str(bad)])
    with pytest.raises(NotFeasibleError, match="3 of 3"):
        cli_kkt.run(args)
    args = _parser().parse_args(["kkt", "--weights", str(tmp_path / "missing.npz"),
                                 "--data", str(bad)])
    with pytest.raises((ValueError, FileNotFoundError)):
        cli_kkt.run(args)


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["kkt", "--help"])
    assert "marginflow kkt --weights" in capsys.readouterr().out


def test_through_main(files, tmp_path, capsys):
    from theory.cli import main

    wpath, dpath = files
    assert main(["kkt", "--weights", wpath, "--data", dpath]) == 0
    assert "approximate KKT point" in capsys.readouterr().out
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=X, y=-Y)
    assert main(["kkt", "--weights", wpath, "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "misclassified" in err and len(err.strip().splitlines()) == 1


def test_cli_kkt_reads_a_torch_file_end_to_end(tmp_path, capsys):
    # a bias-free torch net trained to fit symmetric data, saved with save_torch and read back with
    # torch.load(weights_only=True); the CLI's report must equal check_kkt on the same numpy net
    torch = pytest.importorskip("torch")
    import json

    import numpy as np

    from solvers.datasets import make_separable
    from solvers.nets import from_torch, save_data, save_torch
    from solvers.nets.kkt import check_kkt
    from theory.cli import main

    torch.manual_seed(0)
    X, y = make_separable(16, 3, gap=0.3, seed=2)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8, bias=False), torch.nn.ReLU(),
                                torch.nn.Linear(8, 1, bias=False)).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.softplus(-yt * model(Xt)[:, 0]).sum().backward()
        opt.step()
    save_torch(tmp_path / "net.pt", model)
    save_data(tmp_path / "data.npz", X, y)
    assert main(["kkt", "--weights", str(tmp_path / "net.pt"), "--data",
                 str(tmp_path / "data.npz"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    direct = check_kkt(from_torch(model), X, y)
    np.testing.assert_allclose(out["epsilon"], direct.epsilon, rtol=1e-9, atol=1e-12)


def _teacher_cnn(tmp_path):
    """A bias-free CNN with 4 classes and data it labels itself (so every example is fitted),
    saved with save_torch/save_data."""
    torch = pytest.importorskip("torch")
    from solvers.nets import save_data, save_torch

    nn = torch.nn
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Sequential(nn.Flatten(), nn.Dropout(0.2)),
                          nn.Linear(12, 4, bias=False)).double()
    X = np.random.default_rng(0).normal(size=(30, 1, 6, 6))
    y = model.eval()(torch.tensor(X)).argmax(1).numpy()
    save_torch(tmp_path / "cnn.pt", model)
    save_data(tmp_path / "digits.npz", X, y, n_classes=4)
    return model, X, y


def test_cli_kkt_conv_net_multiclass(tmp_path, capsys):
    from solvers.nets import TorchNet
    from solvers.nets.kkt import check_kkt
    from theory.cli import main

    model, X, y = _teacher_cnn(tmp_path)
    files = ["--weights", str(tmp_path / "cnn.pt"), "--data", str(tmp_path / "digits.npz")]
    assert main(["kkt", *files, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    direct = check_kkt(TorchNet(model), X, y)   # the module itself, not the file
    np.testing.assert_allclose(out["epsilon"], direct.epsilon, rtol=1e-9, atol=1e-12)
    layers = [name for name, _ in out["extra"]["epsilon_by_layer"]]
    assert sorted(layers) == ["0", "4"]          # the conv and the head, by module path
    pairs = out["extra"]["support_pairs"]
    assert pairs and all(y[i] != j and 0 <= j < 4 for i, j, _ in pairs)
    assert main(["kkt", *files]) == 0
    text = capsys.readouterr().out
    top_layer, top_eps = out["extra"]["epsilon_by_layer"][0]
    assert f"largest contributions to epsilon by layer (||residual||): {top_layer} " \
           f"{top_eps:.3e}" in text
    i, j, lam = max(pairs, key=lambda r: r[2])
    assert f"({i}, {j}, {lam:.3g})" in text      # the support example with its competing class


def test_cli_kkt_labels_out_of_range_exit_2(tmp_path, capsys):
    from theory.cli import main

    _, X, y = _teacher_cnn(tmp_path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=X, y=np.where(np.arange(len(y)) == 0, 7, y))
    assert main(["kkt", "--weights", str(tmp_path / "cnn.pt"), "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "class indices [7] outside 0..3" in err and len(err.strip().splitlines()) == 1


def test_cli_kkt_non_homogeneous_spec_exit_2(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from theory.cli import main

    model, X, y = _teacher_cnn(tmp_path)
    # a forged file: the head gets a bias after θ-dependent layers
    state = dict(model.state_dict(), **{"4.bias": torch.zeros(4, dtype=torch.float64)})
    from solvers.nets._torch_adapter import _tree_spec

    layers = [_tree_spec(m, torch.nn, str(k)) for k, m in enumerate(model)]
    layers[4]["bias"] = True
    torch.save({"format": "marginflow-torch-v1", "layers": layers, "state_dict": state},
               tmp_path / "forged.pt")
    assert main(["kkt", "--weights", str(tmp_path / "forged.pt"), "--data",
                 str(tmp_path / "digits.npz")]) == 2
    err = capsys.readouterr().err
    assert "module '4'" in err and "bias" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("shape, words", [
    ((30, 36), "(36,)"),              # flattened images: conv2d needs (C, H, W)
    ((30, 2, 6, 6), "(2, 6, 6)"),     # two channels for a one-channel conv
    ((30, 1, 2, 2), "(1, 2, 2)"),     # smaller than the 3×3 kernel
])
def test_cli_kkt_data_shape_the_conv_net_cannot_take_exit_2(tmp_path, capsys, shape, words):
    # torch's RuntimeError used to escape as a traceback with exit status 1
    from theory.cli import main

    _, _, y = _teacher_cnn(tmp_path)
    bad = tmp_path / "flat.npz"
    np.savez(bad, X=np.random.default_rng(0).normal(size=shape), y=y)
    assert main(["kkt", "--weights", str(tmp_path / "cnn.pt"), "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "flat.npz" in err and f"inputs of shape {words}" in err and "Traceback" not in err


def test_cli_kkt_float32_file_is_converted_and_says_so_once(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from solvers.nets import save_torch
    from theory.cli import main

    model, _, _ = _teacher_cnn(tmp_path)
    save_torch(tmp_path / "cnn32.pt", model.float())           # float32 weights in the file
    assert main(["kkt", "--weights", str(tmp_path / "cnn32.pt"), "--data",
                 str(tmp_path / "digits.npz")]) == 0
    out = capsys.readouterr().out
    assert out.count("note: parameters converted from torch.float32 to torch.float64") == 1
    assert torch.get_default_dtype() == torch.float32           # nothing global was changed


@pytest.mark.parametrize("norm", ["1", "inf"])
def test_cli_kkt_conv_net_names_layers_in_every_norm(tmp_path, capsys, norm):
    # the help said "(ℓ2 only)"; the ℓ1/ℓ∞ checks of torch nets split ε by layer too
    from theory.cli import main

    _teacher_cnn(tmp_path)
    files = ["--weights", str(tmp_path / "cnn.pt"), "--data", str(tmp_path / "digits.npz")]
    assert main(["kkt", *files, "--norm", norm, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(name for name, _ in out["extra"]["epsilon_by_layer"]) == ["0", "4"]
    with pytest.raises(SystemExit):
        main(["kkt", "--help"])
    assert "ℓ2 only" not in capsys.readouterr().out


def test_cli_kkt_npz_mlp_names_the_layers_contributing_to_epsilon(tmp_path, capsys):
    # .npz MLPs had no ε-by-layer line (only .pt conv nets); the split is checked against an
    # independent residual in tests/test_kkt_multiclass.py
    from solvers import HomogeneousMLP, save_data, save_weights
    from theory.cli import main

    net = HomogeneousMLP.random((3, 6, 5, 3), seed=1)
    X = np.random.default_rng(2).normal(size=(40, 3))
    F = net.outputs(X)
    y = F.argmax(1)
    keep = np.sort(F, 1)[:, -1] - np.sort(F, 1)[:, -2] > 1e-2 * np.abs(F).max()
    save_weights(tmp_path / "mlp.npz", net)
    save_data(tmp_path / "d.npz", X[keep], y[keep], n_classes=3)
    files = ["--weights", str(tmp_path / "mlp.npz"), "--data", str(tmp_path / "d.npz")]
    assert main(["kkt", *files, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_layer = out["extra"]["epsilon_by_layer"]
    assert sorted(k for k, _ in by_layer) == ["W1", "W2", "W3"]
    np.testing.assert_allclose(np.sqrt(sum(v * v for _, v in by_layer)), out["epsilon"],
                               rtol=1e-9)
    assert main(["kkt", *files]) == 0
    top, value = by_layer[0]
    assert f"largest contributions to epsilon by layer (||residual||): {top} {value:.3e}" \
        in capsys.readouterr().out
