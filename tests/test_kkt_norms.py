"""The ℓ1/ℓ∞ KKT check without the explicit (P × N) matrix (solvers.nets.kkt._lp_colgen,
solvers.nets.kkt._torch_lp; docs/theory.md §7.6).

* numpy MLPs: constraint generation over coordinates gives the ε of the explicit LP of
  solvers.nets.kkt._lp (deterministic cases with non-trivial multipliers, and hypothesis);
* exact KKT points (a linear model at its certified ℓ1 / ℓ∞ max-margin solution) give ε ≈ 0
  through the new route, for numpy and PyTorch, and a moved point does not;
* PyTorch nets: ε against an independent reference — per-pair gradients by plain autograd, one
  example at a time, and the §7.6 program written out in CVXPY — on a CNN and on a multi-class
  MLP with tied competitors; an unsupported norm is a one-line error.
"""

from __future__ import annotations

import copy

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import assume, given, settings

from solvers.datasets import make_separable
from solvers.nets.kkt import check_kkt
from solvers.nets.kkt._lp import solve_cone_lp
from solvers.nets.kkt._lp_colgen import solve_lp_colgen
from solvers.nets.kkt._qp import ConeStructure
from solvers.programs import solve_max_margin
from solvers.tolerances import TOLERANCES
from tests.strategies import fitted_nets
from tests.test_kkt import CLARABEL, CROSS_RTOL, KKT_EPS_RTOL, NOT_KKT_EPS

# Both routes stop at HiGHS's optimum (feasibility tolerance TOLERANCES.solver_eps = 1e-9 on
# rows scaled to O(1)); the generation stops at a relative gap TOLERANCES.kkt_working_set_rtol
# (1e-7). Two solutions of the same LP therefore agree on ε/||θ̃||_p to
SAME_LP_RTOL = 10 * TOLERANCES.kkt_working_set_rtol
FORCE = 1  # max_dense_entries=1: the explicit program is never built (constraint generation)


def _perturbed_max_margin(p, seed, n=30, d=400, pert=3e-3):
    """A linear model near its certified ℓp max-margin solution (``d > 200``, the initial
    coordinate set, so coordinates must be generated). With ``norm_rtol`` absorbing the
    perturbation's effect on the zero / argmax sets, a tight δ budget makes ε neither 0 nor 1."""
    X, y = make_separable(n, d, gap=0.1, seed=seed)
    w = solve_max_margin(X, y, norm=p).w
    rng = np.random.default_rng(seed)
    return w + pert * np.abs(w).max() * rng.standard_normal(d), X, y


@pytest.mark.parametrize("p", [1, np.inf])
@pytest.mark.parametrize("seed", [0, 1])
def test_constraint_generation_equals_the_explicit_lp(p, seed):
    w, X, y = _perturbed_max_margin(p, seed)
    kw = dict(norm=p, support_factor=3.0, activation="linear", norm_rtol=2e-2,
              delta_tol=1e-3 if p == 1 else 1e-4)
    a = check_kkt([w[None]], X, y, **kw)                             # explicit LP (._lp)
    b = check_kkt([w[None]], X, y, max_dense_entries=FORCE, **kw)   # constraint generation
    assert "constraint generation" in b.method or "cutting planes" in b.method
    assert "HiGHS LP (" in a.method                                  # the explicit route
    assert 0.1 < a.epsilon_relative < 0.9                            # a non-trivial optimum
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=SAME_LP_RTOL,
                                               abs=SAME_LP_RTOL)
    assert b.solver_status == "optimal"
    assert b.optimality_residual <= TOLERANCES.kkt_optimality_rtol
    assert b.delta <= b.delta_budget * (1 + 1e-9)
    assert b.epsilon <= b.natural_epsilon * (1 + 1e-9)


@settings(max_examples=10, deadline=None)
@given(fitted_nets(depth=(1, 3), width=(2, 6), d=(2, 5), n=(3, 10)))
def test_constraint_generation_equals_the_explicit_lp_on_random_nets(case):
    net, X, y, seed = case
    p = [1, np.inf][seed % 2]
    kw = dict(norm=p, support_factor=4.0, norm_rtol=0.3, delta_tol=1.0)
    a = check_kkt(net, X, y, **kw)
    assume(a.exact)  # kinks in several layers: block-coordinate steps may differ by path
    b = check_kkt(net, X, y, max_dense_entries=FORCE, **kw)
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=SAME_LP_RTOL,
                                               abs=SAME_LP_RTOL)
    assert b.solver_status == "optimal"


@pytest.mark.parametrize("p", [1, np.inf])
def test_exact_kkt_point_through_constraint_generation(p):
    X, y = make_separable(30, 250, gap=0.1, seed=3)  # d > 200: coordinates are generated
    w = solve_max_margin(X, y, norm=p).w          # certified: the linear model's KKT point
    rep = check_kkt([w[None]], X, y, norm=p, activation="linear", max_dense_entries=FORCE)
    assert "HiGHS LP by" in rep.method
    assert rep.epsilon_relative <= KKT_EPS_RTOL
    assert rep.is_kkt and rep.solver_status == "optimal"
    rng = np.random.default_rng(0)
    z = rng.standard_normal(w.size)
    q = y * (X @ w)
    w_off = w + 0.5 * q.min() / np.abs(y * (X @ z)).max() * z   # half of what flips a margin
    assert np.all(y * (X @ w_off) >= 0.5 * q.min())             # still fits: the premise
    assert np.linalg.norm(w_off - w) >= 0.05 * np.linalg.norm(w)    # a real move
    off = check_kkt([w_off[None]], X, y, norm=p, activation="linear", max_dense_entries=FORCE)
    assert off.epsilon_relative > NOT_KKT_EPS


@pytest.mark.parametrize("p", [1, np.inf])
def test_warm_started_rounds_give_the_explicit_lp_optimum_and_a_valid_bound(p, monkeypatch):
    """Many small rounds on one kept HiGHS model (dual simplex from the previous basis).

    The restricted LP of the last round is a relaxation of the explicit LP (._lp), so its optimum
    (``lower``) is at most the explicit optimum, and the achieved ε at least it; the gap closes
    only if every round's rows (coordinates, cuts) are still in the model and each warm-started
    re-solve reached the relaxation's true optimum. Dropping a round's rows (or keeping a stale
    objective after new rows) leaves the gap open or the bound above the optimum.
    """
    import solvers.nets.kkt._lp_colgen as cg

    monkeypatch.setattr(cg, "_WARM_START", {1.0: True, np.inf: True})  # ℓ∞'s default is cold
    w, X, y = _perturbed_max_margin(p, 0)
    q = y * (X @ w)
    q = q / q.min()
    cand = np.flatnonzero(q <= 3.0)
    theta = w / np.sqrt((y * (X @ w)).min())          # q̃_min = 1 (degree 1)
    M = (y[cand, None] * X[cand]).T                   # (P, N): ∇q_a = y_a x_a
    rtol = 2e-2
    R = float(np.linalg.norm(theta, ord=p))
    budget = (1e-3 if p == 1 else 1e-4) * R ** 2
    cone = ConeStructure(cand.size, np.zeros(0, dtype=int), 0.0)
    kw = dict(rtol=rtol, solver_eps=TOLERANCES.solver_eps, budget_row=q[cand] - 1.0,
              budget=budget)
    _, eps_ref, _, _, ok = solve_cone_lp(M, theta, float(p), cone, **kw)
    assert ok and 0.1 < eps_ref / R < 0.9                           # a non-trivial optimum
    res = solve_lp_colgen(theta, float(p), cone, lambda S: M[S], lambda nu: M @ nu,
                          lambda v: M.T @ v, gap_rtol=TOLERANCES.kkt_working_set_rtol,
                          initial=5, batch=5, **kw)
    assert res.rounds >= 3                                          # the multi-round path
    assert "warm-started" in res.message and "0 cold re-solve(s)" in res.message
    assert res.gap_relative <= TOLERANCES.kkt_working_set_rtol     # certified by the gap
    assert res.lower / R <= eps_ref / R + SAME_LP_RTOL              # a valid lower bound
    assert res.eps / R == pytest.approx(eps_ref / R, rel=SAME_LP_RTOL, abs=SAME_LP_RTOL)
    assert res.eps == pytest.approx(                                 # ε is achieved by ν
        np.linalg.norm(res.g - M @ res.nu, ord=np.inf if p == 1 else 1), rel=1e-12)


# ------------------------------------------------------------------ PyTorch
torch = pytest.importorskip("torch")  # the optional extra, not our own module
nn = torch.nn

from solvers.nets import TorchNet, train_torch  # noqa: E402


def _reference(tn, X, y, p, support_factor, norm_rtol, delta_tol):
    """ε/||θ̃||_p from plain autograd (one example at a time) and the §7.6 program in CVXPY.

    Written from docs/theory.md §7.6 with the zero / argmax sets taken at ``norm_rtol``:
    ``p = 1``: ``g_j = R sign θ_j`` off the zero set, ``|g_j| <= R`` on it, ``ε = ||g − v||_∞``;
    ``p = ∞``: ``g = R Σ_{j ∈ J} sign(θ_j) u_j e_j``, ``u ∈ simplex``, ``ε = ||g − v||_1``.
    """
    net = copy.deepcopy(tn.module)
    for prm in net.parameters():
        prm.requires_grad_(True)
    F = tn.outputs(X)
    K = F.shape[1]
    pairs = ([(i, -1, y[i] * F[i, 0]) for i in range(len(y))] if K == 1 else
             [(i, j, F[i, y[i]] - F[i, j]) for i in range(len(y)) for j in range(K) if j != y[i]])
    qmin = min(q for _, _, q in pairs)
    c = qmin ** (-1.0 / tn.degree)
    with torch.no_grad():
        for prm in net.parameters():
            prm.mul_(c)
    theta = np.concatenate([prm.detach().numpy().ravel() for prm in net.parameters()])
    rows, qs = [], []
    for i, j, q in pairs:
        if q / qmin <= support_factor:
            net.zero_grad()
            out = net(torch.from_numpy(X[i:i + 1])).reshape(-1)
            (y[i] * out[0] if K == 1 else out[y[i]] - out[j]).backward()
            rows.append(np.concatenate([prm.grad.numpy().ravel() for prm in net.parameters()]))
            qs.append(q / qmin)
    A = np.array(rows)
    a = np.abs(theta)
    R = float(np.linalg.norm(theta, ord=p))
    lam = cp.Variable(A.shape[0], nonneg=True)
    g = cp.Variable(theta.size)
    cons = [(np.array(qs) - 1.0) @ lam <= delta_tol * R ** 2]
    if p == 1:
        zero = a <= norm_rtol * a.max()
        cons += [g[~zero] == R * np.sign(theta[~zero]), cp.abs(g[zero]) <= R]
        obj = cp.norm(g - A.T @ lam, "inf")
    else:
        J = a >= (1 - norm_rtol) * a.max()
        u = cp.Variable(int(J.sum()), nonneg=True)
        cons += [cp.sum(u) == R, g[~J] == 0, g[J] == cp.multiply(np.sign(theta[J]), u)]
        obj = cp.norm(g - A.T @ lam, 1)
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(**CLARABEL)
    return prob.value / R, A.shape[0]


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(12, 6, bias=False), nn.ReLU(), nn.Linear(6, 3, bias=False))


def _tied_mlp():
    """A 4-class MLP fitted on labels {0, 3} whose outputs 1 and 2 are identical: every example
    has two tied competing classes (the Clarke subdifferential of the max is their hull)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 3))
    y = np.where(X @ rng.normal(size=3) > 0, 0, 3)
    torch.manual_seed(2)
    m = nn.Sequential(nn.Linear(3, 8, bias=False), nn.ReLU(), nn.Linear(8, 4, bias=False))
    r = train_torch(m, X, y, steps=300, lr=0.2, loss="exp")
    assert r.status == "fitted"
    mod = copy.deepcopy(r.net.module)
    with torch.no_grad():
        mod[2].weight[2] = mod[2].weight[1]
    tn = TorchNet(mod)
    F = tn.outputs(X)
    np.testing.assert_array_equal(F[:, 1], F[:, 2])
    return tn, X, y


#: norm_rtol per fixture and norm: large enough that the subdifferential of ½||θ̃||_p² is a
#: set the multipliers can reach (ε clearly below its λ = 0 value 1), so the comparison is not
#: between two trivial optima.
NORM_RTOL = {("cnn", 1): 0.3, ("cnn", np.inf): 0.9, ("tied_mlp", 1): 0.3,
             ("tied_mlp", np.inf): 0.6}


@pytest.mark.parametrize("p", [1, np.inf])
@pytest.mark.parametrize("which", [pytest.param("cnn", marks=pytest.mark.slow), "tied_mlp"])
def test_torch_epsilon_matches_an_independent_cvxpy_program(p, which, monkeypatch):
    import solvers.nets.kkt._torch_lp as tlp

    monkeypatch.setattr(tlp, "_INITIAL", 8)   # P = 56 / 120: force several generation rounds
    monkeypatch.setattr(tlp, "_BATCH", 8)
    if which == "cnn":
        rng = np.random.default_rng(1)
        X = rng.normal(size=(16, 1, 6, 6))
        y = TorchNet(_cnn()).outputs(X).argmax(1)
        tn = train_torch(_cnn(), X, y, steps=60, lr=0.2, loss="exp").net
    else:
        tn, X, y = _tied_mlp()
        assert len(_tied_candidates(tn, X, y)) >= 4     # tied competitors are candidates
    tn = tn.scaled(1.0 / tn.parameter_norm())
    kw = dict(support_factor=2.0, norm_rtol=NORM_RTOL[which, p], delta_tol=1.0)
    rep = check_kkt(tn, X, y, norm=p, **kw)
    ref, m = _reference(tn, X, y, p, **kw)
    assert rep.n_candidates == m > 3
    assert rep.norm == ("1" if p == 1 else "inf")
    assert rep.extra["backend"] == "torch"
    assert rep.extra["constraint_generation"]["rounds"] > 1
    assert rep.solver_status == "optimal"
    assert 0.05 < ref < 0.9                             # multipliers that matter
    assert rep.epsilon_relative == pytest.approx(ref, rel=CROSS_RTOL, abs=CROSS_RTOL)


def _tied_candidates(tn, X, y):
    """Candidate pairs (support_factor 2) whose competing class is one of the tied outputs."""
    F = tn.outputs(X)
    q = np.array([[F[i, y[i]] - F[i, j] for j in range(4)] for i in range(len(y))])
    qmin = min(q[i, j] for i in range(len(y)) for j in range(4) if j != y[i])
    return [(i, j) for i in range(len(y)) for j in (1, 2) if q[i, j] / qmin <= 2.0]


@pytest.mark.parametrize("p", [1, np.inf])
def test_torch_exact_kkt_point(p):
    X, y = make_separable(30, 40, gap=0.1, seed=4)
    w = solve_max_margin(X, y, norm=p).w
    m = nn.Sequential(nn.Linear(40, 1, bias=False, dtype=torch.float64))
    with torch.no_grad():
        m[0].weight.copy_(torch.from_numpy(w[None]))
    rep = check_kkt(m, X, y, norm=p)
    assert rep.epsilon_relative <= KKT_EPS_RTOL
    assert rep.is_kkt and rep.solver_status == "optimal"
    assert rep.normalised_margin == pytest.approx(
        (y * (X @ w)).min() / np.linalg.norm(w, ord=p), rel=1e-9)


def test_torch_unsupported_norm_is_a_clear_error():
    m = nn.Sequential(nn.Linear(3, 1, bias=False))
    X = np.eye(3)
    with torch.no_grad():
        m[0].weight.copy_(torch.ones(1, 3))
    with pytest.raises(ValueError, match="norm must be 1, 2 or 'inf'.*got 3"):
        check_kkt(m, X, np.ones(3), norm=3)
