"""Symbolic model factories (THEORY.md §1): linear model, linear chain, deep linear net,
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
        ``'linear'``, ``'linear_chain'``, ``'deep_linear'`` or ``'diagonal_linear'``.
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
    degree: int
    input_dim: int
    output_dim: int
    end_to_end: sp.MatrixExpr
    factors: tuple[sp.MatrixExpr, ...] | None = None

    def __post_init__(self):
        check_identifier("Model.name", self.name)
        for b in self.block_list:
            if not isinstance(b, Block):
                raise TypeError(f"Model.block_list must hold Block objects; got {b!r}.")
        _check_expression_names("Model.end_to_end", self.end_to_end)

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
        return {
            "name": self.name,
            "blocks": {k: list(v) for k, v in self.blocks.items()},
            "degree": self.degree,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "end_to_end": str(self.end_to_end),
        }


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
    """Linear chain :math:`f = a_L \\cdots a_2 \\langle w, x\\rangle` (THEORY.md §1), degree ``L``.

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
        name="diagonal_linear",
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
