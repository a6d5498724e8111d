r"""The ℓ2 KKT check for a :class:`~solvers.nets.TorchNet` (private; docs/theory.md §7.4, §7.8).

The same program as for :class:`~solvers.HomogeneousMLP` — minimise
``ε = ||θ̃ − Σ_a λ_a ∇q_a(θ̃)||`` over ``λ ≥ 0`` with ``δ = Σ_a λ_a (q_a(θ̃) − 1)`` under the budget,
``θ̃ = θ / q_min^{1/L}`` — for any network :class:`TorchNet` accepts (convolutions, pooling, custom
modules). The constraints ``a`` are the candidates: examples (one output) or
(example, competing class) pairs (``K`` outputs) with ``q_a(θ̃) <= support_factor``.

- The Gram matrix ``G_{ab} = ⟨∇q_a, ∇q_b⟩`` comes from the layer structure
  (:meth:`TorchNet.pair_gram`, accumulated in blocks), never from the ``(m, P)`` Jacobian;
  ``b_a = ⟨∇q_a, θ̃⟩ = L q_a`` by Euler's identity, which is *checked* by forward-mode passes
  (``euler_residual``).
- The QP is the cone QP of :mod:`._qp`: solved by gradient projection + conjugate gradients on
  products with ``G`` (:func:`._gpcg.solve_cone_qp_gpcg`, warm-started from the natural
  multipliers) above ``KKTConfig.first_order_min_variables`` variables, by the interior point
  below that and as the fallback when GPCG does not converge on a program of at most four times
  that size. Either way the point is certified by :func:`._qp.cone_optimality` (dual-cone
  violation and complementarity, relative); "optimal" only below
  ``TOLERANCES.kkt_optimality_rtol``. ε is then **recomputed** from the final multipliers by a
  backward pass, ``v = ∇_θ Σ_a λ_a q_a(θ̃)``, ``ε = ||θ̃ − v||`` — the reported value is
  achieved, not a model's prediction. Passes over the data go by distinct example (the pairs'
  output weights summed per example) in chunks.
- Working set (more than ``KKTConfig.working_set_min_candidates`` candidate pairs): the QP runs
  on the ``KKTConfig.working_set_initial`` pairs of smallest margin (largest natural multiplier)
  and its optimality for **every** candidate pair is checked by one forward-mode pass: the
  reduced cost ``⟨∇q_a, v − θ̃⟩ + η (q_a − 1)`` of each pair outside
  must be ``>= 0``, relative to ``L q_a <= ||∇q_a|| ||θ̃||`` (so the violation is over-stated,
  never hidden). The most violating pairs (at least ``KKTConfig.working_set_batch``, at most half
  the working set more; every pair outside once the working set would pass
  ``KKTConfig.working_set_max_share`` of the candidates) are added — only their Gram rows
  ``G[new, W ∪ new]`` are computed, from the working set's layer factors kept between rounds,
  and appended as a block row (:class:`_BlockRowGram`: nothing is copied) — and the QP is
  solved again, warm-started from the previous multipliers, until no pair outside violates
  beyond ``TOLERANCES.kkt_working_set_rtol`` (then the working set's optimum is the full
  program's: certified) or
  ``KKTConfig.working_set_max_rounds`` rounds (then the remaining violation enters the
  optimality residual, the status is "inaccurate" and ε an achieved upper bound).
- The network is evaluated at unit parameter norm and the scale is carried as a logarithm, so a
  net multiplied by ``1e±300`` is checked exactly like the unscaled one.
- Kinks: the gradients are autograd's at ``θ̃`` (``σ'(0) = 0`` for ReLU, one index per max-pool
  window), an element of the Clarke subdifferential; after the working set, the near-kink ReLU
  inputs and near-tied max-pool windows of its pairs get free slopes (:mod:`._torch_kinks`,
  docs/theory.md §7.5): exact when each pair's kinks lie in one module, else ε is an upper bound.
"""

from __future__ import annotations

import logging
import math
import time
import warnings

import numpy as np

from ...errors import NotFeasibleError
from ...tolerances import TOLERANCES
from ._active_set import solve_cone_qp_newton
from ._gpcg import solve_cone_qp_gpcg
from ._qp import ConeStructure, cone_optimality, solve_cone_qp
from ._report import KKTReport, decide
from ._solve import KKTConfig, _symmetric_product
from ._torch_kinks import free_kinks

__all__: list[str] = []

logger = logging.getLogger(__name__)

#: examples per forward/backward pass. 128 keeps each of a chunk's float64 tensors of Lyu &
#: Li's MNIST CNN (conv1's output: 128·32·24·24·8 B = 19 MB) below glibc's largest mmap
#: threshold (32 MB), so freed activations are reused instead of returned to the OS and
#: zero-filled again: at 512 a forward-mode pass over 2,000 examples spent 2.0 of its 4.3 CPU
#: seconds in page faults, at 128 0.1 of 3.6 (docs/benchmarks.md, branch torchws2)
_CHUNK = 128


def _pairs(F: np.ndarray, y: np.ndarray):
    """Every constraint: (example, class, margin) — one per example for one output, one per
    competing class for ``K`` outputs."""
    n, K = F.shape
    if K == 1:
        return np.arange(n), np.full(n, -1), y * F[:, 0]
    rows = np.repeat(np.arange(n), K - 1)
    cls = np.array([j for i in range(n) for j in range(K) if j != y[i]], dtype=np.int64)
    return rows, cls, F[rows, y[rows]] - F[rows, cls]


def _example_weights(tn, y, rows, classes, nu, K):
    """The pairs' output weights ``ν_a w_a`` summed per example: ``(examples, W)`` with
    ``Σ_a ν_a q_a = Σ_e ⟨W_e, f(x_e)⟩``, so one pass over the distinct examples serves every
    pair."""
    torch = tn._torch
    ex, inv = np.unique(rows, return_inverse=True)
    W = tn._pair_weights(y[rows], classes, K) * torch.from_numpy(np.asarray(nu, float))[:, None]
    We = torch.zeros((ex.size, K), dtype=torch.float64)
    We.index_add_(0, torch.from_numpy(inv.astype(np.int64)), W)
    return ex, We


def _combination(tn, X, y, rows, classes, nu, *, chunk_size=_CHUNK):
    """``∇_θ Σ_a ν_a q_a`` by backward passes over the distinct examples, in chunks (the
    gradients accumulate), per parameter tensor (name → ndarray)."""
    K = tn.outputs(X[:1]).shape[1]
    ex, We = _example_weights(tn, y, rows, classes, nu, K)
    params = dict(tn.module.named_parameters())
    for p in params.values():
        p.requires_grad_(True)
        p.grad = None
    try:
        for s in range(0, ex.size, chunk_size):
            T = tn._tensor(X[ex[s:s + chunk_size]])
            out = tn.module(T).reshape(T.shape[0], -1)
            (out * We[s:s + chunk_size]).sum().backward()
        return {k: (p.grad.detach().numpy().copy() if p.grad is not None
                    else np.zeros(tuple(p.shape))) for k, p in params.items()}
    finally:
        for p in params.values():
            p.requires_grad_(False)
            p.grad = None


def _output_tangents(tn, X, examples, tangent, *, chunk_size=_CHUNK):
    """``J_θ f(θ; x_e) · t`` for the given examples, shape ``(examples, K)``, by forward-mode
    passes in chunks (``tangent``: name → tensor)."""
    from torch.func import functional_call, jvp

    params = {k: p.detach() for k, p in tn.module.named_parameters()}
    out = []
    for s in range(0, examples.size, chunk_size):
        T = tn._tensor(X[examples[s:s + chunk_size]])

        def f(p, T=T):
            return functional_call(tn.module, p, (T,)).reshape(T.shape[0], -1)
        out.append(jvp(f, (params,), (tangent,))[1].numpy())
    return np.concatenate(out)


def _pair_directional(tn, X, y, rows, classes, tangent):
    """``⟨∇q_a, t⟩`` for every pair, from the output tangents of its example."""
    ex, inv = np.unique(rows, return_inverse=True)
    Ft = _output_tangents(tn, X, ex, tangent)
    if Ft.shape[1] == 1:
        return y[rows] * Ft[inv, 0]
    return Ft[inv, y[rows]] - Ft[inv, classes]


def _euler(tn, X, y, rows, classes):
    """``⟨∇q_a, θ⟩`` for every constraint by forward-mode passes (tangent θ)."""
    params = {k: p.detach() for k, p in tn.module.named_parameters()}
    return _pair_directional(tn, X, y, rows, classes, params)


def _solve_qp(G, b, nc, R, budget_row, budget, x0, cfg: KKTConfig, *,
              warm: str = "natural multipliers", cone: ConeStructure | None = None):
    """The cone QP on the Gram matrix (``nc`` variables; ``cone`` with kink variables for
    :mod:`._torch_kinks`, default ``ν >= 0``) above ``KKTConfig.first_order_min_variables``
    variables: by ``KKTConfig.explicit_qp`` — projected Newton with exact face solves
    (:func:`._active_set.solve_cone_qp_newton`, ``ν >= 0`` only) or GPCG — warm-started from
    ``x0``; by the interior point below that size and as the fallback when the first-order
    method does not converge on a program of at most four times that size. Both first-order
    methods multiply by a dense copy of ``G`` with symmetric BLAS (dsymv: 2.5 vs 5.2 ms CPU per
    product with the block rows at 3,375 pairs, docs/benchmarks.md).
    Returns ``(ν, η, method text)``; optimality is certified by the caller."""
    if cone is None:
        cone = ConeStructure(nc, np.zeros(0, dtype=int), 0.0)
    Gd = G if isinstance(G, np.ndarray) else G.dense()
    diag = np.diag(Gd)
    colscale = np.sqrt(np.maximum(diag, 1e-300))
    meth = ""
    if nc > cfg.first_order_min_variables:
        if cfg.explicit_qp == "newton" and cone.K == 0:
            fo = solve_cone_qp_newton(Gd, b, col_scale=colscale, obj_scale=R,
                                      tol=TOLERANCES.kkt_working_set_rtol,
                                      budget_row=budget_row, budget=budget, x0=x0,
                                      max_iter=cfg.first_order_max_iter,
                                      matvec=_symmetric_product(Gd))
            meth = (f"projected Newton (Cholesky on each face) on the {nc}x{nc} pair Gram "
                    f"matrix ({fo.iterations} it., {fo.factorizations} factorisations, "
                    f"{fo.regularized} regularised, {fo.matvecs} products, warm start: {warm})")
        else:
            fo = solve_cone_qp_gpcg(_symmetric_product(Gd), diag, b, cone, col_scale=colscale,
                                    obj_scale=R, tol=TOLERANCES.kkt_working_set_rtol,
                                    budget_row=budget_row, budget=budget, x0=x0,
                                    max_iter=cfg.first_order_max_iter)
            meth = (f"gradient projection + CG on the {nc}x{nc} pair Gram matrix "
                    f"({fo.iterations} it., {fo.matvecs} products, warm start: {warm})")
        logger.info("torch KKT QP: %s; internal optimality %.1e", meth, fo.optimality)
        if fo.converged or nc > 4 * cfg.first_order_min_variables:
            return fo.nu, fo.eta, meth
        meth += "; not converged, interior point instead: "
    res = solve_cone_qp(Gd, b, cone, tol=TOLERANCES.kkt_qp_tol, budget_row=budget_row,
                        budget=budget)
    return res.nu, res.eta, meth + (f"interior-point QP on the {nc}x{nc} pair Gram matrix "
                                    f"({res.iterations} it.)")


def _initial_working_set(qt, cand, cfg: KKTConfig):
    """The first working set, a boolean mask over ``cand``: every candidate pair when there are
    at most ``KKTConfig.working_set_min_candidates``, else the ``KKTConfig.working_set_initial``
    pairs of smallest margin ``q_a(θ̃)`` — those of largest natural multiplier, which for the exp
    and logistic losses decrease with the margin (docs/theory.md §7.7)."""
    nc = cand.size
    ws = np.ones(nc, dtype=bool)
    if nc > cfg.working_set_min_candidates and nc > cfg.working_set_initial:
        ws[:] = False
        ws[np.argsort(qt[cand], kind="stable")[:cfg.working_set_initial]] = True
    return ws


class _BlockRowGram:
    """The working set's pair Gram matrix, grown by block rows and never copied.

    Adding pairs ``N`` to the working set ``W`` appends their rows ``G[N, W ∪ N]`` as one
    ``(|N|, |W| + |N|)`` block, so the blocks hold the lower block triangle of ``G``; a product
    uses each block twice (``B v[:M]`` for the rows ``N``, ``B[:, :|W|]ᵀ v[N]`` for the columns
    ``W``), so ``G`` is never assembled: memory about half of ``G``'s, nothing copied when the
    set grows (docs/theory.md §7.7)."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []
        self.size = 0

    @property
    def shape(self):
        return (self.size, self.size)

    def append(self, block: np.ndarray) -> None:
        if block.shape[1] != self.size + block.shape[0]:
            raise ValueError(f"a block of new rows must have shape (m, {self.size} + m); got "
                             f"{block.shape}.")
        self.blocks.append(block)
        self.size += block.shape[0]

    def __matmul__(self, v):
        out = np.zeros(self.size)
        s0 = 0
        for B in self.blocks:
            s1 = s0 + B.shape[0]
            out[s0:s1] += B @ v[:s1]
            if s0:
                out[:s0] += B[:, :s0].T @ v[s0:s1]
            s0 = s1
        return out

    def diagonal(self) -> np.ndarray:
        s0, out = 0, []
        for B in self.blocks:
            out.append(np.diagonal(B[:, s0:s0 + B.shape[0]]))
            s0 += B.shape[0]
        return np.concatenate(out) if out else np.zeros(0)

    def dense(self) -> np.ndarray:
        G = np.empty(self.shape)
        s0 = 0
        for B in self.blocks:
            s1 = s0 + B.shape[0]
            G[s0:s1, :s1] = B
            G[:s0, s0:s1] = B[:, :s0].T
            s0 = s1
        return G


def _new_rows(tn, facs, fac_new):
    """``G[N, W ∪ N]`` for new pairs ``N`` (layer factors ``fac_new``) against the working set
    ``W`` (its factors ``facs``, one store per round), written into one preallocated block."""
    m, M = fac_new[0], sum(f[0] for f in facs)
    B = np.empty((m, M + m))
    s0 = 0
    for f in facs:
        tn._gram_cross(fac_new, f, out=B[:, s0:s0 + f[0]])
        s0 += f[0]
    tn._gram_symmetric(fac_new, out=B[:, M:])
    return B


def _normalise(tn, X, y):
    """The network at unit ℓ2 norm and its candidate pairs' margins, with the scale as a log.

    Returns ``(unit, F, y, rows, classes, q, q_ex, q_hat_min, log_q_min)``: ``F`` the outputs of
    ``unit`` (``||θ|| = 1``, evaluated without overflow for any ``||θ||``), ``y`` the checked
    labels, ``(rows, classes, q)`` every (example, competing class) pair and its margin at
    ``unit``, ``q_ex`` each example's margin, ``q_hat_min`` their minimum and ``log_q_min`` the
    log of the original network's minimum margin (docs/theory.md §7.8). Raises
    :class:`NotFeasibleError` when an example is not fitted."""
    L = tn.degree
    theta0 = tn.flat()
    m0 = float(np.max(np.abs(theta0)))
    if not (np.isfinite(m0) and m0 > 0):
        raise ValueError("the network's parameters are all zero or not finite.")
    r0 = float(np.linalg.norm(theta0 / m0))                 # ||θ|| = m0 · r0 without overflow
    unit = tn.scaled(1.0 / m0).scaled(1.0 / r0)             # ||θ|| = 1
    F = unit.outputs(X)
    n, K = F.shape
    y = unit.check_labels(y, n, K)
    rows_all, cls_all, q_all = _pairs(F, y)
    q_ex = np.full(n, np.inf)
    np.minimum.at(q_ex, rows_all, q_all)
    if not np.all(q_ex > 0):
        bad = int(np.sum(q_ex <= 0))
        raise NotFeasibleError(
            f"{bad} of {n} example(s) have margin <= 0 (misclassified or tied): the margin "
            f"problem's constraints q_i >= 1 cannot be met by rescaling; train further first.")
    q_hat_min = float(q_ex.min())
    log_q_min = L * (math.log(m0) + math.log(r0)) + math.log(q_hat_min)
    return unit, F, y, rows_all, cls_all, q_all, q_ex, q_hat_min, log_q_min


def check_kkt_torch(net, X, y, *, loss: str, eps_tol: float, delta_tol: float,
                    support_factor: float, kink_rtol: float,
                    max_dense_entries: int, config: KKTConfig | None = None) -> KKTReport:
    """The ℓ2 KKT check of a :class:`TorchNet` (see the module docstring; called by
    :func:`solvers.check_kkt`, which validates the tolerances). ``config`` (default
    :class:`KKTConfig`) sets when GPCG replaces the interior point
    (``first_order_min_variables``, ``first_order_max_iter``) and when the multi-class working
    set starts (``working_set_min_candidates``) and its first size (``working_set_initial``),
    how many pairs a round adds at least
    (``working_set_batch``), when all are added (``working_set_max_share``) and the cap on the
    rounds (``working_set_max_rounds``)."""
    cfg = KKTConfig() if config is None else config
    tn = net
    L = tn.degree
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(name):
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = seconds.get(name, 0.0) + now - clock
        logger.info("torch KKT check: %s done (%.1f s; this stage %.1f s in all)", name,
                    now - clock, seconds[name])
        clock = now

    unit, F, y, rows_all, cls_all, q_all, q_ex, q_hat_min, log_q_min = _normalise(tn, X, y)
    n, K = F.shape
    tilde = unit.scaled(q_hat_min ** (-1.0 / L))            # q_min(θ̃) = 1
    theta = tilde.flat()
    qt = q_all / q_hat_min
    cand = np.flatnonzero(qt <= support_factor)
    nc = cand.size
    # the program's variables: every candidate pair, or — above
    # KKTConfig.working_set_min_candidates — a working set starting from the
    # KKTConfig.working_set_initial smallest-margin pairs, whose optimality for the full
    # candidate program is checked by one forward-mode pass per round
    ws = _initial_working_set(qt, cand, cfg)
    sel = cand[ws]
    rows, classes, qc = rows_all[sel], cls_all[sel], qt[sel]
    nw = sel.size
    if nw ** 2 > max_dense_entries:
        hint = (", or config=KKTConfig(working_set_initial=...) to start from fewer pairs"
                if nw < nc else "")
        raise ValueError(f"the Gram matrix would have {nw}² entries, above max_dense_entries="
                         f"{max_dense_entries}: pass check_kkt(..., max_dense_entries={nw ** 2}) "
                         f"({nw}² float64 take {nw ** 2 * 8 / 2 ** 30:.1f} GiB), a smaller "
                         f"support_factor{hint}.")
    R = float(np.linalg.norm(theta))
    budget = delta_tol * R ** 2
    stage("margins")

    # natural multipliers: the loss gradient's weights −ℓ'(q_a(θ)) over all constraints,
    # normalised, in the log domain (q_a(θ) = q̃_a · q_min; q_min capped where exp overflows,
    # which only sharpens weights that are already concentrated on the smallest margins)
    z = (q_all / q_hat_min) * math.exp(min(log_q_min, 700.0))
    logw = -z if loss == "exp" else -np.logaddexp(0.0, z)    # exp: e^{−z}; logistic: σ(−z)
    logw -= np.logaddexp.reduce(logw)
    nat_all = np.exp(logw[cand])                             # on every candidate pair
    excluded = float(max(0.0, 1.0 - nat_all.sum()))
    v_nat_parts = _combination(tilde, X, y, rows_all[cand], cls_all[cand], nat_all)
    v_nat = np.concatenate([v_nat_parts[k].ravel() for k in tilde.parameter_names])
    d0 = float(nat_all @ (qt[cand] - 1.0))
    cmax = budget / d0 if d0 > 0 else np.inf
    curv = float(v_nat @ v_nat)
    scale = min(max(0.0, float(theta @ v_nat) / curv), cmax) if curv > 0 else 0.0
    nat_eps = float(np.linalg.norm(theta - scale * v_nat))
    stage("natural multipliers")

    # the working set's layer factors (one store per round) and its Gram matrix by block rows
    facs = [tilde._pair_factors(X, y, rows, classes, _CHUNK)]
    G = _BlockRowGram()
    G.append(tilde._gram_symmetric(facs[0]))
    b = L * qc
    stage("gram")

    # warm start: the natural multipliers of the working set, scaled within the budget
    x0 = nat_all[ws].copy()
    xd = float(x0 @ (qc - 1.0))
    if xd > 0:
        x0 *= min(scale, budget / xd)
    else:
        x0 *= scale
    # the working-set loop (docs/theory.md §7.4; as solvers.nets.kkt._solve's working set):
    # solve the QP on the working set, price every candidate pair outside it by one
    # forward-mode pass, add the most violating pairs (their Gram rows only), until none violates
    sel = cand[ws]                      # the working set, in the order of G's rows
    rounds, ws_sizes, warm, ws_stop = 0, [], "natural multipliers", ""
    while True:
        rounds += 1
        ws_sizes.append(int(nw))
        nu, eta, qp_method = _solve_qp(G, b, nw, R, qc - 1.0, budget, x0, cfg, warm=warm)
        cone = ConeStructure(nw, np.zeros(0, dtype=int), 0.0)
        colscale = np.sqrt(np.maximum(G.diagonal(), 1e-300))
        viol, comp = cone_optimality(G, b, nu, cone, colscale, R, budget_row=qc - 1.0,
                                     budget=budget, eta=eta)
        stage("qp")

        parts = _combination(tilde, X, y, rows, classes, nu)     # ε recomputed, not predicted
        sizes = [parts[k].size for k in tilde.parameter_names]
        resid = {k: theta_k - parts[k].ravel()
                 for k, theta_k in zip(tilde.parameter_names,
                                       np.split(theta, np.cumsum(sizes)[:-1]), strict=True)}
        eps = float(math.sqrt(sum(float(r @ r) for r in resid.values())))
        out = cand[~ws]
        n_out = int(out.size)
        viol_out, n_viol_out, rel_out = 0.0, 0, np.zeros(0)
        if n_out:
            # the pairs outside the working set: reduced costs ⟨∇q_a, v − θ̃⟩ + η (q_a − 1) >= 0
            # certify the full program; relative to ||∇q_a|| ||θ̃|| >= L q_a (Euler,
            # Cauchy–Schwarz), so dividing by L q_a over-states the violation, never hides it
            torch = tilde._torch
            tangent = {k: torch.from_numpy(-resid[k].reshape(parts[k].shape))
                       for k in tilde.parameter_names}
            g_out = _pair_directional(tilde, X, y, rows_all[out], cls_all[out], tangent)
            g_out = g_out + eta * (qt[out] - 1.0)
            rel_out = np.maximum(-g_out, 0.0) / (L * qt[out])
            viol_out = float(np.max(rel_out, initial=0.0))
            n_viol_out = int(np.sum(rel_out > TOLERANCES.kkt_optimality_rtol))
        stage("certification")
        logger.info("torch KKT working set round %d: %d pairs; %s; largest relative dual "
                    "violation outside %.1e", rounds, nw, qp_method, viol_out)
        add = np.flatnonzero(rel_out > TOLERANCES.kkt_working_set_rtol)
        if add.size == 0:
            break
        if rounds >= cfg.working_set_max_rounds:
            ws_stop = f"; stopped at the cap of {cfg.working_set_max_rounds} round(s)"
            break
        # the most violating first: at least a batch, at most half the working set more
        add = add[np.argsort(-rel_out[add], kind="stable")]
        new = out[add[:max(cfg.working_set_batch, nw // 2)]]
        if nw + new.size > cfg.working_set_max_share * nc:
            new = out      # past the share the rounds cost about the full program: solve it
        if (nw + new.size) ** 2 > max_dense_entries:
            ws_stop = (f"; stopped: adding {new.size} pairs would exceed max_dense_entries="
                       f"{max_dense_entries}")
            break
        # only the new pairs' Gram rows G[new, W ∪ new], from the working set's layer factors
        # kept between rounds (a round's passes cover the new pairs), appended as a block row
        fac_new = tilde._pair_factors(X, y, rows_all[new], cls_all[new], _CHUNK)
        G.append(_new_rows(tilde, facs, fac_new))
        facs.append(fac_new)
        del fac_new
        ws[np.searchsorted(cand, new)] = True
        sel = np.concatenate([sel, new])
        rows, classes, qc = rows_all[sel], cls_all[sel], qt[sel]
        nw = sel.size
        b = L * qc
        x0 = np.concatenate([nu, np.zeros(new.size)])     # feasible: the new pairs start at 0
        warm = "the previous round's multipliers"
        stage("gram")
    # Clarke slopes at the working set's near-kinks (docs/theory.md §7.5; ._torch_kinks)
    kk = free_kinks(tilde, X, y, rows, classes, G=G, b=b, qc=qc, nu=nu, eta=eta, R=R,
                    budget=budget, rtol=kink_rtol, cfg=cfg,
                    outside=(rows_all[out], cls_all[out], qt[out]))
    if kk.freed:
        nu, eta, eps, resid, viol, comp = kk.lam, kk.eta, kk.eps, kk.resid, kk.viol, kk.comp
        qp_method += kk.method
    if kk.viol_out is not None:     # the pairs outside priced again, with their kinks
        viol_out, n_viol_out = kk.viol_out, kk.n_viol_out
    stage("kinks")
    del G, facs
    euler_vals = _euler(tilde, X, y, rows, classes)
    euler = float(np.max(np.abs(euler_vals - b)) / (L * float(qc.max())))
    opt_res = max(viol, comp, viol_out)
    stage("certification")

    eps_note, qp_beaten = "", nat_eps < eps
    if qp_beaten:  # the natural multipliers are feasible for the same program and better:
        nu = scale * nat_all  # report them, and the QP as not certified
        rows, classes, qc = rows_all[cand], cls_all[cand], qt[cand]
        resid = {k: theta_k - scale * v_nat_parts[k].ravel()
                 for k, theta_k in zip(tilde.parameter_names,
                                       np.split(theta, np.cumsum(sizes)[:-1]), strict=True)}
        eps = nat_eps
        eps_note = "; the natural multipliers did better than the QP (reported; QP inaccurate)"
    by_layer: dict[str, float] = {}
    for k, r in resid.items():
        layer = k.rsplit(".", 1)[0]
        by_layer[layer] = by_layer.get(layer, 0.0) + float(r @ r)
    eps_by_layer = sorted(((k, math.sqrt(v)) for k, v in by_layer.items()),
                          key=lambda kv: -kv[1])

    primal = float(max(0.0, 1.0 - float(tilde.margins(X, y).min())))   # a forward pass of θ̃
    kinks, n_kinks, exact = kk.by_module, kk.n_kinks, kk.exact
    stage("kinks")

    o = _outcome(kink_words=kk.words,
                 n=n, rows=rows, nu=nu, nat_rows=rows_all[cand], nat_vals=scale * nat_all,
                 qc=qc, eps=eps, R=R, eps_tol=eps_tol, delta_tol=delta_tol, opt_res=opt_res,
                 beaten=qp_beaten, euler=euler, L=L, exact=exact, n_kinks=n_kinks, K=K,
                 pname="2", residual_words="program's optimality residual")
    lam, nat, delta, eps_rel, delta_rel = o.lam, o.nat, o.delta, o.eps_rel, o.delta_rel
    support, solver_status, status, is_kkt, verdict = (o.support, o.solver_status, o.status,
                                                      o.is_kkt, o.verdict)
    if n_viol_out:
        verdict += (f" ({n_viol_out} candidate pairs outside the working set could lower ε"
                    f"{ws_stop})")
    ws_note = (f"; working set: {rounds} round(s) from the {ws_sizes[0]} smallest-margin "
               f"pairs to {nw} of the {nc} candidate pairs (sizes {ws_sizes}){ws_stop}, the "
               f"other {n_out} priced by a forward-mode pass (largest relative dual violation "
               f"{viol_out:.1e})" if ws_sizes[0] < nc else "")
    keep = o.keep
    extra = {"backend": "torch", "P": int(theta.size), "n_near_kink_pairs": n_kinks,
             "kinks_by_module": kinks, "epsilon_by_layer": [[k, v] for k, v in eps_by_layer],
             "clarke_kinks": kk.to_dict(),
             "notes": list(tn.notes), "n_working_set": int(nw), "seconds": seconds,
             "working_set_rounds": int(rounds), "working_set_sizes": ws_sizes,
             "working_set_violation": float(viol_out)}
    if K > 1:
        extra.update({"n_classes": K, "support_pairs": [
            [int(rows[k]), int(classes[k]), float(nu[k])] for k in keep]})
    return KKTReport(
        norm="2", epsilon=eps, epsilon_relative=float(eps_rel), delta=delta,
        delta_relative=float(delta_rel), multipliers=lam, support=support, n_kink_pairs=n_kinks,
        natural_epsilon=nat_eps, natural_epsilon_relative=float(nat_eps / R),
        natural_multipliers=nat, natural_delta=float(scale * d0), delta_budget=float(budget),
        q_min=math.exp(log_q_min) if log_q_min < 709 else math.inf,
        normalised_margin=float(q_hat_min), degree=L, n_candidates=int(nc),
        support_factor=float(support_factor), excluded_weight=excluded, exact=exact,
        method=(f"{qp_method}{ws_note}; Gram matrix from the layer structure; ε recomputed by "
                f"a backward pass{eps_note}"),
        solver_status=solver_status, euler_residual=euler, optimality_residual=float(opt_res),
        eps_tol=float(eps_tol), delta_tol=float(delta_tol), is_kkt=is_kkt,
        status=status, verdict=verdict, extra=extra,
        log_q_min=float(log_q_min), primal_feasibility=primal,
    )


def _outcome(*, n, rows, nu, nat_rows, nat_vals, qc, eps, R, eps_tol, delta_tol, opt_res, beaten,
             kink_words=None, euler, L, exact, n_kinks, K, pname, residual_words):
    """What the torch checks (ℓ2 here, ℓ1/ℓ∞ in :mod:`._torch_lp`) conclude from their final
    multipliers ``nu`` over the candidate pairs: multipliers and natural multipliers by example,
    δ, the support, the solver status, the status and the verdict (docs/theory.md §7.4, §7.8)."""
    from types import SimpleNamespace

    lam = np.zeros(n)
    np.add.at(lam, rows, nu)
    nat = np.zeros(n)
    np.add.at(nat, nat_rows, nat_vals)
    delta = float(nu @ (qc - 1.0))
    eps_rel, delta_rel = eps / R, delta / R ** 2
    lam_max = float(lam.max(initial=0.0))
    support = (np.flatnonzero(lam > TOLERANCES.kkt_multiplier_rtol * lam_max) if lam_max > 0
               else np.zeros(0, dtype=int))
    solver_status = ("optimal" if opt_res <= TOLERANCES.kkt_optimality_rtol and not beaten
                     else "inaccurate")
    if solver_status != "optimal":
        warnings.warn(f"the KKT {residual_words} is {opt_res:.2e}; epsilon = {eps:.3e} is an "
                      f"achieved upper bound but may not be the minimum.", RuntimeWarning,
                      stacklevel=4)
    if euler > 1e-6:
        warnings.warn(f"Euler's identity <∇q_a, θ> = L q_a fails by {euler:.2e} (relative): the "
                      f"network may not be homogeneous of degree {L}.", RuntimeWarning,
                      stacklevel=4)
    homogeneous = euler <= 1e-6        # no slopes are freed here: Euler's identity must hold
    within = bool(eps_rel <= eps_tol and delta_rel <= delta_tol * (1.0 + 1e-9))
    status, head = decide(within, upper_bound=not exact or solver_status != "optimal",
                          homogeneous=homogeneous)
    problem = (f"min ½||θ||_{pname}² s.t. y_i f(θ; x_i) >= 1" if K == 1 else
               f"min ½||θ||_{pname}² s.t. f_(y_i)(θ; x_i) − f_j(θ; x_i) >= 1 for j ≠ y_i")
    verdict = (f"{head} of {problem}: ε/||θ̃|| = {eps_rel:.3e} (tol {eps_tol:g}), δ/||θ̃||² = "
               f"{delta_rel:.3e} (tol {delta_tol:g})")
    if not homogeneous:
        verdict += f"; Euler's identity fails by {euler:.1e} (relative)"
    if not exact:
        verdict += (kink_words if kink_words is not None else
                    f"; ε is an upper bound ({n_kinks} near-kink ReLU inputs or max-pool ties: "
                    f"their Clarke slopes are not freed for torch networks)")
    if solver_status != "optimal":
        verdict += "; optimality of ε not certified"
    keep = (np.flatnonzero(nu > TOLERANCES.kkt_multiplier_rtol * lam_max) if lam_max > 0
            else np.zeros(0, dtype=int))
    return SimpleNamespace(lam=lam, nat=nat, delta=delta, eps_rel=eps_rel, delta_rel=delta_rel,
                           support=support, solver_status=solver_status, status=status,
                           is_kkt=status == "approximate_kkt", verdict=verdict, keep=keep)
