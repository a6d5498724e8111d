"""solve_min_potential: closed forms, CVXPY, the α → 0 / α → ∞ limits of Q_α, bad inputs."""

import numpy as np
import pytest

from solvers import InconsistentSystemError, Potential, solve_min_norm, solve_min_potential
from solvers.datasets import make_underdetermined
from solvers.programs._potential import potential_certificate
from solvers.tolerances import TOLERANCES

RTOL = TOLERANCES.certificate_rtol
#: A certified solution is optimal to a relative gap / residual ≤ certificate_rtol (1e-6); ten
#: times that bounds the distance between two certified answers of a well-conditioned program
#: whose value is exact (closed forms here).
CLOSED_FORM_RTOL = 10 * RTOL
#: Clarabel stops at gap/feasibility solver_eps = 1e-9; for a strongly convex objective the
#: distance to the minimiser is O(√gap) ≈ 3e-5 (relative). 1e-4 sits above that.
CVXPY_RTOL = 1e-4


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture
def data():
    return make_underdetermined(8, 30, seed=3)


def test_weighted_l2_matches_its_closed_form(data):
    X, y = data
    rng = np.random.default_rng(0)
    c = rng.uniform(0.5, 3.0, X.shape[1])
    w0 = rng.standard_normal(X.shape[1])
    sol = solve_min_potential(X, y, Potential.weighted_l2(c), w0=w0)
    Ci = 1.0 / c
    # w = w0 + C⁻¹Xᵀ(XC⁻¹Xᵀ)⁻¹(y − Xw0), the C-weighted projection of w0 onto {Xw = y}
    ref = w0 + Ci * (X.T @ np.linalg.solve((X * Ci) @ X.T, y - X @ w0))
    assert sol.certificate.verified
    assert rel(sol.w, ref) <= CLOSED_FORM_RTOL


def test_unweighted_l2_from_zero_is_the_pseudoinverse(data):
    X, y = data
    sol = solve_min_potential(X, y, Potential.weighted_l2(1.0))
    assert rel(sol.w, np.linalg.pinv(X) @ y) <= CLOSED_FORM_RTOL
    assert rel(sol.w, solve_min_norm(X, y, norm=2).w) <= CLOSED_FORM_RTOL


def test_woodworth_and_hypentropy_agree():
    # Q_α is the hypentropy with β = 2α²: same gradient, same minimiser
    X, y = make_underdetermined(6, 20, seed=1)
    a = solve_min_potential(X, y, Potential.woodworth(0.1))
    b = solve_min_potential(X, y, Potential.hypentropy(0.02))
    assert rel(a.w, b.w) <= CLOSED_FORM_RTOL
    # and Q_α's gradient is arcsinh(β/2α²): finite difference of the value
    p, h = Potential.woodworth(0.3), 1e-6
    z = np.linspace(-3, 3, 7)
    fd = (p.value(z + h) - p.value(z - h)) / (2 * h)
    np.testing.assert_allclose(fd, np.arcsinh(z / (2 * 0.3**2)), rtol=1e-7, atol=1e-9)
    # Woodworth et al.'s closed form α² q(β/α²), q(z) = 2 − √(4+z²) + z asinh(z/2)
    q = lambda s: 2 - np.sqrt(4 + s**2) + s * np.arcsinh(s / 2)  # noqa: E731
    np.testing.assert_allclose(p.value(z), 0.3**2 * q(z / 0.3**2), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("potential", [Potential.entropy(), Potential.lp(1.5), Potential.lp(3.0)],
                         ids=lambda p: p.name)
def test_newton_agrees_with_cvxpy(potential):
    from solvers.programs._potential import _route_cvxpy

    X, y = make_underdetermined(8, 30, seed=2)
    if potential.lower == 0.0:     # entropy: data with a positive interpolant
        X = np.abs(X)
        y = X @ np.random.default_rng(0).uniform(0.5, 1.5, X.shape[1])
    sol = solve_min_potential(X, y, potential, method="newton")
    assert sol.solver == "newton" and sol.certificate.verified
    w0 = np.full(X.shape[1], potential.minimiser)
    out = _route_cvxpy(X, y, potential, w0, potential.grad(w0), "CLARABEL")
    assert out.solver_status == "optimal"
    assert rel(out.w, sol.w) <= CVXPY_RTOL
    # the CVXPY point is feasible and no better than the certified minimum (weak duality)
    cert = potential_certificate(X, y, out.w, out.dual, potential, w0)
    assert cert.primal_value >= sol.certificate.dual_value - RTOL * abs(sol.value)


def test_custom_potential_from_grad_and_hess_only():
    # hypentropy given only by ∇ψ and ∇²ψ: the inverse map by Newton–bisection, the divergences
    # of the certificate by quadrature; the same minimiser as the built-in
    X, y = make_underdetermined(6, 20, seed=4)
    beta = 0.05
    custom = Potential(name="custom", grad=lambda w: np.arcsinh(w / beta),
                       hess=lambda w: 1.0 / np.hypot(w, beta))
    a = solve_min_potential(X, y, custom)
    b = solve_min_potential(X, y, Potential.hypentropy(beta))
    assert a.certificate.verified
    assert rel(a.w, b.w) <= CLOSED_FORM_RTOL
    assert a.value == pytest.approx(b.value, rel=CLOSED_FORM_RTOL)


def test_rich_limit_approaches_the_l1_interpolant():
    # Q_α/ln(1/α²) → ||·||₁ (Woodworth et al. 2020, Theorem 2): the distance to the (unique)
    # ℓ1 interpolant shrinks along α → 0; measured 0.25, 0.13, 0.059, 0.0024 on this instance;
    # the rate is only logarithmic in α, so the last point is α = 1e-40
    X, y = make_underdetermined(10, 40, seed=1)
    l1 = solve_min_norm(X, y, norm=1).w
    dist = [rel(solve_min_potential(X, y, Potential.woodworth(a)).w, l1)
            for a in (1e-2, 1e-4, 1e-12, 1e-40)]
    assert all(b < a for a, b in zip(dist, dist[1:], strict=False)), dist
    assert dist[-1] <= 0.01, dist


def test_kernel_limit_approaches_the_l2_interpolant_like_alpha_to_minus_4():
    # 4α²Q_α(β) = ||β||² − ||β||⁴₄/(48α⁴) + …: the minimiser moves from X⁺y by O(α⁻⁴)
    X, y = make_underdetermined(10, 40, seed=1)
    l2 = np.linalg.pinv(X) @ y
    alphas = np.array([3.0, 10.0, 30.0])
    dist = [rel(solve_min_potential(X, y, Potential.woodworth(a)).w, l2) for a in alphas]
    slope = np.polyfit(np.log(alphas), np.log(dist), 1)[0]
    assert -4.2 <= slope <= -3.8, (slope, dist)


def test_w0_already_interpolating_is_returned(data):
    X, y = data
    w0 = np.linalg.pinv(X) @ y + 0.0
    y2 = X @ w0
    sol = solve_min_potential(X, y2, Potential.woodworth(0.5), w0=w0)
    assert sol.solver == "trivial" and sol.value == 0.0


def test_certificate_rejects_a_wrong_point(data):
    # the certified minimiser moved along the null space of X: still feasible, not stationary
    X, y = data
    pot = Potential.woodworth(0.5)
    sol = solve_min_potential(X, y, pot)
    null = np.linalg.svd(X)[2][-1]
    bad = potential_certificate(X, y, sol.w + 0.1 * null, sol.dual, pot, np.zeros(X.shape[1]))
    assert not bad.verified and bad.primal_infeasibility <= RTOL
    assert "stationarity" in bad.status and "duality gap" in bad.status


def test_to_dict_is_plain(data):
    X, y = data
    d = solve_min_potential(X, y, Potential.lp(1.5)).to_dict()
    assert d["potential"]["params"] == {"p": 1.5} and d["certificate"]["verified"] is True


# ------------------------------------------------------------------------------ bad inputs
def test_inconsistent_system_is_refused():
    X = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    with pytest.raises(InconsistentSystemError, match="no solution"):
        solve_min_potential(X, np.array([1.0, 1.0]), Potential.woodworth(1.0))


def test_no_positive_interpolant_for_entropy():
    X = np.array([[1.0, 1.0, 1.0]])
    with pytest.raises(InconsistentSystemError, match="domain"):
        solve_min_potential(X, np.array([-1.0]), Potential.entropy())


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"potential": "Q"}, TypeError, "potential must be"),
    ({"w0": np.ones(4)}, ValueError, "w0 has shape"),
    ({"method": "bfgs"}, ValueError, "method must be one of"),
    ({"potential": Potential.woodworth(1.0), "method": "cvxpy-clarabel"}, ValueError,
     "no CVXPY form"),
    ({"potential": Potential.entropy(), "w0": -np.ones(30)}, ValueError, "domain"),
])
def test_bad_arguments_are_named(data, kwargs, exc, match):
    X, y = data
    args = {"potential": Potential.woodworth(1.0), **kwargs}
    pot = args.pop("potential")
    with pytest.raises(exc, match=match):
        solve_min_potential(X, y, pot, **args)


@pytest.mark.parametrize("make, match", [
    (lambda: Potential.woodworth(0.0), "alpha must be finite and > 0"),
    (lambda: Potential.hypentropy(-1), "beta must be finite and > 0"),
    (lambda: Potential.lp(1.0), "p must be finite and > 1"),
    (lambda: Potential.weighted_l2([1.0, -1.0]), "weights must be"),
])
def test_bad_potential_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_pcg_solves_the_newton_system_with_an_old_factor():
    # _pcg with the factor of X diag(h₀) Xᵀ on X diag(h) Xᵀ s = r, h = h₀·e^{±0.5}: the returned
    # step must satisfy the system to the requested rtol (checked independently by a direct
    # solve), and None is returned when the products allowed are too few
    import scipy.linalg as sla

    from solvers.programs import _potential as P

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 300))
    h0 = rng.uniform(0.5, 2.0, 300)
    h = h0 * np.exp(rng.uniform(-0.5, 0.5, 300))
    r = rng.standard_normal(40)
    factor = sla.cho_factor((X * h0) @ X.T)
    s = P._pcg(X, h, r, factor, rtol=1e-10, maxiter=40)
    direct = np.linalg.solve((X * h) @ X.T, r)
    assert s is not None
    assert rel(s, direct) <= 1e-8      # cond((X h X^T)) ~ 1e2 times the 1e-10 residual
    assert P._pcg(X, h, r, factor, rtol=1e-10, maxiter=1) is None


@pytest.mark.parametrize("potential", [Potential.woodworth(1e-3), Potential.lp(1.5)],
                         ids=["Q_alpha", "lp"])
def test_cg_reuse_gives_the_same_certified_answer(potential, monkeypatch):
    # the Newton iterations with the CG reuse (fewer Hessians formed) and without it reach the
    # same certified minimiser (two certified answers differ by at most CLOSED_FORM_RTOL)
    from solvers.programs import _potential as P

    X, y = make_underdetermined(60, 400, seed=2)
    seen = []
    orig = P._pcg
    monkeypatch.setattr(P, "_pcg", lambda *a, **k: seen.append(orig(*a, **k)) or seen[-1])
    with_cg = solve_min_potential(X, y, potential, method="newton")
    assert any(s is not None for s in seen)            # the CG path was taken at least once
    monkeypatch.setattr(P, "_PCG_MAXITER", 0)
    without = solve_min_potential(X, y, potential, method="newton")
    assert with_cg.certificate.verified and without.certificate.verified
    assert rel(with_cg.w, without.w) <= CLOSED_FORM_RTOL
