"""The KKT problem of a trained homogeneous network (private): the rescaled net, the candidates
and their kinks (docs/theory.md §7).

:func:`build_problem` turns ``(net, X, y)`` into a :class:`KKTProblem`: the feasible rescaled point
``θ̃ = θ / q_min^{1/L}``, the candidate examples (``q_i(θ̃) <= support_factor``), their
pre-activations, numerical slopes and near-kink pairs, and the natural (loss-gradient)
multipliers. Everything network-specific is computed by :class:`solvers.HomogeneousMLP` itself
(:meth:`~solvers.HomogeneousMLP.forward`, :meth:`~solvers.HomogeneousMLP.preactivations`,
:meth:`~solvers.HomogeneousMLP.kinks`, :meth:`~solvers.HomogeneousMLP.activation_slopes`,
:meth:`~solvers.HomogeneousMLP.per_example_gradients`, :meth:`~solvers.HomogeneousMLP.deltas`);
nothing here re-implements a forward or backward pass.

Scale. The network is positively homogeneous of degree ``L`` in each layer separately
(``f(c_1 W_1, ..., c_L W_L) = (Π c_l) f(W)`` for ``c_l > 0``). Each layer is evaluated at unit
Frobenius norm, ``Ŵ_l = W_l / ||W_l||``, and the scales are carried as logarithms:
``log q_min = Σ_l log||W_l|| + log q̂_min`` and ``W̃_l = Ŵ_l · exp(log||W_l|| − log q_min / L)``.
So weights multiplied by ``1e±300`` (whose forward pass over- or underflows in float64) are checked
exactly like the unscaled net, and ``q_min`` is reported through ``log_q_min``.

Interface for other network back-ends
--------------------------------------
The programs (:mod:`._solve`) use a problem only through these members, which a future
torch-backed problem (convolutions, pooling; issue 11 item 2) would provide from its own forward
and backward passes:

* ``theta`` ``(P,)``, ``degree``, ``clarke_low``; candidates ``cand``, ``qc``, ``nat_lam``;
* ``kinks`` (list over kinked layers of ``(n_c, d_l)`` masks), ``slopes`` (numerical Clarke
  choices, same shapes), ``layers_of``, ``exact``;
* ``explicit_rows(slopes, free)``: the candidates' margin gradients and the kink columns as
  ``(n_c, P)`` and ``(K, P)`` rows (small problems, and ℓ1/ℓ∞);
* ``structured_gram(...)``: the Gram matrix of those columns, ``A θ̃`` and the matrix-free
  products ``Aᵀν`` (one backward pass) and ``A r`` (one forward-mode pass), never ``P`` wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import NotFeasibleError

__all__: list[str] = []

# exp(x) is finite in float64 for x below ≈ 709.78; above this, q_min is carried as log q_min only
_LOG_FLOAT_MAX = 709.0


def _log_norm(a: np.ndarray, ord=2) -> float:
    """``log ||a||_ord`` without over- or underflow (``-inf`` for ``a = 0``)."""
    m = float(np.max(np.abs(a), initial=0.0))
    if m == 0.0:
        return -math.inf
    return math.log(m) + math.log(float(np.linalg.norm((a / m).ravel(), ord=ord)))


def _normalise(W: np.ndarray) -> tuple[np.ndarray, float]:
    """``(W / ||W||_F, log ||W||_F)``; a zero layer is returned as is with ``-inf``."""
    m = float(np.max(np.abs(W), initial=0.0))
    if m == 0.0:
        return W.copy(), -math.inf
    Wm = W / m
    nrm = float(np.linalg.norm(Wm))
    return Wm / nrm, math.log(m) + math.log(nrm)


@dataclass(frozen=True, eq=False)
class KKTProblem:
    """The rescaled net and its candidates (see the module docstring). Arrays are read-only in
    spirit: the programs copy what they change.

    Attributes
    ----------
    net : HomogeneousMLP
        The network at ``θ̃`` (``q_min(θ̃) = 1``).
    theta : ndarray of shape (P,)
        ``θ̃`` flat, in :meth:`HomogeneousMLP.flat` order.
    degree : int
    n : int
        Number of examples.
    cand : ndarray of shape (n_c,), int
        Candidate constraints (``q(θ̃) <= support_factor``), indices into the constraints:
        examples for one output; (example, competing class) pairs, row-major over
        ``(n, K)``, for ``K`` outputs.
    cand_ex, cand_class : ndarray of shape (n_c,), int
        Each candidate's example and competing class (``-1`` for one output).
    Xc, U, qc : ndarray
        Their inputs ``(n_c, d_0)``, output cotangents ``(n_c, K)`` (``q = uᵀ f``: ``y_i`` for
        one output, ``e_{y_i} − e_j`` for the pair ``(i, j)``) and margins ``q(θ̃)``
        (``min = 1``).
    zs, hs : list of ndarray
        Pre-activations ``z_1..z_{L-1}`` and activations ``h_0 = Xc, ..., h_{L-1}`` at ``θ̃``.
    slopes : list of ndarray
        Numerical slopes ``σ'(z_l)`` (the network's convention at 0), ``(n_c, d_l)``.
    kinks : list of ndarray of bool
        Near-kink masks (:meth:`HomogeneousMLP.kinks` with ``kink_rtol``).
    clarke_low : float
        Lower end of the Clarke interval of σ at 0 (0, α, or 1 for linear).
    n_kinks, n_near : int
        Near-kink pairs, and those among them with ``z != 0``.
    layers_of : ndarray of shape (n_c, L-1), bool
        Whether candidate ``i`` has a kink in hidden layer ``l``.
    exact : bool
        Every candidate has its kinks in at most one layer (the program is exact), and no dead
        unit's row is exactly zero (its Clarke slope is not freed).
    nat_lam : ndarray of shape (n_c,)
        Loss-gradient weights ``-ℓ'(q_i(θ))`` normalised over all examples, on the candidates.
    excluded_weight : float
        Their complement: the loss-gradient weight on non-candidates.
    log_q_min : float
        ``log min_i q_i(θ)`` of the given parameters.
    log_norm_p : float
        ``log ||θ||_p`` of the given parameters.
    dead_units : list of ndarray of int
        Per hidden layer, the units whose incoming weights are negligible against the layer's
        (row norm ``<= kink_rtol ·`` the largest): they are not counted as kinks (issue 11: four
        dead units made 1,814 near-kink pairs) and keep the network's slope.
    """

    net: object
    theta: np.ndarray
    degree: int
    n: int
    cand: np.ndarray
    cand_ex: np.ndarray
    cand_class: np.ndarray
    Xc: np.ndarray
    U: np.ndarray
    qc: np.ndarray
    zs: list
    hs: list
    slopes: list
    kinks: list
    clarke_low: float
    n_kinks: int
    n_near: int
    layers_of: np.ndarray
    exact: bool
    nat_lam: np.ndarray
    excluded_weight: float
    log_q_min: float
    log_norm_p: float
    dead_units: list

    @property
    def dead_zero(self) -> bool:
        """Some dead unit has an exactly zero incoming row (its slope was not freed)."""
        W = self.net.weights
        return any(bool(np.any(~W[t][d].any(axis=1))) for t, d in enumerate(self.dead_units))

    @property
    def n_dead(self) -> int:
        """Number of dead hidden units (see ``dead_units``)."""
        return int(sum(d.size for d in self.dead_units))

    @property
    def P(self) -> int:
        return int(self.theta.size)

    @property
    def nc(self) -> int:
        return int(self.cand.size)

    @property
    def q_min(self) -> float:
        """``min_i q_i(θ)`` (``inf``/``0`` when it over/underflows; see ``log_q_min``)."""
        return math.exp(self.log_q_min) if self.log_q_min < _LOG_FLOAT_MAX else math.inf

    @property
    def primal_feasibility(self) -> float:
        """``max(0, 1 − min_i q_i(θ̃))`` recomputed by a forward pass of the rescaled net."""
        q = np.einsum("ik,ik->i", self.U, self.net.outputs(self.Xc))
        return float(max(0.0, 1.0 - float(q.min(initial=math.inf))))

    def normalised_margin(self, p: float) -> float:
        """``q_min / ||θ||_p^L`` from the logarithms (``p`` as in ``log_norm_p``)."""
        return math.exp(self.log_q_min - self.degree * self.log_norm_p)

    # ------------------------------------------------------------------ Clarke choices
    def free_pairs(self, layer):
        """Free ``(ex, unit)`` pairs per hidden layer for the block step ``layer``.

        ``None``: the kinks of candidates whose kinks all lie in one layer (the exact program);
        an int: additionally every kink of that layer, for candidates without kinks elsewhere
        or in that layer (a block-coordinate step over layers).
        """
        n_layers_ex = self.layers_of.sum(axis=1)
        out = []
        for t, k in enumerate(self.kinks):
            ex, un = np.nonzero(k)
            if layer is None:
                sel = n_layers_ex[ex] == 1
            else:
                sel = (n_layers_ex[ex] == 1) | (t == layer)
                sel &= (t == layer) | ~self.layers_of[ex, layer]
            out.append((ex[sel], un[sel]))
        return out

    # ------------------------------------------------------------------ program columns
    def explicit_rows(self, slopes, free_pairs):
        """Columns of the program as rows: ``(n_c, P)`` example rows and ``(K, P)`` kink rows.

        Example rows are ``∂(u_iᵀ f(x_i))/∂θ`` with the current ``slopes`` and the free pairs'
        slopes zeroed (:meth:`HomogeneousMLP.per_example_gradients` with ``cotangent=U``). The
        row of a free pair ``(e, j)`` of hidden layer ``t`` is
        ``∂q_e/∂s_{ej} = (∂(u_eᵀf)/∂h_t)[e, j] · ∂z_t[e, j]/∂θ``:
        the upstream derivative from :meth:`HomogeneousMLP.deltas` times the per-example gradient
        of the truncated net ``(W_1, ..., W_{t-1}, W_t[j])`` whose output is ``z_t[:, j]``.
        Returns ``(rows, krows, kex)`` with ``kex`` the example of each kink row.
        """
        from .._network import HomogeneousMLP

        net = self.net
        Ws = net.weights
        sl = [s.copy() for s in slopes]
        for t, (ex, un) in enumerate(free_pairs):
            sl[t][ex, un] = 0.0
        rows = net.per_example_gradients(self.Xc, slopes=sl, cotangent=self.U)
        deltas = net.deltas(self.Xc, slopes=sl, cotangent=self.U)
        offsets = np.cumsum([0] + [W.size for W in Ws])
        krows, kex = [], []
        for t, (ex, un) in enumerate(free_pairs):
            if ex.size == 0:
                continue
            up = deltas[t + 1] @ Ws[t + 1]  # ∂(uᵀf)/∂h_t, (n_c, d_t)
            kr = np.zeros((ex.size, self.P))
            d_in = Ws[t].shape[1]
            for j in np.unique(un):
                sel = np.flatnonzero(un == j)
                e = ex[sel]
                sub = HomogeneousMLP(tuple(Ws[:t]) + (Ws[t][j:j + 1],),
                                     activation=net.activation, alpha=net.alpha)
                g = sub.per_example_gradients(self.Xc[e], slopes=[s[e] for s in sl[:t]])
                g *= up[e, j][:, None]
                kr[sel, :offsets[t]] = g[:, :offsets[t]]
                c0 = offsets[t] + j * d_in
                kr[sel, c0:c0 + d_in] = g[:, offsets[t]:]
            krows.append(kr)
            kex.append(ex)
        if krows:
            return rows, np.vstack(krows), np.concatenate(kex)
        return rows, np.zeros((0, self.P)), np.zeros(0, dtype=int)

    def layered_gram(self, slopes, kinfo, *, rows=None, gram: bool = True) -> LayeredGram:
        """:class:`LayeredGram` of the candidates ``rows`` (default all) and the free pairs
        ``kinfo = (layer, example, unit)`` (examples indexed within ``rows``), with the current
        ``slopes`` (the free pairs' slopes are zeroed in the example columns). Never ``P`` wide.
        """
        net = self.net
        Ws = net.weights
        r = np.arange(self.nc) if rows is None else np.asarray(rows)
        kl, ke, ku = (np.asarray(a, dtype=int) for a in kinfo)
        sl = [s[r].copy() for s in slopes]
        for t in range(len(sl)):
            sel = kl == t
            sl[t][ke[sel], ku[sel]] = 0.0
        U = self.U[r]
        hs = [h[r] for h in self.hs]
        # example columns: δ_l of q = uᵀf with the zeroed slopes: the backward pass of
        # HomogeneousMLP.deltas (δ_L = u, δ_l = (δ_{l+1} W_{l+1}) ∘ σ'_l), without its forward pass
        # (the activations are stored; tests/test_kkt_problem.py checks the resulting Gram matrix
        # and products against the network's own per-example gradients)
        D = [None] * len(Ws)
        D[-1] = U
        for l in range(len(Ws) - 1, 0, -1):
            D[l - 1] = (D[l] @ Ws[l]) * sl[l - 1]
        # kink columns (e, t, j): δ_t = (∂q_e/∂h_t)[j] e_j, then back through layers < t
        Dk = [np.zeros((ke.size, W.shape[0])) for W in Ws]
        for t in np.unique(kl):
            sel = np.flatnonzero(kl == t)
            e, j = ke[sel], ku[sel]
            up = np.einsum("ki,ik->k", D[t + 1][e], Ws[t + 1][:, j])  # ∂q_e/∂h_t[j]
            d = np.zeros((sel.size, Ws[t].shape[0]))
            d[np.arange(sel.size), j] = up
            Dk[t][sel] = d
            for l in range(t, 0, -1):
                d = (d @ Ws[l]) * sl[l - 1][e]
                Dk[l - 1][sel] = d
        Ds = [np.vstack([D[l], Dk[l]]) for l in range(len(Ws))]
        Hs = [np.vstack([hs[l], hs[l][ke]]) for l in range(len(Ws))]
        # ⟨column, θ̃⟩ = Σ_l ⟨δ_l, W_l h_{l-1}⟩ = Σ_l ⟨δ_l, z_l⟩ (z_L the outputs)
        Zs = [np.vstack([z, z[ke]]) for z in ([zz[r] for zz in self.zs]
                                              + [hs[-1] @ Ws[-1].T])]
        b = sum(np.einsum("ij,ij->i", Dl, Zl) for Dl, Zl in zip(Ds, Zs, strict=True))
        return LayeredGram(Ws, Ds, Hs, b, n_examples=r.size, gram=gram, kinfo=(kl, ke, ku),
                           slopes=slopes)

class LayeredGram:
    """Gram matrix, linear term and matrix-free products of the program's columns, by layers.

    Every column ``c`` (a candidate margin ``q = uᵀf`` or the kink column ``∂q_e/∂s_{ej}``) has,
    for each dense layer ``l``, the gradient block ``δ_l[c] h_{l−1}[c]ᵀ`` (an outer product:
    ``∂(uᵀf)/∂W_l = δ_l h_{l−1}ᵀ``). Hence (docs/theory.md §7, docs/theory.md §7 last item)

    .. math::

        G = \\sum_l (D_l D_l^\\top) \\odot (H_{l-1} H_{l-1}^\\top),

    with ``D_l`` the ``(N, d_l)`` stacked ``δ_l`` and ``H_{l−1}`` the ``(N, d_{l−1})`` stacked
    activations: never ``P`` wide (``N² Σ_l (d_l + d_{l−1})`` operations, ``N (Σ d_l)`` memory).
    ``Aᵀν`` is one backward pass (``Σ_c ν_c δ_l[c] h_{l−1}[c]ᵀ`` per layer) and ``A r`` one
    forward-mode pass (``Σ_l ⟨δ_l[c], R_l h_{l−1}[c]⟩``).
    """

    def __init__(self, Ws, Ds, Hs, b, *, n_examples, gram=True, kinfo=None, slopes=None,
                 block=2048):
        self.Ws, self.Ds, self.Hs, self.b = Ws, Ds, Hs, b
        self.slopes = slopes  # the slopes it was built with (free pairs not yet zeroed)
        self.n = int(n_examples)
        self.kinfo = kinfo
        self.G = None
        if not gram:
            return
        N = b.size
        G = np.empty((N, N))
        # upper block triangle by row blocks (BLAS-3), mirrored: half the products of the full
        # matrix; each diagonal block is symmetrised so G is exactly symmetric
        for s0 in range(0, N, block):
            s1 = min(N, s0 + block)
            blk = self.block(np.arange(s0, s1), np.arange(s0, N))
            d = blk[:, :s1 - s0]
            d += d.T.copy()
            d *= 0.5
            G[s0:s1, s0:] = blk
            G[s1:, s0:s1] = blk[:, s1 - s0:].T
        self.G = G

    def block(self, rows, cols):
        """``G[rows, cols] = Σ_l (D_l[rows] D_l[cols]ᵀ) ∘ (H_{l−1}[rows] H_{l−1}[cols]ᵀ)``, shape
        ``(rows.size, cols.size)``: two matrix products per layer (BLAS-3), no ``P``-wide array."""
        out = np.zeros((len(rows), len(cols)))
        for Dl, Hl in zip(self.Ds, self.Hs, strict=True):
            dd = Dl[rows] @ Dl[cols].T
            dd *= Hl[rows] @ Hl[cols].T
            out += dd
        return out

    def combination(self, nu, cols=None):
        """``Aᵀν = Σ_c ν_c (column c)`` as a flat ``(P,)`` vector (one backward pass); with
        ``cols``, ``ν`` holds the multipliers of those columns only. Columns with ``ν_c = 0`` are
        skipped (they add exactly zero)."""
        cols = np.arange(self.b.size) if cols is None else np.asarray(cols)
        nz = np.flatnonzero(nu)
        c, w = cols[nz], nu[nz]
        return np.concatenate([((w[:, None] * Dl[c]).T @ Hl[c]).ravel()
                               for Dl, Hl in zip(self.Ds, self.Hs, strict=True)])

    def apply(self, r, cols=None):
        """``A r``: ``⟨column c, r⟩`` for every column (or for ``cols`` only), shape ``(N,)``
        (``(cols.size,)``), without the Gram matrix."""
        out = np.zeros(self.b.size if cols is None else len(cols))
        off = 0
        for W, Dl, Hl in zip(self.Ws, self.Ds, self.Hs, strict=True):
            R = r[off:off + W.size].reshape(W.shape)
            off += W.size
            if cols is not None:
                Dl, Hl = Dl[cols], Hl[cols]
            out += np.einsum("ij,ij->i", Hl @ R.T, Dl)
        return out

    def example_norms(self):
        """``||column c||`` of the example columns, shape ``(n,)``:
        ``sqrt(Σ_l ||δ_l[c]||² ||h_{l−1}[c]||²)``."""
        n = self.n
        g = sum(np.einsum("ij,ij->i", Dl[:n], Dl[:n]) * np.einsum("ij,ij->i", Hl[:n], Hl[:n])
                for Dl, Hl in zip(self.Ds, self.Hs, strict=True))
        return np.sqrt(g)


class IncrementalGram:
    """The Gram matrix of a growing set of a :class:`LayeredGram`'s columns (the ℓ2 working set).

    The set holds examples (in the order added) and, with each example, its kink columns; the
    matrix is ordered as the cone expects, examples first, then kinks. :meth:`add` computes only
    the new rows ``G[new, S ∪ new]`` (:meth:`LayeredGram.block`, BLAS-3) and copies the old
    block; nothing is recomputed, so all rounds together cost one Gram matrix of the final set
    (its off-diagonal blocks once, not twice). Its entries equal :class:`LayeredGram`'s of the
    same columns to rounding (tests/test_kkt_problem.py).

    Attributes
    ----------
    examples : ndarray of int
        The examples of the set, indices into the full problem's ``0..n−1``, in order.
    kinks : ndarray of int
        Their kink columns, indices into the full problem's ``0..K−1``, in order.
    G : ndarray of shape (N, N)
        ``N = examples.size + kinks.size``.
    """

    def __init__(self, full: LayeredGram):
        self.full = full
        self.examples = np.zeros(0, dtype=int)
        self.kinks = np.zeros(0, dtype=int)
        self.G = np.zeros((0, 0))

    @property
    def columns(self) -> np.ndarray:
        """The set's columns as indices into the full matrix (examples, then ``n + kink``)."""
        return np.concatenate([self.examples, self.full.n + self.kinks])

    @property
    def kink_example(self) -> np.ndarray:
        """For each kink column, the position of its example in ``examples``."""
        pos = np.empty(self.full.n, dtype=int)
        pos[self.examples] = np.arange(self.examples.size)
        return pos[self.full.kinfo[1][self.kinks]] if self.kinks.size else np.zeros(0, int)

    @property
    def b(self) -> np.ndarray:
        return self.full.b[self.columns]

    def extend(self, nu: np.ndarray, n_old: int, k_old: int) -> np.ndarray:
        """Multipliers ``nu`` of the set before the last :meth:`add` (``n_old`` examples,
        ``k_old`` kinks) in the current order, zero on the added columns."""
        out = np.zeros(self.examples.size + self.kinks.size)
        out[:n_old] = nu[:n_old]
        out[self.examples.size:self.examples.size + k_old] = nu[n_old:n_old + k_old]
        return out

    def add(self, new_examples: np.ndarray) -> None:
        """Add examples (not yet in the set) with their kink columns."""
        new_examples = np.asarray(new_examples, dtype=int)
        ke = self.full.kinfo[1]
        new_k = np.flatnonzero(np.isin(ke, new_examples))
        n0, k0 = self.examples.size, self.kinks.size
        n1, k1 = n0 + new_examples.size, k0 + new_k.size
        self.examples = np.concatenate([self.examples, new_examples])
        self.kinks = np.concatenate([self.kinks, new_k])
        cols = self.columns
        new = np.r_[n0:n1, n1 + k0:n1 + k1]
        G = np.empty((n1 + k1, n1 + k1))
        Go = self.G  # old order: examples 0..n0-1, kinks n0..n0+k0-1
        G[:n0, :n0] = Go[:n0, :n0]
        G[:n0, n1:n1 + k0] = Go[:n0, n0:]
        G[n1:n1 + k0, :n0] = Go[n0:, :n0]
        G[n1:n1 + k0, n1:n1 + k0] = Go[n0:, n0:]
        self.G = None
        del Go
        B = self.full.block(cols[new], cols)  # (new, all), BLAS-3
        nn = B[:, new]
        nn = 0.5 * (nn + nn.T)  # the new diagonal block, exactly symmetric
        B[:, new] = nn
        for (a0, a1), (b0, b1) in (((0, n1 - n0), (n0, n1)),
                                   ((n1 - n0, new.size), (n1 + k0, n1 + k1))):
            G[b0:b1, :] = B[a0:a1]
            G[:, b0:b1] = B[a0:a1].T
        self.G = G


def _pair_weights(Q: np.ndarray, log_q_min: float, q_hat_min: float, loss: str) -> np.ndarray:
    """Normalised loss-gradient weights ``-∂𝓛/∂q`` of every constraint, shape of ``Q``.

    ``Q`` holds the margins at unit-norm layers (``+inf`` off the constraints); the margins of
    the given parameters are ``Q / q̂_min · q_min``. Cross-entropy ("logistic"; for one output the
    logistic loss): ``w_ij ∝ e^{−q_ij} / (1 + Σ_k e^{−q_ik})``; exp: ``w_ij ∝ e^{−q_ij}``. For
    ``q_min`` beyond ``e^709`` both are ``e^{−q}`` to double precision and every ``q > q_min`` has
    ``q − q_min >= 2e-16 q_min > 1e290``: weight exactly 0 in float64, as the shift by ``e^709``
    (< q_min) also gives.
    """
    from scipy.special import logsumexp

    qt = Q / q_hat_min
    if log_q_min < _LOG_FLOAT_MAX:
        q = qt * math.exp(log_q_min)
        lw = -q
        if loss == "logistic":
            lw = lw - np.logaddexp(0.0, logsumexp(-q, axis=1))[:, None]
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            lw = -np.where(qt == 1.0, 0.0, (qt - 1.0) * math.exp(_LOG_FLOAT_MAX))
    return np.exp(lw - logsumexp(lw))


def build_problem(net, X: np.ndarray, y: np.ndarray, *, p: float, loss: str,
                  support_factor: float, kink_rtol: float) -> KKTProblem:
    """The :class:`KKTProblem` of a validated ``net`` (HomogeneousMLP), ``X`` and ``y`` (±1 for
    one output, class indices ``0…K−1`` for ``K`` outputs, validated by the caller).

    Raises
    ------
    NotFeasibleError
        Some example has ``q_i <= 0``; the message counts them.
    """
    from .._margins import class_margins
    from .._network import HomogeneousMLP

    Ws = [np.asarray(W, dtype=np.float64) for W in net.weights]
    L = len(Ws)
    n = X.shape[0]
    K = int(Ws[-1].shape[0])
    normed = [_normalise(W) for W in Ws]
    log_norms = [s for _, s in normed]
    unit = HomogeneousMLP(tuple(W for W, _ in normed), activation=net.activation,
                          alpha=net.alpha)
    F_hat = unit.outputs(X)  # f(θ) = f(Ŵ) · Π_l ||W_l||
    if K == 1:
        Q = (y * F_hat[:, 0])[:, None]  # one constraint per example
    else:
        Q = class_margins(F_hat, y)  # (n, K), +inf at the label
    q_ex = Q.min(axis=1)
    bad = int(np.count_nonzero(~(q_ex > 0))) if all(np.isfinite(log_norms)) else n
    if bad:
        what = "y_i f(x_i)" if K == 1 else "f_{y_i}(x_i) − max_{j≠y_i} f_j(x_i)"
        raise NotFeasibleError(
            f"{bad} of {n} example(s) have margin q_i = {what} <= 0 (misclassified or on the "
            f"decision boundary), so no rescaling of θ is feasible for the margin problem; the KKT "
            f"check applies to networks that fit every example. Train longer or check the labels."
        )
    q_hat_min = float(q_ex.min())
    log_q_min = float(sum(log_norms)) + math.log(q_hat_min)
    w_all = _pair_weights(Q, log_q_min, q_hat_min, loss).ravel()
    Wt = tuple(W * math.exp(s - log_q_min / L) for (W, _), s in zip(normed, log_norms,
                                                                     strict=True))
    tnet = HomogeneousMLP(Wt, activation=net.activation, alpha=net.alpha)
    theta = tnet.flat()
    # log ||θ||_p of the given parameters: layers at their scales relative to the largest
    top = max(s + math.log(float(np.max(np.abs(W)))) for W, s in normed)
    flat_rel = np.concatenate([(W * math.exp(s - top)).ravel() for W, s in normed])
    log_norm_p = top + _log_norm(flat_rel, ord=p)

    qt = (Q / q_hat_min).ravel()  # row-major over (example, class); +inf off the constraints
    cand = np.flatnonzero(qt <= support_factor)
    excluded_weight = float(max(0.0, 1.0 - w_all[cand].sum()))
    cand_ex = cand // K
    if K == 1:
        cand_class = np.full(cand.size, -1, dtype=np.int64)
        U = y[cand_ex][:, None].astype(np.float64)
    else:
        cand_class = cand % K
        U = np.zeros((cand.size, K))
        U[np.arange(cand.size), y[cand_ex]] = 1.0
        U[np.arange(cand.size), cand_class] = -1.0
    Xc, qc = X[cand_ex], qt[cand]

    zs = tnet.preactivations(Xc)
    lo = tnet.clarke_interval[0] if tnet.activation != "linear" else 0.0  # no kinks if linear
    slopes = [tnet._dsigma(z) for z in zs]  # = tnet.activation_slopes(Xc), without a forward pass
    hs = [Xc] + [s * z for s, z in zip(slopes, zs, strict=True)]  # σ(z) = σ'(z) z (σ homog.)
    kinks = tnet._kink_masks(zs, float(kink_rtol))  # = tnet.kinks(Xc, rtol=…), no forward pass
    # dead units: incoming weights negligible against the layer (row norm <= kink_rtol · largest
    # row norm), so |z_ij| <= kink_rtol · max_k ||W[k]|| ||h_i|| on every example. They are not
    # thousands of kink pairs: they keep the network's slope (the true derivative at θ̃ when the
    # row is nonzero; for an exactly zero row a valid Clarke choice, so ε is then an upper bound)
    dead = []
    for t, k in enumerate(kinks):
        rn = np.linalg.norm(Wt[t], axis=1)
        d_t = np.flatnonzero(rn <= kink_rtol * rn.max()) if tnet.activation != "linear" \
            else np.zeros(0, dtype=int)
        k[:, d_t] = False
        dead.append(d_t)
    dead_zero = any(bool(np.any(np.linalg.norm(Wt[t][d_t], axis=1) == 0.0))
                    for t, d_t in enumerate(dead))
    n_kinks = int(sum(int(k.sum()) for k in kinks))
    # pairs within kink_rtol of a kink but not at one: θ̃ itself is differentiable there, and the
    # Clarke interval used is that of the nearby point with z = 0 (said in the report)
    n_near = int(sum(int((k & (z != 0.0)).sum()) for k, z in zip(kinks, zs, strict=True)))
    layers_of = (np.stack([k.any(axis=1) for k in kinks], axis=1) if kinks
                 else np.zeros((cand.size, 0), dtype=bool))
    exact = bool(np.all(layers_of.sum(axis=1) <= 1)) and not dead_zero
    return KKTProblem(
        net=tnet, theta=theta, degree=L, n=n, cand=cand, cand_ex=cand_ex, cand_class=cand_class,
        Xc=Xc, U=U, qc=qc, zs=zs, hs=hs,
        slopes=slopes, kinks=kinks, clarke_low=float(lo), n_kinks=n_kinks, n_near=n_near,
        layers_of=layers_of, exact=exact, nat_lam=w_all[cand], excluded_weight=excluded_weight,
        log_q_min=log_q_min, log_norm_p=float(log_norm_p), dead_units=dead)
