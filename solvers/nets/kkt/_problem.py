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
from ...losses import loss_weights

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
        Candidate examples (``q_i(θ̃) <= support_factor``).
    Xc, yc, qc : ndarray
        Their inputs ``(n_c, d_0)``, labels and margins ``q_i(θ̃)`` (``min = 1``).
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
        Every candidate has its kinks in at most one layer (the program is exact).
    nat_lam : ndarray of shape (n_c,)
        Loss-gradient weights ``-ℓ'(q_i(θ))`` normalised over all examples, on the candidates.
    excluded_weight : float
        Their complement: the loss-gradient weight on non-candidates.
    log_q_min : float
        ``log min_i q_i(θ)`` of the given parameters.
    log_norm_p : float
        ``log ||θ||_p`` of the given parameters.
    """

    net: object
    theta: np.ndarray
    degree: int
    n: int
    cand: np.ndarray
    Xc: np.ndarray
    yc: np.ndarray
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
        q = self.yc * self.net.forward(self.Xc)
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

        Example rows are ``y_i ∂f(x_i)/∂θ`` with the current ``slopes`` and the free pairs' slopes
        zeroed (:meth:`HomogeneousMLP.per_example_gradients`). The row of a free pair
        ``(e, j)`` of hidden layer ``t`` is ``∂q_e/∂s_{ej} = y_e (∂f/∂h_t)[e, j] · ∂z_t[e, j]/∂θ``:
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
        rows = net.per_example_gradients(self.Xc, slopes=sl)
        rows *= self.yc[:, None]
        deltas = net.deltas(self.Xc, slopes=sl)
        offsets = np.cumsum([0] + [W.size for W in Ws])
        krows, kex = [], []
        for t, (ex, un) in enumerate(free_pairs):
            if ex.size == 0:
                continue
            up = deltas[t + 1] @ Ws[t + 1]  # ∂f/∂h_t, (n_c, d_t)
            kr = np.zeros((ex.size, self.P))
            d_in = Ws[t].shape[1]
            for j in np.unique(un):
                sel = np.flatnonzero(un == j)
                e = ex[sel]
                sub = HomogeneousMLP(tuple(Ws[:t]) + (Ws[t][j:j + 1],),
                                     activation=net.activation, alpha=net.alpha)
                g = sub.per_example_gradients(self.Xc[e], slopes=[s[e] for s in sl[:t]])
                g *= (self.yc[e] * up[e, j])[:, None]
                kr[sel, :offsets[t]] = g[:, :offsets[t]]
                c0 = offsets[t] + j * d_in
                kr[sel, c0:c0 + d_in] = g[:, offsets[t]:]
            krows.append(kr)
            kex.append(ex)
        if krows:
            return rows, np.vstack(krows), np.concatenate(kex)
        return rows, np.zeros((0, self.P)), np.zeros(0, dtype=int)

    def structured_gram(self, S, kex, kun, *, rows=None, gram: bool = True):
        """:class:`StructuredGram` of a 2-layer net over the candidates ``rows`` (default all),
        with slopes ``S`` (free pairs zeroed) and free pairs ``(kex, kun)`` indexed within
        ``rows``."""
        if self.degree != 2:
            raise ValueError(f"structured_gram needs a 2-layer net; this one has L={self.degree}.")
        r = slice(None) if rows is None else rows
        W1, W2 = self.net.weights
        return StructuredGram(W1, W2[0], self.Xc[r], self.yc[r], self.zs[0][r], self.hs[1][r],
                              S[r], kex, kun, gram=gram)


class StructuredGram:
    """Structured Gram matrix, linear term and residual for ``L = 2`` (never forms ``J``).

    With ``S`` the slopes (free pairs zeroed), ``H = σ(Z)``, ``a = W_2``:

    .. math::

        G_{\\lambda\\lambda} = (y y^\\top) \\odot \\big[(X X^\\top)
        \\odot (S\\,\\mathrm{diag}(a^2) S^\\top) + H H^\\top\\big],

    since ``∂q_i/∂W_1[j] = y_i a_j s_ij x_i`` and ``∂q_i/∂a_j = y_i σ(z_ij)``.
    """

    def __init__(self, W1, a, X, y, Z, H, S, kex, kun, block=2048, gram=True):
        self.W1, self.a, self.X, self.y, self.H, self.S = W1, a, X, y, H, S
        self.kex, self.kun = kex, kun
        b_l = y * ((S * Z) @ a + H @ a)
        b_m = y[kex] * a[kun] * Z[kex, kun]
        self.b = np.concatenate([b_l, b_m])
        self.G = None
        if not gram:  # matrix-free use only (combination / apply / example_norms)
            return
        n = X.shape[0]
        K = kex.size
        Sa = S * np.abs(a)[None, :]  # S diag(|a|), so Sa Saᵀ = S diag(a²) Sᵀ
        G = np.empty((n + K, n + K))
        for s0 in range(0, n, block):
            s1 = min(n, s0 + block)
            blk = X[s0:s1] @ X.T
            blk *= Sa[s0:s1] @ Sa.T
            blk += H[s0:s1] @ H.T
            blk *= y[s0:s1, None] * y[None, :]
            G[s0:s1, :n] = blk
        if K:
            a2 = a[kun] ** 2
            Xk = X[kex]
            yk = y[kex]
            # ⟨h_i, k_(e,j)⟩ = y_i y_e a_j² S_ij ⟨x_i, x_e⟩
            G_lm = (X @ Xk.T) * S[:, kun] * (y[:, None] * (yk * a2)[None, :])
            G[:n, n:] = G_lm
            G[n:, :n] = G_lm.T
            same = kun[:, None] == kun[None, :]
            G[n:, n:] = (Xk @ Xk.T) * same * (yk[:, None] * yk[None, :]) * a2[:, None]
        self.G = G

    def combination(self, nu):
        """``Σ λ_i h_i + Σ μ_k k_k`` as a flat ``(P,)`` vector (W1 block then W2)."""
        n = self.X.shape[0]
        lam, mu = nu[:n], nu[n:]
        M = lam[:, None] * self.S
        np.add.at(M, (self.kex, self.kun), mu)
        gW1 = self.a[:, None] * ((M * self.y[:, None]).T @ self.X)
        ga = (lam * self.y) @ self.H
        return np.concatenate([gW1.ravel(), ga])

    def apply(self, r):
        """``A r``: the inner products ``⟨h_i, r⟩`` and ``⟨k_k, r⟩`` of every column with a flat
        parameter vector ``r`` (so ``Gν − b = A(Aᵀν − θ̃)``), without the Gram matrix.

        With ``r = (R_1, r_a)``: ``⟨h_i, r⟩ = y_i (Σ_j a_j S_ij ⟨R_1[j], x_i⟩ + ⟨σ(z_i), r_a⟩)``
        and ``⟨k_(e,j), r⟩ = y_e a_j ⟨R_1[j], x_e⟩``. Shape ``(n + K,)``.
        """
        m, d = self.W1.shape
        R1 = r[: m * d].reshape(m, d)
        XR = self.X @ R1.T  # (n, m)
        out_l = self.y * ((XR * self.S) @ self.a + self.H @ r[m * d:])
        out_m = self.y[self.kex] * self.a[self.kun] * XR[self.kex, self.kun]
        return np.concatenate([out_l, out_m])

    def example_norms(self):
        """``||h_i||`` of the example columns, shape ``(n,)``: the square root of
        ``G_ii = ||x_i||² Σ_j S_ij² a_j² + ||σ(z_i)||²``."""
        g = np.einsum("ij,ij->i", self.X, self.X) * ((self.S**2) @ (self.a**2))
        g += np.einsum("ij,ij->i", self.H, self.H)
        return np.sqrt(g)


def build_problem(net, X: np.ndarray, y: np.ndarray, *, p: float, loss: str,
                  support_factor: float, kink_rtol: float) -> KKTProblem:
    """The :class:`KKTProblem` of a validated ``net`` (HomogeneousMLP), ``X`` and ``y`` (±1).

    Raises
    ------
    NotFeasibleError
        Some example has ``q_i <= 0``; the message counts them.
    """
    from .._network import HomogeneousMLP

    Ws = [np.asarray(W, dtype=np.float64) for W in net.weights]
    L = len(Ws)
    n = X.shape[0]
    normed = [_normalise(W) for W in Ws]
    log_norms = [s for _, s in normed]
    unit = HomogeneousMLP(tuple(W for W, _ in normed), activation=net.activation,
                          alpha=net.alpha)
    q_hat = y * unit.forward(X)  # q_i(θ) = q̂_i · Π_l ||W_l||
    bad = int(np.count_nonzero(~(q_hat > 0))) if all(np.isfinite(log_norms)) else n
    if bad:
        raise NotFeasibleError(
            f"{bad} of {n} example(s) have margin q_i = y_i f(x_i) <= 0 (misclassified or on the "
            f"decision boundary), so no rescaling of θ is feasible for the margin problem; the KKT "
            f"check applies to networks that fit every example. Train longer or check the labels."
        )
    q_hat_min = float(q_hat.min())
    log_q_min = float(sum(log_norms)) + math.log(q_hat_min)
    qt = q_hat / q_hat_min
    Wt = tuple(W * math.exp(s - log_q_min / L) for (W, _), s in zip(normed, log_norms,
                                                                     strict=True))
    tnet = HomogeneousMLP(Wt, activation=net.activation, alpha=net.alpha)
    theta = tnet.flat()
    # log ||θ||_p of the given parameters: layers at their scales relative to the largest
    top = max(s + math.log(float(np.max(np.abs(W)))) for W, s in normed)
    flat_rel = np.concatenate([(W * math.exp(s - top)).ravel() for W, s in normed])
    log_norm_p = top + _log_norm(flat_rel, ord=p)

    cand = np.flatnonzero(qt <= support_factor)
    # loss-gradient weights -ℓ'(q_i(θ)), normalised. For q_min beyond e^709, ℓ' of both losses is
    # e^{-q} to double precision and every q_i > q_min has q_i − q_min >= 2e-16 q_min > 1e290:
    # weight exactly 0 in float64, as the shift by e^709 (< q_min) also gives
    if log_q_min < _LOG_FLOAT_MAX:
        w_all, _ = loss_weights(qt * math.exp(log_q_min), loss)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            shifted = np.where(qt == 1.0, 0.0, (qt - 1.0) * math.exp(_LOG_FLOAT_MAX))
        w_all, _ = loss_weights(shifted, "exp")
    excluded_weight = float(max(0.0, 1.0 - w_all[cand].sum()))
    Xc, yc, qc = X[cand], y[cand], qt[cand]

    zs = tnet.preactivations(Xc)
    lo = tnet.clarke_interval[0] if tnet.activation != "linear" else 0.0  # no kinks if linear
    slopes = tnet.activation_slopes(Xc)
    hs = [Xc] + [s * z for s, z in zip(slopes, zs, strict=True)]  # σ(z) = σ'(z) z (σ homog.)
    kinks = tnet.kinks(Xc, rtol=kink_rtol)
    n_kinks = int(sum(int(k.sum()) for k in kinks))
    # pairs within kink_rtol of a kink but not at one: θ̃ itself is differentiable there, and the
    # Clarke interval used is that of the nearby point with z = 0 (said in the report)
    n_near = int(sum(int((k & (z != 0.0)).sum()) for k, z in zip(kinks, zs, strict=True)))
    layers_of = (np.stack([k.any(axis=1) for k in kinks], axis=1) if kinks
                 else np.zeros((cand.size, 0), dtype=bool))
    exact = bool(np.all(layers_of.sum(axis=1) <= 1))
    return KKTProblem(
        net=tnet, theta=theta, degree=L, n=n, cand=cand, Xc=Xc, yc=yc, qc=qc, zs=zs, hs=hs,
        slopes=slopes, kinks=kinks, clarke_low=float(lo), n_kinks=n_kinks, n_near=n_near,
        layers_of=layers_of, exact=exact, nat_lam=w_all[cand], excluded_weight=excluded_weight,
        log_q_min=log_q_min, log_norm_p=float(log_norm_p))
