"""Code generation: a :class:`~theory.flows.GradientFlow` to a numpy right-hand side and Jacobian.

:func:`compile_flow` prints the flow's straight-line program (definitions, optionally after
sympy's common-subexpression elimination, then one expression per block) with a subclass of
sympy's ``NumPyPrinter`` (the printer behind ``lambdify``): matrix products stay matrix products
(``@``), Hadamard products are ``*``, the logistic pieces print as ``scipy.special.expit`` and
``numpy.logaddexp`` (numerically stable). The Jacobian is generated in forward mode: the
directional derivative of every definition is derived symbolically (product rule through
``@``, chain rule through elementwise functions) and evaluated for all ``N`` unit directions
at once, batched along a leading axis.

Flat state convention: the state ``y`` of length ``N`` is the concatenation, in block order,
of each block raveled in C order (``CompiledFlow.blocks``: ordered ``name -> shape``).
"""

from __future__ import annotations

__all__ = ["CompiledFlow", "BoundFlow", "compile_flow"]

import math
import textwrap
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy.special import expit
from sympy.printing.numpy import NumPyPrinter

from . import _matcalc
from ._flows import GradientFlow, pack, unpack
from ._models import check_identifier


class _Printer(NumPyPrinter):
    """NumPyPrinter with ``@`` products and optional batched transposes (leading axis)."""

    def __init__(self, batched: bool = False):
        super().__init__({"fully_qualified_modules": True, "inline": True})
        self.batched = batched

    def _paren(self, expr):
        s = self._print(expr)
        if s.isidentifier() or (s.startswith("(") and s.endswith(")") and _balanced(s)):
            return s
        return f"({s})"

    def _print_MatrixSymbol(self, expr):
        return check_identifier("matrix symbol name in generated code", str(expr.name))

    def _print_MatMul(self, expr):
        coeff, mats = expr.as_coeff_mmul()
        margs = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
        body = self._chain(margs)
        if coeff == 1:
            return f"({body})"
        if coeff == -1:
            return f"(-({body}))"
        return f"(({self._print(coeff)}) * ({body}))"

    def _chain(self, margs) -> str:
        """Print a matrix chain in the cheapest parenthesisation (classic dynamic program).

        Shapes are concrete except the number of examples ``n``, costed as ``_N_COST``.
        """
        m = len(margs)
        if m <= 2:
            return " @ ".join(self._paren(a) for a in margs)
        dims = [_dim(margs[0].shape[0])] + [_dim(a.shape[1]) for a in margs]
        cost = [[0.0] * m for _ in range(m)]
        split = [[0] * m for _ in range(m)]
        for length in range(2, m + 1):
            for i in range(m - length + 1):
                j = i + length - 1
                best = None
                for s in range(i, j):
                    c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                    if best is None or c < best:
                        best, split[i][j] = c, s
                cost[i][j] = best

        def build(i, j):
            if i == j:
                return self._paren(margs[i])
            s = split[i][j]
            return f"({build(i, s)} @ {build(s + 1, j)})"

        return build(0, m - 1)

    def _print_MatAdd(self, expr):
        # print "a - b" for terms with coefficient -1 (no negated temporary)
        pos, neg = [], []
        for a in expr.args:
            if isinstance(a, sp.MatMul):
                coeff, mats = a.as_coeff_mmul()
                if coeff == -1:
                    margs = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
                    neg.append(self._chain(margs) if len(margs) > 1 else self._paren(margs[0]))
                    continue
            pos.append(self._paren(a))
        if not pos:
            return "(-" + " - ".join(neg) + ")"
        return "(" + " + ".join(pos) + "".join(f" - {t}" for t in neg) + ")"

    def _print_Pow(self, expr, rational=False):
        if expr.exp == -1 and not getattr(expr.base, "is_Matrix", False):
            return f"(1.0 / {self._paren(expr.base)})"
        return super()._print_Pow(expr, rational=rational)

    def _print_Transpose(self, expr):
        if self.batched:
            return f"numpy.swapaxes({self._print(expr.arg)}, -1, -2)"
        return f"{self._paren(expr.arg)}.T"

    def _print_HadamardProduct(self, expr):
        return "(" + " * ".join(self._paren(a) for a in expr.args) + ")"

    def _print_HadamardPower(self, expr):
        return f"({self._paren(expr.base)} ** {self._print(expr.exp)})"

    def _print_ElementwiseApplyFunction(self, expr):
        f = expr.function
        x = f.variables[0]
        marker = sp.Symbol("__ARG__")
        body = self._print(f.expr.xreplace({x: marker}))
        return "(" + body.replace("__ARG__", self._paren(expr.expr)) + ")"

    def _print_ZeroMatrix(self, expr):
        return f"numpy.zeros({tuple(expr.shape)!r})"

    def _print_OneMatrix(self, expr):
        r, c = (self._print(s) for s in expr.shape)
        return f"numpy.ones(({r}, {c}))"

    def _print_Symbol(self, expr):
        return check_identifier("symbol name in generated code", str(expr.name))


_N_COST = 1000.0
"""Nominal number of examples used to cost matrix chains that involve the data."""


def _dim(x) -> float:
    return float(x) if getattr(x, "is_Integer", False) or isinstance(x, int) else _N_COST


def _balanced(s: str) -> bool:
    """True if the outer parentheses of ``s`` enclose all of it."""
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(s) - 1:
            return False
    return True


@dataclass(frozen=True)
class CompiledFlow:
    """A compiled flow: numpy callables over the flat state and their source.

    Attributes
    ----------
    flow : GradientFlow
    blocks : dict
        Ordered ``name -> shape`` (flat-state layout, C-order ravel).
    rhs : callable
        ``rhs(t, y, params) -> (N,)``. ``params`` maps data names (``'X'`` ``(n, d)``,
        ``'Y'`` ``(n, k)`` or ``'y'`` ``(n,)``) and hyper-parameter names (``'lam'``,
        ``'alpha'``, ``'beta'``) to values. Autonomous: ``t`` is ignored. No validation beyond
        a clear error for a missing key; use :meth:`bind` for validated data.
    jac : callable or None
        ``jac(t, y, params) -> (N, N)``, ``J[i, j] = ∂ rhs_i / ∂ y_j``.
    source : str
        The generated Python source of ``rhs`` (and ``jac``).
    data_names, hyper_names : tuple of str
    cse : bool
    status : str
        ``'compiled'``.
    """

    flow: GradientFlow
    blocks: dict
    rhs: object
    jac: object
    source: str
    data_names: tuple[str, ...]
    hyper_names: tuple[str, ...]
    cse: bool
    status: str = "compiled"

    @property
    def size(self) -> int:
        return self.flow.size

    def pack(self, values: dict | None = None, /, **arrays) -> np.ndarray:
        """Flat state from ``{name: array}`` and/or keywords (``pack(w=w0)``)."""
        return pack(self.flow.block_list, values, **arrays)

    def unpack(self, y) -> dict:
        """``{name: array}`` from a flat state."""
        return unpack(self.flow.block_list, y)

    def bind(self, **params) -> BoundFlow:
        """Validate ``params`` once and return a callable ``f(t, y)`` with ``.jac(t, y)``.

        Raises
        ------
        ValueError
            On a missing or unexpected name, a wrong shape, non-finite data, labels not in
            ``{-1, +1}``, or a negative/non-finite hyper-parameter.
        """
        checked = _check_params(self, params)
        return BoundFlow(self, checked)

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "blocks": {k: list(v) for k, v in self.blocks.items()},
            "data": list(self.data_names),
            "hyper": list(self.hyper_names),
            "cse": self.cse,
            "jacobian": self.jac is not None,
            "source": self.source,
        }


class BoundFlow:
    """A compiled flow with its data bound: ``f(t, y)``, ``f.jac``, ``f.blocks``, ``f.pack``,
    ``f.unpack``, ``f.size``, ``f.model``.

    Interchangeable with the hand-written twins of ``solvers.flows`` (same ``blocks``,
    ``pack``/``unpack`` convention and ``model`` name). ``f.jac`` is ``jac(t, y) -> (N, N)``,
    or ``None`` when the flow was compiled with ``jacobian=False`` (so that
    ``solvers.integrate`` and ``solve_ivp`` use finite differences in implicit methods).
    """

    def __init__(self, compiled: CompiledFlow, params: dict):
        self.compiled = compiled
        self.params = params
        self.blocks = compiled.blocks
        self.model = compiled.flow.model.name
        self.kind = compiled.flow.kind

    def __call__(self, t, y):
        return self.compiled.rhs(t, y, self.params)

    @property
    def jac(self):
        """``jac(t, y) -> (N, N)``, or ``None`` if compiled with ``jacobian=False``."""
        if self.compiled.jac is None:
            return None
        return self._jac

    def _jac(self, t, y):
        return self.compiled.jac(t, y, self.params)

    @property
    def size(self) -> int:
        """N, the length of the flat state."""
        return self.compiled.size

    def pack(self, values=None, /, **arrays):
        """Flat state from ``{name: array}`` and/or keywords (``pack(w=w0)``)."""
        return self.compiled.pack(values, **arrays)

    def unpack(self, y):
        """``{name: array}`` (copies) from a flat state ``(N,)`` or a stack ``(T, N)``."""
        return self.compiled.unpack(y)


def _check_params(compiled: CompiledFlow, params: dict) -> dict:
    flow = compiled.flow
    expected = set(compiled.data_names) | set(compiled.hyper_names)
    missing = sorted(expected - set(params))
    extra = sorted(set(params) - expected)
    if missing or extra:
        raise ValueError(
            f"params must be exactly {sorted(expected)}; missing {missing}, unexpected {extra}. "
            f"Data: {[f'{d.name}: {d.shape}' for d in flow.data]}."
        )
    out: dict = {}
    n = None
    for spec in flow.data:
        a = np.asarray(params[spec.name], dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"params[{spec.name!r}] contains NaN or inf; pass finite data.")
        rows, cols = spec.symbol.shape
        if spec.kind == "inputs":
            if a.ndim != 2 or a.shape[1] != cols:
                raise ValueError(
                    f"params['X'] must have shape (n, {cols}) (one example per row); got {a.shape}."
                )
            n = a.shape[0]
        else:
            if a.ndim == 1 and cols == 1:
                a = a.reshape(-1, 1)
            if a.ndim != 2 or a.shape != (n, cols):
                raise ValueError(
                    f"params[{spec.name!r}] must have shape {spec.shape} with n = {n} "
                    f"(the rows of X); got {np.shape(params[spec.name])}."
                )
            if spec.kind == "labels" and not np.all(np.abs(a) == 1.0):
                raise ValueError(
                    f"params['y'] must hold labels in {{-1, +1}}; got values {np.unique(a)[:5]}. "
                    "Map {0, 1} labels with 2*y - 1."
                )
        if isinstance(flow.n, int) and n != flow.n:
            raise ValueError(
                f"this flow was derived for n = {flow.n} examples; params['X'] has {n} rows. "
                f"Derive it again with n={n}."
            )
        out[spec.name] = np.ascontiguousarray(a)
    for h in compiled.hyper_names:
        v = params[h]
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"params[{h!r}] must be a real number; got {v!r}.") from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"params[{h!r}] must be finite and >= 0; got {v!r}.")
        out[h] = v
    return out


def _param(params, name):
    try:
        return params[name]
    except KeyError:
        raise ValueError(
            f"params is missing {name!r}; the generated function's docstring lists its arguments."
        ) from None
    except TypeError:
        raise TypeError(f"params must be a dict of arrays; got {type(params).__name__}.") from None


def _column(params, name):
    return np.reshape(_param(params, name), (-1, 1))


def _bcast(value, n):
    """``value`` (a scalar or an ``(n, 1)`` column) as an ``(n, 1)`` float array."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n, 1))


_NAMESPACE = {"numpy": np, "_expit": expit, "_param": _param, "_column": _column,
              "_bcast": _bcast}


def _statements_with_cse(defs, outputs):
    """Run sympy's CSE over definitions and outputs; return (statements, outputs)."""
    exprs = [e for _, e in defs] + list(outputs)
    repl, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_c"), order="none")
    stmts = list(repl)
    nd = len(defs)
    stmts += [(s, e) for (s, _), e in zip(defs, reduced[:nd], strict=True)]
    return _order(stmts), reduced[nd:]


def _order(stmts):
    """Topological order (stable) of ``(symbol, expr)`` statements."""
    defined = {s for s, _ in stmts}
    out, done, pending = [], set(), list(stmts)
    while pending:
        rest = []
        for s, e in pending:
            deps = {a for a in e.free_symbols | e.atoms(sp.MatrixSymbol) if a in defined}
            if deps <= done:
                out.append((s, e))
                done.add(s)
            else:
                rest.append((s, e))
        if len(rest) == len(pending):
            raise RuntimeError(f"cyclic statements: {[str(s) for s, _ in rest]}")
        pending = rest
    return out


def _docstring(flow: GradientFlow, what: str) -> str:
    lay, o = [], 0
    for b in flow.block_list:
        lay.append(f"    {b.name}: y[{o}:{o + b.size}] reshaped to {b.shape} (C order)")
        o += b.size
    data = [f"    {d.name!r}: {d.shape}" for d in flow.data]
    hyp = [f"    {str(h)!r}: float" for h in flow.hyper]
    model = flow.model.name
    loss = flow.loss.name if flow.loss is not None else "-"
    return (
        f"{what} of the {flow.kind} flow (model {model}, loss {loss}), generated by\n"
        "theory.codegen.compile_flow.\n\n"
        "Arguments (in order): t (float, ignored: autonomous), y (flat state, shape "
        f"({flow.size},)), params (dict).\n\nState layout:\n"
        + "\n".join(lay)
        + "\n\nparams:\n"
        + "\n".join(data + hyp)
    )


def compile_flow(flow: GradientFlow, *, cse: bool = True, jacobian: bool = True) -> CompiledFlow:
    """Generate numpy code for ``flow``: ``rhs(t, y, params)`` and ``jac(t, y, params)``.

    Parameters
    ----------
    flow : GradientFlow
        From :func:`theory.flows.derive_gradient_flow` (or the Minnorm / normalized flows).
    cse : bool, default True
        Keep the flow's shared definitions (prefix/suffix products, ``G``) and run sympy's
        common-subexpression elimination over them. ``False`` prints each block's fully
        substituted expression (same values, more work: the cross-check of the CSE path).
    jacobian : bool, default True
        Also generate the Jacobian (forward mode, all unit directions batched).

    Returns
    -------
    CompiledFlow

    Examples
    --------
    >>> from theory.symbolic import deep_linear_net
    >>> from theory.symbolic import derive_gradient_flow
    >>> cf = compile_flow(derive_gradient_flow(deep_linear_net([2, 3, 1]), "squared"))
    >>> cf.blocks
    {'W1': (3, 2), 'W2': (1, 3)}
    """
    if not isinstance(flow, GradientFlow):
        raise TypeError(
            f"flow must be a theory.flows.GradientFlow (from derive_gradient_flow); "
            f"got {type(flow).__name__}."
        )
    # names enter the generated source: identifiers only (issue 14.14); free text (model and
    # loss names) enters only the docstring, which is written as a repr() literal
    for b in flow.block_list:
        check_identifier("block name", b.name)
        check_identifier(f"block {b.name!r}: symbol name", str(b.symbol.name))
    for d in flow.data:
        check_identifier("data name", d.name)
    for h in flow.hyper:
        check_identifier("hyper-parameter name", str(h))
    if flow.method == "expression":
        return _compile_expression(flow, cse=cse, jacobian=jacobian)
    entrywise = flow.method == "entrywise"
    if cse:
        stmts, outputs = _statements_with_cse(list(flow.definitions), flow.rhs_list)
    else:
        stmts, outputs = [], flow.rhs if not entrywise else list(flow.rhs_list)
        if isinstance(outputs, dict):
            outputs = list(outputs.values())
    N = flow.size
    pr = _Printer()
    pre = _preamble(flow)
    body = [f"{pr._print(s)} = {pr._print(e)}" for s, e in stmts]
    out_lines = [f"_out = numpy.empty({N})"]
    o = 0
    for b, e in zip(flow.block_list, outputs, strict=True):
        out_lines.append(f"_out[{o}:{o + b.size}] = numpy.reshape({pr._print(e)}, -1)")
        o += b.size
    out_lines.append("return _out")
    doc = _docstring(flow, "Right-hand side f(t, y, params)")
    src = _function("rhs", doc, pre + body + out_lines)
    jac_src = None
    if jacobian:
        jac_src = _jacobian_source(flow, stmts, outputs, pre, entrywise)
        src = src + "\n\n" + jac_src
    return _load(flow, src, f"{flow.kind} flow", jacobian=jacobian, cse=cse)


def _preamble(flow: GradientFlow) -> list[str]:
    lines = ["_y = y  # the flat state; the name y may be rebound to the labels below"]
    for d in flow.data:
        if d.kind == "inputs":
            lines.append(f"{d.name} = _param(params, {d.name!r})")
        else:
            lines.append(f"{d.name} = _column(params, {d.name!r})" if d.symbol.shape[1] == 1 else
                         f"{d.name} = _param(params, {d.name!r})")
    for h in flow.hyper:
        lines.append(f"{h} = _param(params, {str(h)!r})")
    if flow.method == "matrix":
        lines.append("n = X.shape[0]")
    o = 0
    for b in flow.block_list:
        r, c = b.symbol.shape
        lines.append(f"{b.name} = _y[{o}:{o + b.size}].reshape({r}, {c})")
        o += b.size
    return lines


def _function(name, doc, lines):
    # each docstring line is rendered by repr(): a string literal no quote in the text can
    # close (issue 14.14); the parenthesised concatenation is still the function's docstring
    doc_lines = doc.splitlines(keepends=True) or [""]
    literal = "(\n" + "".join(f"    {line!r}\n" for line in doc_lines) + ")"
    body = textwrap.indent(literal + "\n" + "\n".join(lines), "    ")
    return f"def {name}(t, y, params):\n{body}\n"


def _jacobian_source(flow, stmts, outputs, pre, entrywise) -> str:
    N = flow.size
    doc = _docstring(flow, "Jacobian J[i, j] = d f_i / d y_j, shape (N, N),")
    if entrywise:
        state = []
        for b in flow.block_list:
            ex = b.symbol.as_explicit()
            state += [ex[i, j] for i in range(ex.shape[0]) for j in range(ex.shape[1])]
        full = _matcalc.expand_definitions(stmts, outputs)
        flat = []
        for e in full:
            ex = sp.Matrix(e)
            flat += [ex[i, j] for i in range(ex.shape[0]) for j in range(ex.shape[1])]
        J = sp.Matrix(flat).jacobian(state)
        repl, (Jr,) = sp.cse([sp.ImmutableMatrix(J)], symbols=sp.numbered_symbols("_j"))
        pr = _Printer()
        lines = pre + [f"{pr._print(s)} = {pr._print(e)}" for s, e in repl]
        lines += [f"return numpy.asarray({pr._print(Jr)}, dtype=numpy.float64).reshape({N}, {N})"]
        return _function("jac", doc, lines)
    pr, prb = _Printer(), _Printer(batched=True)
    lines = pre + [f"{pr._print(s)} = {pr._print(e)}" for s, e in stmts]
    lines.append(f"_I = numpy.eye({N})")
    tangents = {}
    o = 0
    for b in flow.block_list:
        r, c = b.symbol.shape
        d = sp.MatrixSymbol(f"d_{b.name}", r, c)
        tangents[b.symbol] = d
        lines.append(f"{d.name} = _I[:, {o}:{o + b.size}].reshape({N}, {r}, {c})")
        o += b.size
    for s, e in stmts:
        if not getattr(s, "is_Matrix", False):
            continue
        t = _matcalc.jvp(e, tangents)
        if t is not None:
            d = sp.MatrixSymbol(f"d_{s.name}", *s.shape)
            tangents[s] = d
            lines.append(f"{d.name} = {prb._print(t)}")
    lines.append(f"_J = numpy.zeros(({N}, {N}))")
    o = 0
    for b, e in zip(flow.block_list, outputs, strict=True):
        t = _matcalc.jvp(e, tangents)
        r, c = b.symbol.shape
        if t is not None:
            lines.append(
                f"_J[{o}:{o + b.size}, :] = numpy.broadcast_to({prb._print(t)}, ({N}, {r}, {c}))"
                f".reshape({N}, {b.size}).T"
            )
        o += b.size
    lines.append("return _J")
    return _function("jac", doc, lines)




# --------------------------------------------------------------------------- user models
def _compile_expression(flow: GradientFlow, *, cse: bool, jacobian: bool) -> CompiledFlow:
    """Vectorised code for an entry-wise user model (:mod:`theory.symbolic._expression`).

    All calculus is symbolic, for one generic input; the code evaluates it for all examples at
    once (the input entries are the columns of ``X``) and contracts over examples with
    :math:`\\Gamma = \\partial\\mathcal L/\\partial F`. The Jacobian is
    :math:`-\\sum_i (J_i^T H_i J_i + \\sum_o \\Gamma_{io} \\nabla^2 f_o(x_i)) (-\\lambda I)`.
    """
    from ._expression import per_example_loss

    model, loss = flow.model, flow.loss
    k, d = model.output_dim, model.input_dim
    theta = model.parameter_entries()
    D = len(theta)
    p = [sp.Symbol(f"_p{i}", real=True) for i in range(D)]
    xs = [sp.Symbol(f"_x{j}", real=True) for j in range(d)]
    x = model.input_symbol
    rep = {t: s for t, s in zip(theta, p, strict=True)}
    rep.update({x[j, 0]: xs[j] for j in range(d)})
    outs = [o.xreplace(rep) for o in model.output_entries()]
    grads = [[sp.diff(f, q) for q in p] for f in outs]
    ell, Fs, Ys, _ = per_example_loss(loss, k)
    gam = [sp.diff(ell, F) for F in Fs]
    # the loss terms (in _F, _Y) are printed after _F without CSE: CSE would hoist their
    # subexpressions above the definition of _F
    exprs = list(outs) + [g for row in grads for g in row]
    hess_pairs, hess_loss = [], []
    if jacobian:
        hess_loss = [[sp.diff(gam[o], Fs[o2]) for o2 in range(k)] for o in range(k)]
        for o in range(k):
            for a in range(D):
                for b in range(a, D):
                    h = sp.diff(grads[o][a], p[b])
                    if h != 0:
                        hess_pairs.append((o, a, b))
                        exprs.append(h)
    if cse:
        repl, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_c"), order="none")
    else:
        repl, reduced = [], exprs
    it = iter(reduced)
    r_outs = [next(it) for _ in outs]
    r_grads = [[next(it) for _ in range(D)] for _ in outs]
    r_hess = [next(it) for _ in hess_pairs]
    r_gam, r_hloss = gam, hess_loss
    pr = _Printer()
    pre = ["_y = y  # the flat state; the name y may be rebound to the labels below"]
    for dspec in flow.data:
        if dspec.kind == "inputs":
            pre.append(f"{dspec.name} = _param(params, {dspec.name!r})")
        elif k == 1:
            pre.append(f"{dspec.name} = _column(params, {dspec.name!r})")
        else:
            pre.append(f"{dspec.name} = _param(params, {dspec.name!r})")
    for h in flow.hyper:
        pre.append(f"{h} = _param(params, {str(h)!r})")
    pre.append("n = X.shape[0]")
    target = flow.data[1].name
    pre += [f"_x{j} = X[:, {j}:{j + 1}]" for j in range(d)]
    pre += [f"_Y{o} = {target}[:, {o}:{o + 1}]" for o in range(k)]
    pre += [f"_p{i} = _y[{i}]" for i in range(D)]
    common = [f"{pr._print(sym)} = {pr._print(e)}" for sym, e in repl]
    common += [f"_F{o} = _bcast({pr._print(e)}, n)" for o, e in enumerate(r_outs)]
    common += [f"_Gam{o} = _bcast({pr._print(e)}, n)" for o, e in enumerate(r_gam)]
    for o in range(k):
        cols = ", ".join(f"_bcast({pr._print(e)}, n)" for e in r_grads[o])
        common.append(f"_Jf{o} = numpy.hstack([{cols}])")
    contraction = " + ".join(f"(_Gam{o}.T @ _Jf{o})" for o in range(k))
    decay = " - lam * _y" if flow.weight_decay else ""
    lines = pre + common + [f"return -({contraction}).reshape({D}){decay}"]
    src = _function("rhs", _docstring(flow, "Right-hand side f(t, y, params)"), lines)
    if jacobian:
        jl = pre + common
        for o in range(k):
            for o2 in range(k):
                jl.append(f"_H{o}_{o2} = _bcast({pr._print(r_hloss[o][o2])}, n)")
        terms = [f"(_Jf{o}.T @ (_H{o}_{o2} * _Jf{o2}))" for o in range(k) for o2 in range(k)]
        jl.append(f"_J = -({' + '.join(terms)})")
        for (o, a, b), e in zip(hess_pairs, r_hess, strict=True):
            jl.append(f"_s = numpy.sum(_Gam{o} * {pr._paren(e)})")
            jl.append(f"_J[{a}, {b}] -= _s")
            if a != b:
                jl.append(f"_J[{b}, {a}] -= _s")
        if flow.weight_decay:
            jl.append(f"_J -= lam * numpy.eye({D})")
        jl.append("return _J")
        doc = _docstring(flow, "Jacobian J[i, j] = d f_i / d y_j, shape (N, N),")
        src = src + "\n\n" + _function("jac", doc, jl)
    return _load(flow, src, "expression flow", jacobian=jacobian, cse=cse)


def _load(flow, src: str, label: str, *, jacobian: bool, cse: bool) -> CompiledFlow:
    """The one place generated source is executed: ``src`` holds only identifiers validated when
    the model was built and re-checked by the printer, and ``repr`` literals (issue 14.14)."""
    ns = dict(_NAMESPACE)
    exec(compile(src, f"<marginflow-generated {label}>", "exec"), ns)  # noqa: S102
    return CompiledFlow(
        flow=flow,
        blocks=flow.blocks,
        rhs=ns["rhs"],
        jac=ns.get("jac") if jacobian else None,
        source=src,
        data_names=tuple(d.name for d in flow.data),
        hyper_names=tuple(str(h) for h in flow.hyper),
        cse=cse,
    )
