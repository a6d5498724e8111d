"""Discovering conservation laws (Marcotte, Gribonval & Peyré 2023, arXiv:2307.00144;
docs/theory.md §11).

If the loss depends on θ only through a reparametrisation :math:`\\phi(\\theta)` (here: the
coefficients of the model output as a polynomial in the input ``x``, e.g. the end-to-end map),
a function ``h`` is conserved by the gradient flow of **every** loss :math:`L(\\phi(\\theta))` iff
:math:`\\langle\\nabla h, \\nabla\\phi_i\\rangle = 0` for all ``i`` (their Sec. 2), and the
number of independent laws near a generic θ is
:math:`D - \\dim \\operatorname{Lie}(\\nabla\\phi)(\\theta)`
(their Sec. 3, where that dimension is locally constant).

* :func:`find_conserved`: a basis of the polynomial laws of degree ≤ k. The unknowns are the
  coefficients of a generic polynomial; each condition :math:`\\langle\\nabla h, \\nabla\\phi_i
  \\rangle \\equiv 0` is linear in them; the null space is computed exactly over the rationals
  (``DomainMatrix`` over QQ). Each law is then **proved** again by sympy (``expand`` of
  :math:`\\langle\\nabla h, \\nabla\\phi_i\\rangle` to 0) — a second, independent computation.
* :func:`count_conserved`: :math:`D - \\dim\\operatorname{Lie}(\\nabla\\phi)(\\theta_0)` with
  brackets generated until the dimension stabilises, evaluated exactly at random rational
  points (probability-one genericity: a polynomial rank drops only on an algebraic subset).

Cited by section (arXiv:2307.00144v2); theorem numbers were not checked against the paper.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass

import sympy as sp
from sympy import QQ
from sympy.polys.matrices import DomainMatrix

from ._conservation import ConservationProof
from ._models import Model

__all__ = ["DiscoveredLaws", "LawCount", "find_conserved", "count_conserved", "prove_law",
           "reparametrisation"]


@dataclass(frozen=True)
class LawCount:
    """The outcome of :func:`count_conserved`.

    Attributes
    ----------
    n_params : int
        ``D``.
    lie_dim : int
        :math:`\\dim\\operatorname{Lie}(\\nabla\\phi)(\\theta_0)` at the random rational points.
    n_laws : int
        ``D - lie_dim``: the number of functionally independent conservation laws (Marcotte et
        al. 2023, Sec. 3), for every loss of φ (and, with ``weight_decay``, of
        :math:`L(\\phi) + \\lambda\\|\\theta\\|^2/2`).
    generator_rank : int
        Rank of the generators :math:`\\nabla\\phi_i` alone.
    n_brackets : int
        Brackets that raised the rank.
    status : str
    """

    n_params: int
    lie_dim: int
    n_laws: int
    generator_rank: int
    n_brackets: int
    weight_decay: bool
    runtime: float
    status: str

    def to_dict(self) -> dict:
        return {"n_params": self.n_params, "lie_dim": self.lie_dim, "n_laws": self.n_laws,
                "generator_rank": self.generator_rank, "n_brackets": self.n_brackets,
                "weight_decay": self.weight_decay, "runtime_s": self.runtime,
                "status": self.status}


@dataclass(frozen=True)
class DiscoveredLaws:
    """The outcome of :func:`find_conserved`.

    Attributes
    ----------
    laws : tuple of sympy.Expr
        A basis of the vector space of polynomial conservation laws of degree ≤ ``degree``
        (constants excluded), in the model's parameter entries.
    proofs : tuple of ConservationProof
        One per law: :math:`\\langle\\nabla h, \\nabla\\phi_i\\rangle` expanded by sympy.
    n_independent : int
        Functional rank of the laws (rank of their gradients at a random rational point).
    count : LawCount or None
    complete : bool or None
        ``n_independent == count.n_laws``: the laws found generate all conservation laws
        (locally, functionally); None when no count was made.
    statement : str
    """

    model_name: str
    degree: int
    laws: tuple
    proofs: tuple
    n_independent: int
    count: LawCount | None
    complete: bool | None
    statement: str
    runtime: float

    def to_dict(self) -> dict:
        return {"model": self.model_name, "degree": self.degree,
                "laws": [str(h) for h in self.laws],
                "proofs": [p.to_dict() for p in self.proofs],
                "n_independent": self.n_independent,
                "count": None if self.count is None else self.count.to_dict(),
                "complete": self.complete, "statement": self.statement,
                "runtime_s": self.runtime}


# ----------------------------------------------------------------------------- helpers
def reparametrisation(model: Model) -> tuple:
    """:math:`\\phi(\\theta)`: the coefficients of the model output as a polynomial in ``x``
    (end-to-end entries for linear-in-x models), so that :math:`f = \\sum_\\beta
    \\phi_\\beta(\\theta) x^\\beta`. ValueError if the output is not polynomial in ``x``."""
    if not isinstance(model, Model):
        raise TypeError(f"model must be a theory.symbolic.Model; got {type(model).__name__}.")
    x = model.input_symbol
    xs = [x[j, 0] for j in range(model.input_dim)]
    out = []
    for o, f in enumerate(model.output_entries()):
        try:
            P = sp.Poly(sp.expand(f), *xs)
        except sp.PolynomialError:
            raise ValueError(f"model {model.name!r}: output {o} is not polynomial in x; pass "
                             f"phi= (the reparametrisation the loss factors through).") from None
        out += [sp.expand(c) for c in P.coeffs()]
    return tuple(c for c in out if c != 0)


def _setup(model, phi):
    theta = model.parameter_entries()
    D = len(theta)
    t = sp.symbols(f"_t0:{D}", real=True)
    to_t = dict(zip(theta, t, strict=True))
    if phi is None:
        phi = reparametrisation(model)
    if isinstance(phi, (str, bytes)):
        raise TypeError("phi must be a sequence of sympy expressions; strings are never parsed.")
    polys = []
    for i, e in enumerate(phi):
        if not isinstance(e, sp.Basic):
            raise TypeError(f"phi[{i}] must be a sympy expression; got {type(e).__name__}.")
        e = sp.sympify(e).xreplace(to_t)
        extra = e.free_symbols - set(t)
        if extra or e.atoms(sp.MatrixSymbol):
            raise ValueError(f"phi[{i}] = {e} uses symbols that are not parameter entries of "
                             f"model {model.name!r}: {sorted(map(str, extra))}.")
        try:
            polys.append(sp.Poly(e, *t, domain=QQ))
        except (sp.PolynomialError, sp.CoercionFailed):
            raise ValueError(f"phi[{i}] is not a polynomial with rational coefficients in the "
                             f"parameters; discovery is exact polynomial algebra.") from None
    if not polys:
        raise ValueError(f"model {model.name!r}: empty reparametrisation phi.")
    return theta, t, polys


def _grad(poly: sp.Poly, D: int) -> list[dict]:
    """∇ of a Poly as a list of exponent dicts."""
    return [poly.diff(poly.gens[p]).as_dict(native=True) if poly.degree(poly.gens[p]) > 0
            else {}
            for p in range(D)]


def _random_point(D: int, rng: random.Random):
    """Random non-zero rationals (numerators up to 1e6, denominators up to 1e3)."""
    out = []
    while len(out) < D:
        num = rng.randint(-10**6, 10**6)
        if num:
            out.append(QQ(num, rng.randint(1, 10**3)))
    return out


# ----------------------------------------------------------------------------- find
def find_conserved(model: Model, degree: int = 2, *, phi=None, count: bool = True,
                   weight_decay: bool = False, seed: int = 0) -> DiscoveredLaws:
    """A basis of all polynomial conservation laws of degree ≤ ``degree``.

    Marcotte, Gribonval & Peyré (2023), Sec. 2 (characterisation, exact) and Sec. 4 (the
    polynomial ansatz): ``h`` is conserved for every loss of φ iff
    :math:`\\langle\\nabla h, \\nabla\\phi_i\\rangle \\equiv 0`.

    Parameters
    ----------
    model : Model
    degree : int, default 2
        Maximal total degree ``k ≥ 1`` of the laws.
    phi : sequence of sympy.Expr, optional
        The reparametrisation (polynomials in the model's parameter entries). Default: the
        coefficients of the output in ``x`` (:func:`reparametrisation`). For a two-layer ReLU
        net pass :math:`\\phi_{jk} = v_j U_{jk}` (the paper's per-neuron products).
    count : bool, default True
        Also run :func:`count_conserved` and state whether the laws found are complete.
    weight_decay : bool, default False
        Laws of :math:`L(\\phi) + \\lambda\\|\\theta\\|^2/2` for every ``L`` (``||θ||²`` joins φ).
    seed : int
        Seed of the random rational points (ranks).

    Returns
    -------
    DiscoveredLaws
    """
    start = time.perf_counter()
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be an int >= 1; got {degree!r}.")
    theta, t, polys = _setup(model, phi)
    D = len(t)
    if weight_decay:
        polys = polys + [sp.Poly(sum(v**2 for v in t), *t, domain=QQ)]
    grads = [_grad(P, D) for P in polys]
    monomials = [m for k in range(1, degree + 1)
                 for m in _exponents(D, k)]
    col = {}
    rows: dict = {}
    for a, alpha in enumerate(monomials):
        for i, g in enumerate(grads):
            # <∇θ^α, ∇φ_i> = Σ_p α_p θ^{α − e_p} ∂_pφ_i
            for p in range(D):
                if alpha[p] == 0 or not g[p]:
                    continue
                base = list(alpha)
                base[p] -= 1
                for exp, c in g[p].items():
                    key = (i, tuple(b + e for b, e in zip(base, exp, strict=True)))
                    r = rows.setdefault(key, {})
                    r[a] = r.get(a, QQ(0)) + QQ(alpha[p]) * c
        col[a] = alpha
    row_list = [r for r in rows.values() if any(v != 0 for v in r.values())]
    nA = len(monomials)
    if row_list:
        M = DomainMatrix([[r.get(a, QQ(0)) for a in range(nA)] for r in row_list],
                         (len(row_list), nA), QQ)
        null = M.nullspace().to_Matrix()
        basis = [null.row(i) for i in range(null.rows)]
    else:
        basis = [sp.Matrix([[1 if a == b else 0 for a in range(nA)]]) for b in range(nA)]
    back = dict(zip(t, theta, strict=True))
    laws = []
    for vec in basis:
        vec = vec / _content(vec)
        h = sum(c * sp.Mul(*[v**e for v, e in zip(t, monomials[a], strict=True)])
                for a, c in enumerate(vec) if c != 0)
        laws.append(h)
    proofs = tuple(_prove(h, t, polys, weight_decay) for h in laws)
    laws_theta = tuple(sp.expand(h.xreplace(back)) for h in laws)
    rng = random.Random(seed)
    if laws:
        point = _random_point(D, rng)
        pt = {v: QQ.to_sympy(c) for v, c in zip(t, point, strict=True)}
        G = DomainMatrix([[QQ.from_sympy(sp.diff(h, v).xreplace(pt))
                           for v in t] for h in laws], (len(laws), D), QQ)
        n_ind = G.rank()
    else:
        n_ind = 0
    cnt = count_conserved(model, phi=phi, weight_decay=weight_decay, seed=seed) if count else None
    if cnt is None:
        complete, statement = None, f"{len(laws)} polynomial laws of degree ≤ {degree} " \
                                    f"({n_ind} functionally independent); no count made."
    else:
        complete = n_ind == cnt.n_laws
        if complete:
            statement = (f"the laws found are complete: {n_ind} functionally independent "
                         f"polynomial laws of degree ≤ {degree}, and D − dim Lie = "
                         f"{cnt.n_params} − {cnt.lie_dim} = {cnt.n_laws} (Marcotte et al. 2023, "
                         f"Sec. 3)")
        else:
            statement = (f"not complete at degree ≤ {degree}: {n_ind} functionally independent "
                         f"laws found, D − dim Lie = {cnt.n_laws}; the others are of higher "
                         f"degree or not polynomial")
    return DiscoveredLaws(model.name, degree, laws_theta, proofs, n_ind, cnt, complete,
                          statement, time.perf_counter() - start)


def _exponents(D: int, k: int):
    """Exponent tuples of the monomials of total degree exactly ``k`` in ``D`` variables."""
    for combo in itertools.combinations_with_replacement(range(D), k):
        e = [0] * D
        for p in combo:
            e[p] += 1
        yield tuple(e)


def _content(vec):
    """Normalise a rational vector: integer entries, first non-zero entry positive."""
    dens = [sp.Rational(c).q for c in vec if c != 0]
    nums = [abs(sp.Rational(c).p) for c in vec if c != 0]
    lcm = sp.ilcm(*dens) if len(dens) > 1 else dens[0]
    scaled = [sp.Rational(c) * lcm for c in vec if c != 0]
    g = sp.igcd(*[int(abs(s)) for s in scaled]) if len(scaled) > 1 else abs(int(scaled[0]))
    first = next(c for c in vec if c != 0)
    del nums
    return sp.Rational(g, lcm) * (1 if first > 0 else -1)


def prove_law(model: Model, h, *, phi=None, weight_decay: bool = False) -> ConservationProof:
    r"""Prove that ``h`` is conserved by the gradient flow of **every** loss of ``φ(θ)``:
    :math:`\langle\nabla h, \nabla\phi_i\rangle \equiv 0` for every ``i`` (Marcotte,
    Gribonval & Peyré 2023, §2; docs/theory.md §11), exactly (sympy ``expand``).

    ``h`` is a sympy expression in the model's parameter entries (never a string); ``phi``
    defaults to :func:`reparametrisation`. A non-law (e.g. ``||U||² + ||V||²``) gives
    ``holds=False`` with the residual.
    """
    if not isinstance(h, sp.Basic):
        raise TypeError(f"h must be a sympy expression; got {type(h).__name__} (strings are "
                        f"never parsed).")
    theta, t, polys = _setup(model, phi)
    return _prove(h.xreplace(dict(zip(theta, t, strict=True))), t, polys, weight_decay)


def _prove(h, t, polys, weight_decay) -> ConservationProof:
    """sympy: :math:`\\langle\\nabla h, \\nabla\\phi_i\\rangle` expands to 0 for every i."""
    gh = [sp.diff(h, v) for v in t]
    residuals = []
    for P in polys:
        e = P.as_expr()
        r = sp.expand(sum(a * sp.diff(e, v) for a, v in zip(gh, t, strict=True)))
        if r != 0:
            residuals.append(r)
    holds = not residuals
    status = ("proved: <∇h, ∇φ_i> = 0 for every i, so dh/dt = 0 for every loss of φ"
              + (" and weight decay" if weight_decay else "")) if holds else \
        f"not proved: residual {residuals[0]}"
    return ConservationProof(quantity=h, derivative=sp.Integer(0) if holds else residuals[0],
                             expected=sp.Integer(0), holds=holds, status=status)


# ----------------------------------------------------------------------------- count
class _Echelon:
    """Incremental exact row echelon form over QQ (rank updates in O(D·rank))."""

    def __init__(self):
        self.rows: list = []  # (pivot, row) with row[pivot] == 1

    def reduce(self, v):
        v = list(v)
        for piv, row in self.rows:
            c = v[piv]
            if c:
                v = [a - c * b for a, b in zip(v, row, strict=True)]
        return v

    def add_if_independent(self, v) -> bool:
        v = self.reduce(v)
        piv = next((k for k, a in enumerate(v) if a), None)
        if piv is None:
            return False
        inv = 1 / v[piv]
        self.rows.append((piv, [a * inv for a in v]))
        return True


def _mono(exp, pt):
    m = QQ(1)
    for v, e in zip(pt, exp, strict=True):
        if e:
            m *= v**e
    return m


def _jacobian_at(F, T, pt):
    """``J[i][p] = ∂F_i/∂t_p`` at ``pt`` (rationals, all non-zero), one pass over the terms:
    ∂(c θ^α)/∂θ_p = c α_p θ^α / θ_p."""
    D = len(T)
    J = []
    for f in F:
        row = [QQ(0)] * D
        for exp, c in f.items():
            m = c * _mono(exp, pt)
            for k, e in enumerate(exp):
                if e:
                    row[k] += e * m / pt[k]
        J.append(row)
    return J


def _value_at(F, pt):
    return [sum((c * _mono(exp, pt) for exp, c in f.items()), QQ(0)) for f in F]


def _matvec(J, v):
    return [sum((a * b for a, b in zip(row, v, strict=True) if a and b), QQ(0)) for row in J]


def count_conserved(model: Model, *, phi=None, weight_decay: bool = False, seed: int = 0,
                    max_rounds: int = 50) -> LawCount:
    """The number of independent conservation laws, :math:`D - \\dim\\operatorname{Lie}
    (\\nabla\\phi)(\\theta)` (Marcotte, Gribonval & Peyré 2023, Sec. 3).

    Brackets :math:`[\\nabla\\phi_i, W]` of the generators with the fields kept so far are
    added while they raise the rank at a random rational point (right-nested brackets span the
    Lie algebra, by the Jacobi identity); it stops when a round adds nothing. Each candidate is
    evaluated at the point without being expanded (:math:`[X, Y](\\theta_0) = J_Y X - J_X Y`);
    only the kept fields are expanded symbolically. The final rank is confirmed at a second
    random point (exact arithmetic; a polynomial rank drops only on an algebraic subset).
    """
    from sympy.polys.rings import ring

    start = time.perf_counter()
    _, t, polys = _setup(model, phi)
    D = len(t)
    if weight_decay:
        polys = polys + [sp.Poly(sum(v**2 for v in t) / 2, *t, domain=QQ)]
    R, *T = ring([str(v) for v in t], QQ)
    gens = []
    for P in polys:
        e = R.from_dict(P.as_dict(native=True))
        gens.append([e.diff(x) for x in T])
    rng = random.Random(seed)
    pt = _random_point(D, rng)
    ech = _Echelon()

    def entry(F):
        return (F, _value_at(F, pt), _jacobian_at(F, T, pt))

    gen_entries = [entry(g) for g in gens]
    frontier = []
    for g in gen_entries:
        if len(ech.rows) < D and ech.add_if_independent(g[1]):
            frontier.append(g)
    gen_rank = len(ech.rows)
    kept = list(frontier)
    n_br = 0
    for _ in range(max_rounds):
        new = []
        for g, gv, gJ in gen_entries:
            for f, fv, fJ in frontier:
                if len(ech.rows) == D:
                    break
                val = [a - b for a, b in zip(_matvec(fJ, gv), _matvec(gJ, fv), strict=True)]
                if ech.add_if_independent(val):
                    b = [sum((f[i].diff(T[p]) * g[p] - g[i].diff(T[p]) * f[p]
                              for p in range(D)), R.zero) for i in range(D)]
                    e = (b, val, _jacobian_at(b, T, pt))
                    new.append(e)
                    kept.append(e)
                    n_br += 1
        if not new:
            break
        frontier = new
    else:
        raise RuntimeError(f"count_conserved: the Lie algebra did not stabilise in {max_rounds} "
                           f"rounds (rank {len(ech.rows)} of D = {D}); raise max_rounds.")
    lie = len(ech.rows)
    pt2 = _random_point(D, rng)
    M2 = [_value_at(F, pt2) for F, _, _ in kept]
    rank2 = DomainMatrix(M2, (len(M2), D), QQ).rank() if M2 else 0
    confirmed = "confirmed" if rank2 == lie else f"NOT confirmed (rank {rank2})"
    return LawCount(D, lie, D - lie, gen_rank, n_br, weight_decay,
                    time.perf_counter() - start,
                    f"{D - lie} independent conservation laws (D = {D}, dim Lie = {lie}, "
                    f"generators of rank {gen_rank}, {n_br} brackets; {confirmed} at a second "
                    f"random point)")
