"""Clarke slopes at the kinks of PyTorch nets in the ℓ2 KKT check (solvers.nets.kkt._torch_kinks,
docs/theory.md §7.5).

Independent references: a hand-derived KKT point whose kink slope must be 1/2 (closed form); the
numpy HomogeneousMLP check of the same weights (its own kink columns, _problem.py); and a CVXPY
program over per-example gradients by plain autograd at every vertex choice of the slopes /
max-pool selections, one example at a time, with the Clarke hull written out as one multiplier
per (example, vertex)."""

import itertools
import math

import cvxpy as cp
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the optional extra, not our own module
nn = torch.nn

import solvers.nets.kkt._torch_kinks as tk  # noqa: E402
from solvers import check_kkt  # noqa: E402
from solvers.nets import HomogeneousMLP  # noqa: E402
from solvers.tolerances import TOLERANCES  # noqa: E402
from tests.test_kkt import CLARABEL, CROSS_RTOL  # noqa: E402

#: Both back-ends solve the same QP to TOLERANCES.kkt_qp_tol (1e-10, relative); they differ in the
#: order of floating-point sums (as in tests/test_kkt_torch.py).
BACKEND_RTOL = 1e-7


def _sequential(Ws, act=nn.ReLU):
    mods = []
    for i, W in enumerate(Ws):
        lin = nn.Linear(W.shape[1], W.shape[0], bias=False).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(W, float)))
        mods.append(lin)
        if i < len(Ws) - 1:
            mods.append(act())
    return nn.Sequential(*mods)


@pytest.fixture
def unfreed(monkeypatch):
    """The check as before this module: no column may be formed, so no slope is freed."""
    monkeypatch.setattr(tk, "_MAX_COLUMN_ENTRIES", 0)


# --- (a) a closed-form KKT point whose kink slope must be 1/2 --------------------------------

def _kkt_point(c=-0.5):
    """f = a1 relu(w1·x) + a2 relu(w2·x), x1 = (1, 0), x2 = (c, 1), y = +1, both margins 1.

    Unit 2 is active on x1 and exactly at its kink on x2 (w2 ∝ (1, −c) ⊥ x2); unit 1 is active on
    x2 only. Stationarity θ = λ1 ∇q1 + λ2 ∇q2 holds with λ1 = √(1+c²), λ2 = 1/|x2| and the slope
    s = −c at the kink (derivation in the docstring of the test below), so autograd's slope 0
    leaves a nonzero residual. A third example (margin 3) is not a candidate."""
    r2 = math.sqrt(1.0 + c * c)                     # |x2|
    lam2, a1 = 1.0 / r2, r2 ** -0.5
    t, a2 = (1.0 + c * c) ** -0.25, (1.0 + c * c) ** 0.25
    w1 = lam2 * a1 * np.array([c, 1.0])
    w2 = t * np.array([1.0, -c])
    Ws = [np.array([w1, w2]), np.array([[a1, a2]])]
    X = np.array([[1.0, 0.0], [c, 1.0], [3.0, 0.0]])
    return Ws, X, np.ones(3), np.array([r2, lam2])


def test_closed_form_kkt_point_needs_the_freed_slope():
    """w2 = a2 (λ1 x1 + λ2 s x2) with w2 = t (1, −c): a2 λ2 s = −c t and a2 λ1 = t (1 + c²);
    a2 = λ1 t (x2 contributes relu(0) = 0) and q1 = a2 t = 1 give λ1 = √(1+c²), s = −c = 1/2.
    Unit 1: w1 = λ2 a1 x2, a1 = λ2 w1·x2 give λ2 = 1/|x2|; q2 = a1² |x2| = 1."""
    Ws, X, y, lam = _kkt_point()
    assert np.array_equal(np.array(Ws[0][1]) @ X[1], 0.0)       # an exact kink
    r = check_kkt(_sequential(Ws), X, y)
    assert r.exact and r.n_kink_pairs == 1
    assert r.epsilon_relative <= TOLERANCES.kkt_optimality_rtol   # closed form: ε = 0
    assert r.status == "approximate_kkt"
    np.testing.assert_allclose(r.multipliers, [*lam, 0.0], rtol=1e-6, atol=1e-9)
    a = check_kkt(HomogeneousMLP(tuple(Ws), activation="relu"), X, y)   # numpy frees it too
    assert a.exact and a.status == "approximate_kkt"


def test_closed_form_kkt_point_fails_with_autograds_slope(unfreed):
    Ws, X, y, _ = _kkt_point()
    r = check_kkt(_sequential(Ws), X, y)
    assert not r.exact and r.epsilon_relative > 0.05             # slope 0 instead of 1/2
    assert r.status != "approximate_kkt" and "upper bound" in r.verdict


@pytest.mark.parametrize("alpha", [None, 0.2])
def test_slope_needed_beyond_the_interval(alpha):
    """With c = −1.5 the slope that would make θ stationary is −c = 1.5, outside [α, 1]: the
    best Clarke slope is the end 1 (a wrong interval, e.g. [α, 1 + α], would reach lower)."""
    Ws, X, _, _ = _kkt_point(c=-1.5)
    y = np.sign(_numpy_net(Ws, alpha).outputs(X)[:, 0])
    act = nn.ReLU if alpha is None else (lambda: nn.LeakyReLU(alpha))
    a = check_kkt(_numpy_net(Ws, alpha), X, y, support_factor=100.0)
    b = check_kkt(_sequential(Ws, act=act), X, y, support_factor=100.0)
    assert a.exact and b.exact and b.n_kink_pairs == a.n_kink_pairs == 1
    assert b.epsilon_relative > 1e-3                                # not stationary
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=BACKEND_RTOL)


# --- (a) the numpy back-end on kinks in one layer ----------------------------------------------

def _kinked_mlp(L=2, K=1, seed=0, n=12, d=4, m=6, alpha=None):
    """Random bias-free ReLU (LeakyReLU if ``alpha``) MLP with exact zero pre-activations in
    layer 1: units 0 and 1 read only coordinate 3, which is 0 on half the examples (not all:
    those units are not dead). Labels from the net itself, so every example is fitted."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[: n // 2, 3] = 0.0
    W1 = rng.normal(size=(m, d))
    W1[0], W1[1] = [0, 0, 0, 1.5], [0, 0, 0, -0.75]
    Ws = [W1] + [rng.normal(size=(m, m)) for _ in range(L - 2)] + [rng.normal(size=(K, m))]
    F = _numpy_net(Ws, alpha).outputs(X)
    y = np.sign(F[:, 0]) if K == 1 else F.argmax(1)
    return Ws, X, y


def _numpy_net(Ws, alpha=None):
    return (HomogeneousMLP(tuple(Ws), activation="relu") if alpha is None else
            HomogeneousMLP(tuple(Ws), activation="leaky_relu", alpha=alpha))


@pytest.mark.parametrize(("L", "K"), [(2, 1), (3, 1), (2, 3)])
def test_same_answer_as_the_numpy_backend_with_kinks(L, K):
    Ws, X, y = _kinked_mlp(L, K)
    kw = {"support_factor": 100.0, "delta_tol": 0.5}
    a = check_kkt(HomogeneousMLP(tuple(Ws), activation="relu"), X, y, **kw)
    b = check_kkt(_sequential(Ws), X, y, **kw)
    assert a.n_kink_pairs > 0 and a.exact                          # premise: kinks, one layer
    assert b.exact and b.n_kink_pairs == a.n_kink_pairs
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=BACKEND_RTOL)
    assert b.delta_relative == pytest.approx(a.delta_relative, rel=BACKEND_RTOL,
                                             abs=BACKEND_RTOL * a.delta_tol)
    assert b.status == a.status
    np.testing.assert_array_equal(a.support, b.support)


def test_same_answer_as_the_numpy_backend_with_leaky_relu_kinks():
    """LeakyReLU: autograd's slope at 0 is α, the other end 1 (at z > 0 the other way round)."""
    Ws, X, y = _kinked_mlp(3, 1, alpha=0.2)
    kw = {"support_factor": 100.0, "delta_tol": 0.5}
    a = check_kkt(_numpy_net(Ws, 0.2), X, y, **kw)
    b = check_kkt(_sequential(Ws, act=lambda: nn.LeakyReLU(0.2)), X, y, **kw)
    assert a.n_kink_pairs > 0 and a.exact
    assert b.exact and b.n_kink_pairs == a.n_kink_pairs
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=BACKEND_RTOL)
    assert b.status == a.status


def test_freeing_lowers_epsilon(monkeypatch):
    Ws, X, y = _kinked_mlp(2, 1)
    kw = {"support_factor": 100.0, "delta_tol": 0.5}
    freed = check_kkt(_sequential(Ws), X, y, **kw)
    monkeypatch.setattr(tk, "_MAX_COLUMN_ENTRIES", 0)
    fixed = check_kkt(_sequential(Ws), X, y, **kw)
    assert freed.exact and not fixed.exact
    assert freed.epsilon < fixed.epsilon * (1.0 - 1e-3)            # the slopes matter here
    assert "exceed" in fixed.verdict                               # and it says why


# --- (b) an independent reference: the Clarke hull in CVXPY -----------------------------------

def _hull_epsilon(grads_of, theta, q, support_factor, delta_tol):
    """min ||θ̃ − Σ_{i,v} λ_iv g_iv|| over λ >= 0 with Σ_i (Σ_v λ_iv)(q_i − 1) <= δ_tol ||θ̃||²,
    over the candidates q_i <= support_factor; ``grads_of(i)`` the vertex gradients (V, P)."""
    cand = np.flatnonzero(q <= support_factor)
    Gs = [grads_of(i) for i in cand]
    lams = [cp.Variable(g.shape[0], nonneg=True) for g in Gs]
    v = sum(g.T @ lv for g, lv in zip(Gs, lams, strict=True))
    cons = [sum(cp.sum(lv) * (q[i] - 1.0) for i, lv in zip(cand, lams, strict=True))
            <= delta_tol * float(theta @ theta)]
    prob = cp.Problem(cp.Minimize(cp.sum_squares(theta - v)), cons)
    prob.solve(**CLARABEL)
    assert prob.status == "optimal"
    return math.sqrt(max(prob.value, 0.0)) / float(np.linalg.norm(theta))


def _rescaled(Ws, X, y, L):
    """θ̃ = θ / q_min^{1/L} as weight tensors, and the margins q(θ̃)."""
    F = HomogeneousMLP(tuple(Ws), activation="relu").outputs(X)[:, 0] * y
    c = F.min() ** (-1.0 / L)
    Wt = [torch.tensor(W * c, dtype=torch.float64, requires_grad=True) for W in Ws]
    return Wt, F / F.min()


def test_relu_kinks_against_the_clarke_hull_in_cvxpy():
    Ws, X, y = _kinked_mlp(2, 1)
    Wt, q = _rescaled(Ws, X, y, 2)
    theta = np.concatenate([W.detach().numpy().ravel() for W in Wt])

    def grads_of(i):
        x = torch.from_numpy(X[i])
        z0 = (Wt[0] @ x).detach()
        kinks = np.flatnonzero(z0.numpy() == 0.0)
        out = []
        for choice in itertools.product([0.0, 1.0], repeat=kinks.size):
            z = Wt[0] @ x
            s = (z0 > 0).double()
            s[kinks] = torch.tensor(choice, dtype=torch.float64)
            f = y[i] * (Wt[1] @ (s * z))[0]                  # the slopes held fixed
            g = torch.autograd.grad(f, Wt)
            out.append(torch.cat([gg.reshape(-1) for gg in g]).numpy())
        return np.array(out)

    ref = _hull_epsilon(grads_of, theta, q, 100.0, 0.5)
    r = check_kkt(_sequential(Ws), X, y, support_factor=100.0, delta_tol=0.5)
    assert r.exact and r.n_kink_pairs > 0
    assert r.epsilon_relative == pytest.approx(ref, rel=CROSS_RTOL)


# --- (c) max-pool ties ---------------------------------------------------------------------

def _pool_net(seed=3, n=12, d=4):
    """Linear(4, 4) → ReLU → MaxPool1d(2) → Linear(2, 1). Rows 0 and 1 of W1 agree except in
    coordinate 3, which is 0 on half the examples: there the first window is exactly tied (both
    entries with a nonzero gradient where z > 0; a tie of zeros where z < 0)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[: n // 2, 3] = 0.0
    W1 = rng.normal(size=(4, d))
    W1[1, :3] = W1[0, :3]
    W1[0, :3] = np.abs(W1[0, :3]) * np.sign(X[: n // 2, :3].sum(0))  # positive ties mostly
    W1[1, :3] = W1[0, :3]
    a = rng.normal(size=(1, 2))
    a[0, 0] = abs(a[0, 0]) + 0.5
    net = nn.Sequential(nn.Linear(d, 4, bias=False), nn.ReLU(), nn.Unflatten(1, (1, 4)),
                        nn.MaxPool1d(2), nn.Flatten(), nn.Linear(2, 1, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(W1))
        net[5].weight.copy_(torch.from_numpy(a))
    with torch.no_grad():
        F = net(torch.from_numpy(X))[:, 0].numpy()
    return net, X, np.sign(F), W1, a


def test_max_pool_tie_against_the_clarke_hull_in_cvxpy(monkeypatch):
    net, X, y, W1, a = _pool_net()
    Z = X @ W1.T
    tied_pos = (Z[:, 0] == Z[:, 1]) & (Z[:, 0] > 0)
    assert tied_pos.sum() >= 2 and np.any((Z[:, 0] == Z[:, 1]) & (Z[:, 0] < 0))  # premise
    assert np.all(Z != 0)                                       # no ReLU kink
    F = y * net(torch.from_numpy(X))[:, 0].detach().numpy()
    c = F.min() ** -0.5
    Wt = [torch.tensor(W1 * c, requires_grad=True), torch.tensor(a * c, requires_grad=True)]
    theta = np.concatenate([W.detach().numpy().ravel() for W in Wt])
    q = F / F.min()

    def grads_of(i):
        h0 = torch.relu(Wt[0] @ torch.from_numpy(X[i])).detach()
        firsts = [0, 1] if h0[0].item() == h0[1].item() else [int(h0[1] > h0[0])]
        out = []
        for j in firsts:                                         # every maximal entry
            h = torch.relu(Wt[0] @ torch.from_numpy(X[i]))
            f = y[i] * (Wt[1][0, 0] * h[j] + Wt[1][0, 1] * torch.max(h[2], h[3]))
            g = torch.autograd.grad(f, Wt)
            out.append(torch.cat([gg.reshape(-1) for gg in g]).numpy())
        return np.array(out)

    kw = {"support_factor": 100.0, "delta_tol": 0.5}
    ref = _hull_epsilon(grads_of, theta, q, **kw)
    r = check_kkt(net, X, y, **kw)
    assert r.exact
    assert r.n_kink_pairs == int(tied_pos.sum())                  # the zero ties do not count
    assert r.extra["kinks_by_module"]["3"] == r.n_kink_pairs
    assert r.epsilon_relative == pytest.approx(ref, rel=CROSS_RTOL)
    monkeypatch.setattr(tk, "_MAX_COLUMN_ENTRIES", 0)
    fixed = check_kkt(net, X, y, **kw)
    assert not fixed.exact
    assert r.epsilon < fixed.epsilon * (1.0 - 1e-3)


# --- (d) dead units are not kinks -------------------------------------------------------------

def _dead_mlp(scale, seed=1, n=16):
    """3-layer MLP whose layer-2 unit 0 has incoming weights ``scale`` × random (dead for tiny
    ``scale``: |z| ~ 1e-9 of the layer's maximum on every example)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    Ws = [rng.normal(size=(6, 3)), rng.normal(size=(5, 6)), rng.normal(size=(1, 5))]
    Ws[1][0] *= scale
    F = HomogeneousMLP(tuple(Ws), activation="relu").outputs(X)[:, 0]
    assert np.all(F != 0)                                          # premise: all fitted
    return Ws, X, np.sign(F)


def test_dead_unit_is_not_counted_as_kinks():
    Ws, X, y = _dead_mlp(1e-9)
    kw = {"support_factor": 100.0}
    a = check_kkt(HomogeneousMLP(tuple(Ws), activation="relu"), X, y, **kw)
    b = check_kkt(_sequential(Ws), X, y, **kw)
    assert b.extra["clarke_kinks"]["n_dead_kinks"] > 0            # premise: near-kinks there
    assert b.n_kink_pairs == 0 == a.n_kink_pairs
    assert b.exact and a.exact
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=BACKEND_RTOL)


def test_dead_unit_exactly_zero_makes_an_upper_bound():
    Ws, X, y = _dead_mlp(0.0)
    b = check_kkt(_sequential(Ws), X, y, support_factor=100.0)
    a = check_kkt(HomogeneousMLP(tuple(Ws), activation="relu"), X, y, support_factor=100.0)
    assert not b.exact and not a.exact                            # a Clarke choice not freed
    assert "dead-unit" in b.verdict


@pytest.mark.parametrize("per_example", [0.0, 1e9])
def test_both_routes_to_the_cross_gram_agree(monkeypatch, per_example):
    """⟨c_k, ∇q_a⟩ by per-example gradients (0) or forward-mode passes (1e9): same ε as numpy."""
    monkeypatch.setattr(tk, "_JVP_PER_EXAMPLE", per_example)
    Ws, X, y = _kinked_mlp(2, 3)
    kw = {"support_factor": 100.0, "delta_tol": 0.5}
    a = check_kkt(HomogeneousMLP(tuple(Ws), activation="relu"), X, y, **kw)
    b = check_kkt(_sequential(Ws), X, y, **kw)
    assert b.exact and b.extra["clarke_kinks"]["n_freed"] > 0
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=BACKEND_RTOL)


# --- what is not exact is an upper bound: sandwiched by the Clarke hull ------------------------

def _mlp_vertex_grads(Wt, x, yi):
    """Gradients of yi f(θ̃; x) at every vertex choice of the slopes at exact zero
    pre-activations, in every layer (plain autograd, slopes held fixed)."""
    x = torch.from_numpy(x)
    zs, h = [], x
    with torch.no_grad():                                 # the pre-activations at θ̃
        for W in Wt[:-1]:
            z = W @ h
            zs.append(z)
            h = torch.relu(z)
    where = [(t, u) for t, z in enumerate(zs) for u in np.flatnonzero(z.numpy() == 0.0)]
    out = []
    for choice in itertools.product([0.0, 1.0], repeat=len(where)):
        sl = [(z > 0).double() for z in zs]
        for (t, u), c in zip(where, choice, strict=True):
            sl[t][u] = c
        h = x
        for W, s in zip(Wt[:-1], sl, strict=True):
            h = s * (W @ h)
        g = torch.autograd.grad(yi * (Wt[-1] @ h)[0], Wt)
        out.append(torch.cat([gg.reshape(-1) for gg in g]).numpy())
    return np.array(out)


def test_kinks_in_two_layers_give_an_upper_bound_of_the_clarke_minimum(monkeypatch):
    """Layer-2 unit 0 reads only layer-1 units 0 and 1, so it is at z = 0 exactly wherever they
    are: kinks in two layers on the same examples. The minimum over the Clarke hull (all vertex
    choices, CVXPY) <= the check's ε (one layer freed) <= ε with autograd's slopes."""
    Ws, X, y = _kinked_mlp(3, 1, seed=6)
    Ws[1][0] = 0.0
    Ws[1][0, :2] = [0.7, 1.1]
    y = np.sign(_numpy_net(Ws).outputs(X)[:, 0])
    kw = {"support_factor": 100.0, "delta_tol": 0.5}
    Wt, q = _rescaled(Ws, X, y, 3)
    theta = np.concatenate([W.detach().numpy().ravel() for W in Wt])
    ref = _hull_epsilon(lambda i: _mlp_vertex_grads(Wt, X[i], y[i]), theta, q, **kw)
    r = check_kkt(_sequential(Ws), X, y, **kw)
    assert not r.exact and "several modules" in r.verdict
    assert r.extra["clarke_kinks"]["n_freed"] > 0
    monkeypatch.setattr(tk, "_MAX_COLUMN_ENTRIES", 0)
    fixed = check_kkt(_sequential(Ws), X, y, **kw)
    assert ref <= r.epsilon_relative * (1.0 + CROSS_RTOL)
    assert r.epsilon_relative <= fixed.epsilon_relative * (1.0 + CROSS_RTOL)
    assert ref < fixed.epsilon_relative * (1.0 - 1e-3)             # premise: the kinks matter


def test_relu_kinks_under_a_tie_of_zeros_are_an_upper_bound():
    """Both entries of the first window are ReLU outputs of z = 0 exactly (W1 rows 0 and 1 read
    only coordinate 3, which is 0 on half the examples): there q = a relu(max(z0, z1)) + …,
    whose Clarke subdifferential holds ∇z1 as well as ∇z0, but autograd routes the window
    through entry 0 only and entry 1's upstream derivative is 0. The check must not claim
    exactness; its ε is an achieved value above the Clarke-hull minimum (CVXPY)."""
    net, X, y, W1, a = _pool_net()
    W1 = W1.copy()
    W1[0], W1[1] = [0, 0, 0, 1.0], [0, 0, 0, 2.0]
    W1[3] = -W1[2]                                   # max(h2, h3) = |z2| > 0: every q != 0
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(W1))
        F = net(torch.from_numpy(X))[:, 0].numpy()
    assert np.all(F != 0)
    y = np.sign(F)
    r = check_kkt(net, X, y, support_factor=100.0, delta_tol=0.5)
    assert not r.exact and "equal gradients" in r.verdict
    assert r.extra["clarke_kinks"]["shadow_tie_pairs"] > 0

    c = (y * F).min() ** -0.5
    Wt = [torch.tensor(W1 * c, requires_grad=True), torch.tensor(a * c, requires_grad=True)]
    theta = np.concatenate([W.detach().numpy().ravel() for W in Wt])

    def grads_of(i):
        x = torch.from_numpy(X[i])
        z0 = (Wt[0] @ x).detach()
        out = []
        for route in ([None, 0, 1] if z0[0] == z0[1] == 0 else ["max"]):
            z = Wt[0] @ x
            h = torch.relu(z)
            first = (torch.max(h[0], h[1]) if route == "max" else
                     torch.zeros(()) if route is None else z[route])   # slope 0, or 1 via route
            f = y[i] * (Wt[1][0, 0] * first + Wt[1][0, 1] * torch.max(h[2], h[3]))
            g = torch.autograd.grad(f, Wt, allow_unused=True)
            out.append(torch.cat([(gg if gg is not None else torch.zeros_like(W)).reshape(-1)
                                  for gg, W in zip(g, Wt, strict=True)]).numpy())
        return np.array(out)

    ref = _hull_epsilon(grads_of, theta, y * F / (y * F).min(), 100.0, 0.5)
    assert ref <= r.epsilon_relative * (1.0 + CROSS_RTOL)


# --- ℓ1 / ℓ∞ -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("p", "norm_rtol"), [(1, 0.3), (np.inf, 0.6)])
def test_l1_linf_same_answer_as_the_numpy_backend_with_kinks(p, norm_rtol, monkeypatch):
    """The LPs of _torch_lp with the kink columns as variables against the numpy LPs (which
    free the slopes with their own columns); and lower than autograd's slopes. (A wide
    ``norm_rtol``, as in tests/test_kkt_norms.py, so that multipliers matter: ε/||θ̃|| < 1.)"""
    Ws, X, y = _kinked_mlp(2, 1, seed=1)
    kw = {"support_factor": 100.0, "delta_tol": 1.0, "norm": p, "norm_rtol": norm_rtol}
    a = check_kkt(HomogeneousMLP(tuple(Ws), activation="relu"), X, y, **kw)
    b = check_kkt(_sequential(Ws), X, y, **kw)
    assert a.exact and a.n_kink_pairs > 0 and a.epsilon_relative < 0.95
    assert b.exact and b.n_kink_pairs == a.n_kink_pairs
    assert b.solver_status == "optimal"
    assert b.epsilon_relative == pytest.approx(a.epsilon_relative, rel=CROSS_RTOL)
    monkeypatch.setattr(tk, "_MAX_COLUMN_ENTRIES", 0)
    fixed = check_kkt(_sequential(Ws), X, y, **kw)
    assert not fixed.exact and b.epsilon < fixed.epsilon * (1.0 - 1e-3)


# --- pricing the pairs outside a working set ----------------------------------------------------

def test_pricing_outside_the_working_set_takes_the_worst_clarke_vertex():
    """A pair outside the working set violates the dual cone iff some Clarke gradient h of it
    has ⟨h, v − θ̃⟩ < 0: the reduced cost with its kinks freed is the minimum over the vertex
    gradients (plain autograd, slopes held fixed), one pair at a time, for a random residual."""
    from solvers.nets import TorchNet

    Ws, X, y = _kinked_mlp(2, 1)
    tn = TorchNet(_sequential(Ws))
    Wt = [torch.tensor(W, requires_grad=True) for W in Ws]
    resid = np.random.default_rng(5).normal(size=tn.n_params)      # θ̃ − v
    yi = y.astype(np.int64)
    none = np.zeros(0, dtype=np.int64)
    seen_kinks = 0
    for i in range(X.shape[0]):
        G = _mlp_vertex_grads(Wt, X[i], float(y[i]))
        seen_kinks += G.shape[0] > 1
        want = max(-float(np.min(G @ (-resid))), 0.0) / 2.0          # L q with q = 1
        got = tk._price_outside(tn, X, yi, none, none, None, resid, 0.0,
                                TOLERANCES.kink_rtol, (np.array([i]), np.array([-1]),
                                                       np.array([1.0])), always=True)
        assert got[2]                                              # one layer: exact
        assert got[0] == pytest.approx(want, rel=1e-9, abs=1e-12 * np.abs(G).max())
    assert seen_kinks >= 3                                          # premise: kinked examples


class _SharedReLU(nn.Module):
    """One ReLU module applied after two layers (fx: the module is called twice)."""

    def __init__(self, Ws):
        super().__init__()
        self.l1, self.l2, self.l3 = (nn.Linear(W.shape[1], W.shape[0], bias=False).double()
                                     for W in Ws)
        with torch.no_grad():
            for lin, W in zip((self.l1, self.l2, self.l3), Ws, strict=True):
                lin.weight.copy_(torch.from_numpy(W))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.l3(self.act(self.l2(self.act(self.l1(x)))))


def test_kinks_in_a_module_called_twice_are_counted_not_freed():
    Ws, X, y = _kinked_mlp(3, 1)
    r = check_kkt(_SharedReLU(Ws), X, y, support_factor=100.0)
    a = check_kkt(_sequential(Ws), X, y, support_factor=100.0)   # the same net, two modules
    assert a.exact and a.n_kink_pairs > 0
    assert not r.exact and "called more than once" in r.verdict
    assert r.n_kink_pairs > 0 and r.extra["clarke_kinks"]["n_freed"] == 0
    assert r.epsilon >= a.epsilon * (1.0 - CROSS_RTOL)             # a subset of the choices
    json_ready = r.extra["clarke_kinks"]
    assert json_ready["eps"] is None and json_ready["freed"] is False
