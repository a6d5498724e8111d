"""Symbolic gradient flows (docs/theory.md §2, §3, §8, §9).

:func:`derive_gradient_flow` derives :math:`\\dot\\theta = -\\nabla\\mathcal L(\\theta)` (optionally
:math:`-\\lambda\\theta` weight decay) for a :class:`~theory.models.Model` and a
:class:`~theory.losses.Loss`. At the **matrix level** the loss is differentiated once with respect
to the end-to-end map :math:`E` by sympy's matrix calculus,
:math:`G = \\partial\\mathcal L/\\partial E`, and the chain rule is applied through the product
:math:`E = W_L \\cdots W_1` structurally,

.. math:: \\dot W_l = -(W_L \\cdots W_{l+1})^T \\, G \\, (W_{l-1} \\cdots W_1)^T,

with the prefix products :math:`P_l = W_l \\cdots W_1` and suffix products
:math:`S_l = W_L \\cdots W_l` kept as named definitions, so the size of the derivation is linear
in the depth and independent of the widths. The entry-wise derivation (``method='entrywise'``)
expands every block into scalar symbols and differentiates the scalar loss entry by entry; it
exists for small cases and cross-checks.

A :class:`GradientFlow` is a straight-line program: ordered ``definitions`` (symbol, matrix
expression) followed by one right-hand side per state block, each of the block's matrix shape.
"""

from __future__ import annotations

__all__ = [
    "GradientFlow",
    "derive_gradient_flow",
    "derive_minnorm_flow",
    "derive_normalized_flow",
    "derive_polar_flow",
]

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import _matcalc
from ._losses import Loss, get_loss
from ._models import N_EXAMPLES, Block, Model, _block

LAM = sp.Symbol("lam", nonnegative=True)
"""Weight-decay coefficient :math:`\\lambda` (a hyper-parameter, passed in ``params['lam']``)."""
ALPHA = sp.Symbol("alpha", positive=True)
BETA = sp.Symbol("beta", nonnegative=True)


@dataclass(frozen=True)
class DataSpec:
    """A data argument of a flow: ``name``, its matrix symbol and its user-facing shape text."""

    name: str
    symbol: sp.MatrixSymbol
    shape: str
    kind: str  # 'inputs', 'targets', 'labels'


@dataclass(frozen=True)
class GradientFlow:
    """A symbolic flow :math:`\\dot y = f(y)` over ordered parameter blocks.

    Attributes
    ----------
    kind : str
        ``'gradient'``, ``'minnorm'``, ``'normalized'`` or ``'polar'``.
    model : Model
    loss : Loss or None
    block_list : tuple of Block
        State blocks in order (model blocks, then multipliers ``mu`` or the radius ``rho``).
    rhs_list : tuple of sympy.MatrixExpr
        Right-hand side per block, each of the block's matrix-symbol shape.
    definitions : tuple of (sympy.MatrixSymbol, sympy.MatrixExpr)
        Straight-line intermediate definitions used by :attr:`rhs_list`, in dependency order.
    data : tuple of DataSpec
        Data arguments (``X`` and ``Y`` or ``y``).
    hyper : tuple of sympy.Symbol
        Scalar hyper-parameters (``lam``, ``alpha``, ``beta``), passed by name in ``params``.
    method : {'matrix', 'entrywise'}
    n : sympy.Symbol or int
        Number of examples: symbolic at the matrix level (read from ``X`` at run time).
    status : str
        ``'derived'``.
    """

    kind: str
    model: Model
    loss: Loss | None
    block_list: tuple[Block, ...]
    rhs_list: tuple
    definitions: tuple = ()
    data: tuple[DataSpec, ...] = ()
    hyper: tuple[sp.Symbol, ...] = ()
    method: str = "matrix"
    n: object = N_EXAMPLES
    weight_decay: bool = False
    status: str = "derived"
    notes: str = field(default="")

    # -- layout ---------------------------------------------------------------------------
    @property
    def blocks(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``name -> shape`` of the flat state (C-order ravel, concatenated)."""
        return {b.name: b.shape for b in self.block_list}

    @property
    def size(self) -> int:
        """Length ``N`` of the flat state."""
        return sum(b.size for b in self.block_list)

    def pack(self, values: dict | None = None, /, **arrays) -> np.ndarray:
        """Flat state ``(N,)`` from ``{name: array}`` or keywords: ``pack({"w": w})`` or
        ``pack(w=w)`` (the convention of ``solvers.flows``' hand-written flows)."""
        return pack(self.block_list, values, **arrays)

    def unpack(self, y) -> dict[str, np.ndarray]:
        """``{name: array}`` from a flat state ``(N,)`` or a stack ``(T, N)`` (copies)."""
        return unpack(self.block_list, y)

    # -- symbolic views -------------------------------------------------------------------
    @property
    def rhs(self) -> dict[str, sp.MatrixExpr]:
        """``name -> right-hand side`` with all definitions substituted (size grows with depth)."""
        full = _matcalc.expand_definitions(self.definitions, self.rhs_list)
        return {b.name: e for b, e in zip(self.block_list, full, strict=True)}

    def latex(self) -> str:
        """The flow as a LaTeX ``aligned`` block: definitions, then one line per block."""
        lines = [rf"{sp.latex(s)} &= {sp.latex(e)}" for s, e in self.definitions]
        for b, e in zip(self.block_list, self.rhs_list, strict=True):
            lines.append(rf"\dot{{{sp.latex(b.symbol)}}} &= {sp.latex(e)}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "status": self.status,
            "method": self.method,
            "model": self.model.to_dict(),
            "loss": None if self.loss is None else self.loss.to_dict(),
            "blocks": {k: list(v) for k, v in self.blocks.items()},
            "definitions": [[str(s), str(e)] for s, e in self.definitions],
            "rhs": {b.name: str(e) for b, e in zip(self.block_list, self.rhs_list, strict=True)},
            "data": {d.name: d.shape for d in self.data},
            "hyper": [str(h) for h in self.hyper],
            "weight_decay": self.weight_decay,
        }


def _pack_arguments(names, values, arrays) -> dict:
    """Merge ``pack(mapping)`` and ``pack(**arrays)``; map the old names of issue 13.

    The twin of ``solvers.flows``' helper (the symbolic core imports no solver; a test pins that
    both accept the same calls): a vector ``a`` of shape ``(L-1,)`` stands for the chain scalars
    ``a2, ..., aL``; ``lambda`` (the old solvers name, deprecated) for ``mu``.
    """
    if values is None:
        merged = {}
    elif isinstance(values, Mapping):
        merged = dict(values)
    else:
        raise TypeError(
            f"values must be a dict name -> array with keys {names}; got {type(values)}."
        )
    dup = sorted(set(merged) & set(arrays))
    if dup:
        raise ValueError(f"blocks {dup} were given both in the mapping and as keywords; give "
                         f"each block once.")
    merged.update(arrays)
    # twin of the same rule in solvers/flows/_models.py (theory.symbolic
    # imports no solver): keep both identical; tests/test_twins.py pins that they accept
    # the same calls
    if "lambda" in merged and "lambda" not in names and "mu" in names:
        if "mu" in merged:
            raise ValueError("both 'mu' and its old name 'lambda' were given; pass only mu=.")
        warnings.warn("the Minnorm multiplier block is now named 'mu'; pass mu= instead of "
                      "**{'lambda': ...}.", DeprecationWarning, stacklevel=4)
        merged["mu"] = merged.pop("lambda")
    scalars = [k for k in names if k[:1] == "a" and k[1:].isdigit()]
    if "a" in merged and "a" not in names and scalars:
        if any(k in merged for k in scalars):
            raise ValueError(f"give the chain scalars either as a= (a vector) or as "
                             f"{', '.join(scalars)}, not both.")
        a = np.asarray(merged.pop("a"), dtype=np.float64)
        if a.shape != (len(scalars),):
            raise ValueError(f"a must be the vector ({', '.join(scalars)}) of shape "
                             f"({len(scalars)},); got shape {a.shape}.")
        merged.update({k: a[i] for i, k in enumerate(scalars)})
    return merged


def pack(block_list, values: dict | None = None, /, **arrays) -> np.ndarray:
    names = [b.name for b in block_list]
    values = _pack_arguments(names, values, arrays)
    missing = [n for n in names if n not in values]
    extra = [k for k in values if k not in names]
    if missing or extra:
        raise ValueError(
            f"values must have exactly the keys {names}; missing {missing}, unexpected {extra}."
        )
    parts = []
    for b in block_list:
        a = np.asarray(values[b.name], dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(
                f"values[{b.name!r}] must have shape {b.shape}; got {a.shape}. Reshape it first."
            )
        parts.append(a.ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def unpack(block_list, y) -> dict[str, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    N = sum(b.size for b in block_list)
    if y.ndim not in (1, 2) or y.shape[-1] != N:
        raise ValueError(
            f"y must be a flat state of shape ({N},) or a stack (T, {N}); got {y.shape}."
        )
    lead = y.shape[:-1]
    out, o = {}, 0
    for b in block_list:
        out[b.name] = y[..., o : o + b.size].reshape(lead + b.shape).copy()
        o += b.size
    return out


# ---------------------------------------------------------------------------------------------
def _data_specs(model: Model, loss: Loss, n) -> tuple[DataSpec, ...]:
    X = model.data_symbol(n)
    k = model.output_dim
    if loss.task == "classification":
        if k != 1:
            raise ValueError(
                f"classification loss {loss.name!r} needs a scalar-output model (k = 1); "
                f"model {model.name!r} has k = {k}. Use loss='squared' or a model with one output."
            )
        Y = sp.MatrixSymbol("y", n, 1)
        return (
            DataSpec("X", X, f"(n, {model.input_dim})", "inputs"),
            DataSpec("y", Y, "(n,) labels in {-1, +1}", "labels"),
        )
    Y = sp.MatrixSymbol("Y", n, k)
    return (
        DataSpec("X", X, f"(n, {model.input_dim})", "inputs"),
        DataSpec("Y", Y, f"(n, {k})" + (" or (n,)" if k == 1 else ""), "targets"),
    )


def _end_to_end_gradient(model: Model, loss: Loss, X, Y, n):
    """Definitions ``E``, ``G = dL/dE`` (and ``Gamma = dL/dF`` for classification)."""
    E = sp.MatrixSymbol("E", model.output_dim, model.input_dim)
    defs = []
    if loss.task == "regression":
        G_expr = loss.expression(X * E.T, Y, n).diff(E)  # sympy matrix calculus
    else:
        Gam = sp.MatrixSymbol("Gamma", X.shape[0], 1)
        defs.append((Gam, loss.output_gradient(X * E.T, Y, n)))
        G_expr = sp.trace(Gam.T * X * E.T).diff(E)  # = Gamma^T X
    G = sp.MatrixSymbol("G", model.output_dim, model.input_dim)
    defs.append((G, G_expr))
    return E, G, defs


def _cheaper_chain_rule(dims) -> str:
    """Pick the structural chain rule with fewer multiply-adds (``n`` excluded: common part).

    ``dims = (d_0, ..., d_L)``; the gradient products are evaluated in the cheaper order.
    """
    L = len(dims) - 1
    d, k = dims[0], dims[-1]
    suffix = sum(k * dims[l] * dims[l - 1] for l in range(2, L))  # S_l = S_{l+1} W_l
    for l in range(1, L + 1):  # S^T G P^T: (d_l x k)(k x d)(d x d_{l-1}), cheaper order
        if l == L:
            suffix += k * d * dims[l - 1]
        elif l == 1:
            suffix += dims[l] * k * d
        else:
            suffix += min(dims[l] * k * d + dims[l] * d * dims[l - 1],
                          k * d * dims[l - 1] + dims[l] * k * dims[l - 1])
    backprop = sum(dims[l] * dims[l + 1] * d for l in range(1, L))  # B_l = W_{l+1}^T B_{l+1}
    backprop += sum(dims[l] * d * dims[l - 1] for l in range(2, L + 1))  # B_l P_{l-1}^T
    return "suffix" if suffix <= backprop else "backprop"


def _parameter_gradients(model: Model, E, G, defs, chain_rule: str = "auto"):
    """Gradients of ``tr(G^T E(θ))`` w.r.t. each block, structurally (linear in depth).

    Prepends the prefix definitions (and ``E``) to ``defs`` and appends the suffix products
    (``chain_rule='suffix'``) or the back-propagated cotangents (``'backprop'``); returns
    ``[grad per block]`` and, for non-product models, the definition of ``E``.
    """
    if model.factors is None:
        grads = [_matcalc.vjp(model.end_to_end, G, b.symbol) for b in model.block_list]
        return grads, (E, model.end_to_end)
    f = list(model.factors)
    L = len(f)
    # prefixes P_l = W_l ... W_1 (P_1 = W_1), suffixes S_l = W_L ... W_l (S_L = W_L)
    P = {1: f[0]}
    pre_defs = []
    for l in range(2, L + 1):
        if l == L:
            P[l] = E
            pre_defs.append((E, sp.MatMul(f[l - 1], P[l - 1])))
        else:
            sym = sp.MatrixSymbol(f"P{l}", f[l - 1].shape[0], model.input_dim)
            pre_defs.append((sym, sp.MatMul(f[l - 1], P[l - 1])))
            P[l] = sym
    if L == 1:
        pre_defs.append((E, f[0]))
        P[1] = E
    defs[:0] = pre_defs  # E and prefixes come first
    dims = [model.input_dim] + [fl.shape[0] for fl in f]  # d_0, d_1, ..., d_L = k
    if chain_rule == "auto":
        chain_rule = _cheaper_chain_rule(dims)
    grads_by_factor = []
    if chain_rule == "suffix":
        # suffixes S_l = W_L ... W_l; dW_l = S_{l+1}^T G P_{l-1}^T (best when k is small)
        S = {L: f[L - 1]}
        for l in range(L - 1, 1, -1):
            sym = sp.MatrixSymbol(f"S{l}", model.output_dim, f[l - 1].shape[1])
            defs.append((sym, sp.MatMul(S[l + 1], f[l - 1])))
            S[l] = sym
        for l in range(1, L + 1):
            A = S[l + 1] if l < L else None
            B = P[l - 1] if l > 1 else None
            Wl = sp.MatrixSymbol("_Wl", *f[l - 1].shape)
            grads_by_factor.append(_matcalc.apply_bilinear_rule(G, A, Wl, B))
    elif chain_rule == "backprop":
        # cotangents B_L = G, B_l = W_{l+1}^T B_{l+1}; dW_l = B_l P_{l-1}^T (best when k ~ d_l)
        Bc = {L: G}
        for l in range(L - 1, 0, -1):
            sym = sp.MatrixSymbol(f"B{l}", dims[l], model.input_dim)
            Z = sp.MatrixSymbol("_Z", dims[l], model.input_dim)
            defs.append((sym, _matcalc.apply_bilinear_rule(Bc[l + 1], f[l], Z, None)))
            Bc[l] = sym
        for l in range(1, L + 1):
            B = P[l - 1] if l > 1 else None
            Wl = sp.MatrixSymbol("_Wl", *f[l - 1].shape)
            grads_by_factor.append(_matcalc.apply_bilinear_rule(Bc[l], None, Wl, B))
    else:
        raise ValueError(
            f"chain_rule must be 'auto', 'suffix' or 'backprop'; got {chain_rule!r}."
        )
    grads = []
    for b in model.block_list:
        total = []
        for fl, K in zip(f, grads_by_factor, strict=True):
            if fl.has(b.symbol):
                total.append(_matcalc.apply_factor_rule(K, fl, b.symbol))
        grads.append(_matcalc.add(total))
    return grads, None


def derive_gradient_flow(
    model: Model,
    loss,
    *,
    weight_decay: bool = False,
    method: str = "matrix",
    n: int | None = None,
    chain_rule: str = "auto",
) -> GradientFlow:
    """Derive the gradient flow :math:`\\dot\\theta = -\\nabla\\mathcal L(\\theta)`
    (optionally :math:`-\\lambda\\theta`).

    Parameters
    ----------
    model : Model
        From :mod:`theory.models`.
    loss : Loss or {'squared', 'logistic', 'exp'}
        Squared loss is a mean over examples, logistic/exp a sum (docs/theory.md §0).
    weight_decay : bool, default False
        Add :math:`-\\lambda\\theta` to every block; ``lam`` becomes a hyper-parameter in
        ``params``.
    method : {'matrix', 'entrywise'}
        ``'matrix'``: MatrixSymbol calculus, cost independent of widths and linear in depth.
        ``'entrywise'``: explicit scalar entries (cost grows with widths; needs ``n``).
    n : int, optional
        Number of examples; required for ``method='entrywise'``, ignored otherwise.
    chain_rule : {'auto', 'suffix', 'backprop'}
        How the matrix-level chain rule shares partial products: suffix products
        :math:`S_l = W_L \\cdots W_l` (cheap when the output dimension ``k`` is small) or
        back-propagated cotangents :math:`B_l = W_{l+1}^T B_{l+1}`, :math:`B_L = G` (cheap when
        ``k`` is comparable to the widths). ``'auto'`` counts multiply-adds. Both are linear in
        depth and give the same flow.

    Returns
    -------
    GradientFlow

    References
    ----------
    docs/theory.md §2; Arora, Cohen, Hazan (2018), eq. (4) for the deep-linear form.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a theory.models.Model; got {type(model).__name__}.")
    loss = get_loss(loss)
    if model.is_expression:  # a user model (Model.from_expression): the generic entry-wise path
        from ._expression import derive_expression_flow

        return derive_expression_flow(model, loss, weight_decay=weight_decay)
    if method not in ("matrix", "entrywise"):
        raise ValueError(f"method must be 'matrix' or 'entrywise'; got {method!r}.")
    if chain_rule not in ("auto", "suffix", "backprop"):
        raise ValueError(
            f"chain_rule must be 'auto', 'suffix' or 'backprop'; got {chain_rule!r}."
        )
    if method == "entrywise":
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(
                f"method='entrywise' needs the number of examples n as a positive int; got n={n!r}."
            )
        return _derive_entrywise(model, loss, weight_decay=weight_decay, n=n)
    data = _data_specs(model, loss, N_EXAMPLES)
    X, Y = data[0].symbol, data[1].symbol
    E, G, defs = _end_to_end_gradient(model, loss, X, Y, N_EXAMPLES)
    grads, e_def = _parameter_gradients(model, E, G, defs, chain_rule)
    if e_def is not None:
        defs.insert(0, e_def)
    rhs = []
    for b, g in zip(model.block_list, grads, strict=True):
        r = -g if g is not None else sp.ZeroMatrix(*b.symbol.shape)
        if weight_decay:
            r = r - LAM * b.symbol
        rhs.append(r)
    return GradientFlow(
        kind="gradient",
        model=model,
        loss=loss,
        block_list=model.block_list,
        rhs_list=tuple(rhs),
        definitions=tuple(defs),
        data=data,
        hyper=(LAM,) if weight_decay else (),
        method="matrix",
        weight_decay=weight_decay,
    )


def _explicit_model(model: Model):
    rep = {b.symbol: sp.ImmutableMatrix(b.symbol.as_explicit()) for b in model.block_list}
    return sp.ImmutableMatrix(model.end_to_end.xreplace(rep).doit().as_explicit())


def _derive_entrywise(model: Model, loss: Loss, *, weight_decay: bool, n: int) -> GradientFlow:
    data = _data_specs(model, loss, n)
    X = sp.ImmutableMatrix(data[0].symbol.as_explicit())
    Y = sp.ImmutableMatrix(data[1].symbol.as_explicit())
    E = _explicit_model(model)
    F = X * E.T
    Lexpr = loss.expression(F, Y, n)
    rhs = []
    for b in model.block_list:
        entries = b.symbol.as_explicit()
        R = sp.ImmutableMatrix(
            entries.shape[0],
            entries.shape[1],
            [
                -sp.diff(Lexpr, entries[i, j]) - (LAM * entries[i, j] if weight_decay else 0)
                for i in range(entries.shape[0])
                for j in range(entries.shape[1])
            ],
        )
        rhs.append(R)
    return GradientFlow(
        kind="gradient",
        model=model,
        loss=loss,
        block_list=model.block_list,
        rhs_list=tuple(rhs),
        definitions=(),
        data=data,
        hyper=(LAM,) if weight_decay else (),
        method="entrywise",
        n=n,
        weight_decay=weight_decay,
    )


# ---------------------------------------------------------------------------------------------
class ProjectedRate(sp.MatrixExpr):
    """Elementwise :math:`r_i = c_i` if :math:`\\mu_i > 0` or :math:`c_i > 0`, else 0.

    The multiplier rate of the projected primal-dual flow (keeps :math:`\\mu \\ge 0`).
    """

    def __new__(cls, mu, c):
        return sp.Basic.__new__(cls, mu, c)

    @property
    def shape(self):
        return self.args[1].shape

    def _entry(self, i, j, **kwargs):
        mu, c = self.args[0][i, j], self.args[1][i, j]
        return sp.Piecewise((c, sp.Or(mu > 0, c > 0)), (0, True))

    def _jvp(self, tangents):
        # almost everywhere the indicator is locally constant: d r = indicator * d c
        dc = _matcalc.jvp(self.args[1], tangents)
        if dc is None:
            return None
        return _Masked(self.args[0], self.args[1], dc)

    def _numpycode(self, printer):
        mu, c = (printer._print(a) for a in self.args)
        return f"numpy.where(({mu} > 0) | ({c} > 0), {c}, 0.0)"

    def _latex(self, printer):
        mu, c = (printer._print(a) for a in self.args)
        return rf"\Pi_{{{mu}}}\left({c}\right)"


class _Masked(sp.MatrixExpr):
    """``dc`` masked by the active set of :class:`ProjectedRate` (tangent, possibly batched)."""

    def __new__(cls, mu, c, dc):
        return sp.Basic.__new__(cls, mu, c, dc)

    @property
    def shape(self):
        return self.args[2].shape

    def _numpycode(self, printer):
        mu, c, dc = (printer._print(a) for a in self.args)
        return f"numpy.where(({mu} > 0) | ({c} > 0), {dc}, 0.0)"


def derive_minnorm_flow(
    model: Model, *, task: str, n: int, projected: bool = True
) -> GradientFlow:
    """The Minnorm primal-dual flow of Bansal, Advani, Cox, Saxe (2018) (docs/theory.md §8).

    On the Lagrangian :math:`\\mathcal{L} = \\tfrac12\\|\\theta\\|^2 + \\sum_i \\mu_i c_i(\\theta)`
    with :math:`c_i = y_i - f_i` (regression) or :math:`c_i = 1 - y_i f_i` (classification):

    .. math::
        \\dot\\theta = -\\beta\\theta + \\sum_i \\mu_i \\nabla f_i(\\theta)\\,(1 \\text{ or } y_i),
        \\qquad \\dot\\mu_i = \\alpha\\, c_i(\\theta),

    with :math:`\\mu \\ge 0` kept by projection for classification (``projected=True``: the rate
    is set to 0 when :math:`\\mu_i \\le 0` and :math:`c_i \\le 0`). The multipliers are the
    state block ``mu`` of shape ``(n,)`` (``k = 1``) or ``(n, k)``, so ``n`` must be given.
    ``alpha`` and ``beta`` are hyper-parameters in ``params``.

    Equilibria are KKT points of :math:`\\min \\tfrac12\\|\\theta\\|^2` s.t. the constraints.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a theory.models.Model; got {type(model).__name__}.")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification'; got {task!r}.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (number of examples) must be a positive int; got {n!r}.")
    k = model.output_dim
    loss = get_loss("squared" if task == "regression" else "logistic")
    data = _data_specs(model, loss, n)
    X, Y = data[0].symbol, data[1].symbol
    mu = _block("mu", (n,) if k == 1 else (n, k))
    E = sp.MatrixSymbol("E", k, model.input_dim)
    F = sp.MatrixSymbol("F", n, k)
    defs = [(F, X * E.T)]
    # dL/dF of the constraint term: regression  sum mu_i (y_i - f_i)  -> -mu
    #                               classification sum mu_i (1 - y_i f_i) -> -mu * y
    if task == "regression":
        Gam_expr = -mu.symbol
        c_expr = Y - F
    else:
        Gam_expr = -sp.HadamardProduct(mu.symbol, Y)
        c_expr = sp.OneMatrix(n, 1) - sp.HadamardProduct(Y, F)
    Gam = sp.MatrixSymbol("Gamma", n, k)
    C = sp.MatrixSymbol("C", n, k)
    defs += [(Gam, Gam_expr), (C, c_expr)]
    G = sp.MatrixSymbol("G", k, model.input_dim)
    defs.append((G, sp.trace(Gam.T * X * E.T).diff(E)))
    grads, e_def = _parameter_gradients(model, E, G, defs)
    if e_def is not None:
        defs.insert(0, e_def)
    # E must precede F: move F after E's definition (prefix definitions were inserted first)
    defs = _toposort(defs)
    rhs = [-g - BETA * b.symbol for b, g in zip(model.block_list, grads, strict=True)]
    rate = ProjectedRate(mu.symbol, C) if (task == "classification" and projected) else C
    rhs.append(ALPHA * rate)
    return GradientFlow(
        kind="minnorm",
        model=model,
        loss=None,
        block_list=(*model.block_list, mu),
        rhs_list=tuple(rhs),
        definitions=tuple(defs),
        data=data,
        hyper=(ALPHA, BETA),
        method="matrix",
        n=n,
        notes=f"task={task}, projected={projected and task == 'classification'}",
    )


def derive_normalized_flow(model: Model, loss) -> GradientFlow:
    """The normalised dynamics of Banburski et al. (2019), "Theory III" (docs/theory.md §9).

    Gradient flow of :math:`\\Phi(\\rho, v) = \\mathcal L(\\rho v)` in :math:`\\rho` and, on the
    unit sphere :math:`\\|v\\| = 1`, in :math:`v` (the weight-normalisation / Lagrange-multiplier
    dynamics, :math:`\\nabla_v\\Phi = \\rho g`):

    .. math::
        \\dot\\rho = -\\langle v, g\\rangle, \\qquad
        \\dot v = -\\rho\\,(I - v v^T)\\, g, \\qquad g = \\nabla\\mathcal L(\\rho v),

    where :math:`v` ranges over all blocks jointly. :math:`\\tfrac{d}{dt}\\|v\\|^2 = 0` on
    :math:`\\|v\\| = 1`. This is **not** plain gradient flow in other coordinates (that is
    :func:`derive_polar_flow`): :math:`\\dot\\rho` is the same, but :math:`v` moves
    :math:`\\rho^2` times faster. State: the model blocks holding :math:`v`, then the scalar
    block ``rho`` -- the layout of the hand-written twin ``solvers.normalized_flow``.

    Before issue 13 this function returned the polar form (:func:`derive_polar_flow`), which
    ``solvers.normalized_flow`` did not: the two differed by exactly :math:`\\rho^2` in
    :math:`\\dot v`.
    """
    return _derive_sphere_flow(model, loss, kind="normalized")


def derive_polar_flow(model: Model, loss) -> GradientFlow:
    """Plain gradient flow in polar coordinates :math:`\\theta = \\rho v`, :math:`\\|v\\| = 1`
    (docs/theory.md §9): the exact change of variables of
    :math:`\\dot\\theta = -\\nabla\\mathcal L`,

    .. math::
        \\dot\\rho = -\\langle v, g\\rangle, \\qquad
        \\dot v = -\\frac{1}{\\rho}\\,(I - v v^T)\\, g, \\qquad g = \\nabla\\mathcal L(\\rho v).

    ``g`` is evaluated at :math:`\\theta = \\rho v` directly (no use of homogeneity), so the
    trajectory is that of :func:`derive_gradient_flow`'s flow. Same state layout as
    :func:`derive_normalized_flow`; twin of ``solvers.polar_flow``.
    """
    return _derive_sphere_flow(model, loss, kind="polar")


def _derive_sphere_flow(model: Model, loss, *, kind: str) -> GradientFlow:
    """``v̇ = −ρ^{±1} (I − vvᵀ) g``, ``ρ̇ = −⟨v, g⟩``: +1 for 'normalized', −1 for 'polar'."""
    if not isinstance(model, Model):
        raise TypeError(f"model must be a theory.models.Model; got {type(model).__name__}.")
    loss = get_loss(loss)
    base = derive_gradient_flow(model, loss)
    rho = _block("rho", ())
    R = rho.symbol  # (1, 1)
    # theta_b = v_b * rho: substitute into base definitions/rhs through new definitions
    thetas = {}
    defs = []
    for b in model.block_list:
        th = sp.MatrixSymbol(f"theta_{b.name}", *b.symbol.shape)
        defs.append((th, _ScalarTimes(R, b.symbol)))  # theta_b = rho * v_b
        thetas[b.symbol] = th
    base_defs = [(s, e.xreplace(thetas)) for s, e in base.definitions]
    g = [(-r).xreplace(thetas) for r in base.rhs_list]  # gradient at theta = rho v
    gsyms = []
    for b, gb in zip(model.block_list, g, strict=True):
        s = sp.MatrixSymbol(f"g_{b.name}", *b.symbol.shape)
        base_defs.append((s, gb))
        gsyms.append(s)
    # <v, g> as a 1x1 matrix: sum_b tr(v_b^T g_b) = sum_b vec(v_b)^T vec(g_b)
    vg = sp.MatrixSymbol("vg", 1, 1)
    inner = _matcalc.add(
        [_inner(b.symbol, s) for b, s in zip(model.block_list, gsyms, strict=True)]
    )
    base_defs.append((vg, inner))
    if kind == "polar":
        clock = sp.MatrixSymbol("rho_inv", 1, 1)
        base_defs.append((clock, _Reciprocal(R)))
    else:
        clock = R
    rhs = []
    for b, s in zip(model.block_list, gsyms, strict=True):
        rhs.append(-_ScalarTimes(clock, s - _ScalarTimes(vg, b.symbol)))
    rhs.append(-vg)
    return GradientFlow(
        kind=kind,
        model=model,
        loss=loss,
        block_list=(*model.block_list, rho),
        rhs_list=tuple(rhs),
        definitions=tuple(defs + base_defs),
        data=base.data,
        hyper=(),
        method="matrix",
    )


def _inner(A, B):
    """``vec(A)^T vec(B)`` as a 1x1 matrix expression."""
    return _Inner(A, B)


class _ScalarTimes(sp.MatrixExpr):
    """``s * M`` with ``s`` a 1x1 matrix expression used as a scalar."""

    def __new__(cls, s, M):
        return sp.Basic.__new__(cls, s, M)

    @property
    def shape(self):
        return self.args[1].shape

    def _entry(self, i, j, **kwargs):
        return self.args[0][0, 0] * self.args[1][i, j]

    def _jvp(self, tangents):
        s, M = self.args
        ds, dM = _matcalc.jvp(s, tangents), _matcalc.jvp(M, tangents)
        terms = []
        if ds is not None:
            terms.append(_ScalarTimes(ds, M))
        if dM is not None:
            terms.append(_ScalarTimes(s, dM))
        return _matcalc.add(terms)

    def _numpycode(self, printer):
        s, M = (printer._print(a) for a in self.args)
        return f"(({s}) * ({M}))"

    def _latex(self, printer):
        s, M = (printer._print(a) for a in self.args)
        return rf"{s}\,{M}"


class _Inner(sp.MatrixExpr):
    """``vec(A)^T vec(B)`` as a 1x1 matrix."""

    def __new__(cls, A, B):
        return sp.Basic.__new__(cls, A, B)

    @property
    def shape(self):
        return (1, 1)

    def _entry(self, i, j, **kwargs):
        A, B = self.args
        return sum(A[a, b] * B[a, b] for a in range(A.shape[0]) for b in range(A.shape[1]))

    def _jvp(self, tangents):
        A, B = self.args
        dA, dB = _matcalc.jvp(A, tangents), _matcalc.jvp(B, tangents)
        terms = []
        if dA is not None:
            terms.append(_Inner(dA, B))
        if dB is not None:
            terms.append(_Inner(A, dB))
        return _matcalc.add(terms)

    def _numpycode(self, printer):
        A, B = (printer._print(a) for a in self.args)
        return f"numpy.sum(({A}) * ({B}), axis=(-2, -1), keepdims=True)"

    def _latex(self, printer):
        A, B = (printer._print(a) for a in self.args)
        return rf"\langle {A}, {B}\rangle"


class _Reciprocal(sp.MatrixExpr):
    """``1/s`` for a 1x1 matrix ``s``."""

    def __new__(cls, s):
        return sp.Basic.__new__(cls, s)

    @property
    def shape(self):
        return (1, 1)

    def _entry(self, i, j, **kwargs):
        return 1 / self.args[0][0, 0]

    def _jvp(self, tangents):
        s = self.args[0]
        ds = _matcalc.jvp(s, tangents)
        if ds is None:
            return None
        r = _Reciprocal(s)
        return -_ScalarTimes(r, _ScalarTimes(r, ds))

    def _numpycode(self, printer):
        return f"(1.0 / ({printer._print(self.args[0])}))"

    def _latex(self, printer):
        return rf"\frac{{1}}{{{printer._print(self.args[0])}}}"


def _toposort(defs):
    """Order definitions so every symbol is defined before use (stable)."""
    defined = {s for s, _ in defs}
    out, done = [], set()
    pending = list(defs)
    while pending:
        progressed = False
        for item in list(pending):
            s, e = item
            deps = {a for a in e.atoms(sp.MatrixSymbol) if a in defined}
            if deps <= done:
                out.append(item)
                done.add(s)
                pending.remove(item)
                progressed = True
        if not progressed:
            raise RuntimeError(f"cyclic definitions: {[str(s) for s, _ in pending]}")
    return out

