"""Symbolic losses with numerically stable numeric forms (docs/theory.md §0).

Each :class:`Loss` is a sympy description of a training loss of the model output ``F`` (shape
``(n, k)``; ``k = 1`` for classification) together with the key of its numeric twin in
:mod:`solvers.losses` (``'squared'``, ``'logistic'``, ``'exp'``). This module never imports
:mod:`solvers`; the key is a plain string.

* squared (regression, **mean**): :math:`\\mathcal L = \\frac{1}{2n}\\|F - Y\\|_F^2`.
* logistic (classification, **sum**): :math:`\\mathcal L = \\sum_i \\log(1 + e^{-q_i})`,
  :math:`q_i = y_i F_i`.
* exp (classification, **sum**): :math:`\\mathcal L = \\sum_i e^{-q_i}`.

The logistic loss is written with the sympy functions :class:`Softplus` and :class:`Sigmoid`,
which evaluate exactly under ``evalf`` and print to the stable numpy forms
``numpy.logaddexp(0, x)`` and ``scipy.special.expit(x)`` in generated code (never
``log(1 + exp(x))``, which overflows for ``x > 709``).
"""

from __future__ import annotations

__all__ = ["Loss", "Sigmoid", "Softplus", "squared_loss", "logistic_loss", "exp_loss", "get_loss"]

from dataclasses import dataclass

import sympy as sp


class Sigmoid(sp.Function):
    """The logistic function :math:`\\sigma(x) = 1/(1 + e^{-x})`, printed as ``expit``."""

    nargs = 1

    def fdiff(self, argindex=1):
        s = Sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.exp)._eval_evalf(prec)

    def _numpycode(self, printer):
        return f"_expit({printer._print(self.args[0])})"


    def _latex(self, printer):
        return rf"\sigma\left({printer._print(self.args[0])}\right)"


class Softplus(sp.Function):
    """:math:`\\operatorname{softplus}(x) = \\log(1 + e^{x})`, printed as ``logaddexp(0, x)``."""

    nargs = 1

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.log)._eval_evalf(prec)

    def _numpycode(self, printer):
        return f"numpy.logaddexp(0.0, {printer._print(self.args[0])})"

    def _latex(self, printer):
        return rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"


@dataclass(frozen=True)
class Loss:
    """A training loss of the model output, symbolic and named after its numeric twin.

    Attributes
    ----------
    name : {'squared', 'logistic', 'exp'}
        Also the key of the numeric counterpart in :mod:`solvers.losses`.
    task : {'regression', 'classification'}
    reduction : {'mean', 'sum'}
        ``'mean'`` for regression (``1/(2n)`` factor), ``'sum'`` for classification.
    ell : sympy.Lambda or None
        The per-example loss :math:`\\ell(q)` of the margin (classification only).
    """

    name: str
    task: str
    reduction: str
    ell: sp.Lambda | None = None

    @property
    def ell_prime(self) -> sp.Lambda:
        """:math:`\\ell'(q)`, derived by sympy from :attr:`ell` (classification only)."""
        if self.ell is None:
            raise ValueError(f"loss {self.name!r} is a regression loss; it has no ell'(q).")
        q = self.ell.variables[0]
        return sp.Lambda(q, sp.diff(self.ell.expr, q))

    def expression(self, F, Y, n) -> sp.Expr:
        """The scalar loss of the output ``F`` (``(n, k)``) against targets/labels ``Y``.

        For classification ``Y`` holds the labels ``y`` as an ``(n, 1)`` column and the loss
        is :math:`\\sum_i \\ell(y_i F_i)`, written entrywise only when ``F`` is explicit; at the
        matrix level use :meth:`output_gradient` instead. For regression it is the trace form
        :math:`\\operatorname{tr}((F - Y)^T (F - Y)) / (2n)`.
        """
        if self.task == "regression":
            R = F - Y
            if isinstance(F, sp.MatrixBase) or isinstance(Y, sp.MatrixBase):
                R = sp.Matrix(R)
                return sum(r**2 for r in R) / (2 * n)
            return sp.trace(R.T * R) / (2 * n)
        F = sp.Matrix(F)
        Y = sp.Matrix(Y)
        return sum(self.ell(Y[i, 0] * F[i, 0]) for i in range(F.shape[0]))

    def output_gradient(self, F, Y, n) -> sp.MatrixExpr:
        """:math:`\\partial\\mathcal L/\\partial F` at the matrix level, shape ``(n, k)``.

        Regression: derived by sympy's matrix calculus from the trace form (``(F - Y)/n``).
        Classification: :math:`Y \\odot \\ell'(Y \\odot F)` (chain rule through the margins
        :math:`q = y \\odot F`, with :math:`\\ell'` derived by sympy).
        """
        if self.task == "regression":
            Fs = sp.MatrixSymbol("_F", *F.shape)
            return self.expression(Fs, Y, n).diff(Fs).subs(Fs, F)
        Q = sp.HadamardProduct(Y, F)
        lp = self.ell_prime
        return sp.HadamardProduct(Y, Q.applyfunc(lp))

    def latex(self) -> str:
        """The loss in LaTeX."""
        if self.name == "squared":
            return r"\mathcal{L} = \frac{1}{2n}\|F - Y\|_F^2"
        q = sp.Symbol("q_i")
        return r"\mathcal{L} = \sum_{i=1}^n " + sp.latex(self.ell(q))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "reduction": self.reduction,
            "ell": None if self.ell is None else str(self.ell.expr),
        }


_q = sp.Symbol("q", real=True)


def squared_loss() -> Loss:
    """The mean squared loss :math:`\\frac{1}{2n}\\|F - Y\\|_F^2` (docs/theory.md §0)."""
    return Loss(name="squared", task="regression", reduction="mean")


def logistic_loss() -> Loss:
    """The summed logistic loss :math:`\\sum_i \\log(1 + e^{-q_i})` (docs/theory.md §0)."""
    return Loss(
        name="logistic", task="classification", reduction="sum", ell=sp.Lambda(_q, Softplus(-_q))
    )


def exp_loss() -> Loss:
    """The summed exponential loss :math:`\\sum_i e^{-q_i}` (docs/theory.md §0)."""
    return Loss(name="exp", task="classification", reduction="sum", ell=sp.Lambda(_q, sp.exp(-_q)))


_FACTORIES = {"squared": squared_loss, "logistic": logistic_loss, "exp": exp_loss}


def get_loss(loss) -> Loss:
    """Return a :class:`Loss` from a loss object or its name ('squared', 'logistic', 'exp')."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in _FACTORIES:
        return _FACTORIES[loss]()
    raise ValueError(
        f"loss must be a theory.losses.Loss or one of {tuple(_FACTORIES)}; got {loss!r}. "
        "Use e.g. loss='logistic' or loss=logistic_loss()."
    )
