"""Gradient flows of user models given entry-wise (:meth:`theory.symbolic.Model.from_expression`).

For a model output :math:`f_o(\\theta; x)` (``o = 1..k``) and a loss of the outputs, the chain
rule over the examples gives

.. math::
    \\dot\\theta = -\\sum_{i=1}^n \\sum_{o=1}^k \\Gamma_{io}\\, \\nabla_\\theta f_o(\\theta; x_i)
    \\; (-\\lambda\\theta), \\qquad \\Gamma_{io} = \\partial\\mathcal L/\\partial F_{io},

with :math:`\\Gamma = (F - Y)/n` for the mean squared loss and
:math:`\\Gamma_i = y_i\\,\\ell'(y_i F_i)` for the summed classification losses (docs/theory.md §0).
The derivatives :math:`\\nabla_\\theta f` (and the Hessians, for the Jacobian) are taken
symbolically once, for one generic input ``x``; the generated code evaluates them for all
examples at once (``x_j`` is the column ``X[:, j]``) and contracts with :math:`\\Gamma`. This is
the generic path: its cost grows with the number of parameters ``D`` (``D`` gradient entries,
``D²`` Hessian entries), whereas the factories' matrix-level path does not grow with widths.
"""

from __future__ import annotations

import sympy as sp

from ._flows import LAM, GradientFlow, _data_specs
from ._losses import Loss
from ._models import N_EXAMPLES, Model

__all__ = ["derive_expression_flow", "ExampleSum"]


class ExampleSum(sp.Function):
    """:math:`\\sum_{i=1}^n g(x_i)`: a sum over the examples (display only in flows)."""

    nargs = 1

    def _latex(self, printer):
        return rf"\sum_{{i=1}}^{{n}} \left({printer._print(self.args[0])}\right)"


def _gamma_symbols(k: int):
    return [sp.Symbol(f"Gamma_{o}") for o in range(k)]


def derive_expression_flow(model: Model, loss: Loss, *, weight_decay: bool = False
                           ) -> GradientFlow:
    """The gradient flow of an entry-wise user model (see the module docstring).

    ``rhs_list`` holds, per block, the matrix of
    :math:`-\\sum_i \\sum_o \\Gamma_{io}\\,\\partial f_o(\\theta; x_i)/\\partial\\theta_j`
    (``ExampleSum``, for display and proofs); :func:`theory.symbolic.compile_flow` generates the
    vectorised code from the model's outputs directly.
    """
    data = _data_specs(model, loss, N_EXAMPLES)
    gam = _gamma_symbols(model.output_dim)
    outs = model.output_entries()
    rhs = []
    for b in model.block_list:
        r, c = b.symbol.shape
        entries = []
        for i in range(r):
            for j in range(c):
                t = b.symbol[i, j]
                g = sum(G * sp.diff(f, t) for G, f in zip(gam, outs, strict=True))
                e = -ExampleSum(g) if g != 0 else sp.Integer(0)
                if weight_decay:
                    e = e - LAM * t
                entries.append(e)
        rhs.append(sp.ImmutableMatrix(r, c, entries))
    return GradientFlow(
        kind="gradient",
        model=model,
        loss=loss,
        block_list=model.block_list,
        rhs_list=tuple(rhs),
        definitions=(),
        data=data,
        hyper=(LAM,) if weight_decay else (),
        method="expression",
        weight_decay=weight_decay,
    )


def per_example_loss(loss: Loss, k: int):
    """``(ell, F, Y, n)``: the per-example loss in scalar symbols ``_F{o}``, ``_Y{o}``, ``n``
    (its sum over examples is the training loss, docs/theory.md §0)."""
    F = [sp.Symbol(f"_F{o}", real=True) for o in range(k)]
    Y = [sp.Symbol(f"_Y{o}", real=True) for o in range(k)]
    n = sp.Symbol("n", positive=True)
    if loss.task == "regression":
        ell = sum((f - y) ** 2 for f, y in zip(F, Y, strict=True)) / (2 * n)
    else:
        ell = loss.ell(Y[0] * F[0])
    return ell, F, Y, n
