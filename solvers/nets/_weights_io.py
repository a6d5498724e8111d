"""Reading and writing networks and data sets as ``.npz`` files (no pickle, ever).

File formats
------------
Weights (``save_weights`` / ``load_weights``)
    Arrays ``W1``, ``W2``, ..., ``WL`` (float, ``W_l`` of shape ``(d_l, d_{l-1})``, rows are output
    units as in ``torch.nn.Linear.weight``, ``W_L`` of shape ``(1, d_{L-1})``), numbered
    consecutively from 1, plus optionally ``activation`` (a 0-d string array: ``'relu'``,
    ``'leaky_relu'`` or ``'linear'``; default ``'relu'`` when absent) and ``alpha`` (0-d float,
    the LeakyReLU slope; default 0).
Data (``load_data``)
    Arrays ``X`` of shape ``(n, d)`` (one example per row) and ``y`` of shape ``(n,)`` with
    labels in ``{-1, +1}``.

Every file is opened with ``np.load(path, allow_pickle=False)``, so object arrays are refused.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from .._validation import check_labels, check_X
from ._network import HomogeneousMLP

__all__ = ["load_weights", "save_weights", "load_data", "save_data"]

_WEIGHT_KEY = re.compile(r"^W([1-9][0-9]*)$")
_META_KEYS = ("activation", "alpha")


def _open_npz(path, what: str) -> dict[str, np.ndarray]:
    p = Path(os.fspath(path))
    if not p.is_file():
        raise ValueError(f"{what} file {str(p)!r} does not exist (or is not a file); "
                         f"check the path.")
    try:
        f = np.load(p, allow_pickle=False)
    except ValueError as exc:  # e.g. not a numpy file: numpy would need to unpickle it
        raise ValueError(
            f"{what} file {str(p)!r} is not a readable .npz archive ({exc}); marginflow never "
            f"unpickles, save it with np.savez(path, ...)."
        ) from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{what} file {str(p)!r} is not a readable .npz archive ({exc}).") from exc
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{what} file {str(p)!r} holds a single array, not an .npz archive; save it with "
            f"np.savez(path, ...) and named arrays."
        )
    with f:
        try:
            return {k: f[k] for k in f.files}
        except ValueError as exc:
            if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                raise ValueError(
                    f"{what} file {str(p)!r} contains object (pickled) arrays, which marginflow "
                    f"never loads; save plain numeric/string arrays with np.savez."
                ) from exc
            raise ValueError(
                f"{what} file {str(p)!r} is not a readable .npz archive ({exc})."
            ) from exc
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(
                f"{what} file {str(p)!r} is not a readable .npz archive ({exc})."
            ) from exc


def save_weights(path, net: HomogeneousMLP) -> Path:
    """Write ``net`` to ``path`` as an ``.npz`` with ``W1..WL``, ``activation`` and ``alpha``.

    Parameters
    ----------
    path : str or path-like
        Destination; numpy appends ``.npz`` when the name has no such suffix (the returned path
        is the file actually written).
    net : HomogeneousMLP

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if not isinstance(net, HomogeneousMLP):
        raise TypeError(f"net must be a HomogeneousMLP; got {type(net).__name__}.")
    p = Path(os.fspath(path))
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    arrays = {f"W{l}": W for l, W in enumerate(net.weights, start=1)}
    np.savez(p, **arrays, activation=np.array(net.activation), alpha=np.array(net.alpha))
    return p


def load_weights(path, *, activation: str | None = None, alpha: float | None = None
                 ) -> HomogeneousMLP:
    """Read a :class:`~solvers.HomogeneousMLP` from an ``.npz`` file (format: module doc).

    Parameters
    ----------
    path : str or path-like
    activation, alpha : optional
        Supply the activation/slope when the file does not store them. When the file does store
        them, a different value here is an error (never a silent override).

    Raises
    ------
    ValueError
        Missing file, not an ``.npz``, pickled arrays, no ``W1``, a gap in the numbering, unknown
        arrays, or a metadata conflict — naming the file and what is wrong; and every check of
        the :class:`HomogeneousMLP` constructor (shapes chain, finite, one output row).
    """
    data = _open_npz(path, "weights")
    name = str(path)
    layers = {}
    unknown = []
    for k in data:
        m = _WEIGHT_KEY.match(k)
        if m:
            layers[int(m.group(1))] = data[k]
        elif k not in _META_KEYS:
            unknown.append(k)
    if unknown:
        raise ValueError(
            f"weights file {name!r} has unexpected arrays {sorted(unknown)}; expected W1, ..., WL "
            f"and optionally 'activation', 'alpha'. Biases are not supported (a bias breaks "
            f"homogeneity; see solvers.nets for the constant-feature trick)."
        )
    if not layers:
        raise ValueError(
            f"weights file {name!r} has no array 'W1' (found {sorted(data)}); store the layers as "
            f"W1, ..., WL with W_l of shape (d_l, d_(l-1))."
        )
    L = max(layers)
    missing = [f"W{l}" for l in range(1, L + 1) if l not in layers]
    if missing:
        raise ValueError(
            f"weights file {name!r} has W{L} but is missing {missing}; layers must be numbered "
            f"W1, ..., WL without gaps."
        )
    meta = {}
    if "activation" in data:
        a = data["activation"]
        if a.dtype.kind not in "US" or a.ndim != 0:
            raise ValueError(
                f"weights file {name!r}: 'activation' must be a 0-d string array; got dtype "
                f"{a.dtype}, shape {a.shape}. Save it as np.array('relu')."
            )
        meta["activation"] = str(a.item() if a.dtype.kind == "U" else a.item().decode())
    if "alpha" in data:
        a = data["alpha"]
        if a.ndim != 0 or a.dtype.kind not in "fiu":
            raise ValueError(
                f"weights file {name!r}: 'alpha' must be a 0-d number; got dtype {a.dtype}, "
                f"shape {a.shape}."
            )
        meta["alpha"] = float(a)
    for key, given in (("activation", activation), ("alpha", alpha)):
        if given is None:
            continue
        if key in meta and meta[key] != given:
            raise ValueError(
                f"weights file {name!r} stores {key}={meta[key]!r} but {key}={given!r} was passed; "
                f"drop the argument (the file is authoritative) or fix the file."
            )
        meta[key] = given
    try:
        return HomogeneousMLP(tuple(layers[l] for l in range(1, L + 1)),
                              activation=meta.get("activation", "relu"),
                              alpha=meta.get("alpha", 0.0))
    except ValueError as exc:
        raise ValueError(f"weights file {name!r}: {exc}") from exc


def save_data(path, X, y) -> Path:
    """Write ``X`` (``(n, d)``) and labels ``y`` (``(n,)``, ±1) to an ``.npz`` (checked first)."""
    X = check_X(X)
    y = check_labels(y, X.shape[0])
    p = Path(os.fspath(path))
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    np.savez(p, X=X, y=y)
    return p


def load_data(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a classification data set ``(X, y)`` from an ``.npz`` with arrays ``X`` and ``y``.

    Returns
    -------
    X : ndarray of shape (n, d), float64
    y : ndarray of shape (n,), float64 in ``{-1, +1}``

    Raises
    ------
    ValueError
        Missing file or arrays, pickled arrays, non-finite values, wrong shapes, labels not ±1
        (the message names the file and the fix, e.g. ``y = 2 * y - 1`` for 0/1 labels).
    """
    data = _open_npz(path, "data")
    name = str(path)
    missing = [k for k in ("X", "y") if k not in data]
    if missing:
        raise ValueError(
            f"data file {name!r} is missing array(s) {missing} (found {sorted(data)}); save it "
            f"with np.savez(path, X=X, y=y), X of shape (n, d) and y of shape (n,) in {{-1, +1}}."
        )
    try:
        X = check_X(data["X"])
        y = check_labels(data["y"], X.shape[0])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"data file {name!r}: {exc}") from exc
    return X, y
