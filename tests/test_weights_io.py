"""Round trips and refusals of solvers.nets (.npz, allow_pickle=False)."""

from __future__ import annotations

import numpy as np
import pytest

from solvers.nets import HomogeneousMLP, load_data, load_weights, save_data, save_weights


@pytest.mark.parametrize("activation,alpha", [("relu", 0.0), ("leaky_relu", 0.3), ("linear", 0.0)])
def test_weights_round_trip_is_exact(tmp_path, rng, activation, alpha):
    net = HomogeneousMLP.random((4, 6, 3, 1), activation=activation, alpha=alpha, rng=rng)
    path = save_weights(tmp_path / "net", net)
    assert path.name == "net.npz"
    back = load_weights(path)
    assert back.activation == activation and back.alpha == alpha
    np.testing.assert_array_equal(back.flat(), net.flat())
    X = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))


def test_plain_weights_default_to_relu_and_accept_activation(tmp_path, rng):
    W1, W2 = rng.standard_normal((3, 2)), rng.standard_normal((1, 3))
    np.savez(tmp_path / "w.npz", W1=W1, W2=W2)
    assert load_weights(tmp_path / "w.npz").activation == "relu"
    net = load_weights(tmp_path / "w.npz", activation="leaky_relu", alpha=0.1)
    assert net.activation == "leaky_relu" and net.alpha == 0.1


def test_metadata_conflict_is_refused(tmp_path, rng):
    net = HomogeneousMLP.random((2, 3, 1), rng=rng)
    path = save_weights(tmp_path / "w.npz", net)
    with pytest.raises(ValueError, match="stores activation='relu' but activation='linear'"):
        load_weights(path, activation="linear")


def test_bad_weight_files_name_the_file_and_the_problem(tmp_path):
    p = tmp_path / "gap.npz"
    np.savez(p, W1=np.ones((3, 2)), W3=np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"gap\.npz.*missing \['W2'\]"):
        load_weights(p)
    p = tmp_path / "bias.npz"
    np.savez(p, W1=np.ones((3, 2)), W2=np.ones((1, 3)), b1=np.ones(3))
    with pytest.raises(ValueError, match=r"unexpected arrays \['b1'\].*Biases"):
        load_weights(p)
    p = tmp_path / "empty.npz"
    np.savez(p, foo=np.ones(2))
    with pytest.raises(ValueError, match="unexpected arrays"):
        load_weights(p)
    p = tmp_path / "none.npz"
    np.savez(p, activation=np.array("relu"))
    with pytest.raises(ValueError, match="no array 'W1'"):
        load_weights(p)
    p = tmp_path / "shape.npz"
    np.savez(p, W1=np.ones((3, 2)), W2=np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"shape\.npz.*W2\) has shape \(1, 4\)"):
        load_weights(p)
    p = tmp_path / "nan.npz"
    np.savez(p, W1=np.full((3, 2), np.nan), W2=np.ones((1, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        load_weights(p)
    p = tmp_path / "pickle.npz"
    np.savez(p, W1=np.array([object(), 1], dtype=object))
    with pytest.raises(ValueError, match="object \\(pickled\\) arrays"):
        load_weights(p)
    with pytest.raises(ValueError, match="does not exist"):
        load_weights(tmp_path / "nope.npz")
    p = tmp_path / "junk.npz"
    p.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=r"junk\.npz.* is a text file, not an \.npz archive"):
        load_weights(p)
    p = tmp_path / "single.npy"
    np.save(p, np.ones(3))
    with pytest.raises(ValueError, match="single array"):
        load_weights(p)


def test_data_round_trip_and_refusals(tmp_path, rng):
    X = rng.standard_normal((7, 3))
    y = np.where(rng.standard_normal(7) > 0, 1.0, -1.0)
    X2, y2 = load_data(save_data(tmp_path / "d", X, y))
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    p = tmp_path / "noy.npz"
    np.savez(p, X=X)
    with pytest.raises(ValueError, match=r"noy\.npz.*missing array\(s\) \['y'\]"):
        load_data(p)
    p = tmp_path / "01.npz"
    np.savez(p, X=X, y=(y + 1) / 2)
    with pytest.raises(ValueError, match=r"01\.npz.*y = 2 \* y - 1"):
        load_data(p)
    p = tmp_path / "short.npz"
    np.savez(p, X=X, y=y[:-1])
    with pytest.raises(ValueError, match="6 entries but X has 7 rows"):
        load_data(p)


def test_load_data_class_index_labels(tmp_path):
    from solvers.nets import load_data, save_data

    X = np.arange(24.0).reshape(4, 1, 2, 3)                 # images (n, C, H, W)
    p = save_data(tmp_path / "d.npz", X, [0, 2, 1, 2], n_classes=3)
    Xr, yr = load_data(p, n_classes=3)
    np.testing.assert_array_equal(Xr, X)
    assert yr.dtype == np.int64 and yr.tolist() == [0, 2, 1, 2]
    with pytest.raises(ValueError, match=r"class indices \[2\] outside 0\.\.1 for a 2-output"):
        load_data(p, n_classes=2)
    with pytest.raises(ValueError, match=r"-1 and \+1.*pass n_classes=K"):
        load_data(p)                                       # binary by default, as before
    np.savez(tmp_path / "f.npz", X=X, y=np.array([0.0, 1.5, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"integer class indices 0\.\.2"):
        load_data(tmp_path / "f.npz", n_classes=3)
    with pytest.raises(ValueError, match=r"n_classes must be None, 1"):
        load_data(p, n_classes=0)
