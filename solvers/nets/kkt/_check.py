"""Approximate KKT check of the margin problem for trained homogeneous networks.

THEORY.md §7.

For a bias-free homogeneous network ``f(θ; x)`` of degree ``L`` and margins
``q_i(θ) = y_i f(θ; x_i)``, the margin problem is

.. math::

    (P_p)\\qquad \\min_\\theta \\tfrac12 \\|\\theta\\|_p^2
    \\quad\\text{s.t.}\\quad q_i(\\theta) \\ge 1,\\; i = 1, \\dots, n.

Lyu & Li (2019, Def. of an (ε, δ)-KKT point; Thm. 4.4: limit points of gradient flow on the
exp/logistic loss are KKT points of :math:`(P_2)`) check it at the rescaled point
:math:`\\tilde\\theta = \\theta / q_{\\min}^{1/L}`
(feasible, :math:`q_{\\min}(\\tilde\\theta) = 1`): :math:`\\tilde\\theta` is an (ε, δ)-KKT point if
some :math:`\\lambda \\ge 0` and Clarke subgradients
:math:`h_i \\in \\partial^\\circ q_i(\\tilde\\theta)` give

.. math::

    \\Big\\|\\tilde\\theta - \\sum_i \\lambda_i h_i\\Big\\|_2 \\le \\varepsilon, \\qquad
    \\sum_i \\lambda_i (q_i(\\tilde\\theta) - 1) \\le \\delta .

For ``p ∈ {1, ∞}`` (Tsilivis, Vardi & Kempe 2024) stationarity reads
:math:`\\sum_i \\lambda_i h_i \\in \\partial(\\tfrac12\\|\\cdot\\|_p^2)(\\tilde\\theta)` and
:math:`\\varepsilon = \\min \\|g - \\sum_i \\lambda_i h_i\\|_*` over that set (an LP; see
:mod:`solvers._kkt_lp`). :func:`check_kkt` computes the **smallest** ε over the multipliers and the
Clarke choices, not the residual of one numerical choice.

How the minimum is computed
---------------------------
* Candidates: only examples with ``q_i(θ̃) <= support_factor`` (``TOLERANCES.kkt_support_factor``)
  get a multiplier; the others have ``λ_i = 0``. The report gives the share of the loss gradient
  (``-ℓ'(q_i)`` weights of the trained θ) those excluded examples carry (``excluded_weight``), the
  evidence that they cannot matter much.
* Clarke choices. A hidden unit ``j`` of layer ``l`` is at a kink for example ``i`` when
  ``|z_l[i, j]| <= kink_rtol · max_k |z_l[i, k]|`` (the convention of
  :meth:`solvers.HomogeneousMLP.kinks`); its slope ``s_ij`` ranges over ``[0, 1]`` (ReLU)
  or ``[α, 1]`` (LeakyReLU). The gradient of ``q_i`` is linear in the slopes of one layer, so with
  ``μ_ij = λ_i s_ij`` and ``α λ_i <= μ_ij <= λ_i`` the problem over ``(λ, μ)`` is a convex QP
  (ℓ2) or LP (ℓ1/ℓ∞) over a polyhedral cone (:mod:`solvers._kkt_qp`).
* Exactness. Write ``K_i`` for the set of chain-rule (backprop) gradients of ``q_i`` with every
  kink slope anywhere in its interval. On a feasible point every kinked unit has a nonzero input
  (otherwise ``f(x_i) = 0``), so each vertex choice (slopes at the interval ends) is a limit of
  true gradients at perturbed parameters (perturb the rows of the kinked units, deeper layers by
  larger amounts so that the earlier layers' perturbations are negligible), hence lies in
  ``∂°q_i``; with Bolte & Pauwels (2021, conservative fields) ``∂°q_i ⊆ conv K_i``, so
  ``∂°q_i = conv K_i`` and every element of ``K_i`` is a valid Clarke subgradient. When every
  candidate has its kinks in **one** layer (always for 2-layer nets) ``K_i`` is a linear image of
  a box, convex, and the program is **exact**: ε is the minimum over all Clarke subgradients.
  Otherwise the slopes are optimised one layer at a time (block-coordinate descent, each step a
  convex program, never increasing ε); every iterate is an actual Clarke choice, so the reported
  ε is a **valid upper bound** of the minimum (``exact=False``). Near-kink pairs are treated as
  exact kinks: the subgradients are those of the nearby point where ``z = 0``.
* ℓ2 uses the Gram matrix ``A Aᵀ`` over the candidates and kink columns, never a ``(n, P)``
  Jacobian when ``L = 2``: with ``S`` the slopes (kinked pairs zeroed), ``H = σ(Z)``, ``a = W_2``,

  .. math::

      G_{\\lambda\\lambda} = (y y^\\top) \\odot \\big[(X X^\\top)
      \\odot (S\\,\\mathrm{diag}(a^2) S^\\top) + H H^\\top\\big],

  since ``∂q_i/∂W_1[j] = y_i a_j s_ij x_i`` and ``∂q_i/∂a_j = y_i σ(z_ij)``. By Euler's identity
  ``⟨h_i, θ̃⟩ = L q_i(θ̃)`` (Lyu & Li 2019, Thm. B.2) — checked for free (``euler_residual``). The
  residual ``θ̃ − Σ λ_i h_i`` is always formed in parameter space (no cancellation), so ε is an
  achieved value; the QP's optimality (dual-cone feasibility and complementarity) is verified
  separately (``solver_status``).
* Working set (ℓ2, ``L = 2``; ``working_set``): the QP is solved on a working set of
  candidates (smallest margins first) and the optimality conditions of the **full** candidate QP
  are checked matrix-free: with ``r = Σ λ_i h_i + Σ μ_k k_k − θ̃`` and η the budget's
  multiplier, every excluded example needs ``min over its slope vertices of
  ⟨h_i + Σ_k s_k k_k, r⟩ + η (q_i − 1) >= 0`` (one product ``X Rᵀ``, no Gram matrix); violators
  are added until there are none, so the final point is optimal for the full program
  (``optimality_residual`` includes this check). The δ budget is a single row shared by all
  examples; its multiplier enters each example's reduced cost, so the test stays per example.
  The cost is cubic in the working set (≈ the support) instead of the candidates; when the
  support is most of the candidates (points far from KKT) the automatic mode falls back to the
  full program.
* δ: ε is minimised subject to ``δ = Σ λ_i (q_i(θ̃) − 1) <= delta_tol · ||θ̃||_p²`` (a linear
  constraint on λ). Minimising ε alone would happily use examples with ``q_i > 1`` (any ``θ̃`` in the
  cone of the candidates' gradients has ε = 0 for a linear model), so the two KKT residuals are
  traded off exactly as the verdict asks: is there a certificate with both below the thresholds?
* Which multipliers: when the optimal multipliers are not unique (singular Gram matrix, e.g.
  duplicated examples or a linear model with more candidates than weights), a second LP picks
  among them (ε allowed to grow by ``1e-10 ||θ̃||``) the one with the smallest δ, i.e. the most
  complementary-slack certificate (ℓ2: only for programs with at most 1500 variables; ℓ1/ℓ∞:
  always). ε and the verdict do not depend on this choice.
* Natural multipliers: ``λ_i ∝ -ℓ'(q_i(θ))`` on the candidates with the numerical slopes
  ``σ'(0) := 0`` (``α``) — the direction of the negative loss gradient — with the scale chosen
  optimally within the same δ budget (closed form for ℓ2: ``c = max(0, ⟨θ̃, v⟩/||v||²)`` clipped
  to the budget). They are feasible for the program, so ``epsilon <= natural_epsilon``.

A KKT point of :math:`(P)` is only stationary: it need not be a local optimum of the margin
(Vardi, Shamir & Srebro 2022). The verdict says "stationary", never more.

References
----------
K. Lyu, J. Li. Gradient descent maximizes the margin of homogeneous neural networks. ICLR 2020
(arXiv:1906.05890), Def. of (ε, δ)-KKT points, Thm. 4.4, App. C.
N. Tsilivis, G. Vardi, J. Kempe. Flavors of margin: implicit bias of steepest descent in
homogeneous neural networks. 2024 (arXiv:2410.22069).
G. Vardi, O. Shamir, N. Srebro. On margin maximization in linear and ReLU networks. NeurIPS 2022.
J. Bolte, E. Pauwels. Conservative set valued fields, automatic differentiation, stochastic
gradient methods and deep learning. Math. Program. 188 (2021).
F. H. Clarke. Optimization and Nonsmooth Analysis. Wiley, 1983.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..._validation import check_labels, check_norm, check_X
from ...errors import NotFeasibleError, SolverError
from ...losses import loss_weights
from ...tolerances import TOLERANCES
from ._lp import best_residual, solve_cone_lp
from ._qp import ConeStructure, cone_optimality, min_delta_on_optimal_set, solve_cone_qp

__all__ = ["KKTReport", "check_kkt"]

logger = logging.getLogger(__name__)

_NORM_NAMES = {1.0: "1", 2.0: "2", math.inf: "inf"}
# Second phase (smallest δ among the optimal multipliers): allowed increase of ε relative to
# ||θ̃|| (far below the QP tolerance's effect on ε), and the largest program it is run on.
_PHASE2_SLACK = 1e-10
_PHASE2_MAX_N = 1500
# Working set (ℓ2, L = 2): used by default above this many candidates; initial size, and the
# least number of violators added per round (at least half the current size is added, so the
# number of rounds is logarithmic); a cap on the rounds (then the status is 'inaccurate').
# (bench_kkt, d = 784, width 1000: 1,701 candidates full QP 4.1 s CPU vs working set 6.8 s;
# 5,051 candidates 62 s vs 33 s — on a worst-case net with half the candidates in the support)
_WS_AUTO_MIN = 2000
_WS_INIT = 200
_WS_BATCH = 100
_WS_MAX_ROUNDS = 40
# Automatic mode only: once the working set would exceed this share of the candidates, the full
# program is solved instead (the rounds so far cost about share³ of it; the working set then
# cannot pay off).
_WS_MAX_SHARE = 0.6


# ---------------------------------------------------------------------------------------- report
@dataclass(frozen=True)
class KKTReport:
    """Result of :func:`check_kkt`: the best (ε, δ) of the margin problem at ``θ̃``.

    ``θ̃ = θ / q_min^{1/L}`` is the rescaled (feasible) point.

    Attributes
    ----------
    norm : str
        ``'2'``, ``'1'`` or ``'inf'``: the ``p`` of ``min ½||θ||_p² s.t. q_i ≥ 1``.
    epsilon : float
        The stationarity residual ``||g − Σ λ_i h_i||_*`` (``g = θ̃`` for ℓ2) at the optimal
        multipliers and Clarke choices (an achieved value; the minimum when ``exact``).
    epsilon_relative : float
        ``epsilon / ||θ̃||_p`` (``||θ̃||_p = ||g||_*`` for every ``g`` of the subdifferential, so the
        ratio is comparable across norms).
    delta, delta_relative : float
        ``Σ_i λ_i (q_i(θ̃) − 1)`` and ``delta / ||θ̃||_p²``.
    multipliers : ndarray of shape (n,)
        The optimal ``λ`` (zeros off the candidate set), in the order of the examples.
    support : ndarray of shape (k,), int
        Indices with ``λ_i > kkt_multiplier_rtol · max λ``.
    n_kink_pairs : int
        Near-kink (candidate example, hidden unit) pairs whose slope ranged over its Clarke
        interval.
    natural_epsilon, natural_epsilon_relative : float
        The same residual for the natural multipliers (loss-gradient weights, optimal scale,
        numerical slopes). Always ``>= epsilon``.
    natural_multipliers : ndarray of shape (n,)
        ``c · (-ℓ'(q_i))`` on the candidates (zeros elsewhere).
    natural_delta : float
        ``δ`` of the natural multipliers.
    delta_budget : float
        ``delta_tol · ||θ̃||_p²``: ε is minimised subject to ``δ <= delta_budget``, so the verdict
        (``epsilon_relative <= eps_tol`` and ``delta_relative <= delta_tol``) is decided exactly
        when ``exact`` (the minimum ε over the admissible δ), not by one choice of multipliers.
    q_min : float
        ``min_i q_i(θ)`` of the given (not rescaled) parameters.
    normalised_margin : float
        ``q_min / ||θ||_p^L``.
    degree : int
        ``L``.
    n_candidates : int
        Examples with ``q_i(θ̃) <= support_factor``.
    support_factor : float
        The candidate threshold used.
    excluded_weight : float
        Share of the loss-gradient weight ``-ℓ'(q_i(θ))`` (normalised to sum 1) on the examples
        outside the candidate set: small means the exclusion cannot change ε much.
    exact : bool
        Whether ε is the minimum over all Clarke subgradients *at θ̃* (kinks of each candidate in
        at most one layer, and every freed pair exactly at z = 0). False either for the upper
        bound from block-coordinate descent over layers, or when near-kink pairs
        (``extra['n_near_kink_pairs']``) were freed: ε is then the minimum for the nearby point
        with those pre-activations at 0.
    method : str
        How the program was solved.
    solver_status : str
        ``'optimal'`` (QP/LP optimality verified) or ``'inaccurate'`` (ε is an achieved upper bound
        but optimality was not certified).
    euler_residual : float
        ``max_i |⟨h_i, θ̃⟩ − L q_i(θ̃)| / (L max q)`` over the candidate columns (ℓ2 path; Euler's
        identity). Large values mean the network is not homogeneous as described.
    optimality_residual : float
        Largest relative violation of the QP/LP optimality conditions (0 for an exact optimum).
    eps_tol, delta_tol : float
        Thresholds of the verdict.
    is_kkt : bool
        ``epsilon_relative <= eps_tol and delta_relative <= delta_tol``.
    status : str
        ``'approximate_kkt'`` or ``'not_kkt'``.
    verdict : str
        One sentence with the numbers and thresholds.
    """

    norm: str
    epsilon: float
    epsilon_relative: float
    delta: float
    delta_relative: float
    multipliers: np.ndarray
    support: np.ndarray
    n_kink_pairs: int
    natural_epsilon: float
    natural_epsilon_relative: float
    natural_multipliers: np.ndarray
    natural_delta: float
    delta_budget: float
    q_min: float
    normalised_margin: float
    degree: int
    n_candidates: int
    support_factor: float
    excluded_weight: float
    exact: bool
    method: str
    solver_status: str
    euler_residual: float
    optimality_residual: float
    eps_tol: float
    delta_tol: float
    is_kkt: bool
    status: str
    verdict: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-serialisable dict (arrays as lists, floats as floats)."""
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, np.ndarray):
                out[k] = v.tolist()
            elif isinstance(v, (bool, np.bool_)):
                out[k] = bool(v)
            elif isinstance(v, (int, np.integer)):
                out[k] = int(v)
            elif isinstance(v, (float, np.floating)):
                out[k] = float(v)
            else:
                out[k] = v
        return out

    def summary(self) -> str:
        """A few lines of text for people: verdict, ε, δ, supports, candidates and kinks."""
        lines = [
            self.verdict,
            f"  norm l{self.norm}, degree L = {self.degree}, q_min = {self.q_min:.6g}, "
            f"normalised margin q_min/||θ||^L = {self.normalised_margin:.6g}",
            f"  epsilon = {self.epsilon:.3e} (relative {self.epsilon_relative:.3e}); natural "
            f"multipliers give {self.natural_epsilon:.3e} (relative "
            f"{self.natural_epsilon_relative:.3e})",
            f"  delta = {self.delta:.3e} (relative {self.delta_relative:.3e})",
            f"  {self.n_candidates} candidate(s) with q_i <= {self.support_factor:g} q_min "
            f"(excluded examples carry {self.excluded_weight:.2e} of the loss-gradient weight); "
            f"{self.support.size} in the support; {self.n_kink_pairs} near-kink pair(s)",
            "  " + ("exact minimum over Clarke subgradients" if self.exact
                    else "minimum over the Clarke subgradients of the nearby point with the "
                         f"{self.extra.get('n_near_kink_pairs', 0)} near-kink pre-activation(s) "
                         "set to 0 (θ̃ itself is differentiable there)"
                    if self.extra.get("n_near_kink_pairs", 0)
                    else "upper bound (block-coordinate over layers)")
            + f"; {self.method}; solver {self.solver_status}",
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- network
def _as_network(net, activation, alpha):
    """``(weights, activation, alpha)`` from a HomogeneousMLP or a sequence of weight arrays."""
    from .._network import HomogeneousMLP

    if isinstance(net, HomogeneousMLP):
        if activation is not None and activation != net.activation:
            raise ValueError(
                f"activation={activation!r} conflicts with the network's {net.activation!r}; "
                f"omit activation when passing a HomogeneousMLP."
            )
        if alpha not in (0.0, net.alpha):
            raise ValueError(
                f"alpha={alpha!r} conflicts with the network's alpha={net.alpha!r}; omit alpha "
                f"when passing a HomogeneousMLP."
            )
        return net
    if isinstance(net, np.ndarray) or not isinstance(net, Sequence):
        raise TypeError(
            f"net must be a solvers.HomogeneousMLP or a sequence (W_1, ..., W_L) of 2-D "
            f"arrays; got {type(net).__name__}."
        )
    return HomogeneousMLP(tuple(net), activation=activation or "relu", alpha=alpha)


def _sigma(z, act, alpha):
    if act == "linear":
        return z
    if act == "relu":
        return np.maximum(z, 0.0)
    return np.where(z > 0.0, z, alpha * z)


def _forward(Ws, X, act, alpha):
    """``hs = [h_0 = X, h_1, ..., h_{L-1}]``, ``zs = [z_1..z_{L-1}]`` and ``f`` of shape (n,)."""
    hs, zs = [X], []
    h = X
    for W in Ws[:-1]:
        z = h @ W.T
        zs.append(z)
        h = _sigma(z, act, alpha)
        hs.append(h)
    return hs, zs, (h @ Ws[-1].T)[:, 0]


def _rows_explicit(Ws, hs, slopes, y, free_pairs):
    """Columns of the program as rows: ``(n_c, P)`` example rows and ``(K, P)`` kink rows.

    ``slopes`` are the current slopes (list over hidden layers, ``(n_c, d_l)``), ``free_pairs``
    a list over hidden layers of ``(ex, unit)`` index arrays whose slope is free (zeroed in the
    example rows; each gets its own row ``y_i ∂q_i/∂s_ij``).
    """
    L = len(Ws)
    n = hs[0].shape[0]
    sl = [s.copy() for s in slopes]
    for t, (ex, un) in enumerate(free_pairs):
        sl[t][ex, un] = 0.0
    offsets = np.cumsum([0] + [W.size for W in Ws])
    P = int(offsets[-1])
    rows = np.empty((n, P))
    ups = [None] * (L - 1)  # upstream derivative ∂f/∂h_{t+1} for hidden layer t
    delta = np.ones((n, 1))
    for l in range(L - 1, -1, -1):
        rows[:, offsets[l]:offsets[l + 1]] = (delta[:, :, None] * hs[l][:, None, :]).reshape(n, -1)
        if l > 0:
            up = delta @ Ws[l]
            ups[l - 1] = up
            delta = up * sl[l - 1]
    rows *= y[:, None]
    krows, kex = [], []
    for t, (ex, un) in enumerate(free_pairs):
        if ex.size == 0:
            continue
        K = ex.size
        kr = np.zeros((K, P))
        d = np.zeros((K, Ws[t].shape[0]))
        d[np.arange(K), un] = ups[t][ex, un]
        for l in range(t, -1, -1):  # W index l = t is the layer producing z_t
            blk = d[:, :, None] * hs[l][ex][:, None, :]
            kr[:, offsets[l]:offsets[l + 1]] = blk.reshape(K, -1)
            if l > 0:
                d = (d @ Ws[l]) * sl[l - 1][ex]
        krows.append(kr * y[ex][:, None])
        kex.append(ex)
    if krows:
        return rows, np.vstack(krows), np.concatenate(kex)
    return rows, np.zeros((0, P)), np.zeros(0, dtype=int)


class _Gram2:
    """Structured Gram matrix, linear term and residual for ``L = 2`` (never forms ``J``)."""

    def __init__(self, W1, a, X, y, Z, H, S, kex, kun, block=2048, gram=True):
        self.W1, self.a, self.X, self.y, self.H, self.S = W1, a, X, y, H, S
        self.kex, self.kun = kex, kun
        b_l = y * ((S * Z) @ a + H @ a)
        b_m = y[kex] * a[kun] * Z[kex, kun]
        self.b = np.concatenate([b_l, b_m])
        self.G = None
        if not gram:  # matrix-free use only (combination / apply / column_norms)
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


# ---------------------------------------------------------------------------------------- main
def check_kkt(net, X, y, *, norm=2, activation: str | None = None, alpha: float = 0.0,
              loss: str = "logistic", eps_tol: float = TOLERANCES.kkt_eps_tol,
              delta_tol: float = TOLERANCES.kkt_delta_tol,
              support_factor: float = TOLERANCES.kkt_support_factor,
              kink_rtol: float = TOLERANCES.kink_rtol,
              norm_rtol: float = TOLERANCES.kkt_norm_rtol, max_sweeps: int = 6,
              max_dense_entries: int = 60_000_000,
              working_set: bool | None = None) -> KKTReport:
    """Best (ε, δ)-KKT certificate of the margin problem for a homogeneous network.

    Implements the (ε, δ)-KKT definition of Lyu & Li (2019) for
    :math:`\\min \\tfrac12\\|\\theta\\|_2^2` s.t. :math:`q_i \\ge 1` and its ℓ1/ℓ∞ analogue
    (Tsilivis, Vardi & Kempe 2024), minimising ε over the multipliers and the Clarke subgradients
    at kinks, subject to the δ budget (see the module docstring for what is exact and what is an
    upper bound):

    .. math::

        \\varepsilon = \\min_{\\lambda \\ge 0,\\; h_i \\in \\partial^\\circ q_i(\\tilde\\theta),\\;
        g \\in \\partial(\\frac12\\|\\cdot\\|_p^2)(\\tilde\\theta)}
        \\Big\\| g - \\sum_i \\lambda_i h_i \\Big\\|_*, \\qquad
        \\delta = \\sum_i \\lambda_i \\big(q_i(\\tilde\\theta) - 1\\big).

    Parameters
    ----------
    net : HomogeneousMLP or sequence of ndarray
        The network, or its weights ``(W_1, ..., W_L)`` with ``W_l`` of shape ``(d_l, d_{l-1})``,
        ``W_L`` of shape ``(1, d_{L-1})`` (then ``activation``/``alpha`` describe it).
    X : array_like of shape (n, d_0)
    y : array_like of shape (n,), values ±1
    norm : {2, 1, inf}
        The ``p`` of the margin problem (``'inf'`` accepted).
    activation : {'relu', 'leaky_relu', 'linear'}, optional
        Only with a plain weight sequence (default ``'relu'``).
    alpha : float
        LeakyReLU slope for a plain weight sequence.
    loss : {'logistic', 'exp'}
        Loss whose gradient defines the natural multipliers and ``excluded_weight``.
    eps_tol, delta_tol : float
        Verdict thresholds on ``epsilon_relative`` and ``delta_relative``.
    support_factor : float
        Candidates are the examples with ``q_i <= support_factor · q_min`` (``>= 1``).
    kink_rtol : float
        Relative threshold of a near-kink pair.
    norm_rtol : float
        ℓ1/ℓ∞ only: coordinates with ``|θ_j| <= norm_rtol · max|θ|`` count as zero (ℓ1) and those
        with ``|θ_j| >= (1 − norm_rtol) · max|θ|`` as tied at the maximum (ℓ∞), which decides the
        subdifferential of ``½||·||²`` used. Discrete sign/coordinate steps leave coordinates
        only approximately tied: a larger value (e.g. 1e-2) asks whether the iterate is stationary
        up to that perturbation of θ; the report records the value used.
    max_sweeps : int
        Block-coordinate sweeps over layers when kinks of one example lie in several layers.
    max_dense_entries : int
        Refuse (ValueError) a dense program larger than this many float64 entries (explicit
        Jacobian rows or the Gram matrix; with a working set, the Gram matrix of the working
        set).
    working_set : bool, optional
        ℓ2 with a 2-layer net only: solve the QP on a working set of candidates (smallest
        margins first, then the candidates whose optimality conditions in the full candidate
        QP are violated, until none is), so the cost depends on the support size rather than on
        the number of candidates. ``None`` (default): when there are more than
        ``_WS_AUTO_MIN`` candidates. The final point is verified optimal for the full candidate
        QP (``optimality_residual``; rounds and sizes in ``extra``).

    Returns
    -------
    KKTReport

    Raises
    ------
    NotFeasibleError
        Some example has ``q_i <= 0`` (misclassified or on the boundary); the message counts them.
    ValueError, TypeError
        Bad arguments (shapes, NaN/inf, labels not ±1, unknown norm, too large a program).

    References
    ----------
    Lyu & Li 2019 (arXiv:1906.05890); Tsilivis, Vardi & Kempe 2024 (arXiv:2410.22069).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 1.0]]); y = np.array([1.0, -1.0, 1.0])
    >>> rep = check_kkt([np.array([[1.0, 0.0]])], X, y, activation="linear")
    >>> rep.status, rep.epsilon_relative < 1e-9
    ('approximate_kkt', True)
    """
    net = _as_network(net, activation, alpha)
    act, alph = net.activation, float(net.alpha)
    Ws = [np.asarray(W, dtype=np.float64) for W in net.weights]
    L = len(Ws)
    X = check_X(X)
    if X.shape[1] != Ws[0].shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features (shape {X.shape}) but W1 expects {Ws[0].shape[1]}; "
            f"pass X of shape (n, {Ws[0].shape[1]}) with one example per row."
        )
    y = check_labels(y, X.shape[0])
    p = check_norm(norm)
    if p not in _NORM_NAMES:
        raise ValueError(f"norm must be 1, 2 or 'inf' for the KKT check; got {norm!r}.")
    for name, v in (("eps_tol", eps_tol), ("delta_tol", delta_tol)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite float; got {v!r}.")
    if not (np.isfinite(support_factor) and support_factor >= 1.0):
        raise ValueError(
            f"support_factor must be a finite float >= 1 (candidates q_i <= factor · q_min); got "
            f"{support_factor!r}."
        )
    if not (kink_rtol >= 0.0):
        raise ValueError(f"kink_rtol must be >= 0; got {kink_rtol!r}.")
    n = X.shape[0]

    # ---- margins, rescaling to q_min = 1
    _, _, f = _forward(Ws, X, act, alph)
    q = y * f
    bad = int(np.count_nonzero(~(q > 0)))
    if bad:
        raise NotFeasibleError(
            f"{bad} of {n} example(s) have margin q_i = y_i f(x_i) <= 0 (misclassified or on the "
            f"decision boundary), so no rescaling of θ is feasible for the margin problem; the KKT "
            f"check applies to networks that fit every example. Train longer or check the labels."
        )
    q_min = float(q.min())
    c = q_min ** (-1.0 / L)
    Wt = [c * W for W in Ws]
    theta = np.concatenate([W.ravel() for W in Wt])
    qt = q / q_min
    P = theta.size
    cand = np.flatnonzero(qt <= support_factor)
    nc = cand.size
    w_all, _ = loss_weights(q, loss)
    excluded_weight = float(max(0.0, 1.0 - w_all[cand].sum()))
    Xc, yc, qc = X[cand], y[cand], qt[cand]
    hs, zs, _ = _forward(Wt, Xc, act, alph)

    # ---- kinks and slopes
    lo = alph if act == "leaky_relu" else 0.0
    if act == "linear":
        kinks = [np.zeros(z.shape, dtype=bool) for z in zs]
        slopes = [np.ones_like(z) for z in zs]
    else:
        kinks = [np.abs(z) <= kink_rtol * np.abs(z).max(axis=1, keepdims=True) for z in zs]
        slopes = [np.where(z > 0.0, 1.0, lo) for z in zs]
    n_kinks = int(sum(int(k.sum()) for k in kinks))
    # pairs within kink_rtol of a kink but not at one: θ̃ itself is differentiable there, and the
    # Clarke interval used is that of the nearby point with z = 0 (said in the report)
    n_near = int(sum(int((k & (z != 0.0)).sum()) for k, z in zip(kinks, zs, strict=True)))
    layers_of = (np.stack([k.any(axis=1) for k in kinks], axis=1) if kinks
                 else np.zeros((nc, 0), dtype=bool))
    n_layers_ex = layers_of.sum(axis=1)
    exact = bool(np.all(n_layers_ex <= 1))
    nat_lam = w_all[cand]

    use_ws = p == 2.0 and L == 2 and (nc > _WS_AUTO_MIN if working_set is None
                                      else bool(working_set))
    if p == 2.0 and L == 2 and not use_ws and (nc + n_kinks) ** 2 > max_dense_entries:
        raise ValueError(
            f"the Gram matrix would have ({nc} + {n_kinks})² entries, above max_dense_entries="
            f"{max_dense_entries}; lower support_factor or raise max_dense_entries."
        )
    if working_set and not (p == 2.0 and L == 2):
        raise ValueError(
            f"working_set=True needs norm=2 and a 2-layer net (structured Gram matrix); got "
            f"norm={norm!r} and L={L}. Omit working_set.")
    if not (p == 2.0 and L == 2) and (nc + n_kinks) * P > max_dense_entries:
        raise ValueError(
            f"the explicit program needs ({nc} candidates + {n_kinks} kinks) × {P} parameters = "
            f"{(nc + n_kinks) * P} entries, above max_dense_entries={max_dense_entries}; use "
            f"norm=2 with a 2-layer net (structured Gram matrix), lower support_factor, or raise "
            f"max_dense_entries."
        )

    def free_pairs_for(layer):
        """Free (ex, unit) pairs per hidden layer for the block step ``layer`` (None: own layer)."""
        out = []
        for t, k in enumerate(kinks):
            ex, un = np.nonzero(k)
            if layer is None:
                sel = n_layers_ex[ex] == 1
            else:
                sel = (n_layers_ex[ex] == 1) | (t == layer)
                sel &= (t == layer) | ~layers_of[ex, layer]
            out.append((ex[sel], un[sel]))
        return out

    def build(free):
        """``(G, b, combine, M or None, cone, kink (layer, ex, un) arrays)`` for one block step."""
        kl = np.concatenate([np.full(e.size, t) for t, (e, _) in enumerate(free)] or [[]])
        ke = np.concatenate([e for e, _ in free] or [[]]).astype(int)
        ku = np.concatenate([u for _, u in free] or [[]]).astype(int)
        cone = ConeStructure(nc, ke, lo)
        if p == 2.0 and L == 2:
            S = slopes[0].copy()
            S[ke, ku] = 0.0
            g2 = _Gram2(Wt[0], Wt[1][0], Xc, yc, zs[0], hs[1], S, ke, ku, gram=not use_ws)
            return g2.G, g2.b, g2.combination, g2, cone, (kl, ke, ku)
        rows, krows, kex = _rows_explicit(Wt, hs, slopes, yc, free)
        A = np.vstack([rows, krows])
        # order of kinks in krows follows `free` layer by layer, as ke/ku above
        assert np.array_equal(kex, ke)
        G = A @ A.T if p == 2.0 else None
        b = A @ theta if p == 2.0 else None
        return G, b, (lambda nu, A=A: A.T @ nu), A.T, cone, (kl, ke, ku)

    def residual(combine, nu):
        v = combine(nu)
        if p == 2.0:
            return float(np.linalg.norm(theta - v)), v
        return best_residual(theta, v, p, norm_rtol)[0], v

    def solve(G, b, combine, M, cone, budget, r=None):
        """Optimal ν for one block step under the δ budget (row ``r``, default all candidates),
        its ε, optimality residual, method and the budget's multiplier η (ℓ2)."""
        r = qc - 1.0 if r is None else r
        if p == 2.0:
            res = solve_cone_qp(G, b, cone, tol=TOLERANCES.kkt_qp_tol, budget_row=r,
                                budget=budget)
            colscale = np.sqrt(np.maximum(np.diag(G), 1e-300))
            viol, comp = cone_optimality(G, b, res.nu, cone, colscale, R2, budget_row=r,
                                         budget=budget, eta=res.eta)
            nu_qp = res.nu
            eps, _ = residual(combine, nu_qp)
            meth = (f"interior-point QP on the {cone.N}x{cone.N} Gram matrix "
                    f"({res.iterations} it., {'face polish' if res.polished else 'no polish'})")
            if cone.N <= _PHASE2_MAX_N:
                # the optimal ν need not be unique: prefer the smallest δ among them
                nu2 = min_delta_on_optimal_set(G, nu_qp, cone, r, budget,
                                               _PHASE2_SLACK * R2, TOLERANCES.solver_eps)
                if nu2 is not None:
                    eps2, _ = residual(combine, nu2)
                    nl = cone.n
                    if (eps2 <= min(eps + _PHASE2_SLACK * R2, nat_eps)
                            and float(nu2[:nl] @ r) < float(nu_qp[:nl] @ r)):
                        nu_qp, eps = nu2, eps2
                        meth += "; smallest δ among optimal multipliers (LP)"
            return nu_qp, eps, max(viol, comp), meth, res.eta
        nu, eps, _, msg, ok = solve_cone_lp(M, theta, p, cone, rtol=norm_rtol,
                                            solver_eps=TOLERANCES.solver_eps,
                                            budget_row=qc - 1.0, budget=budget)
        if nu is None:
            raise SolverError(f"the l{_NORM_NAMES[p]} KKT LP failed: {msg}",
                              attempts=[{"solver": "HiGHS", "status": msg}])
        meth = f"HiGHS LP ({M.shape[0]}x{cone.N}; {msg})"
        # the optimal ν need not be unique: prefer the smallest δ among them
        nu2, eps2, _, _, ok2 = solve_cone_lp(M, theta, p, cone, rtol=norm_rtol,
                                             solver_eps=TOLERANCES.solver_eps,
                                             budget_row=qc - 1.0, budget=budget,
                                             eps_cap=eps / R + _PHASE2_SLACK)
        if (ok2 and nu2 is not None and eps2 <= min(eps + _PHASE2_SLACK * R, nat_eps)
                and float(nu2[:nc] @ (qc - 1.0)) < float(nu[:nc] @ (qc - 1.0))):
            nu, eps = nu2, eps2
            meth += "; smallest δ among optimal multipliers (LP)"
        return nu, eps, 0.0 if ok else 1.0, meth, 0.0

    def natural(G, b, combine, M, cone, kinfo, budget):
        """``(ε, c)``: natural multipliers ``c · (-ℓ'(q_i))``, ``c`` optimal within the budget."""
        kl, ke, ku = kinfo
        s_nat = np.array([slopes[t][e, u] for t, e, u in zip(kl, ke, ku, strict=True)])
        nu0 = cone.natural(nat_lam, s_nat)
        d0 = float(nat_lam @ (qc - 1.0))
        cmax = budget / d0 if d0 > 0 else np.inf
        if p == 2.0:
            v0 = combine(nu0)  # ν0ᵀGν0 = ||Aᵀν0||², bᵀν0 = ⟨θ̃, Aᵀν0⟩ (no Gram matrix needed)
            curv = float(v0 @ v0)
            scale = min(max(0.0, float(theta @ v0) / curv), cmax) if curv > 0 else 0.0
            eps, _ = residual(combine, scale * nu0)
            return eps, scale
        v = combine(nu0)
        one = ConeStructure(1, np.zeros(0, dtype=int), lo)
        nu1, _, _, _, _ = solve_cone_lp(v[:, None], theta, p, one,
                                        rtol=norm_rtol,
                                        solver_eps=TOLERANCES.solver_eps,
                                        budget_row=np.array([d0]), budget=budget)
        scale = min(float(nu1[0]), cmax) if nu1 is not None else 0.0
        eps, _ = residual(combine, scale * nu0)
        return eps, scale

    def run(budget, slopes0):
        """One convex program (exact) or block-coordinate sweeps over layers; the best step."""
        slopes[:] = [s.copy() for s in slopes0]
        steps = [None] if exact else [t for _ in range(max_sweeps) for t in reversed(kink_layers)]
        best, history = None, []
        for k_step, layer in enumerate(steps):
            if k_step == 0 and first_build is not None:
                G, b, combine, M, cone, kinfo = first_build  # same slopes: reuse, never rebuild
            else:
                G, b, combine, M, cone, kinfo = build(free_pairs_for(layer))
            nu, eps, opt_res, meth, _ = solve(G, b, combine, M, cone, budget)
            history.append(eps)
            if best is None or eps < best[1]:
                best = (nu, eps, opt_res, meth)
            # fix the free slopes at the optimum (where λ > 0) for the next block
            kl, ke, ku = kinfo
            lam_c, mu = nu[:nc], nu[nc:]
            for t, e, u, m in zip(kl, ke, ku, mu, strict=True):
                if lam_c[e] > 0:
                    slopes[t][e, u] = float(np.clip(m / lam_c[e], lo, 1.0))
            if not exact and len(history) > len(kink_layers):
                prev = history[-1 - len(kink_layers)]
                if prev - eps <= 1e-9 * max(prev, 1e-300):
                    break
        return best, history

    def solve_working_set(g2f, cone_f, budget):
        """ℓ2, ``L = 2``: the QP over all candidates by a working set of examples.

        Solve on the working set ``W`` (with the kinks of its examples), extend ν by zeros and
        check the optimality of the full candidate QP: ``g̃ = A(Aᵀν − θ̃) + η (q − 1, 0)`` (η the
        budget's multiplier on ``W``) must lie in ``C*``, i.e. ``vertex_min(g̃)_i >= 0`` for every
        candidate; on ``W`` this holds by the subproblem's optimality, off ``W`` it is checked
        here (``A r`` in ``O(n_c d m)``, no Gram matrix). Violators are added, most violated
        first, until there are none; then ν is optimal for the full QP (the budget constraint
        is one shared row, its multiplier η enters every example's reduced cost, so the test
        stays local to each example). Complementarity only involves ``W`` (ν = 0 elsewhere).
        """
        auto = working_set is None
        S_full = g2f.S
        ke, ku = g2f.kex, g2f.kun
        colscale = np.maximum(g2f.example_norms(), 1e-300)
        order = np.argsort(qc, kind="stable")
        in_w = np.zeros(nc, dtype=bool)
        in_w[order[:min(nc, _WS_INIT)]] = True
        rounds, sizes = 0, []
        while True:
            rounds += 1
            idx = np.flatnonzero(in_w)
            if auto and rounds > 1 and idx.size > _WS_MAX_SHARE * nc:
                return None, {"working_set_rounds": int(rounds - 1), "working_set_sizes": sizes,
                              "working_set_abandoned": True}
            pos = -np.ones(nc, dtype=int)
            pos[idx] = np.arange(idx.size)
            ksel = np.flatnonzero(in_w[ke])
            ke_w, ku_w = pos[ke[ksel]], ku[ksel]
            Nw = idx.size + ksel.size
            sizes.append(int(Nw))
            if Nw**2 > max_dense_entries:
                raise ValueError(
                    f"the working set's Gram matrix would have {Nw}² entries, above "
                    f"max_dense_entries={max_dense_entries} (the support is large); raise "
                    f"max_dense_entries or lower support_factor.")
            g2 = _Gram2(Wt[0], Wt[1][0], Xc[idx], yc[idx], zs[0][idx], hs[1][idx], S_full[idx],
                        ke_w, ku_w)
            cone = ConeStructure(idx.size, ke_w, lo)
            nu_w, eps_w, opt_w, meth, eta = solve(g2.G, g2.b, g2.combination, None, cone,
                                                  budget, r=qc[idx] - 1.0)
            del g2
            nu_f = np.zeros(cone_f.N)
            nu_f[idx] = nu_w[:idx.size]
            nu_f[nc + ksel] = nu_w[idx.size:]
            v = g2f.combination(nu_f)
            g = g2f.apply(v - theta)
            g[:nc] += eta * (qc - 1.0)
            viol = np.maximum(-cone_f.vertex_min(g), 0.0) / (colscale * R2)
            viol_out = np.where(in_w, 0.0, viol)
            add = np.flatnonzero(viol_out > TOLERANCES.kkt_working_set_rtol)
            if add.size == 0 or rounds >= _WS_MAX_ROUNDS:
                break
            add = add[np.argsort(-viol_out[add], kind="stable")]
            in_w[add[:max(_WS_BATCH, idx.size // 2)]] = True
        eps = float(np.linalg.norm(theta - v))
        opt_res = max(opt_w, float(viol.max(initial=0.0)))
        meth = (f"working set over candidates ({rounds} round(s), final {idx.size} of {nc} "
                f"examples); " + meth)
        extra = {"working_set_rounds": int(rounds), "working_set_sizes": sizes,
                 "working_set_violation": float(viol.max(initial=0.0)),
                 "working_set_subproblem_residual": float(opt_w)}
        return (nu_f, eps, opt_res, meth), extra

    # ---- the δ budget, natural multipliers, Euler's identity
    R = float(np.linalg.norm(theta, ord=p))
    R2 = float(np.linalg.norm(theta))
    budget = delta_tol * R**2
    kink_layers = [t for t in range(len(kinks)) if layers_of[:, t].any()]
    slopes_nat = [s.copy() for s in slopes]
    first = None if exact else (kink_layers[-1] if kink_layers else None)
    first_build = build(free_pairs_for(first))
    G, b, combine, M, cone, kinfo = first_build
    nat_eps, nat_scale = natural(G, b, combine, M, cone, kinfo, budget)
    b_l = (b if b is not None else M.T @ theta)[:nc]  # ⟨h_i, θ̃⟩, = L q_i by Euler's identity
    euler = float(np.max(np.abs(b_l - L * qc)) / (L * float(qc.max())))
    del G, b, combine, M
    nat_delta = float(nat_scale * (nat_lam @ (qc - 1.0)))
    ws_extra = {}
    if use_ws:
        best, ws_extra = solve_working_set(first_build[3], first_build[4], budget)
        history = [best[1]] if best is not None else []
        if best is None:  # support too large for a working set to pay off: the full program
            use_ws = False
            if (nc + n_kinks) ** 2 > max_dense_entries:
                raise ValueError(
                    f"the support is too large for a working set and the full Gram matrix would "
                    f"have ({nc} + {n_kinks})² entries, above max_dense_entries="
                    f"{max_dense_entries}; lower support_factor or raise max_dense_entries.")
            first_build = build(free_pairs_for(None))
    if not use_ws:
        best, history = run(budget, slopes_nat)
    first_build = None  # release the Gram matrix
    nu, eps, opt_res, meth = best
    if not exact:
        meth += f"; block-coordinate over layers {kink_layers}, {len(history)} step(s)"
    else:
        meth = "one convex program (exact); " + meth
        if ws_extra.get("working_set_abandoned"):
            meth += (f"; working set abandoned after {ws_extra['working_set_rounds']} round(s) "
                     f"(support above {_WS_MAX_SHARE:g} of the candidates)")

    lam = np.zeros(n)
    lam[cand] = nu[:nc]
    nat = np.zeros(n)
    nat[cand] = nat_scale * nat_lam
    Rw = float(np.linalg.norm(np.concatenate([W.ravel() for W in Ws]), ord=p))
    delta = float(lam[cand] @ (qc - 1.0))
    eps_rel = eps / R
    delta_rel = delta / R**2
    lam_max = float(lam.max(initial=0.0))
    support = np.flatnonzero(lam > TOLERANCES.kkt_multiplier_rtol * lam_max) if lam_max > 0 \
        else np.zeros(0, dtype=int)
    solver_status = "optimal" if opt_res <= TOLERANCES.kkt_optimality_rtol else "inaccurate"
    if solver_status != "optimal":
        warnings.warn(
            f"the KKT program's optimality residual is {opt_res:.2e} (> "
            f"{TOLERANCES.kkt_optimality_rtol:g}); epsilon = {eps:.3e} is an achieved upper bound "
            f"but may not be the minimum.", RuntimeWarning, stacklevel=2)
    if euler > 1e-6:
        warnings.warn(
            f"Euler's identity <h_i, θ> = L q_i fails by {euler:.2e} (relative): check that the "
            f"network is bias-free and homogeneous of degree {L}.", RuntimeWarning, stacklevel=2)
    # 1e-9 slack: the budget δ <= delta_tol·R² is enforced up to rounding
    is_kkt = bool(eps_rel <= eps_tol and delta_rel <= delta_tol * (1.0 + 1e-9))
    pname = _NORM_NAMES[p]
    problem = f"min ½||θ||_{pname}² s.t. y_i f(θ; x_i) >= 1"
    numbers = (f"ε/||θ̃|| = {eps_rel:.3e} (tol {eps_tol:g}), δ/||θ̃||² = {delta_rel:.3e} "
               f"(tol {delta_tol:g})")
    if is_kkt:
        verdict = f"approximate KKT point (stationary) of {problem}: {numbers}"
    else:
        verdict = f"not an approximate KKT point of {problem}: {numbers}"
    if not exact:
        verdict += "; ε is an upper bound (kinks in several layers)"
    if solver_status != "optimal":
        verdict += "; optimality of ε not certified"
    logger.info("check_kkt: %s", verdict)
    return KKTReport(
        norm=pname, epsilon=float(eps), epsilon_relative=float(eps_rel), delta=delta,
        delta_relative=float(delta_rel), multipliers=lam, support=support, n_kink_pairs=n_kinks,
        natural_epsilon=float(nat_eps), natural_epsilon_relative=float(nat_eps / R),
        natural_multipliers=nat, natural_delta=nat_delta, delta_budget=float(budget),
        q_min=q_min, normalised_margin=float(q_min / Rw**L), degree=L,
        n_candidates=int(nc), support_factor=float(support_factor),
        excluded_weight=excluded_weight, exact=exact and n_near == 0, method=meth,
        solver_status=solver_status,
        euler_residual=float(euler), optimality_residual=float(opt_res), eps_tol=float(eps_tol),
        delta_tol=float(delta_tol), is_kkt=is_kkt,
        status="approximate_kkt" if is_kkt else "not_kkt", verdict=verdict,
        extra={"block_history": [float(h) for h in history], "P": int(P),
               "n_near_kink_pairs": n_near,
               **({"norm_rtol": float(norm_rtol)} if p != 2.0 else {}), **ws_extra},
    )
