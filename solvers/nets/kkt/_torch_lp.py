r"""The ℓ1 / ℓ∞ KKT check for a :class:`~solvers.nets.TorchNet` (private; docs/theory.md §7.6).

The program of :mod:`._lp` — minimise ``ε = ||g − Σ_a λ_a ∇q_a(θ̃)||_*`` over ``λ ≥ 0`` and
``g ∈ ∂(½||·||_p²)(θ̃)`` with ``δ = Σ_a λ_a (q_a(θ̃) − 1)`` under the budget — for any network
:class:`TorchNet` accepts, solved by :func:`._lp_colgen.solve_lp_colgen` without the
``(pairs × P)`` matrix. The constraints ``a`` are the candidates (examples for one output,
(example, competing class) pairs for ``K`` outputs, as in :mod:`._torch`). The network enters only
through

* ``Σ_a ν_a ∇q_a`` — one backward pass over the batch (:func:`._torch._combination`);
* ``(⟨∇q_a, w⟩)_a`` — one forward-mode pass with tangent ``w`` (ℓ∞ cuts);
* the rows ``∂q_a/∂θ_j`` of a few coordinates ``j`` — per-example gradients by ``torch.func``
  (``vmap(grad)``) in chunks, of which only those columns are kept (one sweep per round).

ε is recomputed over all ``P`` coordinates from the final multipliers and an explicit ``g``; the
gap to the restricted LP's optimum (a lower bound) certifies optimality (``optimality_residual``).
Kinks: the candidates' kink columns (:func:`._torch_kinks.kink_columns`, docs/theory.md §7.5) join
the LP as variables ``0 <= μ <= λ`` (their rows are explicit); exact when each pair's kinks lie in
one module, else ε is an upper bound.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import SolverError
from ...tolerances import TOLERANCES
from ._lp import best_residual
from ._lp_colgen import solve_lp_colgen
from ._qp import ConeStructure
from ._report import NORM_NAMES, KKTReport
from ._torch import _combination, _euler, _normalise, _outcome
from ._torch_kinks import kink_columns

__all__: list[str] = []

#: Constraint generation: initial coordinates and coordinates added per round (module constants
#: so that tests can force several rounds on small nets).
_INITIAL, _BATCH = 200, 200


def _flat(tn, parts: dict) -> np.ndarray:
    return np.concatenate([parts[k].ravel() for k in tn.parameter_names])


def _apply(tn, X, y, rows, classes, w: np.ndarray) -> np.ndarray:
    """``(⟨∇q_a, w⟩)_a`` for every constraint by one forward-mode pass (tangent ``w``)."""
    torch = tn._torch
    from torch.func import functional_call, jvp

    K = tn.outputs(X[:1]).shape[1]
    Wp = tn._pair_weights(y[rows], classes, K)
    T = tn._tensor(X[rows])
    params = {k: p.detach() for k, p in tn.module.named_parameters()}
    sizes = [int(np.prod(params[k].shape)) for k in tn.parameter_names]
    chunks = np.split(np.asarray(w, dtype=np.float64), np.cumsum(sizes)[:-1])
    tang = {k: torch.from_numpy(np.ascontiguousarray(c)).reshape(params[k].shape)
            for k, c in zip(tn.parameter_names, chunks, strict=True)}

    def f(p):
        out = functional_call(tn.module, p, (T,)).reshape(T.shape[0], -1)
        return (out * Wp).sum(1)
    _, tangent = jvp(f, (params,), (tang,))
    return tangent.numpy()


def _rows(tn, X, y, rows, classes, S: np.ndarray, *, max_chunk_entries=2 ** 25) -> np.ndarray:
    """``∂q_a/∂θ_j`` for every constraint ``a`` and coordinate ``j ∈ S``, shape ``(|S|, m)``;
    per-example gradients by ``torch.func`` in chunks of at most ``max_chunk_entries`` floats."""
    torch = tn._torch
    T, r, Wp = tn._pair_setup(X, y, rows, classes)
    P = tn.n_params
    chunk = max(1, min(len(r), max_chunk_entries // max(P, 1)))
    idx = torch.from_numpy(np.asarray(S, dtype=np.int64))
    out = np.empty((len(S), len(r)))
    for s in range(0, len(r), chunk):
        J = tn._autograd_jacobian(T[torch.from_numpy(r[s:s + chunk])], Wp[s:s + chunk],
                                  tn.parameter_names)
        out[:, s:s + chunk] = J[:, idx].numpy().T
    return out


def check_kkt_torch_lp(net, X, y, *, p: float, loss: str, eps_tol: float, delta_tol: float,
                       support_factor: float, kink_rtol: float, norm_rtol: float) -> KKTReport:
    """The ℓ1/ℓ∞ KKT check of a :class:`TorchNet` (module docstring; called by
    :func:`solvers.check_kkt`, which validates the arguments)."""
    tn = net
    L = tn.degree
    unit, F, y, rows_all, cls_all, q_all, q_ex, q_hat_min, log_q_min = _normalise(tn, X, y)
    n, K = F.shape
    norm_p_unit = float(np.linalg.norm(unit.flat(), ord=p))
    tilde = unit.scaled(q_hat_min ** (-1.0 / L))
    theta = tilde.flat()
    qt = q_all / q_hat_min
    cand = np.flatnonzero(qt <= support_factor)
    rows, classes, qc = rows_all[cand], cls_all[cand], qt[cand]
    nc = cand.size
    R = float(np.linalg.norm(theta, ord=p))
    budget = delta_tol * R ** 2
    euler_vals = _euler(tilde, X, y, rows, classes)
    euler = float(np.max(np.abs(euler_vals - L * qc)) / (L * float(qc.max())))

    def combine(nu):
        return _flat(tilde, _combination(tilde, X, y, rows, classes, np.asarray(nu, float)))

    # natural multipliers (as in ._torch), best scale within the budget by the same LP with N = 1
    z = (q_all / q_hat_min) * math.exp(min(log_q_min, 700.0))
    logw = -z if loss == "exp" else -np.logaddexp(0.0, z)
    logw -= np.logaddexp.reduce(logw)
    nat_lam = np.exp(logw[cand])
    excluded = float(max(0.0, 1.0 - nat_lam.sum()))
    v_nat = combine(nat_lam)
    d0 = float(nat_lam @ (qc - 1.0))
    cmax = budget / d0 if d0 > 0 else np.inf
    one = ConeStructure(1, np.zeros(0, dtype=int), 0.0)
    gap = TOLERANCES.kkt_working_set_rtol
    nat_res = solve_lp_colgen(theta, p, one, lambda S: v_nat[S][:, None], lambda c: c[0] * v_nat,
                              lambda w: np.array([w @ v_nat]), rtol=norm_rtol,
                              solver_eps=TOLERANCES.solver_eps, budget_row=np.array([d0]),
                              budget=budget, gap_rtol=gap)
    scale = min(float(nat_res.nu[0]), cmax) if np.isfinite(nat_res.eps) else 0.0
    nat_eps = best_residual(theta, scale * v_nat, p, norm_rtol)[0]

    # Clarke slopes at the candidates' kinks (docs/theory.md §7.5): columns C, 0 <= μ <= λ
    kc = kink_columns(tilde, X, y, rows, classes, kink_rtol)
    Ck = kc.C
    cone = ConeStructure(nc, kc.pair, 0.0)
    res = solve_lp_colgen(theta, p, cone,
                          lambda S: np.hstack([_rows(tilde, X, y, rows, classes, S), Ck[:, S].T]),
                          lambda nu: combine(nu[:nc]) + Ck.T @ nu[nc:],
                          lambda w: np.concatenate([_apply(tilde, X, y, rows, classes, w),
                                                    Ck @ w]),
                          rtol=norm_rtol, solver_eps=TOLERANCES.solver_eps,
                          budget_row=qc - 1.0, budget=budget,
                          nu0=np.concatenate([scale * nat_lam, np.zeros(Ck.shape[0])]),
                          gap_rtol=gap, initial=_INITIAL, batch=_BATCH)
    if not np.isfinite(res.eps):
        raise SolverError(f"the l{NORM_NAMES[p]} KKT LP failed: {res.message}",
                          attempts=[{"solver": "HiGHS", "status": res.message}])
    nu = res.nu[:nc]
    v, g = combine(nu) + Ck.T @ res.nu[nc:], res.g    # ε recomputed from ν, μ and explicit g
    eps = float(np.linalg.norm(g - v, ord=np.inf if p == 1.0 else 1.0))
    opt_res = max(res.gap_relative, (eps - res.lower) / R)
    eps_note, lp_beaten = "", nat_eps < eps
    if lp_beaten:  # the natural multipliers are feasible and better: report them, LP inaccurate
        nu, v = scale * nat_lam, scale * v_nat
        eps, g = best_residual(theta, v, p, norm_rtol)
        eps_note = "; the natural multipliers did better than the LP (reported; LP inaccurate)"
    resid = g - v
    by_layer: dict[str, list] = {}
    for k, part in zip(tilde.parameter_names,
                       np.split(resid, np.cumsum([int(np.prod(s)) for s in tilde._shapes])[:-1]),
                       strict=True):
        by_layer.setdefault(k.rsplit(".", 1)[0], []).append(part)
    dual = np.inf if p == 1.0 else 1.0
    eps_by_layer = sorted(((k, float(np.linalg.norm(np.concatenate(v_), ord=dual)))
                           for k, v_ in by_layer.items()), key=lambda kv: -kv[1])

    primal = float(max(0.0, 1.0 - float(tilde.margins(X, y).min())))
    kinks, n_kinks, exact = kc.by_module, kc.n_kinks, kc.exact
    pname = NORM_NAMES[p]
    o = _outcome(kink_words=kc.words,
                 n=n, rows=rows, nu=nu, nat_rows=rows, nat_vals=scale * nat_lam, qc=qc, eps=eps,
                 R=R, eps_tol=eps_tol, delta_tol=delta_tol, opt_res=opt_res, beaten=lp_beaten,
                 euler=euler, L=L, exact=exact, n_kinks=n_kinks, K=K, pname=pname,
                 residual_words="LP's optimality gap (relative)")
    lam, nat, delta, eps_rel, delta_rel = o.lam, o.nat, o.delta, o.eps_rel, o.delta_rel
    support, solver_status, status, is_kkt, verdict, keep = (
        o.support, o.solver_status, o.status, o.is_kkt, o.verdict, o.keep)
    how = ("constraint generation over coordinates" if p == 1.0 else
           f"coordinates + {res.n_cuts} cutting planes")
    extra = {"backend": "torch", "P": int(theta.size), "n_near_kink_pairs": n_kinks,
             "kinks_by_module": kinks, "epsilon_by_layer": [[k, v_] for k, v_ in eps_by_layer],
             "clarke_kinks": {"n_freed": int(Ck.shape[0]), **kc.info},
             "notes": list(tn.notes), "norm_rtol": float(norm_rtol),
             "constraint_generation": res.to_dict()}
    if K > 1:
        extra.update({"n_classes": K, "support_pairs": [
            [int(rows[k]), int(classes[k]), float(nu[k])] for k in keep]})
    return KKTReport(
        norm=pname, epsilon=float(eps), epsilon_relative=float(eps_rel), delta=delta,
        delta_relative=float(delta_rel), multipliers=lam, support=support, n_kink_pairs=n_kinks,
        natural_epsilon=float(nat_eps), natural_epsilon_relative=float(nat_eps / R),
        natural_multipliers=nat, natural_delta=float(scale * d0), delta_budget=float(budget),
        q_min=math.exp(log_q_min) if log_q_min < 709 else math.inf,
        normalised_margin=float(q_hat_min / norm_p_unit ** L), degree=L, n_candidates=int(nc),
        support_factor=float(support_factor), excluded_weight=excluded, exact=exact,
        method=(f"HiGHS LP by {how} ({res.rounds} round(s), {res.n_coords} of {theta.size} "
                f"coordinates x {nc} pairs; gap {res.gap_relative:.1e}); ε recomputed by a "
                f"backward pass{eps_note}"),
        solver_status=solver_status, euler_residual=euler, optimality_residual=float(opt_res),
        eps_tol=float(eps_tol), delta_tol=float(delta_tol), is_kkt=is_kkt,
        status=status, verdict=verdict, extra=extra,
        log_q_min=float(log_q_min), primal_feasibility=primal,
    )
