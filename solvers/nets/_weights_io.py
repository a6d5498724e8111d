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
    Arrays ``X`` of shape ``(n, d)`` (one example per row; or ``(n, C, ...)``, e.g. images
    ``(n, C, H, W)`` for a convolutional net) and ``y`` of shape ``(n,)`` with labels in
    ``{-1, +1}``, or integer class indices ``0 … K−1`` for a net with ``K ≥ 2`` outputs
    (``load_data(..., n_classes=K)``).

Every file is read member by member with :mod:`zipfile` and :func:`numpy.lib.format.read_array`
(``allow_pickle=False``, so object arrays are refused). Before a byte of an array is decompressed,
its ``.npy`` header is read and checked: the dtype must be real numeric (strings for
``activation``), and the declared size, counted as float64 (``8 * prod(shape)`` bytes, the size
after conversion), summed over the arrays read, must not exceed ``max_bytes`` (default
:data:`MAX_ARRAY_BYTES`, 256 MiB; pass a larger ``max_bytes=`` to read larger files). Arrays
other than the ones listed above are refused by name, unread, in both kinds of file; so a
decompression bomb hidden in an extra member is never expanded. The format is recognised by
content, not by the file name (:func:`detect_file_format`): a PyTorch archive named ``.npz``, a
single ``.npy`` array or a text file each get their own message.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from .._validation import check_labels, check_X
from ._network import HomogeneousMLP

__all__ = ["load_weights", "save_weights", "load_data", "save_data", "detect_file_format",
           "MAX_ARRAY_BYTES"]

_WEIGHT_KEY = re.compile(r"^W([1-9][0-9]*)$")
_META_KEYS = ("activation", "alpha")
_DATA_KEYS = ("X", "y")

#: Default cap on the arrays read from one file, in bytes of float64 (``8 * prod(shape)``),
#: summed over the arrays read: 256 MiB (33.5 million entries). Chosen so that reading and
#: converting the largest accepted file stays well under 1 GiB of memory. Override per call
#: with ``max_bytes=`` (``marginflow kkt --max-array-mb``).
MAX_ARRAY_BYTES = 256 * 2**20

#: Integers beyond 2**53 are not exactly representable in float64; files holding them are refused.
_INT_EXACT = 2**53

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_TORCH_PKL = re.compile(r"^[^/]+/data\.pkl$")


def detect_file_format(path) -> str:
    """Recognise a file by its content: ``'npz'``, ``'torch'`` or ``'npy'``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        ``'npz'`` (a zip archive whose members are all ``.npy`` arrays), ``'torch'`` (a
        ``torch.save`` zip archive, recognised by its ``<name>/data.pkl`` member, or a legacy
        pickle-protocol torch file), ``'npy'`` (a single numpy array).

    Raises
    ------
    ValueError
        The file does not exist, is empty, or is none of these (e.g. text or CSV), naming the file
        and how to write a supported one. Only the first bytes and the zip directory are read.
    """
    p = Path(os.fspath(path))
    if not p.is_file():
        raise ValueError(f"file {str(p)!r} does not exist (or is not a file); check the path.")
    with open(p, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ValueError(f"file {str(p)!r} starts like a zip archive but its directory is "
                             f"unreadable ({exc}); the file is damaged or truncated.") from None
        if any(_TORCH_PKL.match(n) for n in names):
            return "torch"
        if all(n.endswith(".npy") for n in names):
            return "npz"
        raise ValueError(
            f"file {str(p)!r} is a zip archive but neither an .npz (members {names[:5]} are not "
            f"all .npy arrays) nor a torch.save file; write it with np.savez or "
            f"solvers.save_torch.")
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "torch"  # torch.save(..., _use_new_zipfile_serialization=False): a pickle stream
    kind = "empty" if not head else (
        "a text file" if all(32 <= b < 127 or b in (9, 10, 13) for b in head) else
        f"an unknown binary format (first bytes {head[:4]!r})")
    raise ValueError(
        f"file {str(p)!r} is {kind}, not an .npz archive or a torch file; save arrays with "
        f"np.savez(path, ...) (CSV/text: load it with np.loadtxt and save it with np.savez)."
    )


def _check_max_bytes(max_bytes) -> int:
    if max_bytes is None:
        return MAX_ARRAY_BYTES
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int | np.integer) \
            or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer number of bytes; got "
                         f"{max_bytes!r}. The default is MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES}.")
    return int(max_bytes)


def _dtype_problem(dtype: np.dtype, key: str) -> str | None:
    """Why an array of ``dtype`` cannot be the numeric array ``key``, or None."""
    if dtype.hasobject:
        return "object (pickled) arrays, which marginflow never loads"
    if dtype.kind == "c":
        return (f"complex values (dtype {dtype}); the imaginary part would be dropped. Pass "
                f"real data, e.g. {key}.real if the imaginary part is zero")
    if dtype.kind == "b":
        return f"booleans (dtype {dtype}); convert to numbers explicitly, e.g. {key}.astype(float)"
    if dtype.kind not in "fiu":
        return f"non-numeric values (dtype {dtype}); store a real float array"
    return None


#: Array names quoted in an error message: a zip may hold 10^5 members (one line stays short).
_NAMES_SHOWN = 8


def _some(names: list) -> str:
    """``names`` as a list literal, cut after :data:`_NAMES_SHOWN` with the count of the rest."""
    if len(names) <= _NAMES_SHOWN:
        return str(list(names))
    return f"{list(names[:_NAMES_SHOWN])} and {len(names) - _NAMES_SHOWN} more"


class _Archive:
    """An ``.npz`` opened for checked, member-by-member reads."""

    def __init__(self, path, what: str, max_bytes):
        self.path = Path(os.fspath(path))
        self.name = str(path)
        self.what = what
        self.budget = _check_max_bytes(max_bytes)
        if not self.path.is_file():
            raise ValueError(f"{what} file {self.name!r} does not exist (or is not a file); "
                             f"check the path.")
        fmt = detect_file_format(self.path)
        if fmt == "torch":
            raise ValueError(
                f"{what} file {self.name!r} is a PyTorch (torch.save) file, not an .npz"
                + ("; load it with solvers.load_torch (marginflow kkt recognises it by content)."
                   if what == "weights" else "; save the data with np.savez(path, X=X, y=y)."))
        if fmt == "npy":
            raise ValueError(
                f"{what} file {self.name!r} holds a single array, not an .npz archive; save it "
                f"with np.savez(path, ...) and named arrays.")
        self.zf = zipfile.ZipFile(self.path)
        self.keys = [n[:-4] for n in self.zf.namelist()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zf.close()

    def _bad(self, msg: str) -> ValueError:
        return ValueError(f"{self.what} file {self.name!r}: {msg}")

    def header(self, key: str):
        """``(shape, dtype)`` from the member's ``.npy`` header; nothing else is decompressed."""
        try:
            with self.zf.open(key + ".npy") as fp:
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
            raise self._bad(f"array {key!r} is not a readable .npy member ({exc}).") from None
        return shape, dtype

    def read(self, keys, *, numeric=(), strings=()) -> dict[str, np.ndarray]:
        """Check every header of ``keys`` first (dtype, total size), then read them."""
        total = 0
        for key in keys:
            shape, dtype = self.header(key)
            if key in numeric:
                why = _dtype_problem(dtype, key)
                if why is not None:
                    raise self._bad(f"{key!r} holds {why}.")
            elif key in strings and (dtype.kind not in "US" or shape != ()):
                raise self._bad(
                    f"{key!r} must be a 0-d string array; got dtype {dtype}, shape {shape}. "
                    f"Save it as np.array('relu').")
            elif dtype.hasobject:
                raise self._bad(f"{key!r} holds object (pickled) arrays, which marginflow never "
                                f"loads; save plain numeric/string arrays with np.savez.")
            total += 8 * int(np.prod(shape, dtype=object)) if key in numeric \
                else int(np.prod(shape, dtype=object)) * dtype.itemsize
            if total > self.budget:
                raise self._bad(
                    f"the arrays to read declare {total / 2**20:.1f} MiB (as float64; {key!r} "
                    f"has shape {shape}), above the limit of {self.budget / 2**20:.1f} MiB; "
                    f"nothing was decompressed. If the file is trusted, raise the limit with "
                    f"max_bytes= (CLI: --max-array-mb).")
        out = {}
        for key in keys:
            try:
                with self.zf.open(key + ".npy") as fp:
                    a = np.lib.format.read_array(fp, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
                raise self._bad(f"array {key!r} is not readable ({exc}).") from None
            if a.dtype.kind in "iu" and a.size and (
                    int(a.max()) > _INT_EXACT or int(a.min()) < -_INT_EXACT):
                raise self._bad(
                    f"{key!r} holds integers beyond 2**53 (dtype {a.dtype}), which float64 cannot "
                    f"represent exactly; convert them deliberately, e.g. {key}.astype(float).")
            out[key] = a
        return out


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


def load_weights(path, *, activation: str | None = None, alpha: float | None = None,
                 max_bytes: int | None = None) -> HomogeneousMLP:
    """Read a :class:`~solvers.HomogeneousMLP` from an ``.npz`` file (format: module doc).

    Parameters
    ----------
    path : str or path-like
    activation, alpha : optional
        Supply the activation/slope when the file does not store them. When the file does store
        them, a different value here is an error (never a silent override).
    max_bytes : int, optional
        Cap on the arrays read, in float64 bytes (default :data:`MAX_ARRAY_BYTES`), checked
        against the ``.npy`` headers before anything is decompressed.

    Raises
    ------
    ValueError
        Missing file, not an ``.npz`` (a torch file, a single ``.npy``, text), pickled arrays,
        complex/boolean/non-numeric dtypes, integers beyond 2**53, arrays above ``max_bytes``,
        no ``W1``, a gap in the numbering, unknown arrays, or a metadata conflict — naming the
        file and what is wrong; and every check of the :class:`HomogeneousMLP` constructor
        (shapes chain, finite, one output row).
    """
    with _Archive(path, "weights", max_bytes) as archive:
        name = archive.name
        layer_keys = {}
        unknown = []
        for k in archive.keys:
            m = _WEIGHT_KEY.match(k)
            if m:
                layer_keys[int(m.group(1))] = k
            elif k not in _META_KEYS:
                unknown.append(k)
        if unknown:
            raise ValueError(
                f"weights file {name!r} has unexpected arrays {_some(sorted(unknown))}; expected "
                f"W1, ..., WL and optionally 'activation', 'alpha'. Biases are not supported (a "
                f"bias breaks homogeneity; see solvers.nets for the constant-feature trick)."
            )
        if not layer_keys:
            raise ValueError(
                f"weights file {name!r} has no array 'W1' (found "
                f"{_some(sorted(archive.keys))}); store the layers as W1, ..., WL with W_l of "
                f"shape (d_l, d_(l-1))."
            )
        L = max(layer_keys)
        missing = [f"W{l}" for l in range(1, L + 1) if l not in layer_keys]
        if missing:
            raise ValueError(
                f"weights file {name!r} has W{L} but is missing {missing}; layers must be "
                f"numbered W1, ..., WL without gaps."
            )
        wanted = [layer_keys[l] for l in range(1, L + 1)]
        wanted += [k for k in _META_KEYS if k in archive.keys]
        data = archive.read(wanted, numeric=[*layer_keys.values(), "alpha"],
                            strings=["activation"])
    meta = {}
    if "activation" in data:
        a = data["activation"]
        meta["activation"] = str(a.item() if a.dtype.kind == "U" else a.item().decode())
    if "alpha" in data:
        a = data["alpha"]
        if a.ndim != 0:
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
        return HomogeneousMLP(tuple(data[f"W{l}"] for l in range(1, L + 1)),
                              activation=meta.get("activation", "relu"),
                              alpha=meta.get("alpha", 0.0))
    except ValueError as exc:
        raise ValueError(f"weights file {name!r}: {exc}") from exc


def _check_inputs(X) -> np.ndarray:
    """``X`` of shape ``(n, d)`` or ``(n, C, ...)`` (e.g. images ``(n, C, H, W)``), float64."""
    X = np.asarray(X)
    if X.ndim <= 2:
        return check_X(X)
    from .._validation import as_float_array

    X = as_float_array(X, "X", ndim=X.ndim)
    if X.shape[0] == 0 or 0 in X.shape:
        raise ValueError(f"X has an empty axis (shape {X.shape}); pass at least one example "
                         f"with non-empty channels.")
    return X


def _check_class_labels(y, n: int, n_classes) -> np.ndarray:
    """Labels for a net with ``n_classes`` outputs: ±1 (float) for None/1, else int64 indices."""
    if n_classes is None or n_classes == 1:
        try:
            return check_labels(y, n)
        except ValueError as exc:
            if n_classes is None and np.asarray(y).ndim == 1 and np.all(
                    (np.asarray(y) >= 0) & (np.asarray(y) == np.round(np.asarray(y)))):
                raise ValueError(f"{exc} For class indices 0..K-1 (a K-output net) pass "
                                 f"n_classes=K.") from None
            raise
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) \
            or n_classes < 2:
        raise ValueError(f"n_classes must be None, 1 (labels ±1) or an integer K >= 2 (class "
                         f"indices 0..K-1); got {n_classes!r}.")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},), one class index per example; got shape "
                         f"{y.shape}.")
    yf = y.astype(np.float64)
    if not np.all(np.isfinite(yf)) or np.any(yf != np.round(yf)):
        raise ValueError(f"y must hold integer class indices 0..{n_classes - 1}; found non-"
                         f"integer values (e.g. {yf[~(yf == np.round(yf))][:3].tolist()}).")
    bad = (yf < 0) | (yf > n_classes - 1)
    if np.any(bad):
        vals = np.unique(yf[bad])[:5].astype(np.int64).tolist()
        raise ValueError(
            f"y holds class indices {vals} outside 0..{n_classes - 1} for a {n_classes}-output "
            f"net; relabel them to 0..{n_classes - 1} (e.g. y - y.min()) or use a net with "
            f"more outputs.")
    return yf.astype(np.int64)


def save_data(path, X, y, *, n_classes: int | None = None) -> Path:
    """Write ``X`` (``(n, d)`` or ``(n, C, ...)``) and labels ``y`` (``(n,)``: ±1, or class
    indices ``0 … K−1`` with ``n_classes=K``) to an ``.npz`` (checked first)."""
    X = _check_inputs(X)
    y = _check_class_labels(y, X.shape[0], n_classes)
    p = Path(os.fspath(path))
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    np.savez(p, X=X, y=y)
    return p


def load_data(path, *, max_bytes: int | None = None, n_classes: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Read a classification data set ``(X, y)`` from an ``.npz`` with arrays ``X`` and ``y``.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int, optional
        Cap on ``X`` and ``y`` together, in float64 bytes (default :data:`MAX_ARRAY_BYTES`),
        checked against the ``.npy`` headers before anything is decompressed.
    n_classes : int, optional
        The number of outputs ``K`` of the network the data are for. ``None`` or 1: labels
        ±1 (binary, as before); ``K >= 2``: integer class indices ``0 … K−1`` (Lyu & Li 2019's
        multi-class margin), checked against ``K``.

    Returns
    -------
    X : ndarray of shape (n, d) or (n, C, ...) (e.g. images (n, C, H, W)), float64
    y : ndarray of shape (n,)
        float64 in ``{-1, +1}``, or int64 in ``0 … K−1`` when ``n_classes = K >= 2``.

    Raises
    ------
    ValueError
        Missing file or arrays, any array other than ``X`` and ``y`` (refused unread, as in
        weights files), not an ``.npz``, pickled, complex, boolean or non-numeric arrays,
        integers beyond 2**53, arrays above ``max_bytes``, non-finite values, wrong shapes,
        labels not ±1 (the message names the file and the fix, e.g. ``y = 2 * y - 1`` for 0/1
        labels, or ``n_classes=K`` for class indices), class indices outside ``0 … K−1``.
    """
    with _Archive(path, "data", max_bytes) as archive:
        name = archive.name
        unknown = sorted(k for k in archive.keys if k not in _DATA_KEYS)
        if unknown:
            raise ValueError(
                f"data file {name!r} has unexpected arrays {_some(unknown)} (not read); a data "
                f"file holds exactly X (n, d) and y (n,): save it with np.savez(path, X=X, y=y)."
            )
        missing = [k for k in _DATA_KEYS if k not in archive.keys]
        if missing:
            raise ValueError(
                f"data file {name!r} is missing array(s) {missing} (found "
                f"{_some(sorted(archive.keys))}); "
                f"save it with np.savez(path, X=X, y=y), X of shape (n, d) and y of shape (n,) in "
                f"{{-1, +1}}."
            )
        data = archive.read(_DATA_KEYS, numeric=_DATA_KEYS)
    try:
        X = _check_inputs(data["X"])
        y = _check_class_labels(data["y"], X.shape[0], n_classes)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"data file {name!r}: {exc}") from exc
    return X, y
