r"""Homogeneous PyTorch networks beyond MLPs: convolutions, pooling, nested and custom modules.

:class:`TorchNet` wraps a user's ``nn.Module`` (a copy of it, in float64 on the CPU, in eval mode)
after proving from its ``torch.fx`` graph that the network is positively homogeneous in its
parameters, ``f(cθ; x) = c^L f(θ; x)`` for ``c > 0``, and computing the degree ``L`` from the graph
(docs/theory.md §0.6, §7). It provides what the margin theory and the KKT check need:

- outputs ``f(θ; x)`` of shape ``(n, K)`` and margins: binary (``K = 1``, labels ±1:
  ``q_n = y_n f(x_n)``) or multi-class (``K ≥ 2``, labels ``0 … K−1``:
  ``q_n = f_{y_n}(x_n) − max_{j ≠ y_n} f_j(x_n)``, Lyu & Li 2019, §3);
- the Gram matrix ``G_{ab} = ⟨∇_θ q_a, ∇_θ q_b⟩`` of (example, competing class) pairs, computed
  from the layer structure without ever forming the ``(m, P)`` Jacobian of the big layers: a dense
  layer's per-example gradient is the outer product ``δ_n a_nᵀ`` of its output-gradient and its
  input, so its Gram block is ``(Δ Δᵀ) ∘ (A Aᵀ)``; a convolution's per-example gradient is
  ``δ_n · unfold(a_n)ᵀ`` (its weights are few); any other parameter falls back to per-example
  gradients by ``torch.func`` (``vmap(grad)``), in chunks;
- near-kink counts: ReLU/LeakyReLU inputs near zero and max-pool windows whose two largest entries
  are nearly tied (the Clarke subdifferential is not a single gradient there).

Accepted (anything ``torch.fx.symbolic_trace`` can trace into these): ``Linear``, ``Conv1d``,
``Conv2d`` (a bias only where the layer's input does not depend on θ, i.e. on the data: the
first layer's bias keeps ``f`` homogeneous in θ jointly), ``ReLU``, ``LeakyReLU``, ``MaxPool1d/2d``,
``AvgPool1d/2d``, ``AdaptiveAvgPool1d/2d``, ``Flatten``, ``Unflatten``, ``Dropout`` (a no-op in eval
mode), ``Identity``, nested ``Sequential`` and custom modules; reshapes; additions and
concatenations of equal degree; products (degrees add); scaling by a constant. The functional
forms ``torch.relu``, ``F.relu``, ``Tensor.relu()``, ``F.leaky_relu`` and ``F.max_pool1d/2d`` are
made module calls (:func:`_modularise`, same arguments, parameter names unchanged) so that their
kinks are found like the modules'; ``F.dropout`` only when it is a no-op (``training=False``, or
``training=self.training`` in eval mode, or ``p = 0``). Everything else (normalisation layers,
``Softmax``, ``Tanh``, a bias after the first layer, a residual addition of unequal degrees,
constants added to θ-dependent tensors, a random ``F.dropout``) raises
:class:`~solvers.errors.NotHomogeneousError` naming the module path (for an operation, the
module whose ``forward`` holds it) and the reason.

Torch is imported lazily (``pip install 'marginflow[torch]'``).
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass

import numpy as np

from ..errors import NotHomogeneousError

__all__ = ["TorchNet", "LayerInfo"]


def _torch():
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("TorchNet needs torch; install it with pip install 'marginflow[torch]'."
                          ) from exc
    return torch


@dataclass(frozen=True)
class LayerInfo:
    """One parametrised layer of the traced graph: its module path, type, the degree (in θ) of
    its input and output, and how its per-example gradients are computed (``"outer"``,
    ``"unfold"`` or ``"autograd"``)."""

    path: str
    kind: str
    degree_in: int
    degree_out: int
    gradient: str


# --- homogeneity from the fx graph -----------------------------------------------------------

_SAME_DEGREE_MODULES = ("ReLU", "LeakyReLU", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
                        "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "Flatten", "Unflatten",
                        "Dropout", "Dropout1d", "Dropout2d", "Identity")
_WEIGHT_MODULES = ("Linear", "Conv1d", "Conv2d")
_SAME_DEGREE_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "contiguous",
                        "squeeze", "unsqueeze", "relu", "clone", "t", "unflatten"}
_NON_TENSOR_METHODS = {"size", "dim"}


def _same_degree_functions(torch):
    F = torch.nn.functional
    return {torch.flatten, torch.reshape, torch.relu, torch.squeeze, torch.unsqueeze,
            torch.transpose, torch.permute, F.relu, F.leaky_relu, F.max_pool1d, F.max_pool2d,
            F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
            F.dropout, torch.clone}


def _trace(module, torch):
    """``torch.fx.symbolic_trace(module)``, or NotHomogeneousError saying why it failed."""
    try:
        return torch.fx.symbolic_trace(module)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means we cannot prove anything
        raise NotHomogeneousError(
            f"module {type(module).__name__} could not be traced by torch.fx "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"homogeneity cannot be established. Write its forward without data-dependent "
            f"control flow.") from None


def _scope(node) -> str:
    """The module path whose ``forward`` holds the fx node (``''`` at the top level), from the
    ``nn_module_stack`` that ``symbolic_trace`` records."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    key, last = list(stack.items())[-1]
    return str(last[0] if isinstance(last, tuple) else key)


def _bound(node, signature) -> dict:
    """The fx node's arguments by name, defaults filled in, against ``signature`` (a stub with
    the documented signature of the torch function)."""
    import inspect

    b = inspect.signature(signature).bind(*node.args, **node.kwargs)
    b.apply_defaults()
    return dict(b.arguments)


def _sig_relu(input, inplace=False): ...                                  # noqa: A002, E704


def _sig_leaky_relu(input, negative_slope=0.01, inplace=False): ...       # noqa: A002, E704


def _sig_max_pool(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
                  ceil_mode=False, return_indices=False): ...             # noqa: E704


def _sig_dropout(input, p=0.5, training=True, inplace=False): ...         # noqa: A002, E704


def _kink_functions(torch) -> dict:
    """Functional kink sites → (how the user wrote it, module class, argument stub)."""
    F = torch.nn.functional
    nn = torch.nn
    return {torch.relu: ("torch.relu", nn.ReLU, _sig_relu),
            F.relu: ("F.relu", nn.ReLU, _sig_relu),
            F.leaky_relu: ("F.leaky_relu", nn.LeakyReLU, _sig_leaky_relu),
            F.max_pool1d: ("F.max_pool1d", nn.MaxPool1d, _sig_max_pool),
            F.max_pool2d: ("F.max_pool2d", nn.MaxPool2d, _sig_max_pool)}


def _modularise(module, torch):
    """Trace ``module`` and turn its functional kink sites into module calls.

    ``torch.relu``, ``F.relu``, ``Tensor.relu()``, ``F.leaky_relu`` and ``F.max_pool1d/2d`` are
    traced by fx as ``call_function``/``call_method`` nodes; every consumer of kinks (the
    near-kink counts, the Clarke slopes of :mod:`solvers.nets.kkt._torch_kinks`) finds ReLU and
    max-pool *modules*. Each such node is replaced by a call of an inserted ``nn.ReLU``,
    ``nn.LeakyReLU(negative_slope, inplace)`` or ``nn.MaxPool1d/2d(...)`` with the call's exact
    arguments, registered at the top level under the node's name (prefixed by the enclosing
    module path, dots as ``_``). The user's submodules, parameters and buffers are kept under
    the same names and in the same order (asserted).

    Returns ``(module, gm, reference, made)``: the module to use (``module`` itself when there
    was nothing to rewrite, else a ``GraphModule``), the traced (rewritten) graph module, the
    graph before the rewrite (``None`` without one; :meth:`TorchNet._check_shape` runs it and
    requires outputs identical to the rewritten module's) and ``(function, module path)`` of
    each rewrite.
    """
    gm = _trace(module, torch)
    graph = gm.graph
    kinds = _kink_functions(torch)

    def is_site(n):
        site = (n.op == "call_function" and n.target in kinds) or \
            (n.op == "call_method" and n.target == "relu")
        return site and bool(n.args) and isinstance(n.args[0], torch.fx.Node)
    todo = [n for n in graph.nodes if is_site(n)]
    if not todo:
        return module, gm, None, ()
    reference = copy.deepcopy(graph)
    # the user's module tree as it is (GraphModule keeps only the used modules, in graph order)
    for attr in ("_modules", "_parameters", "_buffers"):
        getattr(gm, attr).clear()
        getattr(gm, attr).update(getattr(module, attr))
    gm._non_persistent_buffers_set = set(module._non_persistent_buffers_set)
    made = []
    for node in todo:
        if node.op == "call_method":
            label, cls, sig = ".relu()", torch.nn.ReLU, _sig_relu
        else:
            label, cls, sig = kinds[node.target]
        scope = _scope(node)
        where = f"operation {node.name!r} ({label})" + (f" in module {scope!r}" if scope else "")
        try:
            args = _bound(node, sig)
        except TypeError as exc:
            raise NotHomogeneousError(f"{where}: its arguments do not match {label} ({exc}).") \
                from None
        inp = args.pop("input")
        computed = [k for k, v in args.items() if _has_node(v, torch)]
        if computed:
            raise NotHomogeneousError(
                f"{where}: argument(s) {', '.join(computed)} are computed in forward, so its "
                f"kinks cannot be located; give them as constants or use nn.{cls.__name__}.")
        if cls is torch.nn.ReLU:
            sub = cls(inplace=bool(args.get("inplace", False)))
        elif cls is torch.nn.LeakyReLU:
            sub = cls(negative_slope=args["negative_slope"], inplace=bool(args["inplace"]))
        else:
            sub = cls(args["kernel_size"], stride=args["stride"], padding=args["padding"],
                      dilation=args["dilation"], return_indices=bool(args["return_indices"]),
                      ceil_mode=bool(args["ceil_mode"]))
        base = (scope.replace(".", "_") + "_" if scope else "") + node.name
        name, k = base, 1
        while hasattr(gm, name):
            name, k = f"{base}_{k}", k + 1
        sub._marginflow_functional = label   # how the user wrote it, for error messages
        gm.add_module(name, sub.to(torch.float64))
        with graph.inserting_before(node):
            new = graph.call_module(name, (inp,))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        made.append((label, name))
    graph.lint()
    gm.recompile()
    gm.train(module.training)
    if [n for n, _ in gm.named_parameters()] != [n for n, _ in module.named_parameters()] or \
            list(gm.state_dict()) != list(module.state_dict()):  # pragma: no cover - a bug
        raise RuntimeError("rewriting functional calls changed the parameter names; please "
                           "report this with the module.")
    return gm, gm, reference, tuple(made)


def _out_of_place(module, gm) -> list:
    """Make in-place ``ReLU``/``LeakyReLU`` modules (``inplace=True``, also from
    ``F.relu(..., inplace=True)``) compute out of place, and return their paths.

    In place, the activation overwrites the output of the layer before it, so that layer's
    retained output-gradient (the Gram factors of :meth:`TorchNet.pair_gram`) and any hook
    reading the activation's input see the activation's output instead. When the activation is
    the only user of its input, out of place computes the same function; when the input is used
    again, the in-place write changes that use too, and the network is refused."""
    mods = dict(module.named_modules())
    users: dict = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or type(mods.get(node.target)).__name__ not in (
                "ReLU", "LeakyReLU") or not mods[node.target].inplace:
            continue
        inp = node.args[0] if node.args else None
        others = [u.name for u in getattr(inp, "users", {}) if u is not node]
        if others:
            raise NotHomogeneousError(
                f"module {str(node.target)!r}: an in-place {type(mods[node.target]).__name__} "
                f"whose input is also used by {', '.join(map(repr, others))} changes that use "
                f"too, and its layer's gradients cannot be captured; compute it out of place "
                f"(inplace=False).")
        users[str(node.target)] = mods[node.target]
    for sub in users.values():
        sub.inplace = False
    return list(users)


def _has_node(v, torch) -> bool:
    """Whether an fx argument (possibly a nested tuple/list/dict) holds an fx Node."""
    found = []
    torch.fx.node.map_arg(v, lambda a: found.append(a) or a)
    return bool(found)


def _analyse(module, torch, gm=None):
    """(degree, layers, relu-like module paths, max-pool module paths, call counts) from fx
    (``gm``: ``module`` already traced)."""
    if gm is None:
        gm = _trace(module, torch)
    mods = dict(module.named_modules())
    same_fns = _same_degree_functions(torch)
    deg: dict = {}
    layers: list[LayerInfo] = []
    relus: list[str] = []
    pools: list[str] = []
    calls: dict[str, int] = {}

    def d(a):
        return deg.get(a.name) if isinstance(a, torch.fx.Node) else None

    def refuse(path, why, node=None, tail="the network is not positively homogeneous in its "
               "parameters"):
        what = "operation" if " (" in path else "module"
        scope = _scope(node) if node is not None and node.op != "call_module" else ""
        made_from = getattr(mods.get(path), "_marginflow_functional", None)
        if made_from:   # a module inserted for a functional call (_modularise): name the call
            what, scope = f"operation ({made_from})", _scope(node) if node is not None else ""
        where = f"module {scope!r}, {what} {path!r}" if scope else f"{what} {path!r}"
        raise NotHomogeneousError(f"{where}: {why}; {tail}.")

    for node in gm.graph.nodes:
        args = [a for a in node.args if isinstance(a, torch.fx.Node)]
        ins = [d(a) for a in args]
        tensor_ins = [x for x in ins if x is not None]
        if node.op == "placeholder":
            deg[node.name] = 0
        elif node.op == "get_attr":
            refuse(str(node.target), "a parameter or buffer is used directly in forward "
                   "(use it through nn.Linear/nn.Conv modules)")
        elif node.op == "call_module":
            path = str(node.target)
            sub = mods[path]
            kind = type(sub).__name__
            calls[path] = calls.get(path, 0) + 1
            if not tensor_ins:
                refuse(path, "no tensor input")
            x = tensor_ins[0]
            if kind in _WEIGHT_MODULES:
                if kind.startswith("Conv") and (sub.groups != 1 or sub.padding_mode != "zeros"):
                    grad = "autograd"
                else:
                    grad = "outer" if kind == "Linear" else "unfold"
                if sub.bias is not None and x != 0:
                    refuse(path, f"{kind} has a bias but its input has degree {x} in θ (a bias "
                           f"keeps homogeneity only on a layer whose input is the data)")
                deg[node.name] = x + 1
                layers.append(LayerInfo(path, kind, x, x + 1, grad))
            elif kind in _SAME_DEGREE_MODULES:
                if kind == "LeakyReLU" and not np.isfinite(sub.negative_slope):
                    refuse(path, "LeakyReLU with a non-finite slope", node)
                if kind in ("MaxPool1d", "MaxPool2d") and (
                        np.any(np.asarray(sub.padding) != 0)
                        or np.any(np.asarray(sub.dilation) != 1) or sub.ceil_mode):
                    refuse(path, "max-pooling with padding, dilation or ceil_mode is not "
                           "supported (its ties cannot be located)", node,
                           "use a max-pool without them")
                if kind in ("ReLU", "LeakyReLU"):
                    relus.append(path)
                if kind in ("MaxPool1d", "MaxPool2d"):
                    pools.append(path)
                deg[node.name] = x
            else:
                refuse(path, f"{kind} is not positively homogeneous (supported: "
                       f"{', '.join(_WEIGHT_MODULES + _SAME_DEGREE_MODULES)})")
        elif node.op == "call_function":
            fn = node.target
            name = getattr(fn, "__name__", str(fn))
            if fn in same_fns:
                if not tensor_ins:
                    refuse(name, "no tensor input", node)
                if fn is torch.nn.functional.dropout:
                    _check_dropout(node)
                deg[node.name] = tensor_ins[0]
            elif fn in (operator.add, operator.sub, torch.add, torch.sub, operator.iadd):
                if len(tensor_ins) != 2 or len(set(tensor_ins)) != 1:
                    refuse(f"{node.name} ({name})", f"adds terms of degrees {ins} (a residual "
                           f"or constant addition of unequal degree)", node)
                deg[node.name] = tensor_ins[0]
            elif fn in (operator.mul, torch.mul):
                if len(tensor_ins) == 2:
                    deg[node.name] = tensor_ins[0] + tensor_ins[1]
                elif len(tensor_ins) == 1:
                    deg[node.name] = tensor_ins[0]  # scaling by a constant
                else:
                    deg[node.name] = None
            elif fn in (operator.truediv,) and len(tensor_ins) == 1 and len(ins) == 1 and \
                    isinstance(node.args[0], torch.fx.Node):
                deg[node.name] = tensor_ins[0]  # division by a constant
            elif fn in (torch.cat, torch.stack):
                parts = [d(a) for a in node.args[0]]
                if len(set(parts)) != 1 or parts[0] is None:
                    refuse(f"{node.name} ({name})", f"concatenates degrees {parts}", node)
                deg[node.name] = parts[0]
            elif fn is operator.getitem:
                deg[node.name] = tensor_ins[0] if tensor_ins else None
            else:
                refuse(f"{node.name} ({name})", f"function {name} is not known to be "
                       f"positively homogeneous", node)
        elif node.op == "call_method":
            if node.target in _NON_TENSOR_METHODS:
                deg[node.name] = None
            elif node.target in _SAME_DEGREE_METHODS:
                deg[node.name] = tensor_ins[0]
            else:
                refuse(f"{node.name} (.{node.target})", f"method .{node.target}() is not known "
                       f"to be positively homogeneous", node)
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, torch.fx.Node):
                refuse("output", "the network must return one tensor")
            L = d(out)
            if not L:
                refuse("output", "the output does not depend on the parameters")
            return L, tuple(layers), tuple(relus), tuple(pools), calls
    raise NotHomogeneousError("the traced graph has no output")  # pragma: no cover


def _check_dropout(node) -> None:
    """Refuse ``F.dropout`` unless it is a no-op in the traced graph: ``training=False`` (also
    what ``training=self.training`` traces to, the module being in eval mode) or ``p = 0``.
    ``F.dropout``'s default ``training=True`` keeps it random in eval mode."""
    try:
        args = _bound(node, _sig_dropout)
    except TypeError:
        args = {}
    p, training = args.get("p"), args.get("training")
    if training is False or (isinstance(p, (int, float)) and not isinstance(p, bool)
                             and p == 0):
        return
    scope = _scope(node)
    where = f"module {scope!r}, operation" if scope else "operation"
    raise NotHomogeneousError(
        f"{where} {node.name!r} (F.dropout): p={p!r}, training={training!r} drops units at "
        f"random even in eval mode (training defaults to True), so the outputs are random and "
        f"cannot be checked. Use nn.Dropout(p) (a no-op in eval mode) or F.dropout(x, p, "
        f"training=self.training).")


def _conv_jacobian(a4, d4, geom):
    """Per-example weight gradients ``(b, Cout·Cin·k)`` of a convolution from its input ``a4``
    and output-gradient ``d4`` (4-D), through ``unfold``."""
    import torch

    ks, st, pd, dl = geom
    patches = torch.nn.functional.unfold(a4, ks, dilation=dl, padding=pd, stride=st)
    dflat = d4.reshape(d4.shape[0], d4.shape[1], -1)                  # (b, Cout, positions)
    return torch.einsum("bop,bkp->bok", dflat, patches).reshape(a4.shape[0], -1)


# --- the network ---------------------------------------------------------------------------------

class TorchNet:
    """A positively homogeneous PyTorch network, proved so from its ``torch.fx`` graph.

    Parameters
    ----------
    module : torch.nn.Module
        The user's network. It is copied (never modified), converted to float64 on the CPU and put
        in eval mode; :attr:`notes` says what was converted.

    Attributes
    ----------
    degree : int
        The degree ``L`` of homogeneity, computed from the graph.
    layers : tuple of LayerInfo
        The parametrised layers in graph order.
    notes : tuple of str
        Conversions made (dtype, device, train → eval, functional ReLU/max-pool calls made
        modules).

    Raises
    ------
    NotHomogeneousError
        Naming the module path and the reason, for any part of the graph that is not positively
        homogeneous (or a graph ``torch.fx`` cannot trace).

    Notes
    -----
    Every method taking ``X`` first runs the network on one example of a shape it has not seen
    (cached per shape): a shape the network cannot take raises ``ValueError`` naming ``X``'s
    shape, what the first layer expects (or the later module that failed) and the fix.
    """

    def __init__(self, module):
        torch = _torch()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}.")
        notes = []
        params = list(module.parameters())
        if not params:
            raise ValueError("module has no parameters.")
        dtypes = {p.dtype for p in params}
        devices = {p.device.type for p in params}
        if dtypes != {torch.float64}:
            notes.append(f"parameters converted from {', '.join(sorted(map(str, dtypes)))} to "
                         f"torch.float64")
        if devices != {"cpu"}:
            notes.append(f"parameters moved from {', '.join(sorted(devices))} to the CPU")
        if module.training:
            notes.append("module put in eval mode (dropout is a no-op)")
        net = copy.deepcopy(module).to(device="cpu", dtype=torch.float64).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        net, gm, self._reference, made = _modularise(net, torch)
        if made:
            notes.append("functional kink sites made modules (kinks counted there): " + ", ".join(
                f"{label} as {name!r}" for label, name in made))
        moved = _out_of_place(net, gm)
        if moved:
            notes.append(f"in-place activations computed out of place (the same function): "
                         f"{', '.join(map(repr, moved))}")
        self._torch = torch
        self.module = net
        self.notes = tuple(notes)
        (self.degree, self.layers, self._relus, self._pools,
         self._calls) = _analyse(net, torch, gm)
        self._good_shapes: set = set()   # per-example input shapes the net took (shared by copies)
        self._names = [n for n, _ in net.named_parameters()]
        self._shapes = [tuple(p.shape) for _, p in net.named_parameters()]

    # --- parameters -------------------------------------------------------------------------

    @property
    def n_params(self) -> int:
        """``P``, the number of parameters."""
        return int(sum(int(np.prod(s)) for s in self._shapes))

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(self._names)

    def flat(self) -> np.ndarray:
        """θ as one vector of shape ``(P,)`` in ``named_parameters()`` order."""
        return np.concatenate([p.detach().numpy().ravel() for p in self.module.parameters()])

    def parameter_norm(self) -> float:
        """``||θ||_2``, computed stably."""
        return float(np.linalg.norm(self.flat()))

    def scaled(self, c: float) -> TorchNet:
        """The same network with parameters ``c θ`` (``c > 0``)."""
        if not (np.isfinite(c) and c > 0):
            raise ValueError(f"c must be finite and positive; got {c!r}.")
        new = copy.copy(self)
        new.module = copy.deepcopy(self.module)
        with self._torch.no_grad():
            for p in new.module.parameters():
                p.mul_(c)
        return new

    # --- evaluation ------------------------------------------------------------------------

    def _tensor(self, X, name="X"):
        X = np.asarray(X)
        if X.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a real numeric array; got dtype {X.dtype}.")
        if X.ndim < 2 or X.shape[0] == 0:
            raise ValueError(f"{name} must have shape (n, ...) with n ≥ 1; got {X.shape}.")
        X = X.astype(np.float64, copy=False)
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or inf.")
        T = self._torch.from_numpy(np.ascontiguousarray(X))
        self._check_shape(T, name)
        return T

    def _check_shape(self, T, name):
        """One forward pass on the first example when its shape is new: a shape the network
        cannot take is a ValueError naming it, the first layer's expectation and the fix, before
        any work. A network whose functional kink sites were made modules (:func:`_modularise`)
        must give outputs identical to the traced original on that example and on four random
        ones of its shape, or this raises RuntimeError (a bug, not a user error)."""
        torch = self._torch
        shape = tuple(T.shape[1:])
        good = self.__dict__.setdefault("_good_shapes", set())
        if shape in good:
            return
        x1 = T[:1].clone()                     # an in-place first op must not touch X
        mods = dict(self.module.named_modules())
        entered, done = [], set()              # which modules ran, to name the one that failed
        handles = [h for p in self._calls for h in (
            mods[p].register_forward_pre_hook(lambda m, i, p=p: entered.append(p)),
            mods[p].register_forward_hook(lambda m, i, o, p=p: done.add(p)))]
        try:
            with torch.no_grad():
                out = self.module(x1.clone())
        except (RuntimeError, ValueError, IndexError) as exc:
            failed = next((p for p in reversed(entered) if p not in done), None)
            raise ValueError(self._shape_message(tuple(T.shape), name, exc, failed, done)
                             ) from None
        finally:
            for h in handles:
                h.remove()
        reference = getattr(self, "_reference", None)
        if reference is not None:
            gen = torch.Generator().manual_seed(0)
            for x in (x1, torch.randn((4, *shape), generator=gen, dtype=torch.float64)):
                with torch.no_grad():
                    a = out if x is x1 else self.module(x.clone())
                    b = torch.fx.Interpreter(self.module, graph=reference).run(x.clone())
                if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                        and torch.equal(a, b)):
                    raise RuntimeError("the module with its functional ReLU/max-pool calls made "
                                       "modules does not reproduce the traced original exactly; "
                                       "please report this with the module.")
        good.add(shape)

    def _shape_message(self, shape, name, exc, failed, done) -> str:
        """What :meth:`_check_shape` says: the shape, what the first layer expects (or which
        later module failed), the fix."""
        mods = dict(self.module.named_modules())
        first = next((info for info in self.layers if info.degree_in == 0), None)
        n, ex, d = shape[0], shape[1:], int(np.prod(shape[1:]))
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        head = (f"{name} has shape {shape} (examples of shape {ex}), which the network cannot "
                f"take (torch: {said})")
        if first is None:
            return head + f". Pass {name} with the per-example shape the module's forward expects."
        if first.path in done:   # the first layer took it; a later shape does not fit
            fm = mods[failed] if failed else None
            at = (f"module {failed!r} ({type(fm).__name__}"
                  + (f", in_features {fm.in_features})" if hasattr(fm, "in_features") else ")")
                  if failed else "an operation after it")
            return (f"{head}: its first layer {first.path!r} ({first.kind}) took it, but {at} "
                    f"did not, so the examples' size does not fit the later layers. Pass "
                    f"examples of the size the network was built for.")
        mod = mods[first.path]
        if first.kind == "Linear":
            expect = f"inputs whose last dimension is {mod.in_features}"
            fix = (f"e.g. {name}.reshape({n}, {mod.in_features})" if d == mod.in_features
                   else f"{name} of shape (n, {mod.in_features})")
        else:
            C, k = mod.in_channels, tuple(mod.kernel_size)
            if first.kind == "Conv1d":
                expect = f"examples of shape ({C}, L) with L ≥ {k[0]}"
                fix = (f"e.g. {name}.reshape({n}, {C}, {d // C})" if d % C == 0
                       else f"{name} of shape (n, {C}, L)")
            else:
                expect = f"examples of shape ({C}, H, W) with H ≥ {k[0]}, W ≥ {k[1]}"
                s = int(np.sqrt(d // C)) if d % C == 0 else 0
                fix = (f"e.g. {name}.reshape({n}, {C}, {s}, {s}) for square images"
                       if s and s * s * C == d else f"{name} of shape (n, {C}, H, W)")
        return (f"{head}: its first layer {first.path!r} ({first.kind}) expects {expect} "
                f"(after any reshapes before it). Pass {fix}.")

    def outputs(self, X, *, chunk_size: int = 128) -> np.ndarray:
        """``f(θ; x_n)`` for every example, shape ``(n, K)``, in chunks of ``chunk_size``
        examples (128: on Lyu & Li's MNIST CNN each chunk's tensors stay below glibc's mmap
        threshold; chunks of 1,024 spent half their CPU time in page faults)."""
        T = self._tensor(X)
        outs = []
        with self._torch.no_grad():
            for s in range(0, T.shape[0], chunk_size):
                o = self.module(T[s:s + chunk_size])
                outs.append(o.reshape(o.shape[0], -1).numpy())
        return np.concatenate(outs)

    def check_labels(self, y, n: int, K: int) -> np.ndarray:
        """Labels ±1 for one output, class indices ``0 … K−1`` for ``K ≥ 2`` outputs."""
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},); got {y.shape}.")
        if y.dtype.kind not in "iuf" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("y must hold integer labels.")
        y = y.astype(np.int64)
        if K == 1:
            if not np.all(np.abs(y) == 1):
                raise ValueError(f"a one-output net needs labels ±1; got values "
                                 f"{sorted(set(y.tolist()))[:5]}.")
        elif y.min() < 0 or y.max() >= K:
            bad = y[(y < 0) | (y >= K)][:3].tolist()
            raise ValueError(f"y must hold class indices in 0..{K - 1} for a {K}-output net; "
                             f"got {bad}.")
        return y

    def margins(self, X, y) -> np.ndarray:
        r"""``q_n``: ``y_n f(x_n)`` for one output; ``f_{y_n}(x_n) − \max_{j≠y_n} f_j(x_n)``
        for ``K ≥ 2`` outputs. Shape ``(n,)``."""
        F = self.outputs(X)
        n, K = F.shape
        y = self.check_labels(y, n, K)
        if K == 1:
            return y * F[:, 0]
        other = F.copy()
        other[np.arange(n), y] = -np.inf
        return F[np.arange(n), y] - other.max(axis=1)

    def competitors(self, X, y, *, rtol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        r"""The (example, competing class) pairs of the Clarke subdifferential of the max:
        ``j ≠ y_n`` with ``f_j(x_n) ≥ \max_{k≠y_n} f_k(x_n) − rtol·\max|f|``. Returns two
        integer arrays ``(rows, classes)``; for one output, ``classes`` is all ``-1``."""
        F = self.outputs(X)
        n, K = F.shape
        y = self.check_labels(y, n, K)
        if K == 1:
            return np.arange(n), np.full(n, -1)
        other = F.copy()
        other[np.arange(n), y] = -np.inf
        top = other.max(axis=1, keepdims=True)
        slack = rtol * max(float(np.max(np.abs(F))), np.finfo(float).tiny)
        rows, cls = np.nonzero(other >= top - slack)
        return rows, cls

    # --- gradients ------------------------------------------------------------------------

    def _pair_weights(self, y_rows, classes, K):
        """(m, K) weights w with q = ⟨w, f(x)⟩ for each pair."""
        torch = self._torch
        m = len(y_rows)
        W = torch.zeros((m, K), dtype=torch.float64)
        if K == 1:
            W[:, 0] = torch.from_numpy(y_rows.astype(np.float64))
        else:
            idx = torch.arange(m)
            W[idx, torch.from_numpy(y_rows)] = 1.0
            W[idx, torch.from_numpy(classes)] -= 1.0
        return W

    def _layer_factors(self, Xc, Wc):
        """For one chunk: per-layer gradient factors from one forward and one backward pass.

        Returns ``path → factor`` with factor ``("outer", A, D, bias)`` for a dense layer on
        2-D inputs (per-example gradient ``D_n A_nᵀ``), ``("explicit", J, B)`` for a dense
        layer applied at several positions (explicit per-example gradients ``J``, bias gradients
        ``B`` or None), and ``("conv", a4, d4, geometry, bias)`` for a convolution: its input
        ``a4`` and output-gradient ``d4`` (4-D; 1-D convolutions get a unit height), from which
        :func:`_conv_jacobian` makes the per-example gradients of any block of rows."""
        torch = self._torch
        mods = dict(self.module.named_modules())
        captured: dict[str, list] = {}
        handles = []
        for info in self.layers:
            if info.gradient == "autograd" or self._calls.get(info.path, 0) != 1:
                continue
            mod = mods[info.path]

            def hook(m, inp, out, path=info.path):
                out.retain_grad()
                captured[path] = [inp[0].detach(), out]
            handles.append(mod.register_forward_hook(hook))
        try:
            with torch.enable_grad():
                Xg = Xc.clone().requires_grad_(True)  # so outputs are in the autograd graph
                out = self.module(Xg)
                out = out.reshape(out.shape[0], -1)
                (out * Wc).sum().backward()
        finally:
            for h in handles:
                h.remove()
        factors = {}
        for info in self.layers:
            if info.path not in captured:
                continue
            a, z = captured[info.path]
            delta = z.grad.detach()
            mod = mods[info.path]
            bias = mod.bias is not None
            if info.kind == "Linear":
                if a.ndim != 2:  # positions: sum over them, explicitly
                    J = torch.einsum("b...o,b...i->boi", delta, a).reshape(a.shape[0], -1)
                    factors[info.path] = ("explicit", J, delta.reshape(
                        a.shape[0], -1, delta.shape[-1]).sum(1) if bias else None)
                else:
                    factors[info.path] = ("outer", a, delta, bias)
                continue
            if isinstance(mod.padding, str):
                raise NotHomogeneousError(f"module {info.path!r}: string padding "
                                          f"{mod.padding!r} is not supported; give explicit "
                                          f"padding.")
            if info.kind == "Conv1d":
                a4, d4 = a.unsqueeze(2), delta.unsqueeze(2)
                geom = ((1, mod.kernel_size[0]), (1, mod.stride[0]), (0, mod.padding[0]),
                        (1, mod.dilation[0]))
            else:
                a4, d4 = a, delta
                geom = (mod.kernel_size, mod.stride, mod.padding, mod.dilation)
            factors[info.path] = ("conv", a4, d4, geom, bias)
        return factors

    def _autograd_names(self):
        """Parameters not covered by a hooked Linear/Conv layer."""
        covered = set()
        for info in self.layers:
            if info.gradient != "autograd" and self._calls.get(info.path, 0) == 1:
                covered.add(f"{info.path}.weight")
                covered.add(f"{info.path}.bias")
        return [n for n in self._names if n not in covered]

    def _autograd_jacobian(self, Xc, Wc, names):
        """Per-example gradients of ⟨w, f(x)⟩ w.r.t. the named parameters, by torch.func."""
        torch = self._torch
        from torch.func import functional_call, grad, vmap

        params = dict(self.module.named_parameters())
        fixed = {k: v for k, v in params.items() if k not in names}
        free = {k: params[k] for k in names}

        def one(p, x, w):
            out = functional_call(self.module, {**fixed, **p}, (x.unsqueeze(0),))
            return torch.dot(out.reshape(-1), w)
        g = vmap(grad(one), in_dims=(None, 0, 0))(free, Xc, Wc)
        return torch.cat([g[k].reshape(Xc.shape[0], -1) for k in names], dim=1)

    def _pair_setup(self, X, y, rows, classes):
        """The inputs as a tensor, the pairs' example indices, and their output weights
        ``(m, K)`` (``q_a = ⟨w_a, f(x_{row_a})⟩``), after checking the labels."""
        T = self._tensor(X)
        K = self.outputs(X[:1]).shape[1]     # one example gives K; all are evaluated later
        y = self.check_labels(y, T.shape[0], K)
        rows = np.asarray(rows, dtype=np.int64)
        return T, rows, self._pair_weights(y[rows], np.asarray(classes, dtype=np.int64), K)

    def pair_gradients(self, X, y, rows, classes, *, chunk_size: int = 256) -> np.ndarray:
        """Explicit ``∇_θ q`` for each pair, shape ``(m, P)`` in :meth:`flat` order (for small
        nets and tests; :meth:`pair_gram` never forms it)."""
        torch = self._torch
        T, rows, Wp = self._pair_setup(X, y, rows, classes)
        out = []
        for s in range(0, len(rows), chunk_size):
            out.append(self._autograd_jacobian(T[torch.from_numpy(rows[s:s + chunk_size])],
                                               Wp[s:s + chunk_size], self._names).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_params))

    def pair_gram(self, X, y, rows, classes, *, chunk_size: int = 512,
                  block_size: int = 2048) -> np.ndarray:
        r"""``G_{ab} = ⟨∇_θ q_a, ∇_θ q_b⟩`` for the pairs ``(rows, classes)``, shape ``(m, m)``,
        from the layer structure (module docstring), never from the ``(m, P)`` Jacobian.

        One forward and one backward pass per chunk of ``chunk_size`` pairs stores each layer's
        factors for all pairs: a dense layer's input and output-gradient (``A``, ``D``); a
        convolution's explicit per-example gradients when they are smaller than its input and
        output-gradient, else those two. The Gram matrix is then accumulated in square blocks of
        ``block_size`` rows, upper blocks ``I ≤ J`` only (mirrored): ``G_IJ += (A_I A_Jᵀ) ∘
        (D_I D_Jᵀ)`` for a dense layer, ``G_IJ += J_I J_Jᵀ`` with a convolution's gradients
        ``J_I`` unfolded per block. Memory: the ``(m, m)`` result, the factors (``m`` × the
        layers' widths and feature-map sizes) and two blocks of per-example gradients
        (``block_size`` × the largest convolution's weight count); parameters outside hooked
        layers fall back to explicit per-example gradients by ``torch.func`` (``m`` × their
        count).
        """
        self._check_sizes(chunk_size, block_size)
        T, rows, Wp = self._pair_setup(X, y, rows, classes)
        return self._gram_symmetric((len(rows), self._factor_store(T, rows, Wp, chunk_size)),
                                    block_size)

    def _gram_symmetric(self, fac, block_size: int = 2048, out=None) -> np.ndarray:
        """``G[a, a]`` from the factors ``fac = (m, store)`` of the pairs ``a``
        (:meth:`_pair_factors`): upper blocks ``I ≤ J`` of ``block_size`` rows, mirrored (half
        the products of :meth:`_gram_cross`), into ``out`` (an ``(m, m)`` array or view, e.g.
        the diagonal block of a larger matrix) when given."""
        m, store = fac
        block = self._factor_block
        G = np.zeros((m, m)) if out is None else out
        if out is not None:
            G[...] = 0.0
        starts = list(range(0, m, block_size))
        for kind, arrays, meta in store.values():
            for i0 in starts:
                I = slice(i0, min(m, i0 + block_size))
                FI = block(kind, arrays, meta, I)
                for j0 in (s for s in starts if s >= i0):
                    J = slice(j0, min(m, j0 + block_size))
                    FJ = FI if j0 == i0 else block(kind, arrays, meta, J)
                    if kind == "outer":
                        A, D = arrays
                        DD = D[I] @ D[J].T
                        G[I, J] += (A[I] @ A[J].T) * DD
                        if meta:  # the dense layer's bias: its gradient is D
                            G[I, J] += DD
                    else:
                        G[I, J] += FI @ FJ.T
                        if arrays[-1] is not None:  # a bias: its gradient per pair
                            G[I, J] += arrays[-1][I] @ arrays[-1][J].T
        for i0 in starts:  # mirror the upper blocks
            I = slice(i0, min(m, i0 + block_size))
            for j0 in (s for s in starts if s > i0):
                J = slice(j0, min(m, j0 + block_size))
                G[J, I] = G[I, J].T
        return G

    @staticmethod
    def _check_sizes(chunk_size, block_size):
        for name, v in (("chunk_size", chunk_size), ("block_size", block_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}.")

    def _factor_store(self, T, rows, Wp, chunk_size):
        """Each layer's Gram factors for the pairs (see :meth:`pair_gram`): path → [kind,
        arrays ``(m, ...)``, meta], filled by one forward and one backward pass per chunk."""
        torch = self._torch
        auto = self._autograd_names()
        m = len(rows)
        store: dict[str, list] = {}

        def put(path, kind, arrays, meta, s):
            if path not in store:
                store[path] = [kind, [None if a is None else
                                      np.empty((m, *a.shape[1:])) for a in arrays], meta]
            for dst, a in zip(store[path][1], arrays, strict=True):
                if a is not None:
                    dst[s:s + a.shape[0]] = a.numpy()

        for s in range(0, m, chunk_size):
            Xc = T[torch.from_numpy(rows[s:s + chunk_size])]
            Wc = Wp[s:s + chunk_size]
            for path, fac in self._layer_factors(Xc, Wc).items():
                if fac[0] == "outer":
                    put(path, "outer", fac[1:3], fac[3], s)
                elif fac[0] == "explicit":
                    put(path, "explicit", fac[1:3], None, s)
                else:
                    _, a4, d4, geom, bias = fac
                    b0 = d4.reshape(d4.shape[0], d4.shape[1], -1).sum(2) if bias else None
                    n_w = d4.shape[1] * a4.shape[1] * int(np.prod(geom[0]))
                    if n_w <= a4[0].numel() + d4[0].numel():  # few weights: store J itself
                        put(path, "explicit", (_conv_jacobian(a4, d4, geom), b0), None, s)
                    else:
                        put(path, "conv", (a4, d4, b0), geom, s)
            if auto:
                put("__autograd__", "explicit", (self._autograd_jacobian(Xc, Wc, auto), None),
                    None, s)
        return store

    def _factor_block(self, kind, arrays, meta, sl):
        """The per-pair gradient factor of one layer for the pairs ``sl`` (a convolution's
        per-example gradients unfolded, 256 rows at a time)."""
        if kind != "conv":
            return arrays[0][sl]
        torch = self._torch
        a4, d4 = arrays[0][sl], arrays[1][sl]
        out = np.empty((a4.shape[0], d4.shape[1] * a4.shape[1] * int(np.prod(meta[0]))))
        for s in range(0, a4.shape[0], 256):
            out[s:s + 256] = _conv_jacobian(torch.from_numpy(a4[s:s + 256]),
                                            torch.from_numpy(d4[s:s + 256]), meta).numpy()
        return out

    def pair_gram_between(self, X, y, rows_a, classes_a, rows_b, classes_b, *,
                          chunk_size: int = 512, block_size: int = 2048) -> np.ndarray:
        r"""The rectangular pair Gram block ``G_{ab} = ⟨∇_θ q_a, ∇_θ q_b⟩`` between the pairs
        ``a = (rows_a, classes_a)`` and ``b = (rows_b, classes_b)``, shape ``(m_a, m_b)``: the
        block ``G[a, b]`` of :meth:`pair_gram` over ``a ∪ b``, computed the same way (the layer
        factors of ``a`` and of ``b``, blocks of ``block_size`` rows) without the rest of that
        matrix. Used by the KKT check's working set to add pairs: only the new rows
        ``G[new, W ∪ new]`` are computed.
        """
        self._check_sizes(chunk_size, block_size)
        ra = np.asarray(rows_a, dtype=np.int64).ravel()
        rb = np.asarray(rows_b, dtype=np.int64).ravel()
        ca = np.asarray(classes_a, dtype=np.int64).ravel()
        cb = np.asarray(classes_b, dtype=np.int64).ravel()
        if ra.size != ca.size or rb.size != cb.size:
            raise ValueError(f"rows and classes must have the same length; got rows_a "
                             f"{ra.size}, classes_a {ca.size}, rows_b {rb.size}, classes_b "
                             f"{cb.size}.")
        if ra.size == 0 or rb.size == 0:
            return np.zeros((ra.size, rb.size))
        return self._gram_cross(self._pair_factors(X, y, ra, ca, chunk_size),
                                self._pair_factors(X, y, rb, cb, chunk_size), block_size)

    def _pair_factors(self, X, y, rows, classes, chunk_size: int = 512):
        """The layer factors of the pairs (:meth:`_factor_store`) with their count."""
        T, rows, Wp = self._pair_setup(X, y, rows, classes)
        return len(rows), self._factor_store(T, rows, Wp, chunk_size)

    def _gram_cross(self, fa, fb, block_size: int = 2048, out=None):
        """``G[a, b]`` from the factors of the pairs ``a`` and ``b``, in blocks of
        ``block_size`` rows of each, into ``out`` (an ``(m_a, m_b)`` array or view) when
        given."""
        (ma, sa), (mb, sb) = fa, fb
        G = np.zeros((ma, mb)) if out is None else out
        if out is not None:
            G[...] = 0.0
        for path, (kind, arrays, meta) in sa.items():
            brr = sb[path][1]
            for i0 in range(0, ma, block_size):
                I = slice(i0, min(ma, i0 + block_size))
                FI = self._factor_block(kind, arrays, meta, I)
                for j0 in range(0, mb, block_size):
                    J = slice(j0, min(mb, j0 + block_size))
                    if kind == "outer":
                        DD = arrays[1][I] @ brr[1][J].T
                        G[I, J] += (arrays[0][I] @ brr[0][J].T) * DD
                        if meta:  # the dense layer's bias: its gradient is D
                            G[I, J] += DD
                    else:
                        G[I, J] += FI @ self._factor_block(kind, brr, meta, J).T
                        if arrays[-1] is not None:  # a bias: its gradient per pair
                            G[I, J] += arrays[-1][I] @ brr[-1][J].T
        return G

    # --- kinks -----------------------------------------------------------------------------

    def kink_counts(self, X, *, rtol: float = 1e-7, chunk_size: int = 128) -> dict[str, int]:
        """Near-kink counts per module path: ReLU/LeakyReLU inputs with ``|z| ≤ rtol·max|z|``
        (over the layer and the batch) and max-pool windows whose two largest entries differ by
        at most ``rtol·max|z|``."""
        torch = self._torch
        T = self._tensor(X)
        mods = dict(self.module.named_modules())
        paths = (*self._relus, *self._pools)
        # two passes over the data, so no layer's inputs are held for all examples at once:
        # the scale max|z| (over the layer and the batch) first, then the counts
        scale = {p: 0.0 for p in paths}
        counts = {p: 0 for p in paths}

        def run(visit):
            # before the module runs: an in-place ReLU would have overwritten its input by then
            handles = [mods[p].register_forward_pre_hook(
                lambda m, inp, p=p: visit(p, inp[0].detach())) for p in paths]
            try:
                with torch.no_grad():
                    for s in range(0, T.shape[0], chunk_size):
                        self.module(T[s:s + chunk_size])
            finally:
                for h in handles:
                    h.remove()

        def biggest(p, z):
            scale[p] = max(scale[p], float(z.abs().max()))

        def count(p, z):
            counts[p] += self._near_kinks(p, mods[p], z, rtol * (scale[p] or 1.0))

        run(biggest)
        run(count)
        return counts

    def _near_kinks(self, path, mod, z, tol) -> int:
        """Near-kink count of one batch of a ReLU's or max-pool's input ``z`` at threshold
        ``tol``."""
        if path in self._relus:
            return int((z.abs() <= tol).sum())
        F = self._torch.nn.functional
        if type(mod).__name__ == "MaxPool1d":
            k, st = mod.kernel_size, mod.stride or mod.kernel_size
            k = k if isinstance(k, int) else k[0]
            st = st if isinstance(st, int) else st[0]
            w = z.unfold(-1, k, st)
            w = w.reshape(*w.shape[:-1], -1)
        else:
            k, st = mod.kernel_size, mod.stride
            k = k if isinstance(k, tuple) else (k, k)
            st = st if isinstance(st, tuple) else (st, st)
            w = F.unfold(z, k, stride=st)                      # (b, C*k*k, P)
            w = w.reshape(z.shape[0], z.shape[1], k[0] * k[1], -1).transpose(2, 3)
        top2 = w.topk(2, dim=-1).values
        # a tie between zeros (a window of dead ReLU outputs) passes no gradient either way
        tied = (top2[..., 0] - top2[..., 1] <= tol) & (top2[..., 0].abs() > tol)
        return int(tied.sum())
