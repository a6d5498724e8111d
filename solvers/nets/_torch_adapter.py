"""Optional PyTorch adapter: ``nn.Sequential`` of bias-free layers → :class:`HomogeneousMLP`.

Install with ``pip install marginflow[torch]``. Torch is imported lazily, only by these functions.

Accepted modules (in order, as in ``nn.Sequential``):

- ``nn.Linear`` without bias (``bias=False``, or a bias that is exactly zero, which is dropped);
- ``nn.ReLU``, ``nn.LeakyReLU(negative_slope=α)`` with ``0 <= α < 1``: exactly one activation
  between consecutive ``Linear`` layers, all of the same kind, none after the last ``Linear``;
  no activation at all gives a deep linear network (``activation='linear'``);
- ``nn.Identity`` anywhere, ``nn.Flatten`` before the first ``Linear``;
- the last ``Linear`` has ``out_features = 1`` (binary, labels ±1) or ``K ≥ 2`` (a multi-class
  head, labels ``0 … K−1``; Lyu & Li 2019's margin ``f_y − max_{j≠y} f_j``).

Constant feature (``constant_feature=True``): a bias ``b`` on the **first** ``Linear`` only is
accepted and folded into the weights, ``W_1' = [W_1 | b]`` of shape ``(d_1, d_0 + 1)``; the
network then acts on inputs augmented with a constant-1 last column (use
:func:`augment_constant_feature`), ``f(θ; [x, 1]) = model(x)``. This keeps homogeneity in ``θ``
(docs/theory.md §0): the constant feature is part of the data, not a parameter. With
``constant_feature=True`` and no bias the constant column gets weight 0, so the input layout is
the same either way.

Anything else (other biases, ``Tanh``, ``Sigmoid``, ``GELU``, normalisation, dropout, pooling,
convolutions, residual blocks) makes :func:`from_torch` raise
:class:`~solvers.errors.NotHomogeneousError` naming the layer index, its type and why; the
networks among them that are homogeneous (convolutions, pooling, dropout, nesting) are handled
by :class:`~solvers.nets.TorchNet`, and :func:`save_torch` / :func:`load_torch` store them.

File format of :func:`load_torch` / :func:`save_torch`: a dict saved with ``torch.save``,

``{"format": "marginflow-torch-v1", "layers": [spec, ...], "state_dict": module.state_dict()}``

where each ``spec`` is a dict of plain types: ``{"type": "Linear", "in_features": int,
"out_features": int, "bias": bool}``, ``{"type": "ReLU"}``, ``{"type": "LeakyReLU",
"negative_slope": float}``, ``{"type": "Identity"}``, ``{"type": "Flatten"}`` (optionally with
``start_dim``, ``end_dim``), ``{"type": "Conv1d" | "Conv2d", "in_channels": int,
"out_channels": int, "kernel_size": [int, ...], "stride": [int, ...], "padding": [int, ...],
"bias": bool}`` (one entry per spatial dimension; groups 1, dilation 1, zero padding),
``{"type": "MaxPool1d" | "MaxPool2d" | "AvgPool1d" | "AvgPool2d", "kernel_size": [...],
"stride": [...]}`` (no padding), ``{"type": "AdaptiveAvgPool1d" | "AdaptiveAvgPool2d",
"output_size": [...]}``, ``{"type": "Dropout", "p": float}`` or ``{"type": "Sequential",
"layers": [spec, ...]}`` (state-dict keys then nest, ``"2.0.weight"``; at most
:data:`MAX_SPEC_DEPTH` levels). It is read with ``torch.load(path, weights_only=True)`` only (no
arbitrary unpickling); every spec is checked (plain types, positive sizes) and the shapes it
declares are checked against the state dict before any module is built. A flat MLP (top-level
``Linear``/``ReLU``/``LeakyReLU``/``Identity``/``Flatten``) is converted with :func:`from_torch`
to a :class:`HomogeneousMLP`, as before; any other network is rebuilt as an ``nn.Sequential`` and
wrapped in a :class:`~solvers.nets.TorchNet` (which proves its homogeneity from the fx graph).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._validation import check_X
from ..errors import NotHomogeneousError
from ._network import HomogeneousMLP
from ._torch_net import TorchNet

__all__ = ["FORMAT", "from_torch", "load_torch", "save_torch", "augment_constant_feature"]

FORMAT = "marginflow-torch-v1"


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "the PyTorch adapter needs torch; install it with pip install 'marginflow[torch]'."
        ) from exc
    return torch


def augment_constant_feature(X) -> np.ndarray:
    """Append a column of ones: ``(n, d) → (n, d + 1)``, the input of a net built with
    ``constant_feature=True``."""
    X = check_X(X)
    return np.hstack([X, np.ones((X.shape[0], 1))])


def _refuse(i, layer, why):
    raise NotHomogeneousError(f"layer {i} ({type(layer).__name__}): {why}")


def from_torch(module, *, constant_feature: bool = False) -> HomogeneousMLP:
    """Convert an ``nn.Sequential`` of bias-free ``Linear``/``ReLU``/``LeakyReLU`` to numpy.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        See the module docstring for what is accepted.
    constant_feature : bool, keyword-only
        Accept a bias on the first ``Linear`` and fold it into ``W_1`` as the weight of a
        constant-1 input feature (then evaluate the net on ``augment_constant_feature(X)``).

    Returns
    -------
    HomogeneousMLP
        Float64 copies of the weights; ``f(θ; x) = module(x)`` (or ``module(x)`` for
        ``x`` without its appended 1 when ``constant_feature=True``).

    Raises
    ------
    NotHomogeneousError
        A layer breaks homogeneity or is not supported: the message names the layer index, type
        and why.
    TypeError
        ``module`` is not an ``nn.Sequential`` / ``nn.Linear``.
    """
    torch = _torch()
    nn = torch.nn
    if isinstance(module, nn.Linear):
        layers = [module]
    elif isinstance(module, nn.Sequential):
        layers = list(module)
    else:
        raise TypeError(
            f"module must be a torch.nn.Sequential (or a single nn.Linear); got "
            f"{type(module).__name__}. Wrap the layers in nn.Sequential(...)."
        )
    weights: list[np.ndarray] = []
    kinds: list[tuple[str, float]] = []  # activation after each Linear except the last
    pending: tuple[str, float] | None = None  # activation seen since the last Linear
    pending_index = -1
    gaps = []  # Linear layers that directly follow a Linear (fine only if no activation at all)
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Identity):
            continue
        if isinstance(layer, nn.Flatten):
            if weights:
                _refuse(i, layer, "Flatten after a Linear layer is not supported; put it first.")
            continue
        if isinstance(layer, nn.Linear):
            W = layer.weight.detach().to("cpu", torch.float64).numpy().copy()
            if not weights and constant_feature and layer.bias is None:
                W = np.hstack([W, np.zeros((W.shape[0], 1))])  # same input layout either way
            if layer.bias is not None:
                b = layer.bias.detach().to("cpu", torch.float64).numpy().copy()
                if not weights and constant_feature:
                    W = np.hstack([W, b[:, None]])
                elif np.any(b != 0.0):
                    where = ("a bias on the first layer is allowed only with "
                             "constant_feature=True (the input then gets a constant-1 column)"
                             if not weights else "a bias after the first layer")
                    _refuse(i, layer, f"has a nonzero bias, which breaks positive homogeneity "
                                      f"f(cθ) = c^L f(θ); {where}. Retrain with bias=False.")
            if weights:
                if pending is None:
                    gaps.append((i, layer))
                kinds.append(pending or ("linear", 0.0))
            elif pending is not None:
                _refuse(pending_index, layers[pending_index],
                        "an activation before the first Linear layer is not supported.")
            weights.append(W)
            pending = None
            continue
        if isinstance(layer, nn.ReLU | nn.LeakyReLU):
            if pending is not None:
                _refuse(i, layer, "two activations in a row are not supported.")
            if isinstance(layer, nn.ReLU):
                pending = ("relu", 0.0)
            else:
                a = float(layer.negative_slope)
                if not (0.0 <= a < 1.0):
                    _refuse(i, layer, f"negative_slope={a} is outside [0, 1), which marginflow's "
                                      f"Clarke-interval convention [α, 1] assumes.")
                pending = ("leaky_relu", a)
            pending_index = i
            if not weights:
                _refuse(i, layer, "an activation before the first Linear layer is not supported.")
            continue
        _refuse(i, layer, "is not positively homogeneous or not supported (allowed: bias-free "
                          "Linear, ReLU, LeakyReLU, Identity, Flatten).")
    if not weights:
        raise NotHomogeneousError("the module has no Linear layer.")
    if pending is not None:
        _refuse(pending_index, layers[pending_index],
                "an activation after the last Linear layer is not supported (the output must be "
                "the linear read-out W_L h).")
    if gaps and any(k != ("linear", 0.0) for k in kinds):
        i, layer = gaps[0]
        _refuse(i, layer, "follows a Linear layer without an activation in between while other "
                          "layers have one; mixed linear/nonlinear stacks are not supported "
                          "(merge the two matrices or add the activation).")
    if kinds:
        if len(set(kinds)) > 1:
            raise NotHomogeneousError(
                f"the activations differ between layers ({sorted(set(kinds))}); all hidden "
                f"layers must use the same ReLU/LeakyReLU."
            )
        activation, alpha = kinds[0]
    else:
        activation, alpha = "linear", 0.0
    return HomogeneousMLP(tuple(weights), activation=activation, alpha=alpha)


def _spec(layer, nn) -> dict:
    """The plain-types spec of one module of a flat MLP (``Linear``/activations)."""
    if isinstance(layer, nn.Linear):
        return {"type": "Linear", "in_features": int(layer.in_features),
                "out_features": int(layer.out_features), "bias": layer.bias is not None}
    if isinstance(layer, nn.LeakyReLU):
        return {"type": "LeakyReLU", "negative_slope": float(layer.negative_slope)}
    for cls in (nn.ReLU, nn.Identity, nn.Flatten):
        if type(layer) is cls:
            return {"type": cls.__name__}
    raise NotHomogeneousError(
        f"cannot save layer {type(layer).__name__}: the marginflow torch format stores only "
        f"{', '.join(SPEC_TYPES)} (nested)."
    )


#: Module types the ``.pt`` format stores (``Sequential`` nests a list of specs).
SPEC_TYPES = ("Linear", "Conv1d", "Conv2d", "ReLU", "LeakyReLU", "MaxPool1d", "MaxPool2d",
              "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "Flatten",
              "Dropout", "Identity", "Sequential")
#: Deepest nesting of ``Sequential`` specs read from a file (a guard against recursion bombs).
MAX_SPEC_DEPTH = 16


def _ints(v, dim: int) -> list[int]:
    return [int(a) for a in (v if isinstance(v, tuple | list) else (v,) * dim)]


def _tree_spec(layer, nn, path: str) -> dict:
    """The plain-types spec of any module the format stores (recursive for ``Sequential``)."""
    t = type(layer).__name__
    where = f"module {path or '<root>'!r} ({t})"
    if type(layer) is nn.Sequential:
        return {"type": "Sequential",
                "layers": [_tree_spec(m, nn, f"{path}.{i}" if path else str(i))
                           for i, m in enumerate(layer)]}
    if type(layer) in (nn.Conv1d, nn.Conv2d):
        dim = 1 if t == "Conv1d" else 2
        if layer.groups != 1 or layer.padding_mode != "zeros" or \
                any(d != 1 for d in _ints(layer.dilation, dim)) or isinstance(layer.padding, str):
            raise NotHomogeneousError(
                f"cannot save {where}: the marginflow torch format stores convolutions with "
                f"groups=1, dilation=1, numeric zero padding only.")
        return {"type": t, "in_channels": int(layer.in_channels),
                "out_channels": int(layer.out_channels),
                "kernel_size": _ints(layer.kernel_size, dim), "stride": _ints(layer.stride, dim),
                "padding": _ints(layer.padding, dim), "bias": layer.bias is not None}
    if type(layer) in (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d):
        dim = 1 if t.endswith("1d") else 2
        stride = layer.stride if layer.stride is not None else layer.kernel_size
        if any(v != 0 for v in _ints(layer.padding, dim)) or layer.ceil_mode or \
                any(d != 1 for d in _ints(getattr(layer, "dilation", 1), dim)):
            raise NotHomogeneousError(
                f"cannot save {where}: the marginflow torch format stores pooling without "
                f"padding, dilation or ceil_mode only.")
        return {"type": t, "kernel_size": _ints(layer.kernel_size, dim),
                "stride": _ints(stride, dim)}
    if type(layer) in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d):
        dim = 1 if t.endswith("1d") else 2
        if any(v is None for v in _ints(layer.output_size, dim)):
            raise NotHomogeneousError(f"cannot save {where}: output_size with None entries.")
        return {"type": t, "output_size": _ints(layer.output_size, dim)}
    if type(layer) is nn.Flatten:
        return {"type": "Flatten", "start_dim": int(layer.start_dim),
                "end_dim": int(layer.end_dim)}
    if type(layer) is nn.Dropout:
        return {"type": "Dropout", "p": float(layer.p)}
    if type(layer) in (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Identity):
        return _spec(layer, nn)
    raise NotHomogeneousError(
        f"cannot save {where}: the marginflow torch format stores only nested nn.Sequential "
        f"trees of {', '.join(SPEC_TYPES[:-1])}. A custom module can be checked directly: "
        f"solvers.check_kkt(module, X, y)."
    )


def save_torch(path, module, *, constant_feature: bool = False) -> Path:
    """Save ``module`` (an ``nn.Sequential``, possibly nested, or a
    :class:`~solvers.nets.TorchNet` wrapping one, such as ``train_torch(...).net``) in the
    format read by :func:`load_torch`.

    A flat MLP (``Linear``/``ReLU``/``LeakyReLU``/``Identity``/``Flatten``) is first checked with
    :func:`from_torch`, as before; any other ``nn.Sequential`` tree of the module types in
    :data:`SPEC_TYPES` (convolutions, pooling, ``Dropout``, nested ``Sequential``, multi-class
    heads) is checked with :class:`~solvers.nets.TorchNet`, so only homogeneous networks are
    written.

    Raises
    ------
    TypeError
        ``module`` is not an ``nn.Sequential`` / ``nn.Linear`` (or a ``TorchNet`` of one).
    NotHomogeneousError
        The network is not homogeneous, or holds a module the format does not store (a custom
        ``nn.Module``: check it directly with ``solvers.check_kkt(module, X, y)``), naming it.
    """
    torch = _torch()
    nn = torch.nn
    if isinstance(module, TorchNet):  # e.g. train_torch(...).net: its float64 eval-mode copy
        module = module.module
    if isinstance(module, nn.Linear):
        module = nn.Sequential(module)
    if not isinstance(module, nn.Sequential):
        raise TypeError(
            f"module must be a torch.nn.Sequential (or a single nn.Linear); got "
            f"{type(module).__name__}. Wrap the layers in nn.Sequential(...), or check a custom "
            f"module directly with solvers.check_kkt(module, X, y)."
        )
    if _is_flat_mlp(list(module), nn):
        from_torch(module, constant_feature=constant_feature)
        layers = [_spec(m, nn) for m in module]
    else:
        if constant_feature:
            raise ValueError(
                "constant_feature=True applies to flat MLPs only; a network with convolutions, "
                "pooling or nesting accepts a bias on its first layer as it is (pass "
                "constant_feature=False).")
        layers = [_tree_spec(m, nn, str(i)) for i, m in enumerate(module)]
        TorchNet(module)  # proves homogeneity from the fx graph, or names the module
    payload = {"format": FORMAT, "layers": layers, "state_dict": module.state_dict()}
    p = Path(os.fspath(path))
    torch.save(payload, p)
    return p


def _is_flat_mlp(layers, nn) -> bool:
    """Whether ``from_torch``'s MLP path applies: top-level Linear/activation/Identity/Flatten."""
    return all(type(m) in (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Flatten)
               for m in layers)


def _spec_int(p, j, spec, key) -> int:
    v = spec.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(
            f"torch file {str(p)!r}: layer spec {j} has {key}={v!r}; it must be a positive "
            f"integer. The file is damaged or was not written by solvers.save_torch."
        )
    return v


def _spec_ints(p, j, spec, key, dim: int, *, minimum: int = 1) -> list[int]:
    """A list of ``dim`` integers >= ``minimum`` (an int is repeated), or ValueError."""
    v = spec.get(key)
    vals = v if isinstance(v, list | tuple) else [v] * dim
    if len(vals) != dim or any(isinstance(a, bool) or not isinstance(a, int) or a < minimum
                               for a in vals):
        raise ValueError(
            f"torch file {str(p)!r}: layer spec {j} has {key}={v!r:.60}; it must be "
            f"{dim} integer(s) >= {minimum}. The file is damaged or was not written by "
            f"solvers.save_torch."
        )
    return [int(a) for a in vals]


def _spec_bias(p, j, spec) -> bool:
    if not isinstance(spec.get("bias"), bool):
        raise ValueError(f"torch file {str(p)!r}: layer spec {j} has bias="
                         f"{spec.get('bias')!r:.40}; it must be true or false.")
    return spec["bias"]


def _walk_specs(p, specs, prefix: str, depth: int, expected: dict) -> int:
    """Validate a list of specs (plain types only), record the state-dict keys and shapes they
    declare in ``expected``, and return the declared weight bytes (as float64). Recursive for
    ``Sequential``; nothing is allocated."""
    if depth > MAX_SPEC_DEPTH:
        raise ValueError(f"torch file {str(p)!r}: Sequential specs nested deeper than "
                         f"{MAX_SPEC_DEPTH} levels; the file is not a marginflow model.")
    if not isinstance(specs, list | tuple):
        raise ValueError(f"torch file {str(p)!r}: layer spec {prefix or 'list'} must be a list; "
                         f"got {type(specs).__name__}.")
    declared = 0
    for i, spec in enumerate(specs):
        j = f"{prefix}{i}"
        t = spec.get("type") if isinstance(spec, dict) else None
        if t == "Linear":
            d_in = _spec_int(p, j, spec, "in_features")
            d_out = _spec_int(p, j, spec, "out_features")
            expected[f"{j}.weight"] = (d_out, d_in)
            declared += 8 * d_out * d_in
            if _spec_bias(p, j, spec):
                expected[f"{j}.bias"] = (d_out,)
                declared += 8 * d_out
        elif t in ("Conv1d", "Conv2d"):
            dim = 1 if t == "Conv1d" else 2
            c_in = _spec_int(p, j, spec, "in_channels")
            c_out = _spec_int(p, j, spec, "out_channels")
            k = _spec_ints(p, j, spec, "kernel_size", dim)
            _spec_ints(p, j, spec, "stride", dim)
            _spec_ints(p, j, spec, "padding", dim, minimum=0)
            expected[f"{j}.weight"] = (c_out, c_in, *k)
            declared += 8 * c_out * c_in * int(np.prod(k, dtype=object))
            if _spec_bias(p, j, spec):
                expected[f"{j}.bias"] = (c_out,)
                declared += 8 * c_out
        elif t in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
            dim = 1 if t.endswith("1d") else 2
            _spec_ints(p, j, spec, "kernel_size", dim)
            _spec_ints(p, j, spec, "stride", dim)
        elif t in ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d"):
            _spec_ints(p, j, spec, "output_size", 1 if t.endswith("1d") else 2)
        elif t == "LeakyReLU":
            a = spec.get("negative_slope")
            if isinstance(a, bool) or not isinstance(a, int | float):
                raise ValueError(f"torch file {str(p)!r}: layer spec {j} has negative_slope="
                                 f"{a!r:.40}; it must be a number.")
        elif t == "Flatten":
            for key, default in (("start_dim", 1), ("end_dim", -1)):
                v = spec.get(key, default)
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ValueError(f"torch file {str(p)!r}: layer spec {j} has {key}="
                                     f"{v!r:.40}; it must be an integer.")
        elif t == "Dropout":
            a = spec.get("p", 0.5)
            if isinstance(a, bool) or not isinstance(a, int | float) or not 0 <= a <= 1:
                raise ValueError(f"torch file {str(p)!r}: layer spec {j} has p={a!r:.40}; it "
                                 f"must be a number in [0, 1].")
        elif t == "Sequential":
            declared += _walk_specs(p, spec.get("layers"), f"{j}.", depth + 1, expected)
        elif t not in ("ReLU", "Identity"):
            raise ValueError(
                f"torch file {str(p)!r}: layer spec {j} ({spec!r:.80}) is not one of "
                f"{', '.join(SPEC_TYPES)}."
            )
    return declared


def _check_payload(p, payload, budget: int) -> None:
    """Check the layer specs against the state dict's keys, shapes and dtypes (nothing allocated).

    The spec alone is not trusted: ``Linear(30000, 30000)`` beside an empty state dict would
    otherwise allocate 7 GB before the mismatch is found.
    """
    torch = _torch()
    specs, state = payload["layers"], payload["state_dict"]
    if not isinstance(specs, list | tuple) or not isinstance(state, dict):
        raise ValueError(
            f"torch file {str(p)!r}: 'layers' must be a list and 'state_dict' a dict; got "
            f"{type(specs).__name__} and {type(state).__name__}."
        )
    expected: dict[str, tuple[int, ...]] = {}
    declared = _walk_specs(p, specs, "", 0, expected)
    if declared > budget:
        raise ValueError(
            f"torch file {str(p)!r}: the layer specs declare {declared / 2**20:.1f} MiB of weights "
            f"(as float64), above the limit of {budget / 2**20:.1f} MiB; nothing was allocated. "
            f"If the file is trusted, raise the limit with max_bytes= (CLI: --max-array-mb)."
        )
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(
            f"torch file {str(p)!r}: the state_dict does not match the layer list (missing "
            f"{missing[:5]}, unexpected {extra[:5]}); save the model with "
            f"solvers.save_torch(path, model)."
        )
    for key, shape in expected.items():
        v = state[key]
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"torch file {str(p)!r}: state_dict[{key!r}] is a "
                             f"{type(v).__name__}, not a tensor.")
        if tuple(v.shape) != shape:
            raise ValueError(
                f"torch file {str(p)!r}: state_dict[{key!r}] has shape {tuple(v.shape)} but the "
                f"layer list says {shape}; the file is inconsistent."
            )
        if not v.dtype.is_floating_point or v.dtype.is_complex:
            raise ValueError(
                f"torch file {str(p)!r}: state_dict[{key!r}] has dtype {v.dtype}; marginflow "
                f"reads real floating-point weights only (convert with model.double())."
            )


def load_torch(path, *, constant_feature: bool = False, max_bytes: int | None = None
               ) -> HomogeneousMLP | TorchNet:
    """Read a model saved by :func:`save_torch` with ``torch.load(path, weights_only=True)``.

    Before anything is allocated, the archive's declared member sizes are checked against
    ``max_bytes``, and after loading, the layer specs are checked against the state dict's keys,
    shapes and dtypes; only then are the modules built (on torch's ``meta`` device, the loaded
    tensors assigned), so a small file cannot make the loader allocate more than it holds.

    Parameters
    ----------
    path : str or path-like
    constant_feature : bool, keyword-only
        As in :func:`from_torch`.
    max_bytes : int, optional
        Cap on the weights, in float64 bytes (default
        :data:`solvers.nets.MAX_ARRAY_BYTES`, 256 MiB).

    Returns
    -------
    HomogeneousMLP or TorchNet
        A :class:`HomogeneousMLP` for a flat MLP (as before), a :class:`TorchNet` for any other
        stored network (convolutions, pooling, dropout, nesting); which one is decided by the
        file's layer specs, not by an argument.

    Raises
    ------
    ValueError
        ``constant_feature=True`` for a network that is not a flat MLP; the file is missing,
        is not a torch file (an ``.npz`` is named as such; the format is
        recognised by content), is not in the ``marginflow-torch-v1`` format (e.g. a pickled
        whole model, which is never unpickled), exceeds ``max_bytes``, or its layer specs do
        not match its state dict (keys, shapes, real floating dtypes).
    NotHomogeneousError
        As in :func:`from_torch` (flat MLPs) or :class:`TorchNet` (naming the module path).
    """
    import zipfile

    from ._weights_io import _check_max_bytes, detect_file_format

    budget = _check_max_bytes(max_bytes)
    p = Path(os.fspath(path))
    if not p.is_file():
        raise ValueError(f"torch file {str(p)!r} does not exist (or is not a file).")
    fmt = detect_file_format(p)
    if fmt != "torch":
        what = "an .npz archive" if fmt == "npz" else "a single .npy array"
        raise ValueError(
            f"torch file {str(p)!r} is not a torch.save file but {what}; read .npz weights "
            f"with solvers.load_weights (marginflow kkt recognises the format "
            f"by content)."
        )
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as zf:
            size = sum(i.file_size for i in zf.infolist())
        if size > budget:
            raise ValueError(
                f"torch file {str(p)!r} declares {size / 2**20:.1f} MiB uncompressed, above the "
                f"limit of {budget / 2**20:.1f} MiB; nothing was read. If the file is trusted, "
                f"raise the limit with max_bytes= (CLI: --max-array-mb)."
            )
    torch = _torch()
    nn = torch.nn
    try:
        payload = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError variants
        raise ValueError(
            f"torch file {str(p)!r} cannot be read with weights_only=True ({type(exc).__name__}). "
            f"marginflow never unpickles arbitrary objects: save the model with "
            f"solvers.save_torch(path, model)."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        keys = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(
            f"torch file {str(p)!r} is not in the {FORMAT!r} format (found {keys}); a bare "
            f"state_dict does not say which activation the model uses. Save it with "
            f"solvers.save_torch(path, model)."
        )
    missing = [k for k in ("layers", "state_dict") if k not in payload]
    if missing:
        raise ValueError(f"torch file {str(p)!r} is missing {missing}.")
    _check_payload(p, payload, budget)
    specs = payload["layers"]
    flat = all(spec["type"] in ("Linear", "ReLU", "LeakyReLU", "Identity") or
               (spec["type"] == "Flatten" and spec.get("start_dim", 1) == 1
                and spec.get("end_dim", -1) == -1) for spec in specs)
    if constant_feature and not flat:
        raise ValueError(
            f"torch file {str(p)!r} holds a network with convolutions, pooling, dropout or "
            f"nesting; constant_feature applies to flat MLPs only (such a network's first-layer "
            f"bias is accepted as it is): drop constant_feature / --constant-feature.")
    mods = [_build(spec, nn) for spec in specs]
    seq = nn.Sequential(*mods)
    try:
        seq.load_state_dict(payload["state_dict"], strict=True, assign=True)
    except RuntimeError as exc:  # pragma: no cover - _check_payload found every mismatch first
        raise ValueError(
            f"torch file {str(p)!r}: the state_dict does not match the layer list ({exc})."
        ) from exc
    if flat:
        return from_torch(seq, constant_feature=constant_feature)
    return TorchNet(seq.eval())  # a file stores no train/eval mode: no spurious note


def _build(spec, nn):
    """A module from a spec already checked by :func:`_walk_specs` (weights on ``meta``)."""
    t = spec["type"]
    if t == "Linear":
        return nn.Linear(spec["in_features"], spec["out_features"], bias=spec["bias"],
                         device="meta")
    if t in ("Conv1d", "Conv2d"):
        cls = nn.Conv1d if t == "Conv1d" else nn.Conv2d
        return cls(spec["in_channels"], spec["out_channels"], tuple(spec["kernel_size"]),
                   stride=tuple(spec["stride"]), padding=tuple(spec["padding"]),
                   bias=spec["bias"], device="meta")
    if t in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
        return getattr(nn, t)(tuple(spec["kernel_size"]), stride=tuple(spec["stride"]))
    if t in ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d"):
        size = spec["output_size"]
        return getattr(nn, t)(size[0] if t.endswith("1d") else tuple(size))
    if t == "LeakyReLU":
        return nn.LeakyReLU(float(spec["negative_slope"]))
    if t == "Flatten":
        return nn.Flatten(spec.get("start_dim", 1), spec.get("end_dim", -1))
    if t == "Dropout":
        return nn.Dropout(float(spec.get("p", 0.5)))
    if t == "Sequential":
        return nn.Sequential(*[_build(s, nn) for s in spec["layers"]])
    return nn.ReLU() if t == "ReLU" else nn.Identity()
