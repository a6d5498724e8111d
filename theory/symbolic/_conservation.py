"""Conservation laws of gradient flows, proved symbolically at the matrix level (docs/theory.md §3).

* Deep linear nets (Arora, Cohen, Hazan 2018, Thm. 1; Du, Hu, Lee 2018, Thm. 2.1): the
  balancedness matrices :math:`D_l = W_{l+1}^T W_{l+1} - W_l W_l^T` are constant under gradient
  flow for any differentiable loss of the end-to-end map.
* Linear chains: :math:`a_{l+1}^2 - a_l^2` and :math:`a_2^2 - \\|w\\|^2` (the same law with
  :math:`W_1 = w^T`, :math:`W_l = a_l`).
* Diagonal linear nets :math:`\\langle u \\odot u - v \\odot v, x\\rangle`: :math:`u \\odot v` is
  constant (:math:`\\dot u = -2u \\odot g`, :math:`\\dot v = 2 v \\odot g`).
* With weight decay :math:`\\dot\\theta = -\\nabla\\mathcal L - \\lambda\\theta` each of these
  quadratic quantities obeys :math:`\\dot Q = -2\\lambda Q` exactly
  (so :math:`Q(t) = e^{-2\\lambda t}Q(0)`).

:func:`prove_conserved` substitutes the flow into :math:`\\dot Q` (forward-mode product rule),
keeping the loss gradient :math:`G = \\partial\\mathcal L/\\partial E` as an opaque symbol, so the
proof holds for *any* loss of the end-to-end map; it then expands and lets sympy cancel terms.
"""

from __future__ import annotations

__all__ = ["ConservationProof", "conserved_quantities", "prove_conserved"]

from dataclasses import dataclass

import sympy as sp

from . import _matcalc
from ._flows import LAM, GradientFlow
from ._models import Model


@dataclass(frozen=True)
class ConservationProof:
    """The outcome of :func:`prove_conserved`.

    Attributes
    ----------
    quantity : sympy.MatrixExpr
        :math:`Q(\\theta)`.
    derivative : sympy.MatrixExpr or sympy.Expr
        The simplified time derivative :math:`\\dot Q` along the flow (``ZeroMatrix`` when it
        cancels).
    expected : sympy.MatrixExpr
        ``ZeroMatrix`` for gradient flow, :math:`-2\\lambda Q` with weight decay.
    holds : bool
        Whether :math:`\\dot Q - \\text{expected}` simplifies to zero (a symbolic proof; ``False``
        means sympy could not reduce it, which for these polynomial identities means it is false).
    status : str
        ``'proved'`` or ``'not proved'`` with the residual.
    """

    quantity: object
    derivative: object
    expected: object
    holds: bool
    status: str

    def latex(self) -> str:
        """:math:`\\frac{d}{dt} Q = \\dot Q` in LaTeX."""
        return (
            rf"\frac{{d}}{{dt}}\left({sp.latex(self.quantity)}\right) = "
            rf"{sp.latex(self.derivative)}"
        )

    def to_dict(self) -> dict:
        return {
            "quantity": str(self.quantity),
            "derivative": str(self.derivative),
            "expected": str(self.expected),
            "holds": bool(self.holds),
            "status": self.status,
        }


def conserved_quantities(model: Model) -> dict[str, sp.MatrixExpr]:
    """The conservation laws of gradient flow on ``model`` (docs/theory.md §3), by name.

    Returns
    -------
    dict
        Deep linear net / chain: ``'D1', ..., 'D{L-1}'`` with
        :math:`D_l = W_{l+1}^T W_{l+1} - W_l W_l^T` (shape ``(d_l, d_l)``; for a chain
        :math:`W_1 = w^T`, so ``D1`` is :math:`a_2^2 - \\|w\\|^2` and ``Dl`` is
        :math:`a_{l+1}^2 - a_l^2`). Diagonal net: ``'uv'`` :math:`= u \\odot v`.
        Linear model: empty.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a theory.models.Model; got {type(model).__name__}.")
    if model.name == "diagonal":
        u, v = (b.symbol for b in model.block_list)
        return {"uv": sp.HadamardProduct(u, v)}
    if model.factors is None:
        return {}
    f = model.factors
    return {f"D{l}": f[l].T * f[l] - f[l - 1] * f[l - 1].T for l in range(1, len(f))}


def _hadamard_terms(e):
    """Expand ``e`` into ``[(scalar coefficient, (atom, ...))]`` with Hadamard products
    distributed over sums (Hadamard products commute, so atoms are later sorted)."""
    if isinstance(e, sp.MatAdd):
        return [t for a in e.args for t in _hadamard_terms(a)]
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_mmul()
        if isinstance(mats, sp.MatMul) and len(mats.args) == 1:
            mats = mats.args[0]
        if not isinstance(mats, sp.MatMul):
            return [(coeff * c, atoms) for c, atoms in _hadamard_terms(mats)]
        return [(coeff, (mats,))]
    if isinstance(e, sp.HadamardProduct):
        out = [(sp.Integer(1), ())]
        for a in e.args:
            out = [(c1 * c2, t1 + t2) for c1, t1 in out for c2, t2 in _hadamard_terms(a)]
        return out
    if isinstance(e, sp.HadamardPower) and e.exp.is_Integer and e.exp > 0:
        return _hadamard_terms(sp.HadamardProduct(*([e.base] * int(e.exp))))
    return [(sp.Integer(1), (e,))]


def _collect_hadamard(expr):
    """Collect like Hadamard monomials (sympy does not); ``ZeroMatrix`` if all cancel."""
    totals: dict = {}
    atoms_of: dict = {}
    for c, atoms in _hadamard_terms(expr):
        key = tuple(sorted(str(a) for a in atoms))
        totals[key] = totals.get(key, 0) + c
        atoms_of[key] = sorted(atoms, key=str)
    terms = []
    for key, c in totals.items():
        c = sp.simplify(c)
        if c != 0:
            atoms = atoms_of[key]
            h = atoms[0] if len(atoms) == 1 else sp.HadamardProduct(*atoms)
            terms.append(c * h)
    if not terms:
        return sp.ZeroMatrix(*expr.shape)
    return terms[0] if len(terms) == 1 else sp.MatAdd(*terms)


def _simplify(expr):
    if not getattr(expr, "is_Matrix", False):
        return sp.expand(expr)
    e = expr.doit().expand().doit()
    if e.has(sp.HadamardProduct, sp.HadamardPower):
        e = _collect_hadamard(e)
    return e


def _is_zero(expr) -> bool:
    return isinstance(expr, sp.ZeroMatrix) or expr == 0


def prove_conserved(flow: GradientFlow, quantity) -> ConservationProof:
    """Prove symbolically that ``quantity`` is conserved by ``flow``
    (or decays as :math:`e^{-2\\lambda t}` with weight decay).

    Parameters
    ----------
    flow : GradientFlow
        A matrix-level flow from :func:`theory.flows.derive_gradient_flow`.
    quantity : sympy.MatrixExpr or str
        :math:`Q(\\theta)` in the flow's block symbols, or a name from
        :func:`conserved_quantities`.

    Returns
    -------
    ConservationProof
        ``holds`` is True iff :math:`\\dot Q` equals ``expected``: 0 for gradient flow,
        :math:`-2\\lambda Q` for gradient flow with weight decay (Arora et al. 2018, Thm. 1;
        exact, not a bound).
    """
    if not isinstance(flow, GradientFlow):
        raise TypeError(f"flow must be a theory.flows.GradientFlow; got {type(flow).__name__}.")
    if flow.method == "expression":
        return _prove_expression(flow, quantity)
    if flow.method != "matrix":
        raise ValueError(
            "prove_conserved works on matrix-level flows; derive the flow with method='matrix'."
        )
    if isinstance(quantity, str):
        laws = conserved_quantities(flow.model)
        if quantity not in laws:
            raise ValueError(
                f"quantity {quantity!r} is not a conservation law of model {flow.model.name!r}; "
                f"known: {sorted(laws)}. Or pass a sympy expression in the block symbols."
            )
        quantity = laws[quantity]
    # the loss gradient G (and what it depends on) stays opaque: the proof is loss-agnostic
    defs = [(s, e) for s, e in flow.definitions if s.name not in ("G", "Gamma", "E", "F", "C")]
    rhs = _matcalc.expand_definitions(defs, flow.rhs_list)
    tangents = {b.symbol: r for b, r in zip(flow.block_list, rhs, strict=True)}
    dQ = _matcalc.jvp(quantity, tangents)
    shape = quantity.shape
    dQ = sp.ZeroMatrix(*shape) if dQ is None else _simplify(dQ)
    expected = -2 * LAM * quantity if flow.weight_decay else sp.ZeroMatrix(*shape)
    residual = _simplify(dQ - expected) if flow.weight_decay else dQ
    holds = _is_zero(residual)
    status = "proved" if holds else f"not proved: residual {residual}"
    return ConservationProof(
        quantity=quantity, derivative=dQ, expected=expected, holds=holds, status=status
    )


def _prove_expression(flow: GradientFlow, quantity) -> ConservationProof:
    """User models (``Model.from_expression``): loss-agnostic proof.

    Along :math:`\\dot\\theta = -\\sum_i \\sum_o \\Gamma_{io} \\nabla f_o(\\theta; x_i)
    (-\\lambda\\theta)` with arbitrary :math:`\\Gamma`, :math:`\\dot Q = 0` for every loss and
    data iff :math:`\\langle\\nabla Q, \\nabla_\\theta f_o(\\theta; x)\\rangle \\equiv 0` in θ and
    x for every output ``o`` (Marcotte, Gribonval & Peyré 2023, Sec. 2); with weight decay the
    extra term is :math:`-\\lambda\\langle\\theta, \\nabla Q\\rangle`, equal to the expected
    :math:`-2\\lambda Q` iff :math:`\\langle\\theta, \\nabla Q\\rangle = 2Q` (Euler).
    """
    model = flow.model
    theta = model.parameter_entries()
    if isinstance(quantity, str):
        raise TypeError("for a user model, quantity must be a sympy expression in the "
                        "parameter entries (strings are never parsed).")
    if not isinstance(quantity, (sp.Basic, sp.MatrixBase)):
        raise TypeError(f"quantity must be a sympy expression; got {type(quantity).__name__}.")
    q = quantity
    if getattr(q, "is_Matrix", False):
        rep = {b.symbol: sp.ImmutableMatrix(b.symbol.as_explicit()) for b in model.block_list}
        q = sp.ImmutableMatrix(q.xreplace(rep).as_explicit())
        entries = list(q)
    else:
        entries = [q]
    known = set(theta)
    from sympy.matrices.expressions.matexpr import MatrixElement

    for e in entries:
        unknown = {str(a) for a in e.atoms(MatrixElement) if a not in known}
        unknown |= {str(a) for a in e.free_symbols if isinstance(a, sp.Symbol)}
        if unknown:
            raise ValueError(f"quantity uses {sorted(unknown)}, which are not parameter entries "
                             f"of model {model.name!r} (blocks {list(model.blocks)}).")
    outs = model.output_entries()
    residual = None
    dQ = []
    for e in entries:
        grad = [sp.diff(e, t) for t in theta]
        for f in outs:
            r = sp.expand(sum(g * sp.diff(f, t) for g, t in zip(grad, theta, strict=True)))
            if r != 0 and residual is None:
                residual = r
        rhs = [r for R in flow.rhs_list for r in R]
        dQ.append(sum(g * r for g, r in zip(grad, rhs, strict=True)))
        if flow.weight_decay and residual is None:
            r = sp.expand(sum(t * g for t, g in zip(theta, grad, strict=True)) - 2 * e)
            if r != 0:
                residual = r
    holds = residual is None
    derivative = dQ[0] if len(dQ) == 1 else sp.Matrix(dQ)
    expected = (-2 * LAM * quantity) if flow.weight_decay else sp.Integer(0)
    status = ("proved: <∇Q, ∇f(θ; x)> = 0 identically, so dQ/dt = "
              + ("-2λQ" if flow.weight_decay else "0") + " for every loss and data") \
        if holds else f"not proved: residual {residual}"
    return ConservationProof(quantity=quantity, derivative=derivative, expected=expected,
                             holds=holds, status=status)
