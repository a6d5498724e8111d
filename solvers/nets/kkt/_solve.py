"""Solving the KKT program of a :class:`KKTProblem` (private; docs/theory.md §7).

:class:`KKTConfig` holds the strategy's parameters (working set, second phase); :class:`Programs`
assembles the convex programs of one problem (ℓ2: the cone QP of :mod:`._qp` on a Gram matrix;
ℓ1/ℓ∞: the LPs of :mod:`._lp`) and solves them: one exact program, block-coordinate steps over
layers, or (ℓ2) a working set of candidates certified for the full program. See
:func:`solvers.check_kkt` for the mathematics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import dsymv

from ...errors import SolverError
from ...tolerances import TOLERANCES
from ._gpcg import solve_cone_qp_gpcg
from ._lp import best_residual, solve_cone_lp
from ._problem import IncrementalGram
from ._qp import ConeStructure, cone_optimality, min_delta_on_optimal_set, solve_cone_qp
from ._report import NORM_NAMES

__all__ = ["KKTConfig"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KKTConfig:
    """Parameters of how :func:`solvers.check_kkt` solves its program (not of what it computes:
    ε, δ and the verdict do not depend on them beyond the programs' tolerances).

    Attributes
    ----------
    working_set_min_candidates : int
        ℓ2: the working set is used by default above this many candidates.
        (bench_kkt, d = 784, width 1000: 1,701 candidates full QP 4.1 s CPU vs working set
        6.8 s; 5,051 candidates 62 s vs 33 s.)
    working_set_initial : int
        Initial working set size (the smallest margins). Every round costs a pass ``A r`` over
        the candidates off the working set (bench_kkt.py, n = 10,000, d = 784, width 1000: about
        0.5 s CPU), so starting at 1000 rather than 200 saves four such rounds there (11 → 7).
        PyTorch nets: the first working set is this many candidate pairs of smallest margin
        (every candidate when there are at most this many), whatever the number of examples.
    working_set_batch : int
        Least number of violators added per round (up to half the current size is added, most
        violated first, so the number of rounds is logarithmic; adding up to the current size
        gave a larger final set and more CPU in bench_kkt.py).
    working_set_max_rounds : int
        Cap on the rounds (then the optimality residual says whether the point is certified).
    working_set_max_share : float
        Automatic mode only: once the working set would exceed this share of the candidates,
        the full program is solved instead (the rounds so far cost about share³ of it).
    phase2_slack : float
        Second phase (smallest δ among the optimal multipliers): allowed increase of ε relative
        to ``||θ̃||`` (far below the QP tolerance's effect on ε).
    phase2_max_variables : int
        ℓ2: the second phase runs only on programs with at most this many variables.
    first_order_min_variables : int
        ℓ2: programs with more variables than this are solved by gradient projection + conjugate
        gradients on products with the Gram matrix (:mod:`._gpcg`, warm-started from the natural
        multipliers) instead of the interior point (``N³`` per iteration); the interior point
        remains the fallback when GPCG does not reach the optimality tolerance and the program
        has at most ``4 ·`` this many variables. Measured in ``bench_kkt.py`` (docs/benchmarks.md).
    first_order_max_iter : int
        ℓ2 GPCG: outer iterations per value of the budget multiplier.
    explicit_qp : str
        PyTorch nets' ℓ2 check, programs above ``first_order_min_variables`` on the explicit
        working-set pair Gram: ``"newton"`` (projected Newton with a Cholesky factorisation of
        each face, :mod:`._active_set`) or ``"gpcg"`` (:mod:`._gpcg`, products only). Either
        result is certified the same way. Default GPCG by measurement: on the trained Lyu & Li
        CNN's recorded programs it took 3.7 / 13.1 / 81.7 s CPU at 2,250 / 3,375 / 5,062 pairs,
        projected Newton 5.7 / 29.8 / more (tests/benchmarks/bench_torch_qp.py,
        docs/benchmarks.md).
    """

    working_set_min_candidates: int = 2000
    working_set_initial: int = 1000
    working_set_batch: int = 100
    working_set_max_rounds: int = 40
    working_set_max_share: float = 0.6
    phase2_slack: float = 1e-10
    phase2_max_variables: int = 1500
    first_order_min_variables: int = 1000
    first_order_max_iter: int = 300
    explicit_qp: str = "gpcg"

    def __post_init__(self):
        for name in ("working_set_min_candidates", "working_set_initial", "working_set_batch",
                     "working_set_max_rounds", "phase2_max_variables",
                     "first_order_min_variables", "first_order_max_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (
                    0 if name in ("working_set_min_candidates", "phase2_max_variables",
                                 "first_order_min_variables") else 1):
                raise ValueError(f"KKTConfig.{name} must be a positive int; got {v!r}.")
        if self.explicit_qp not in ("newton", "gpcg"):
            raise ValueError(f"KKTConfig.explicit_qp must be 'newton' or 'gpcg'; got "
                             f"{self.explicit_qp!r}.")
        if not (0.0 < self.working_set_max_share <= 1.0):
            raise ValueError(f"KKTConfig.working_set_max_share must be in (0, 1]; got "
                             f"{self.working_set_max_share!r}.")
        if not (0.0 <= self.phase2_slack < 1e-3):
            raise ValueError(f"KKTConfig.phase2_slack must be in [0, 1e-3); got "
                             f"{self.phase2_slack!r}.")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _symmetric_product(G: np.ndarray):
    """``v ↦ G v`` for a symmetric C-ordered ``G`` by BLAS ``dsymv``, which reads one triangle:
    half the memory traffic of ``G @ v`` (the products are memory-bound; bench_kkt.py, 4,733²:
    7.2 vs 14.2 ms CPU per product, same result to rounding)."""
    if G.dtype != np.float64 or not G.flags.c_contiguous:
        return G.__matmul__
    Gt = G.T  # Fortran-ordered view, no copy; its lower triangle is G's upper triangle

    def matvec(v):
        return dsymv(1.0, Gt, v, lower=1)
    return matvec


@dataclass(frozen=True)
class Build:
    """One block step's program: Gram matrix and linear term (ℓ2, else None), the combination
    ``ν ↦ Aᵀν``, the explicit columns ``Aᵀ`` or the structured Gram (``M``), the cone and the
    free kink pairs ``(layer, example, unit)``."""

    G: np.ndarray | None
    b: np.ndarray | None
    combine: object
    M: object
    cone: ConeStructure
    kinfo: tuple


@dataclass(frozen=True)
class Step:
    """A solved program: multipliers, ε, optimality residual, method text, budget multiplier."""

    nu: np.ndarray
    eps: float
    opt_res: float
    method: str
    eta: float = 0.0
    v: np.ndarray | None = None  # Aᵀν when already formed (the working set's last product)


class Programs:
    """The KKT programs of one problem in one norm under one δ budget.

    Holds no state that changes after construction except through explicit arguments: the
    slopes of block-coordinate steps are passed in and returned.
    """

    def __init__(self, prob, p: float, *, norm_rtol: float, budget: float, config: KKTConfig,
                 max_dense_entries: int, use_structured: bool):
        self.prob, self.p, self.norm_rtol = prob, p, norm_rtol
        self.budget, self.config = budget, config
        self.max_dense_entries = max_dense_entries
        self.use_structured = use_structured  # ℓ2: the layered Gram matrix
        self.R = float(np.linalg.norm(prob.theta, ord=p))
        self.R2 = float(np.linalg.norm(prob.theta))
        self.nat_eps = np.inf  # set by natural(); bounds the second phase's ε
        self.nat_nu = None  # set by natural(): the scaled natural multipliers (warm start)

    # ------------------------------------------------------------------ assembly
    def build(self, slopes, free, *, gram: bool = True) -> Build:
        """The program for the current ``slopes`` with the ``free`` pairs' slopes as variables."""
        prob, p = self.prob, self.p
        kl = np.concatenate([np.full(e.size, t) for t, (e, _) in enumerate(free)] or [[]])
        ke = np.concatenate([e for e, _ in free] or [[]]).astype(int)
        ku = np.concatenate([u for _, u in free] or [[]]).astype(int)
        cone = ConeStructure(prob.nc, ke, prob.clarke_low)
        if self.use_structured:
            lg = prob.layered_gram(slopes, (kl, ke, ku), gram=gram)
            return Build(lg.G, lg.b, lg.combination, lg, cone, (kl, ke, ku))
        rows, krows, kex = prob.explicit_rows(slopes, free)
        A = np.vstack([rows, krows])
        if not np.array_equal(kex, ke):
            raise AssertionError("kink rows out of order")  # pragma: no cover (internal)
        G = A @ A.T if p == 2.0 else None
        b = A @ prob.theta if p == 2.0 else None
        return Build(G, b, (lambda nu, A=A: A.T @ nu), A.T, cone, (kl, ke, ku))

    def residual(self, combine, nu) -> float:
        v = combine(nu)
        if self.p == 2.0:
            return float(np.linalg.norm(self.prob.theta - v))
        return best_residual(self.prob.theta, v, self.p, self.norm_rtol)[0]

    # ------------------------------------------------------------------ one program
    def solve(self, bld: Build, r=None, x0=None, x0_name="natural multipliers") -> Step:
        """Optimal ν for one program under the δ budget (row ``r``, default all candidates);
        ``x0`` an optional warm start for the first-order solver (named ``x0_name`` in the
        method text)."""
        prob, cfg = self.prob, self.config
        qc = prob.qc
        r = qc - 1.0 if r is None else r
        G, b, cone = bld.G, bld.b, bld.cone
        if self.p == 2.0:
            colscale = np.sqrt(np.maximum(np.diag(G), 1e-300))
            res, meth = None, ""
            if cone.N > cfg.first_order_min_variables:
                x0 = x0 if x0 is not None and x0.shape == (cone.N,) else None
                fo = solve_cone_qp_gpcg(_symmetric_product(G), np.diag(G), b, cone,
                                        col_scale=colscale,
                                        obj_scale=self.R2, tol=TOLERANCES.kkt_working_set_rtol,
                                        budget_row=r, budget=self.budget, x0=x0,
                                        max_iter=cfg.first_order_max_iter)
                meth = (f"gradient projection + CG on the {cone.N}x{cone.N} Gram matrix "
                        f"({fo.iterations} it., {fo.matvecs} products"
                        f"{', warm start: ' + x0_name if x0 is not None else ''})")
                if fo.converged or cone.N > 4 * cfg.first_order_min_variables:
                    res = fo
                else:
                    meth += "; not converged, interior point instead: "
            if res is None:
                res = solve_cone_qp(G, b, cone, tol=TOLERANCES.kkt_qp_tol, budget_row=r,
                                    budget=self.budget)
                meth += (f"interior-point QP on the {cone.N}x{cone.N} Gram matrix "
                         f"({res.iterations} it., "
                         f"{'face polish' if res.polished else 'no polish'})")
            viol, comp = cone_optimality(G, b, res.nu, cone, colscale, self.R2, budget_row=r,
                                         budget=self.budget, eta=res.eta)
            nu = res.nu
            eps = self.residual(bld.combine, nu)
            if cone.N <= cfg.phase2_max_variables:
                # the optimal ν need not be unique: prefer the smallest δ among them
                nu2 = min_delta_on_optimal_set(G, nu, cone, r, self.budget,
                                               cfg.phase2_slack * self.R2, TOLERANCES.solver_eps)
                if nu2 is not None:
                    eps2 = self.residual(bld.combine, nu2)
                    nl = cone.n
                    if (eps2 <= min(eps + cfg.phase2_slack * self.R2, self.nat_eps)
                            and float(nu2[:nl] @ r) < float(nu[:nl] @ r)):
                        nu, eps = nu2, eps2
                        meth += "; smallest δ among optimal multipliers (LP)"
            return Step(nu, eps, max(viol, comp), meth, res.eta)
        M, theta = bld.M, prob.theta
        nu, eps, _, msg, ok = solve_cone_lp(M, theta, self.p, cone, rtol=self.norm_rtol,
                                            solver_eps=TOLERANCES.solver_eps,
                                            budget_row=qc - 1.0, budget=self.budget)
        if nu is None:
            raise SolverError(f"the l{NORM_NAMES[self.p]} KKT LP failed: {msg}",
                              attempts=[{"solver": "HiGHS", "status": msg}])
        meth = f"HiGHS LP ({M.shape[0]}x{cone.N}; {msg})"
        # the optimal ν need not be unique: prefer the smallest δ among them
        nu2, eps2, _, _, ok2 = solve_cone_lp(M, theta, self.p, cone, rtol=self.norm_rtol,
                                             solver_eps=TOLERANCES.solver_eps,
                                             budget_row=qc - 1.0, budget=self.budget,
                                             eps_cap=eps / self.R + cfg.phase2_slack)
        if (ok2 and nu2 is not None
                and eps2 <= min(eps + cfg.phase2_slack * self.R, self.nat_eps)
                and float(nu2[:prob.nc] @ (qc - 1.0)) < float(nu[:prob.nc] @ (qc - 1.0))):
            nu, eps = nu2, eps2
            meth += "; smallest δ among optimal multipliers (LP)"
        return Step(nu, eps, 0.0 if ok else 1.0, meth, 0.0)

    # ------------------------------------------------------------------ natural multipliers
    def natural(self, bld: Build, slopes) -> tuple[float, float]:
        """``(ε, c)`` of the natural multipliers ``c · (-ℓ'(q_i))``, ``c`` optimal within the
        budget; also records ε as the bound of the second phase."""
        prob, p = self.prob, self.p
        kl, ke, ku = bld.kinfo
        s_nat = np.array([slopes[t][e, u] for t, e, u in zip(kl, ke, ku, strict=True)])
        nu0 = bld.cone.natural(prob.nat_lam, s_nat)
        d0 = float(prob.nat_lam @ (prob.qc - 1.0))
        cmax = self.budget / d0 if d0 > 0 else np.inf
        v = bld.combine(nu0)
        if p == 2.0:  # ν0ᵀGν0 = ||Aᵀν0||², bᵀν0 = ⟨θ̃, Aᵀν0⟩ (no Gram matrix needed)
            curv = float(v @ v)
            scale = min(max(0.0, float(prob.theta @ v) / curv), cmax) if curv > 0 else 0.0
        else:
            scale = self.natural_scale_lp(v, d0, cmax)
        # Aᵀ(c ν0) = c Aᵀν0: the residual of the scaled multipliers from the product above
        eps = (float(np.linalg.norm(prob.theta - scale * v)) if p == 2.0
               else self.residual(bld.combine, scale * nu0))
        self.nat_eps = eps
        self.nat_nu = scale * nu0
        return eps, scale

    def natural_scale_lp(self, v: np.ndarray, d0: float, cmax: float) -> float:
        """ℓ1/ℓ∞: the best multiple ``c <= cmax`` of the natural combination ``v = Aᵀν0`` (the
        program with one variable and the budget row ``d0``)."""
        one = ConeStructure(1, np.zeros(0, dtype=int), self.prob.clarke_low)
        nu1, _, _, _, _ = solve_cone_lp(v[:, None], self.prob.theta, self.p, one,
                                        rtol=self.norm_rtol, solver_eps=TOLERANCES.solver_eps,
                                        budget_row=np.array([d0]), budget=self.budget)
        return min(float(nu1[0]), cmax) if nu1 is not None else 0.0

    # ------------------------------------------------------------------ strategies
    def run(self, slopes0, *, max_sweeps: int, first: Build | None = None):
        """One exact program, or block-coordinate sweeps over layers; ``(best Step, history)``."""
        prob = self.prob
        slopes = [s.copy() for s in slopes0]
        kink_layers = [t for t in range(len(prob.kinks)) if prob.layers_of[:, t].any()]
        steps = ([None] if prob.exact or not kink_layers
                 else [t for _ in range(max_sweeps) for t in reversed(kink_layers)])
        best, history = None, []
        for k_step, layer in enumerate(steps):
            bld = first if (k_step == 0 and first is not None) else \
                self.build(slopes, prob.free_pairs(layer))
            st = self.solve(bld, x0=self.nat_nu if k_step == 0 else None)
            history.append(st.eps)
            if best is None or st.eps < best.eps:
                best = st
            # fix the free slopes at the optimum (where λ > 0) for the next block
            kl, ke, ku = bld.kinfo
            lam_c, mu = st.nu[:prob.nc], st.nu[prob.nc:]
            for t, e, u, m in zip(kl, ke, ku, mu, strict=True):
                if lam_c[e] > 0:
                    slopes[t][e, u] = float(np.clip(m / lam_c[e], prob.clarke_low, 1.0))
            if not prob.exact and len(history) > len(kink_layers):
                prev = history[-1 - len(kink_layers)]
                if prev - st.eps <= 1e-9 * max(prev, 1e-300):
                    break
        return best, history

    def working_set(self, full: Build, *, auto: bool):
        """ℓ2: the QP over all candidates by a working set of examples.

        Solve on the working set ``W`` (with the kinks of its examples), extend ν by zeros and
        check the optimality of the full candidate QP: ``g̃ = A(Aᵀν − θ̃) + η (q − 1, 0)`` (η the
        budget's multiplier on ``W``) must lie in ``C*``, i.e. ``vertex_min(g̃)_i >= 0`` for every
        candidate; on ``W`` this holds by the subproblem's optimality, off ``W`` it is checked
        here (``A r`` in ``O(n_c d m)``, no Gram matrix). Violators are added, most violated
        first, until there are none; then ν is optimal for the full QP. Returns
        ``(Step or None, extra)``; None when ``auto`` and the working set outgrew
        ``working_set_max_share`` of the candidates.
        """
        prob, cfg = self.prob, self.config
        nc, qc, theta = prob.nc, prob.qc, prob.theta
        g2f, cone_f = full.M, full.cone
        colscale = np.maximum(g2f.example_norms(), 1e-300)
        order = np.argsort(qc, kind="stable")
        in_w = np.zeros(nc, dtype=bool)
        ws = IncrementalGram(g2f)  # the working set's Gram matrix, extended, never rebuilt
        add = order[:min(nc, cfg.working_set_initial)]
        rounds, sizes, st = 0, [], None
        cache = {}

        def combine(nu_w):  # Aᵀν on the working set's columns; the last result is reused below
            v = g2f.combination(nu_w, ws.columns)
            cache["nu"], cache["v"] = nu_w.copy(), v
            return v

        while True:
            rounds += 1
            if auto and rounds > 1 and in_w.sum() + add.size > cfg.working_set_max_share * nc:
                return None, {"working_set_rounds": int(rounds - 1), "working_set_sizes": sizes,
                              "working_set_abandoned": True}
            Nw = int(in_w.sum() + add.size + np.isin(cone_f.kink_example, add).sum()
                     + ws.kinks.size)
            if Nw**2 > self.max_dense_entries:
                raise ValueError(
                    f"the working set's Gram matrix would have {Nw}² entries, above "
                    f"max_dense_entries={self.max_dense_entries} (the support is large); raise "
                    f"max_dense_entries or lower support_factor.")
            n_old, k_old = ws.examples.size, ws.kinks.size
            ws.add(add)
            in_w[add] = True
            idx = ws.examples
            sizes.append(int(ws.G.shape[0]))
            cone = ConeStructure(idx.size, ws.kink_example, prob.clarke_low)
            # warm start: the previous round's multipliers (zero on the added columns)
            x0 = ws.extend(st.nu, n_old, k_old) if st is not None else None
            st = self.solve(Build(ws.G, ws.b, combine, None, cone, ()), r=qc[idx] - 1.0, x0=x0,
                            x0_name="the previous round's multipliers")
            logger.info("working set round %d: %d columns; %s", rounds, ws.G.shape[0], st.method)
            nu_f = np.zeros(cone_f.N)
            nu_f[ws.columns] = st.nu
            v = cache["v"] if np.array_equal(cache.get("nu"), st.nu) else combine(st.nu)
            # the full program's gradient off the working set only (on it, the subproblem's
            # optimality); the final round recomputes it everywhere for the certificate
            out_cols = np.flatnonzero(np.r_[~in_w, ~in_w[cone_f.kink_example]])
            g = np.zeros(cone_f.N)
            g[out_cols] = g2f.apply(v - theta, out_cols)
            g[:nc] += st.eta * (qc - 1.0)
            viol = np.maximum(-cone_f.vertex_min(g), 0.0) / (colscale * self.R2)
            viol_out = np.where(in_w, 0.0, viol)
            add = np.flatnonzero(viol_out > TOLERANCES.kkt_working_set_rtol)
            if add.size == 0 or rounds >= cfg.working_set_max_rounds:
                break
            add = add[np.argsort(-viol_out[add], kind="stable")]
            add = add[:max(cfg.working_set_batch, idx.size // 2)]
        # certificate of the full program: g̃ = A(Aᵀν − θ̃) + η (q − 1, 0) from the final
        # multipliers, on every candidate (not only off the working set)
        g = g2f.apply(v - theta)
        g[:nc] += st.eta * (qc - 1.0)
        viol = np.maximum(-cone_f.vertex_min(g), 0.0) / (colscale * self.R2)
        eps = float(np.linalg.norm(theta - v))
        opt_res = max(st.opt_res, float(viol.max(initial=0.0)))
        meth = (f"working set over candidates ({rounds} round(s), final {idx.size} of {nc} "
                f"examples, Gram matrix extended by new rows each round); " + st.method)
        extra = {"working_set_rounds": int(rounds), "working_set_sizes": sizes,
                 "working_set_violation": float(viol.max(initial=0.0)),
                 "working_set_subproblem_residual": float(st.opt_res)}
        return Step(nu_f, eps, opt_res, meth, st.eta, v), extra
