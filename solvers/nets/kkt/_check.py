"""Approximate KKT check of the margin problem for trained homogeneous networks.

docs/theory.md §7.

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
:mod:`solvers.nets.kkt._lp`). :func:`check_kkt` computes the **smallest** ε over the
multipliers and the Clarke choices, not the residual of one numerical choice.

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
  (ℓ2) or LP (ℓ1/ℓ∞) over a polyhedral cone (:mod:`solvers.nets.kkt._qp`).
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
  Jacobian, at any depth: every column's gradient block in a dense layer is an outer product
  ``δ_l h_{l−1}ᵀ``, so (:class:`._problem.LayeredGram`)

  .. math::

      G = \\sum_l (D_l D_l^\\top) \\odot (H_{l-1} H_{l-1}^\\top)

  (for ``L = 2``: ``(y yᵀ) ⊙ [(X Xᵀ) ⊙ (S diag(a²) Sᵀ) + H Hᵀ]``). By Euler's identity
  ``⟨h_i, θ̃⟩ = L q_i(θ̃)`` (Lyu & Li 2019, Thm. B.2) — checked for free (``euler_residual``). The
  residual ``θ̃ − Σ λ_i h_i`` is always formed in parameter space (no cancellation), so ε is an
  achieved value; the QP's optimality (dual-cone feasibility and complementarity) is verified
  separately (``solver_status``).
* Working set (ℓ2, exact programs; ``working_set``): the QP is solved on a working set of
  candidates (smallest margins first) and the optimality conditions of the **full** candidate QP
  are checked matrix-free: with ``r = Σ λ_i h_i + Σ μ_k k_k − θ̃`` and η the budget's
  multiplier, every excluded example needs ``min over its slope vertices of
  ⟨h_i + Σ_k s_k k_k, r⟩ + η (q_i − 1) >= 0`` (one forward-mode pass, no Gram matrix); violators
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
import time
import warnings
from collections.abc import Sequence

import numpy as np

from ..._validation import check_labels, check_norm, check_X
from ...tolerances import TOLERANCES
from .._margins import check_class_labels
from ._lp_colgen import ColgenPrograms
from ._problem import build_problem
from ._report import NORM_NAMES, KKTReport, decide
from ._solve import KKTConfig, Programs

__all__ = ["KKTReport", "KKTConfig", "check_kkt"]

logger = logging.getLogger(__name__)

_NORM_NAMES = NORM_NAMES


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


# ---------------------------------------------------------------------------------------- main
def _is_torch(net) -> bool:
    """A :class:`TorchNet` or a ``torch.nn.Module`` (without importing torch)."""
    from .._torch_net import TorchNet

    return isinstance(net, TorchNet) or any(
        c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(net).__mro__)


def _check_arguments(norm, eps_tol, delta_tol, support_factor, kink_rtol, config):
    """``(p, config)`` after the checks both back-ends share (one-line errors, before any work)."""
    p = check_norm(norm)
    if p not in NORM_NAMES:
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
    if config is None:
        config = KKTConfig()
    elif not isinstance(config, KKTConfig):
        raise TypeError(f"config must be a solvers.nets.kkt.KKTConfig; got "
                        f"{type(config).__name__}. Pass e.g. KKTConfig(working_set_initial=50).")
    return p, config


def _check_torch(net, X, y, *, norm, loss, eps_tol, delta_tol, support_factor, kink_rtol,
                 max_dense_entries, norm_rtol, config=None):
    from .._torch_net import TorchNet
    from ._torch import check_kkt_torch

    p, config = _check_arguments(norm, eps_tol, delta_tol, support_factor, kink_rtol, config)
    if loss not in ("logistic", "exp"):
        raise ValueError(f"loss must be 'logistic' or 'exp'; got {loss!r}.")
    tn = net if isinstance(net, TorchNet) else TorchNet(net)
    if p != 2.0:  # ℓ1/ℓ∞: constraint generation over coordinates (._torch_lp)
        from ._torch_lp import check_kkt_torch_lp
        return check_kkt_torch_lp(tn, X, y, p=p, loss=loss, eps_tol=eps_tol, delta_tol=delta_tol,
                                  support_factor=support_factor, kink_rtol=kink_rtol,
                                  norm_rtol=norm_rtol)
    return check_kkt_torch(tn, X, y, loss=loss, eps_tol=eps_tol, delta_tol=delta_tol,
                           support_factor=support_factor, kink_rtol=kink_rtol,
                           max_dense_entries=max_dense_entries, config=config)


def check_kkt(net, X, y, *, norm=2, activation: str | None = None, alpha: float = 0.0,
              loss: str = "logistic", eps_tol: float = TOLERANCES.kkt_eps_tol,
              delta_tol: float = TOLERANCES.kkt_delta_tol,
              support_factor: float = TOLERANCES.kkt_support_factor,
              kink_rtol: float = TOLERANCES.kink_rtol,
              norm_rtol: float = TOLERANCES.kkt_norm_rtol, max_sweeps: int = 6,
              max_dense_entries: int = 60_000_000,
              working_set: bool | None = None,
              config: KKTConfig | None = None) -> KKTReport:
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
    net : HomogeneousMLP, sequence of ndarray, TorchNet or torch.nn.Module
        The network, or its weights ``(W_1, ..., W_L)`` with ``W_l`` of shape ``(d_l, d_{l-1})``,
        ``W_L`` of shape ``(K, d_{L-1})`` (then ``activation``/``alpha`` describe it). A PyTorch
        module (convolutions, pooling, custom modules: see :class:`solvers.nets.TorchNet`) is
        checked on its pair Gram matrix from the layer structure for ℓ2
        (:mod:`solvers.nets.kkt._torch`, a working set over the candidate pairs) and by
        constraint generation over coordinates for ℓ1/ℓ∞ (:mod:`solvers.nets.kkt._torch_lp`);
        ``X`` then has the module's input shape ``(n, ...)``.
    X : array_like of shape (n, d_0)
    y : array_like of shape (n,)
        Values ±1 for a net with one output; class indices ``0…K−1`` for ``K`` outputs (then
        every (example, competing class) pair is a constraint ``f_{y_i} − f_j >= 1``, with its
        own multiplier; ``multipliers`` sums them per example and ``extra['support_pairs']``
        lists ``[example, class, λ]``; docs/theory.md §7, multi-class).
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
        ℓ2 only: solve the QP on a working set of candidates (smallest
        margins first, then the candidates whose optimality conditions in the full candidate
        QP are violated, until none is), so the cost depends on the support size rather than on
        the number of candidates. ``None`` (default): when there are more than
        ``config.working_set_min_candidates`` candidates. The final point is verified optimal for
        the full candidate QP (``optimality_residual``; rounds and sizes in ``extra``). Not
        used when kinks span several layers (block-coordinate steps; said in ``method``).
    config : KKTConfig, optional
        How the program is solved (working-set sizes and rounds, second phase); the defaults of
        :class:`KKTConfig` when omitted.

    Returns
    -------
    KKTReport

    Notes
    -----
    Scale: the check runs on each layer at unit norm with the scales carried as logarithms
    (:mod:`._problem`), so a net whose weights are multiplied by ``c`` in ``[1e-300, 1e300]``
    gets the same ``epsilon_relative``, ``delta_relative`` and verdict as the net itself (up to
    rounding); ``q_min`` over/underflows there and ``log_q_min`` carries it.

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
    if _is_torch(net):
        return _check_torch(net, X, y, norm=norm, loss=loss, eps_tol=eps_tol, delta_tol=delta_tol,
                            support_factor=support_factor, kink_rtol=kink_rtol,
                            max_dense_entries=max_dense_entries, norm_rtol=norm_rtol,
                            config=config)
    net = _as_network(net, activation, alpha)
    L = net.degree
    X = check_X(X)
    d0 = net.weights[0].shape[1]
    if X.shape[1] != d0:
        raise ValueError(
            f"X has {X.shape[1]} features (shape {X.shape}) but W1 expects {d0}; "
            f"pass X of shape (n, {d0}) with one example per row."
        )
    K = net.n_outputs
    y = check_labels(y, X.shape[0]) if K == 1 else check_class_labels(y, X.shape[0], K)
    p, config = _check_arguments(norm, eps_tol, delta_tol, support_factor, kink_rtol, config)
    structured = p == 2.0  # the layered Gram matrix (any depth); ℓ1/ℓ∞: explicit LP columns
    if working_set and not structured:
        raise ValueError(
            f"working_set=True needs norm=2 (the layered Gram matrix); got norm={norm!r}. "
            f"Omit working_set.")

    t_start = time.perf_counter()
    prob = build_problem(net, X, y, p=p, loss=loss, support_factor=support_factor,
                         kink_rtol=kink_rtol)
    nc, n_kinks, P, qc = prob.nc, prob.n_kinks, prob.P, prob.qc
    # one stage line each (issue 14.13): a CLI run off a terminal is never silent for long
    logger.info("check_kkt: margins done, %d candidates, %d kink pairs, P = %d (%.1f s)",
                nc, n_kinks, P, time.perf_counter() - t_start)
    use_ws = structured and prob.exact and (
        nc > config.working_set_min_candidates if working_set is None else bool(working_set))
    if structured and not use_ws and (nc + n_kinks) ** 2 > max_dense_entries:
        raise ValueError(
            f"the Gram matrix would have ({nc} + {n_kinks})² entries, above max_dense_entries="
            f"{max_dense_entries}; lower support_factor or raise max_dense_entries."
        )
    # ℓ1/ℓ∞ above max_dense_entries: constraint generation over coordinates (._lp_colgen)
    colgen = not structured and (nc + n_kinks) * P > max_dense_entries

    theta = prob.theta
    R = float(np.linalg.norm(theta, ord=p))
    budget = delta_tol * R**2
    progs = (ColgenPrograms if colgen else Programs)(
        prob, p, norm_rtol=norm_rtol, budget=budget, config=config,
        max_dense_entries=max_dense_entries, use_structured=structured or colgen)
    kink_layers = [t for t in range(len(prob.kinks)) if prob.layers_of[:, t].any()]
    first_layer = None if prob.exact else (kink_layers[-1] if kink_layers else None)
    first = progs.build(prob.slopes, prob.free_pairs(first_layer), gram=not use_ws)

    # ---- natural multipliers and Euler's identity ⟨h_i, θ̃⟩ = L q_i
    nat_eps, nat_scale = progs.natural(first, prob.slopes)
    b_l = (first.b if first.b is not None else first.M.T @ theta)[:nc]
    euler = float(np.max(np.abs(b_l - L * qc)) / (L * float(qc.max())))
    nat_delta = float(nat_scale * (prob.nat_lam @ (qc - 1.0)))
    logger.info("check_kkt: natural multipliers done, ε/||θ̃|| ≤ %.3g; solving the program "
                "(%.1f s)", nat_eps / R, time.perf_counter() - t_start)

    ws_extra = {}
    best = None
    if use_ws:
        best, ws_extra = progs.working_set(first, auto=working_set is None)
        history = [best.eps] if best is not None else []
        if best is None:  # support too large for a working set to pay off: the full program
            if (nc + n_kinks) ** 2 > max_dense_entries:
                raise ValueError(
                    f"the support is too large for a working set and the full Gram matrix would "
                    f"have ({nc} + {n_kinks})² entries, above max_dense_entries="
                    f"{max_dense_entries}; lower support_factor or raise max_dense_entries.")
            first = progs.build(prob.slopes, prob.free_pairs(None))
    if best is None:
        best, history = progs.run(prob.slopes, max_sweeps=max_sweeps, first=first)
    by_layer = _epsilon_by_layer(net, theta, first, best) if structured and prob.exact else None
    del first  # release the Gram matrix
    logger.info("check_kkt: program solved (%.1f s)", time.perf_counter() - t_start)
    nu, eps, opt_res, meth = best.nu, best.eps, best.opt_res, best.method
    if working_set and not use_ws:
        meth += "; working set not used (kinks in several layers: block-coordinate steps)"
    if not prob.exact and kink_layers and not prob.dead_zero:
        meth += f"; block-coordinate over layers {kink_layers}, {len(history)} step(s)"
    elif not prob.exact:
        meth += "; a dead unit with an exactly zero row keeps slope σ'(0)"
    else:
        meth = "one convex program (exact); " + meth
        if ws_extra.get("working_set_abandoned"):
            meth += (f"; working set abandoned after {ws_extra['working_set_rounds']} round(s) "
                     f"(support above {config.working_set_max_share:g} of the candidates)")

    n, cand_ex = prob.n, prob.cand_ex
    lam = np.zeros(n)  # per example: the sum over its (example, class) constraints
    np.add.at(lam, cand_ex, nu[:nc])
    nat = np.zeros(n)
    np.add.at(nat, cand_ex, nat_scale * prob.nat_lam)
    delta = float(nu[:nc] @ (qc - 1.0))
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
    pname = NORM_NAMES[p]
    problem = (f"min ½||θ||_{pname}² s.t. y_i f(θ; x_i) >= 1" if K == 1 else
               f"min ½||θ||_{pname}² s.t. f_(y_i)(θ; x_i) − f_j(θ; x_i) >= 1 for j ≠ y_i")
    pair_extra = {}
    if K > 1:  # the support as (example, competing class, λ) triples
        lam_c = nu[:nc]
        keep = np.flatnonzero(lam_c > TOLERANCES.kkt_multiplier_rtol * lam_max) if lam_max > 0 \
            else np.zeros(0, dtype=int)
        pair_extra = {"n_classes": K, "support_pairs": [
            [int(prob.cand_ex[k]), int(prob.cand_class[k]), float(lam_c[k])] for k in keep]}
    numbers = (f"ε/||θ̃|| = {eps_rel:.3e} (tol {eps_tol:g}), δ/||θ̃||² = {delta_rel:.3e} "
               f"(tol {delta_tol:g})")
    status, head = decide(is_kkt, upper_bound=not prob.exact or solver_status != "optimal")
    verdict = f"{head} of {problem}: {numbers}"
    if not prob.exact:
        verdict += ("; ε is an upper bound (a dead unit's Clarke slope is not freed)"
                    if prob.dead_zero else "; ε is an upper bound (kinks in several layers)")
    if solver_status != "optimal":
        verdict += "; optimality of ε not certified"
    logger.info("check_kkt: %s", verdict)
    return KKTReport(
        norm=pname, epsilon=float(eps), epsilon_relative=float(eps_rel), delta=delta,
        delta_relative=float(delta_rel), multipliers=lam, support=support, n_kink_pairs=n_kinks,
        natural_epsilon=float(nat_eps), natural_epsilon_relative=float(nat_eps / R),
        natural_multipliers=nat, natural_delta=nat_delta, delta_budget=float(budget),
        q_min=prob.q_min, normalised_margin=prob.normalised_margin(p), degree=L,
        n_candidates=int(nc), support_factor=float(support_factor),
        excluded_weight=prob.excluded_weight, exact=prob.exact and prob.n_near == 0,
        method=meth, solver_status=solver_status,
        euler_residual=float(euler), optimality_residual=float(opt_res), eps_tol=float(eps_tol),
        delta_tol=float(delta_tol), is_kkt=is_kkt,
        status=status, verdict=verdict,
        extra={"block_history": [float(h) for h in history], "P": int(P),
               "n_near_kink_pairs": prob.n_near, "n_dead_units": prob.n_dead,
               **({"norm_rtol": float(norm_rtol)} if p != 2.0 else {}), **ws_extra,
               **pair_extra, **({"epsilon_by_layer": by_layer} if by_layer else {})},
        log_q_min=float(prob.log_q_min), primal_feasibility=prob.primal_feasibility,
    )


def _epsilon_by_layer(net, theta, bld, best) -> list | None:
    """``[["W1", ||r_1||], ...]``, largest first: the residual ``r = θ̃ − Aᵀν`` of the final
    multipliers split by layer (ℓ2, one exact program, so ``bld`` is the program ``best`` solved;
    ``Σ_l ||r_l||² = ε²``). None when the columns do not match or ``||r||`` is not the reported ε
    (then nothing is claimed)."""
    if best.nu.shape != (bld.cone.N,):
        return None  # pragma: no cover - the exact program's multipliers always match
    r = theta - (best.v if best.v is not None else bld.combine(best.nu))
    if not np.isclose(float(np.linalg.norm(r)), best.eps, rtol=1e-9, atol=1e-12 * float(
            np.linalg.norm(theta))):
        return None  # pragma: no cover - ε is computed from this very combination
    parts = np.split(r, np.cumsum([W.size for W in net.weights])[:-1])
    return sorted(([f"W{l + 1}", float(np.linalg.norm(part))] for l, part in enumerate(parts)),
                  key=lambda kv: -kv[1])
