"""Private matrix-calculus helpers: cached sympy rules, a reverse-mode rule set for Hadamard
products (where sympy's ``.diff`` fails), forward-mode tangents (for Jacobians), substitution of
straight-line definitions.
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

_dims = sp.symbols("_k _a _b _d", integer=True, positive=True)


@cache
def bilinear_rule(left: bool, right: bool):
    """The gradient of :math:`\\operatorname{tr}(G^T A W B)` w.r.t. ``W``, derived by sympy once.

    Returns ``(rule, G, A, W, B)`` with placeholder symbols of symbolic shapes; ``A``/``B`` are
    ``None`` when absent (identity). The rule is :math:`A^T G B^T`.
    """
    k, a, b, d = _dims
    W = sp.MatrixSymbol("_W", a, b)
    A = sp.MatrixSymbol("_A", k, a) if left else None
    B = sp.MatrixSymbol("_B", b, d) if right else None
    G = sp.MatrixSymbol("_G", k if left else a, d if right else b)
    expr = W
    if A is not None:
        expr = A * expr
    if B is not None:
        expr = expr * B
    rule = sp.trace(G.T * expr).diff(W)
    return rule, G, A, W, B


def apply_bilinear_rule(G, A, W, B):
    """:math:`\\partial \\operatorname{tr}(G^T A W B)/\\partial W` for concrete symbols."""
    rule, Gp, Ap, Wp, Bp = bilinear_rule(A is not None, B is not None)
    rep = {Gp: G, Wp: W}
    if A is not None:
        rep[Ap] = A
    if B is not None:
        rep[Bp] = B
    return rule.xreplace(rep)


@cache
def factor_rule(transposed: bool):
    """The gradient of :math:`\\operatorname{tr}(K^T f(B))` w.r.t. ``B`` for ``f(B) = B`` or
    ``B^T``, derived by sympy once with symbolic shapes: ``K`` or ``K^T``."""
    k, a, _, _ = _dims
    B = sp.MatrixSymbol("_Bk", a, k) if transposed else sp.MatrixSymbol("_Bk", k, a)
    fB = B.T if transposed else B
    K = sp.MatrixSymbol("_Kk", k, a)
    return sp.trace(K.T * fB).diff(B), K


def apply_factor_rule(K, factor, block):
    """Chain rule from the gradient ``K`` w.r.t. a factor (``block`` or its transpose)."""
    if factor == block:
        rule, Kp = factor_rule(False)
    elif isinstance(factor, sp.Transpose) and factor.arg == block:
        rule, Kp = factor_rule(True)
    else:
        Kp = sp.MatrixSymbol("_K", *factor.shape)
        return sp.trace(Kp.T * factor).diff(block).xreplace({Kp: K})
    return rule.xreplace({Kp: K})


def vjp(expr, cot, wrt):
    """Reverse mode: the gradient of :math:`\\operatorname{tr}(\\bar C^T \\, expr)` w.r.t. ``wrt``.

    Handles MatrixSymbol, MatAdd, MatMul (constant scalar coefficient), Transpose and
    HadamardProduct, which covers the models of :mod:`theory.models`. Returns ``None`` for zero.
    """
    if expr == wrt:
        return cot
    if not expr.has(wrt):
        return None
    if isinstance(expr, sp.MatAdd):
        return add([vjp(a, cot, wrt) for a in expr.args])
    if isinstance(expr, sp.Transpose):
        return vjp(expr.arg, cot.T, wrt)
    if isinstance(expr, sp.MatMul):
        coeff, mats = expr.as_coeff_mmul()
        mats = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
        if coeff.has(wrt):
            raise NotImplementedError(f"state-dependent scalar coefficient in {expr}")
        terms = []
        for i, m in enumerate(mats):
            if not m.has(wrt):
                continue
            c = cot
            if i > 0:
                c = _mm(*mats[:i]).T * c
            if i < len(mats) - 1:
                c = c * _mm(*mats[i + 1 :]).T
            terms.append(vjp(m, coeff * c, wrt))
        return add(terms)
    if isinstance(expr, sp.HadamardProduct):
        terms = []
        for i, m in enumerate(expr.args):
            others = expr.args[:i] + expr.args[i + 1 :]
            terms.append(vjp(m, sp.HadamardProduct(cot, *others), wrt))
        return add(terms)
    if isinstance(expr, sp.HadamardPower):
        base, p = expr.args
        d = sp.HadamardProduct(p * sp.HadamardPower(base, p - 1), cot) if p != 2 else (
            sp.HadamardProduct(2 * base, cot)
        )
        return vjp(base, d, wrt)
    raise NotImplementedError(f"no reverse-mode rule for {type(expr).__name__}: {expr}")


def _mm(*mats):
    return mats[0] if len(mats) == 1 else sp.MatMul(*mats)


def add(terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else sp.MatAdd(*terms)


def jvp(expr, tangents: dict):
    """Forward mode: the directional derivative of ``expr`` given tangents of its symbols.

    ``tangents`` maps MatrixSymbol -> tangent expression (same shape). Returns ``None`` for zero.
    Custom matrix expressions provide ``_jvp(tangents)``.
    """
    if isinstance(expr, sp.MatrixSymbol):
        return tangents.get(expr)
    if isinstance(expr, (sp.OneMatrix, sp.ZeroMatrix, sp.Identity)):
        return None
    if hasattr(expr, "_jvp"):
        return expr._jvp(tangents)
    if not getattr(expr, "is_Matrix", False):
        return None  # scalars (n, lam, numbers) are constants
    if isinstance(expr, sp.MatAdd):
        return add([jvp(a, tangents) for a in expr.args])
    if isinstance(expr, sp.Transpose):
        t = jvp(expr.arg, tangents)
        return None if t is None else t.T
    if isinstance(expr, sp.MatMul):
        coeff, mats = expr.as_coeff_mmul()
        mats = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
        terms = []
        for i, m in enumerate(mats):
            t = jvp(m, tangents)
            if t is not None:
                terms.append(sp.MatMul(coeff, *mats[:i], t, *mats[i + 1 :]))
        return add(terms)
    if isinstance(expr, sp.HadamardProduct):
        terms = []
        for i, m in enumerate(expr.args):
            t = jvp(m, tangents)
            if t is not None:
                terms.append(sp.HadamardProduct(*expr.args[:i], t, *expr.args[i + 1 :]))
        return add(terms)
    if isinstance(expr, sp.HadamardPower):
        base, p = expr.args
        t = jvp(base, tangents)
        if t is None:
            return None
        scale = 2 * base if p == 2 else p * sp.HadamardPower(base, p - 1)
        return sp.HadamardProduct(scale, t)
    if isinstance(expr, ElementwiseApplyFunction):
        t = jvp(expr.expr, tangents)
        if t is None:
            return None
        f = expr.function
        x = f.variables[0]
        fp = sp.Lambda(x, sp.diff(f.expr, x))
        return sp.HadamardProduct(expr.expr.applyfunc(fp), t)
    raise NotImplementedError(f"no forward-mode rule for {type(expr).__name__}: {expr}")


def expand_definitions(definitions, exprs):
    """Substitute straight-line ``definitions`` ``((sym, expr), ...)`` into ``exprs``."""
    full: dict = {}
    for sym, e in definitions:
        full[sym] = e.xreplace(full)
    return [e.xreplace(full).doit() for e in exprs]
