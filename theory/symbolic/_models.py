"""Symbolic model factories (docs/theory.md §1): linear model, linear chain, deep linear net,
diagonal linear net.

A :class:`Model` knows its ordered parameter blocks (name, shape, matrix symbol), its degree of
homogeneity and its **end-to-end map** :math:`E(\\theta)` of shape ``(k, d)``, so that the model
output on data ``X`` (shape ``(n, d)``, one example per row) is

.. math:: F = X E^T \\in \\mathbb R^{n \\times k}.

Product models (linear chain, deep linear net) also expose their factors
:math:`E = W_L \\cdots W_1`, which the flow derivation uses to apply the chain rule through the
product structurally (cost linear in depth).

Block shapes are the user-facing shapes used by the flat state layout (``w`` of a linear model
has shape ``(d,)``, the scalars ``a_l`` of a chain have shape ``()``); the matrix symbol of a
block is its column/1×1 version (``(d, 1)``, ``(1, 1)``). Ravelled in C order both agree.
"""

from __future__ import annotations

__all__ = [
    "Block",
    "Model",
    "linear_model",
    "linear_chain",
    "deep_linear_net",
    "diagonal_linear_net",
    "INPUT_NAME",
]

import keyword
import math
from dataclasses import dataclass

import sympy as sp

N_EXAMPLES = sp.Symbol("n", integer=True, positive=True)
"""The symbolic number of examples used at the matrix level."""


def check_identifier(field: str, value) -> str:
    """``value`` if it is a valid Python identifier and not a keyword; ValueError otherwise.

    Every name that reaches generated source (model, block and symbol names) passes through
    here, so no name can smuggle code into :func:`theory.symbolic.compile_flow` (issue 14.14).
    """
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str (a Python identifier); got {type(value).__name__}.")
    if not value.isidentifier() or keyword.iskeyword(value):
        raise ValueError(
            f"{field} must be a valid Python identifier that is not a keyword (letters, digits, "
            f"underscores; e.g. 'W1'); got {value!r}."
        )
    return value


def _check_expression_names(field: str, expr) -> None:
    """Every Symbol / MatrixSymbol name in ``expr`` must be an identifier."""
    for atom in expr.atoms(sp.Symbol, sp.MatrixSymbol):
        check_identifier(f"{field}: symbol name", str(atom.name))


@dataclass(frozen=True)
class Block:
    """One parameter block.

    Attributes
    ----------
    name : str
    shape : tuple of int
        User-facing shape; the block occupies ``prod(shape)`` entries of the flat state.
    symbol : sympy.MatrixSymbol
        Matrix-level symbol of shape ``(rows, cols)`` with ``rows * cols == prod(shape)``.
    """

    name: str
    shape: tuple[int, ...]
    symbol: sp.MatrixSymbol

    def __post_init__(self):
        check_identifier("Block.name", self.name)
        check_identifier(f"block {self.name!r}: symbol name", str(self.symbol.name))

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _block(name: str, shape: tuple[int, ...]) -> Block:
    if len(shape) == 0:
        mshape = (1, 1)
    elif len(shape) == 1:
        mshape = (shape[0], 1)
    else:
        mshape = shape
    shape = tuple(int(s) for s in shape)
    return Block(name=name, shape=shape, symbol=sp.MatrixSymbol(name, *mshape))


@dataclass(frozen=True)
class Model:
    """A symbolic model ``f(θ; x) = E(θ) x`` with ordered parameter blocks.

    Attributes
    ----------
    name : str
        ``'linear'``, ``'linear_chain'``, ``'deep_linear'`` or ``'diagonal'`` -- the model names
        of :mod:`solvers.flows` too (``solvers.flows.MODELS``; the diagonal net was named
        ``'diagonal_linear'`` before issue 13; the factory keeps its name
        :func:`diagonal_linear_net`).
    block_list : tuple of Block
        The parameter blocks in state order.
    degree : int
        Degree of homogeneity ``L``: ``f(cθ) = c^L f(θ)``.
    input_dim, output_dim : int
        ``d`` and ``k``.
    end_to_end : sympy.MatrixExpr
        :math:`E(\\theta)`, shape ``(k, d)``.
    factors : tuple of sympy.MatrixExpr or None
        :math:`(W_1, \\ldots, W_L)` with :math:`E = W_L \\cdots W_1` (product models), each a
        block symbol or its transpose; ``None`` otherwise.
    """

    name: str
    block_list: tuple[Block, ...]
    degree: int | None
    input_dim: int
    output_dim: int
    end_to_end: sp.MatrixExpr | None
    factors: tuple[sp.MatrixExpr, ...] | None = None
    outputs: tuple | None = None

    def __post_init__(self):
        check_identifier("Model.name", self.name)
        for b in self.block_list:
            if not isinstance(b, Block):
                raise TypeError(f"Model.block_list must hold Block objects; got {b!r}.")
        if self.end_to_end is not None:
            _check_expression_names("Model.end_to_end", self.end_to_end)
        if self.outputs is not None:
            for o in self.outputs:
                _check_expression_names("Model.outputs", o)
        if (self.end_to_end is None) == (self.outputs is None):
            raise ValueError("a Model has either an end_to_end map (matrix-level factories) or "
                             "entry-wise outputs (Model.from_expression), exactly one of them.")

    # -- user models (entry-wise expressions) --------------------------------------------------
    @property
    def is_expression(self) -> bool:
        """True for a model built by :meth:`from_expression` (entry-wise outputs)."""
        return self.outputs is not None

    @property
    def input_symbol(self) -> sp.MatrixSymbol:
        """The input ``x`` of shape ``(d, 1)`` used by :attr:`outputs`."""
        return sp.MatrixSymbol(INPUT_NAME, self.input_dim, 1)

    def parameter_entries(self) -> list:
        """The scalar entries of the parameters in flat-state order (C order per block)."""
        out = []
        for b in self.block_list:
            r, c = b.symbol.shape
            out += [b.symbol[i, j] for i in range(r) for j in range(c)]
        return out

    def output_entries(self) -> tuple:
        """``(f_1(θ; x), ..., f_k(θ; x))`` as scalar expressions of :meth:`parameter_entries`
        and the entries of :attr:`input_symbol` (factories: rows of :math:`E(\\theta) x`)."""
        if self.outputs is not None:
            return self.outputs
        rep = {b.symbol: sp.ImmutableMatrix(b.symbol.as_explicit()) for b in self.block_list}
        E = sp.ImmutableMatrix(self.end_to_end.xreplace(rep).doit().as_explicit())
        F = E * sp.ImmutableMatrix(self.input_symbol.as_explicit())
        return tuple(sp.expand(F[o, 0]) for o in range(F.shape[0]))

    @classmethod
    def from_expression(cls, name: str, blocks: dict, output, *, input_dim: int) -> Model:
        """A model from the user's own sympy expression (any smooth parametrisation).

        Parameters
        ----------
        name : str
            A Python identifier (it names the model in generated code and reports).
        blocks : dict
            Ordered ``name -> shape``: ``()`` a scalar, ``(r,)`` a vector (symbol ``(r, 1)``),
            ``(r, c)`` a matrix. Names are identifiers, not ``x`` and not starting with ``_``.
        output : callable or sympy expression
            The model output :math:`f(\\theta; x)` for **one** input ``x`` (a
            ``MatrixSymbol('x', input_dim, 1)``): a scalar expression, a ``(1, 1)`` or
            ``(k, 1)`` matrix expression. A callable is called with the block symbols as keyword
            arguments and ``x=``; an expression must use ``sympy.MatrixSymbol(name, *shape)``
            with the declared names and (matrix) shapes. Strings are refused (never sympified).
        input_dim : int
            ``d``, the dimension of ``x``.

        Returns
        -------
        Model
            With :attr:`outputs` set, ``end_to_end = None`` and the homogeneity ``degree``
            **computed** (Euler's identity :math:`\\langle\\theta, \\nabla_\\theta f\\rangle
            = L f` checked symbolically) — ``None`` when the model is not homogeneous.

        Raises
        ------
        ValueError
            Shape mismatch (naming the block), unknown symbols, a non-smooth function (``Abs``,
            ``Max``, ``Piecewise``, ...) applied to a block, a bad name or shape.
        TypeError
            ``output`` is a string or not a sympy expression.

        Examples
        --------
        >>> import sympy as sp
        >>> m = Model.from_expression("quad", {"U": (2, 3), "v": (2,)},
        ...     lambda U, v, x: v.T * (U * x).applyfunc(lambda z: z**2), input_dim=3)
        >>> m.degree, m.n_params
        (3, 8)
        """
        return _from_expression(cls, name, blocks, output, input_dim)

    @property
    def blocks(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``name -> shape``."""
        return {b.name: b.shape for b in self.block_list}

    @property
    def n_params(self) -> int:
        return sum(b.size for b in self.block_list)

    def block(self, name: str) -> Block:
        for b in self.block_list:
            if b.name == name:
                return b
        raise ValueError(
            f"model {self.name!r} has no block {name!r}; blocks are {list(self.blocks)}."
        )

    def data_symbol(self, n=N_EXAMPLES) -> sp.MatrixSymbol:
        """The input matrix ``X`` of shape ``(n, d)``."""
        return sp.MatrixSymbol("X", n, self.input_dim)

    def output(self, X: sp.MatrixExpr) -> sp.MatrixExpr:
        """Model output :math:`F = X E^T`, shape ``(n, k)``."""
        return X * self.end_to_end.T

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "blocks": {k: list(v) for k, v in self.blocks.items()},
            "degree": self.degree,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "end_to_end": None if self.end_to_end is None else str(self.end_to_end),
        }
        if self.outputs is not None:
            out["outputs"] = [str(o) for o in self.outputs]
        return out


def _check_dim(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def linear_model(d: int) -> Model:
    """Linear model :math:`f(w; x) = \\langle w, x\\rangle`, ``w`` of shape ``(d,)``, degree 1.

    Examples
    --------
    >>> linear_model(3).blocks
    {'w': (3,)}
    """
    d = _check_dim("d", d)
    b = _block("w", (d,))
    return Model(
        name="linear",
        block_list=(b,),
        degree=1,
        input_dim=d,
        output_dim=1,
        end_to_end=b.symbol.T,
        factors=(b.symbol.T,),
    )


def linear_chain(depth: int, d: int = 1) -> Model:
    """Linear chain :math:`f = a_L \\cdots a_2 \\langle w, x\\rangle`
    (docs/theory.md §1), degree ``L``.

    Blocks: ``w`` of shape ``(d,)`` then the scalars ``a2, ..., aL`` (shape ``()``). With
    ``d = 1`` this is the scalar chain. ``depth = 1`` is the linear model.
    """
    depth = _check_dim("depth", depth)
    d = _check_dim("d", d)
    w = _block("w", (d,))
    scalars = [_block(f"a{l}", ()) for l in range(2, depth + 1)]
    factors = (w.symbol.T, *(s.symbol for s in scalars))
    return Model(
        name="linear_chain",
        block_list=(w, *scalars),
        degree=depth,
        input_dim=d,
        output_dim=1,
        end_to_end=_product(factors),
        factors=factors,
    )


def deep_linear_net(widths) -> Model:
    """Deep linear net :math:`f(x) = W_L \\cdots W_1 x` with ``W_l`` of shape ``(d_l, d_{l-1})``.

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, d_1, ..., d_L)``: input dimension, hidden widths, output dimension; ``L >= 1``.

    Examples
    --------
    >>> deep_linear_net([2, 3, 1]).blocks
    {'W1': (3, 2), 'W2': (1, 3)}
    """
    try:
        widths = list(widths)
    except TypeError:
        raise TypeError(
            f"widths must be a sequence of ints like [d, h, k]; got {widths!r}."
        ) from None
    if len(widths) < 2:
        raise ValueError(
            f"widths must hold at least (d_0, d_1) (input and output dimension); got {widths!r}."
        )
    widths = [_check_dim(f"widths[{i}]", w) for i, w in enumerate(widths)]
    blocks = tuple(_block(f"W{l}", (widths[l], widths[l - 1])) for l in range(1, len(widths)))
    factors = tuple(b.symbol for b in blocks)
    return Model(
        name="deep_linear",
        block_list=blocks,
        degree=len(blocks),
        input_dim=widths[0],
        output_dim=widths[-1],
        end_to_end=_product(factors),
        factors=factors,
    )


def diagonal_linear_net(d: int) -> Model:
    """Diagonal linear net :math:`f = \\langle u \\odot u - v \\odot v, x\\rangle`, degree 2."""
    d = _check_dim("d", d)
    u = _block("u", (d,))
    v = _block("v", (d,))
    e2e = (sp.HadamardProduct(u.symbol, u.symbol) - sp.HadamardProduct(v.symbol, v.symbol)).T
    return Model(
        name="diagonal",
        block_list=(u, v),
        degree=2,
        input_dim=d,
        output_dim=1,
        end_to_end=e2e,
        factors=None,
    )


def _product(factors) -> sp.MatrixExpr:
    """:math:`W_L \\cdots W_1` from ``(W_1, ..., W_L)``."""
    if len(factors) == 1:
        return factors[0]
    # one flat, unevaluated product (``*`` would re-canonicalise at every step: quadratic)
    return sp.MatMul(*reversed(factors))


# --------------------------------------------------------------------------- user models
INPUT_NAME = "x"
"""Name of the input symbol of :meth:`Model.from_expression` models."""

#: Names the generated code of expression flows uses for its data and hyper-parameters.
_RESERVED = frozenset({"x", "X", "Y", "y", "n", "t", "params", "lam", "alpha", "beta", "numpy",
                       "E", "G", "F", "Gamma", "C", "mu", "rho"})

#: Functions that are not differentiable everywhere (refused: the flow would not be defined).
_NON_SMOOTH = (sp.Abs, sp.Max, sp.Min, sp.Heaviside, sp.sign, sp.Piecewise, sp.floor,
               sp.ceiling, sp.frac, sp.Mod, sp.DiracDelta, sp.re, sp.im, sp.arg, sp.conjugate)


def _from_expression(cls, name, blocks, output, input_dim) -> Model:
    name = check_identifier("name", name)
    d = _check_dim("input_dim", input_dim)
    if not isinstance(blocks, dict) or not blocks:
        raise TypeError(f"blocks must be a non-empty dict name -> shape like {{'U': (4, 3)}}; "
                        f"got {blocks!r}.")
    block_list = []
    for bname, shape in blocks.items():
        check_identifier("blocks: name", bname)
        if bname.startswith("_") or bname in _RESERVED:
            raise ValueError(f"block name {bname!r} is reserved (names starting with '_' and "
                             f"{sorted(_RESERVED)}); rename the block.")
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, tuple) or len(shape) > 2:
            raise ValueError(f"block {bname!r}: shape must be (), (r,) or (r, c); got {shape!r}.")
        shape = tuple(_check_dim(f"block {bname!r}: shape[{i}]", s) for i, s in enumerate(shape))
        block_list.append(_block(bname, shape))
    x = sp.MatrixSymbol(INPUT_NAME, d, 1)
    symbols = {b.name: b.symbol for b in block_list}
    if isinstance(output, str):
        raise TypeError("output must be a sympy expression or a callable building one; strings "
                        "are never parsed (sympify would evaluate code). Build it from "
                        "sympy.MatrixSymbol objects.")
    if callable(output) and not isinstance(output, sp.Basic):
        try:
            expr = output(**symbols, x=x)
        except sp.ShapeError as exc:
            raise ValueError(f"model {name!r}: shape mismatch in the output expression ({exc}); "
                             f"declared shapes: {_shapes_text(block_list, x)}.") from None
    else:
        expr = output
    if not isinstance(expr, (sp.Basic, sp.MatrixBase)):
        raise TypeError(f"output must be a sympy expression (scalar, (1, 1) or (k, 1)); got "
                        f"{type(expr).__name__}.")
    # symbols: every MatrixSymbol must be a declared block (with its shape) or the input
    for ms in expr.atoms(sp.MatrixSymbol):
        nm = str(ms.name)
        if nm == INPUT_NAME:
            if ms.shape != x.shape:
                raise ValueError(f"model {name!r}: the input x has shape {x.shape} "
                                 f"(input_dim = {d}); the output uses x of shape {ms.shape}.")
        elif nm in symbols:
            if ms.shape != symbols[nm].shape:
                raise ValueError(f"block {nm!r} is declared with shape {blocks[nm]!r} (symbol "
                                 f"{symbols[nm].shape}); the output uses {nm} of shape "
                                 f"{ms.shape}. Declare blocks[{nm!r}] = {tuple(ms.shape)!r}.")
        else:
            raise ValueError(f"model {name!r}: the output uses unknown symbol {nm!r}; known: "
                             f"blocks {list(symbols)} and the input 'x'.")
    scalars = expr.free_symbols - set().union(*(s.free_symbols for s in expr.atoms(
        sp.MatrixSymbol))) if expr.free_symbols else set()
    scalars = {s for s in scalars if isinstance(s, sp.Symbol)}
    if scalars:
        raise ValueError(f"model {name!r}: the output uses unknown symbol(s) "
                         f"{sorted(str(s) for s in scalars)}; every parameter must be a declared "
                         f"block, written as sympy.MatrixSymbol(name, *shape).")
    try:
        M = expr.as_explicit() if hasattr(expr, "as_explicit") else expr
    except sp.ShapeError as exc:
        raise ValueError(f"model {name!r}: shape mismatch in the output expression ({exc}); "
                         f"declared shapes: {_shapes_text(block_list, x)}.") from None
    if isinstance(M, sp.MatrixBase):
        if M.shape[1] != 1:
            raise ValueError(f"model {name!r}: the output must be a scalar or a column (k, 1); "
                             f"got shape {M.shape}.")
        outs = tuple(sp.sympify(M[o, 0]) for o in range(M.shape[0]))
    else:
        outs = (expr,)
    for o in outs:
        _check_smooth(name, o, block_list)
    theta = [e for b in block_list for e in _entries(b)]
    used = set().union(*(o.atoms(MatrixElement) for o in outs))
    if not any(e in used for e in theta):
        raise ValueError(f"model {name!r}: the output does not depend on any parameter block.")
    degree = _homogeneity_degree(outs, theta)
    return cls(name=name, block_list=tuple(block_list), degree=degree, input_dim=d,
               output_dim=len(outs), end_to_end=None, factors=None, outputs=outs)


from sympy.matrices.expressions.matexpr import MatrixElement  # noqa: E402


def _entries(b: Block) -> list:
    r, c = b.symbol.shape
    return [b.symbol[i, j] for i in range(r) for j in range(c)]


def _shapes_text(block_list, x) -> str:
    return ", ".join(f"{b.name} {tuple(b.symbol.shape)}" for b in block_list) + f", x {x.shape}"


def _check_smooth(name: str, expr, block_list) -> None:
    for fn in sp.preorder_traversal(expr):
        if isinstance(fn, _NON_SMOOTH):
            blocks = sorted({str(m.parent.name) for m in fn.atoms(MatrixElement)
                             if str(m.parent.name) != INPUT_NAME})
            raise ValueError(
                f"model {name!r}: {type(fn).__name__} is not differentiable everywhere "
                f"(applied to block(s) {blocks}); the gradient flow needs a smooth output. "
                f"Use a smooth activation (e.g. z**2, tanh, Softplus).")


def _homogeneity_degree(outs, theta):
    """Degree ``L`` with :math:`f(c\\theta) = c^L f(\\theta)` for all outputs, else ``None``.

    Polynomials in θ: ``Poly.homogeneous_order``. Otherwise Euler's identity
    :math:`\\langle\\theta, \\nabla f\\rangle = L f` with ``L`` a constant found symbolically.
    """
    degrees = set()
    for f in outs:
        f = sp.expand(f)
        if f == 0:
            continue
        try:
            P = sp.Poly(f, *theta)
            degrees.add(P.homogeneous_order())
        except sp.PolynomialError:
            euler = sum(t * sp.diff(f, t) for t in theta)
            ratio = sp.simplify(euler / f)
            degrees.add(int(ratio) if ratio.is_Integer else (ratio if ratio.is_number else None))
    if len(degrees) != 1 or None in degrees:
        return None
    L = degrees.pop()
    return int(L) if getattr(L, "is_Integer", isinstance(L, int)) else L
