"""Optional PyTorch adapter: ``nn.Sequential`` of bias-free layers → :class:`HomogeneousMLP`.

Install with ``pip install marginflow[torch]``. Torch is imported lazily, only by these functions.

Accepted modules (in order, as in ``nn.Sequential``):

- ``nn.Linear`` without bias (``bias=False``, or a bias that is exactly zero, which is dropped);
- ``nn.ReLU``, ``nn.LeakyReLU(negative_slope=α)`` with ``0 <= α < 1``: exactly one activation
  between consecutive ``Linear`` layers, all of the same kind, none after the last ``Linear``;
  no activation at all gives a deep linear network (``activation='linear'``);
- ``nn.Identity`` anywhere, ``nn.Flatten`` before the first ``Linear``;
- the last ``Linear`` must have ``out_features = 1``.

Constant feature (``constant_feature=True``): a bias ``b`` on the **first** ``Linear`` only is
accepted and folded into the weights, ``W_1' = [W_1 | b]`` of shape ``(d_1, d_0 + 1)``; the
network then acts on inputs augmented with a constant-1 last column (use
:func:`augment_constant_feature`), ``f(θ; [x, 1]) = model(x)``. This keeps homogeneity in ``θ``
(docs/theory.md §0): the constant feature is part of the data, not a parameter. With
``constant_feature=True`` and no bias the constant column gets weight 0, so the input layout is
the same either way.

Anything else (other biases, ``Tanh``, ``Sigmoid``, ``GELU``, normalisation, dropout, pooling,
convolutions, residual blocks) raises :class:`~solvers.errors.NotHomogeneousError` naming the
layer index, its type and why.

File format of :func:`load_torch` / :func:`save_torch`: a dict saved with ``torch.save``,

``{"format": "marginflow-torch-v1", "layers": [spec, ...], "state_dict": module.state_dict()}``

where each ``spec`` is a dict of plain types: ``{"type": "Linear", "in_features": int,
"out_features": int, "bias": bool}``, ``{"type": "ReLU"}``, ``{"type": "LeakyReLU",
"negative_slope": float}``, ``{"type": "Identity"}`` or ``{"type": "Flatten"}``. It is read with
``torch.load(path, weights_only=True)`` only (no arbitrary unpickling), then rebuilt as an
``nn.Sequential`` and converted with :func:`from_torch`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._validation import check_X
from ..errors import NotHomogeneousError
from ._network import HomogeneousMLP

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
    if weights[-1].shape[0] != 1:
        raise NotHomogeneousError(
            f"the last Linear layer has out_features={weights[-1].shape[0]}; marginflow's networks "
            f"have one output (binary classification with labels ±1)."
        )
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
        f"Linear, ReLU, LeakyReLU, Identity and Flatten."
    )


def save_torch(path, module, *, constant_feature: bool = False) -> Path:
    """Save ``module`` (an ``nn.Sequential``) in the format read by :func:`load_torch`.

    The module is first checked with :func:`from_torch`, so only convertible models are written.
    """
    torch = _torch()
    nn = torch.nn
    from_torch(module, constant_feature=constant_feature)
    layers = [module] if isinstance(module, nn.Linear) else list(module)
    seq = module if isinstance(module, nn.Sequential) else nn.Sequential(module)
    payload = {"format": FORMAT, "layers": [_spec(m, nn) for m in layers],
               "state_dict": seq.state_dict()}
    p = Path(os.fspath(path))
    torch.save(payload, p)
    return p


def _spec_int(p, j, spec, key) -> int:
    v = spec.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(
            f"torch file {str(p)!r}: layer spec {j} has {key}={v!r}; it must be a positive "
            f"integer. The file is damaged or was not written by solvers.save_torch."
        )
    return v


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
    declared = 0
    for j, spec in enumerate(specs):
        t = spec.get("type") if isinstance(spec, dict) else None
        if t == "Linear":
            d_in = _spec_int(p, j, spec, "in_features")
            d_out = _spec_int(p, j, spec, "out_features")
            if not isinstance(spec.get("bias"), bool):
                raise ValueError(f"torch file {str(p)!r}: layer spec {j} has bias="
                                 f"{spec.get('bias')!r}; it must be true or false.")
            expected[f"{j}.weight"] = (d_out, d_in)
            declared += 8 * d_out * d_in
            if spec["bias"]:
                expected[f"{j}.bias"] = (d_out,)
        elif t == "LeakyReLU":
            a = spec.get("negative_slope")
            if isinstance(a, bool) or not isinstance(a, int | float):
                raise ValueError(f"torch file {str(p)!r}: layer spec {j} has negative_slope="
                                 f"{a!r}; it must be a number.")
        elif t not in ("ReLU", "Identity", "Flatten"):
            raise ValueError(
                f"torch file {str(p)!r}: layer spec {j} ({spec!r:.80}) is not one of Linear, ReLU, "
                f"LeakyReLU, Identity, Flatten."
            )
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
               ) -> HomogeneousMLP:
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

    Raises
    ------
    ValueError
        The file is missing, is not a torch file (an ``.npz`` is named as such; the format is
        recognised by content), is not in the ``marginflow-torch-v1`` format (e.g. a pickled
        whole model, which is never unpickled), exceeds ``max_bytes``, or its layer specs do
        not match its state dict (keys, shapes, real floating dtypes).
    NotHomogeneousError
        As in :func:`from_torch`.
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
    mods = []
    for spec in payload["layers"]:
        t = spec["type"]
        if t == "Linear":
            mods.append(nn.Linear(spec["in_features"], spec["out_features"], bias=spec["bias"],
                                  device="meta"))
        elif t == "ReLU":
            mods.append(nn.ReLU())
        elif t == "LeakyReLU":
            mods.append(nn.LeakyReLU(float(spec["negative_slope"])))
        elif t == "Identity":
            mods.append(nn.Identity())
        else:
            mods.append(nn.Flatten())
    seq = nn.Sequential(*mods)
    try:
        seq.load_state_dict(payload["state_dict"], strict=True, assign=True)
    except RuntimeError as exc:  # pragma: no cover - _check_payload found every mismatch first
        raise ValueError(
            f"torch file {str(p)!r}: the state_dict does not match the layer list ({exc})."
        ) from exc
    return from_torch(seq, constant_feature=constant_feature)
