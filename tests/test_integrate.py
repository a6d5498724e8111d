"""solvers.integrate: closed forms, convergence with the tolerance, log-time, events, failures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from solvers.errors import IntegrationError
from solvers.flows import integrate, linear_flow
from solvers.tolerances import TOLERANCES

# Integrator at rtol 1e-10 / atol 1e-12 over O(10) time constants: global error ~1e-9; tests 1e-7.
CLOSED_FORM_TOL = 1e-7
EVENT_TOL = 1e-7


def decay(t, y):
    return -y


def oscillator(t, y):
    return np.array([y[1], -y[0]])


@pytest.mark.parametrize("method", ["LSODA", "DOP853", "Radau", "BDF", "RK45"])
def test_exponential_decay_closed_form(method):
    t = np.linspace(0.0, 5.0, 11)
    tr = integrate(decay, [1.0, -2.0], (0.0, 5.0), method=method, t_eval=t)
    # y(t) = y0 e^{-t}
    expected = np.exp(-t)[:, None] * np.array([1.0, -2.0])
    assert tr.status == "success" and tr.method == method
    np.testing.assert_array_equal(tr.times, t)
    np.testing.assert_allclose(tr.states, expected, rtol=CLOSED_FORM_TOL, atol=CLOSED_FORM_TOL)


def test_defaults_come_from_tolerances():
    tr = integrate(decay, [1.0], (0.0, 1.0))
    assert tr.rtol == TOLERANCES.ode_rtol and tr.atol == TOLERANCES.ode_atol
    assert tr.rtol <= 1e-8                    # never scipy's 1e-3


def test_error_shrinks_with_rtol_at_first_order():
    # DOP853 on the oscillator over 10 periods vs cos/sin: the global error tracks rtol
    # (slope of log error vs log rtol ≈ 1 for a tolerance-proportional controller)
    T = 20 * np.pi
    rtols = np.array([1e-5, 1e-7, 1e-9])
    errs = []
    for r in rtols:
        tr = integrate(oscillator, [1.0, 0.0], (0.0, T), method="DOP853", rtol=r, atol=r * 1e-2,
                       t_eval=[T])
        errs.append(np.linalg.norm(tr.states[-1] - [np.cos(T), -np.sin(T)]))
    slope = np.polyfit(np.log(rtols), np.log(errs), 1)[0]
    assert 0.6 <= slope <= 1.4
    assert errs[-1] <= 1e-6


def test_log_time_reaches_1e100_with_few_steps():
    # y' = 1/(1 + t)  =>  y = log(1 + t): in s = log(1 + t) the flow is dy/ds = 1
    t = np.array([0.0, 1.0, 1e6, 1e12, 1e100])
    tr = integrate(lambda t, y: 1.0 / (1.0 + t) * np.ones(1), [0.0], (0.0, 1e100),
                   log_time=True, t_eval=t)
    np.testing.assert_allclose(tr.states[:, 0], np.log1p(t), rtol=CLOSED_FORM_TOL,
                               atol=CLOSED_FORM_TOL)
    np.testing.assert_array_equal(tr.times, t)
    assert tr.log_time and tr.n_steps < 200


def test_log_time_agrees_with_plain_time():
    # metamorphic: the reparametrisation does not change the solution (Soudry flow, t <= 1e3)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 3))
    y = np.sign(X @ np.array([1.0, -1.0, 0.5]))
    flow = linear_flow(X, y, loss="logistic")
    t = [1.0, 10.0, 1e3]
    a = integrate(flow, np.zeros(3), (0.0, 1e3), t_eval=t)
    b = integrate(flow, np.zeros(3), (0.0, 1e3), t_eval=t, log_time=True)
    np.testing.assert_allclose(a.states, b.states, rtol=CLOSED_FORM_TOL, atol=CLOSED_FORM_TOL)


def test_blocks_and_jacobian_are_taken_from_the_rhs():
    rng = np.random.default_rng(2)
    flow = linear_flow(rng.standard_normal((5, 3)), rng.standard_normal(5))
    tr = integrate(flow, np.ones(3), (0.0, 2.0), method="Radau")
    assert tr.blocks == {"w": (3,)}
    assert tr.njev >= 1                       # the analytic Jacobian was used
    assert tr.block("w").shape == (tr.times.size, 3)


def test_terminal_event_located():
    def half(t, y):
        return y[0] - 0.5
    half.terminal = True
    tr = integrate(decay, [1.0], (0.0, 10.0), events=half)
    # e^{-t} = 1/2  at  t = log 2
    assert tr.status == "event"
    assert abs(tr.t_events[0][0] - np.log(2)) <= EVENT_TOL
    assert abs(tr.times[-1] - np.log(2)) <= EVENT_TOL
    assert abs(tr.y_events[0][0, 0] - 0.5) <= EVENT_TOL


def test_non_terminal_event_direction_and_log_time():
    def crossing(t, y):
        return y[0]
    crossing.direction = -1                   # cos t decreasing through 0: t = π/2 + 2πk
    tr = integrate(oscillator, [1.0, 0.0], (0.0, 20.0), events=[crossing], method="DOP853")
    expected = np.pi / 2 + 2 * np.pi * np.arange(4)
    np.testing.assert_allclose(tr.t_events[0], expected[expected < 20], atol=EVENT_TOL)
    assert tr.status == "success"

    def at_t(t, y):
        return t - 1e50
    at_t.terminal = True
    tr = integrate(lambda t, y: 1.0 / (1.0 + t) * np.ones(1), [0.0], (0.0, 1e100),
                   log_time=True, events=at_t)
    assert tr.status == "event"
    np.testing.assert_allclose(tr.t_events[0][0], 1e50, rtol=1e-9)


def test_blow_up_raises_with_partial_trajectory():
    # y' = y², y(0) = 1  =>  y = 1/(1 − t) blows up at t = 1
    with pytest.raises(IntegrationError, match="NaN/inf|failed") as info:
        with np.errstate(over="ignore"):
            integrate(lambda t, y: y * y, [1.0], (0.0, 2.0))
    partial = info.value.trajectory
    assert partial is not None and not partial.ok
    assert partial.times[-1] <= 1.0 + 1e-6
    assert "Try" in str(info.value)


def test_throw_false_returns_status():
    def bad(t, y):
        return np.array([np.nan]) if t > 0.5 else -y
    tr = integrate(bad, [1.0], (0.0, 1.0), throw=False)
    assert tr.status == "non-finite" and not tr.ok
    assert tr.times[-1] <= 0.5 + 1e-12
    json.dumps(tr.to_dict())


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"method": "Euler"}, ValueError, "method"),
    ({"t_span": (1.0, 1.0)}, ValueError, "t_span"),
    ({"t_span": (0.0, np.inf)}, ValueError, "t_span"),
    ({"t_span": (-2.0, 1.0), "log_time": True}, ValueError, "t > -1"),
    ({"y0": [np.nan]}, ValueError, "y0"),
    ({"y0": []}, ValueError, "y0"),
    ({"t_eval": [2.0]}, ValueError, "t_eval"),
    ({"t_eval": [0.5, 0.2]}, ValueError, "sorted"),
    ({"rtol": 0.0}, ValueError, "rtol"),
    ({"blocks": {"a": (2,)}}, ValueError, "blocks"),
    ({"jac": 3}, TypeError, "jac"),
])
def test_bad_arguments(kwargs, exc, match):
    args = {"y0": [1.0], "t_span": (0.0, 1.0)}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        integrate(decay, args.pop("y0"), args.pop("t_span"), **args)


def test_rhs_with_wrong_shape_or_not_callable():
    with pytest.raises(ValueError, match="returned shape"):
        integrate(lambda t, y: np.zeros(2), [1.0], (0.0, 1.0))
    with pytest.raises(TypeError, match="callable"):
        integrate("f", [1.0], (0.0, 1.0))


# --- step budget (issue 14.12) -----------------------------------------------------------------

_STIFF_RATES = np.logspace(0, 8, 9)  # eigenvalues 1 ... 1e8 of y' = -diag(rates) y


def _stiff(t, y):
    return -_STIFF_RATES * y


def test_explicit_method_on_a_stiff_flow_fails_fast_with_a_hint():
    """RK45's step is held at ~3.3e-8 by stability: about 3e7 steps for t in [0, 1]. It must stop
    at the first projection (2000 steps), not after minutes, and say what to do."""
    with pytest.raises(IntegrationError, match=r"RK45 stopped after 2000 steps .* would need "
                                               r"about 3e\+07 steps.*likely stiff.*"
                                               r"method='Radau'") as info:
        integrate(_stiff, np.ones(9), (0.0, 1.0), method="RK45")
    traj = info.value.trajectory
    assert traj.status == "failed" and traj.n_steps == 2000


def test_implicit_method_integrates_the_same_stiff_flow():
    """Radau starts with tiny steps in the 1e8 transient (more than 2000 of them) but they grow,
    so the projection must not stop it; the result is the closed form exp(-rate t)."""
    traj = integrate(_stiff, np.ones(9), (0.0, 1.0), method="Radau", t_eval=[1.0])
    assert traj.ok and traj.n_steps > 2000
    # solver rtol 1e-10 / atol 1e-12; the global error may grow a few orders above them
    np.testing.assert_allclose(traj.states[-1], np.exp(-_STIFF_RATES), rtol=1e-7, atol=1e-10)


def test_max_steps_is_a_hard_budget():
    with pytest.raises(IntegrationError, match=r"DOP853 stopped after 5 steps .*\(max_steps=5\)"):
        integrate(lambda t, y: -y, [1.0], (0.0, 100.0), method="DOP853", max_steps=5)
    traj = integrate(lambda t, y: -y, [1.0], (0.0, 100.0), method="DOP853", max_steps=5,
                     throw=False)
    assert traj.status == "failed" and traj.n_steps == 5 and traj.times[-1] < 100.0
    assert integrate(lambda t, y: -y, [1.0], (0.0, 100.0), max_steps=None).ok


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_max_steps_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match=r"max_steps must be a positive integer or None"):
        integrate(lambda t, y: -y, [1.0], (0.0, 1.0), max_steps=bad)


# --- method='auto' (issue 9.3) ------------------------------------------------------------------

def _no_jac(t, y):
    raise AssertionError("method='auto' above the limit must not evaluate a P x P Jacobian")


def test_auto_uses_lsoda_with_the_jacobian_for_small_states():
    calls = []

    def jac(t, y):
        calls.append(t)
        return -np.eye(3)

    traj = integrate(lambda t, y: -y, np.ones(3), (0.0, 1.0), method="auto", jac=jac,
                     t_eval=[1.0])
    assert traj.method == "LSODA" and "method='auto' chose LSODA" in traj.message
    np.testing.assert_allclose(traj.states[-1], np.exp(-1.0), rtol=1e-8, atol=0)


def test_auto_goes_matrix_free_above_the_dense_limit():
    """Above the limit 'auto' picks DOP853 (no P x P matrix), says so and names BDF-Krylov for
    stiff flows, never calls jac, and matches the closed form exp(-rate t)."""
    from solvers.flows import DENSE_JACOBIAN_LIMIT

    P = DENSE_JACOBIAN_LIMIT + 1
    rates = np.linspace(0.5, 2.0, P)
    traj = integrate(lambda t, y: -rates * y, np.ones(P), (0.0, 1.0), method="auto",
                     jac=_no_jac, t_eval=[1.0])
    assert traj.method == "DOP853"
    assert "method='auto' chose DOP853" in traj.message and "BDF-Krylov" in traj.message
    assert f"P = {P} > {DENSE_JACOBIAN_LIMIT}" in traj.message
    # solver rtol 1e-10 / atol 1e-12; global error a few orders above: 1e-7
    np.testing.assert_allclose(traj.states[-1], np.exp(-rates), rtol=1e-7, atol=1e-10)


def test_bdf_krylov_integrates_a_wide_stiff_flow():
    """Rates 1 ... 1e4 at P = 257 to t = 1: stiff (DOP853 would be held to ~3e3 stability-limited
    steps); BDF-Krylov reaches the closed form exp(-rate t) without jac."""
    from solvers.flows import DENSE_JACOBIAN_LIMIT

    P = DENSE_JACOBIAN_LIMIT + 1
    rates = np.logspace(0, 4, P)
    traj = integrate(lambda t, y: -rates * y, np.ones(P), (0.0, 1.0), method="BDF-Krylov",
                     jac=_no_jac, t_eval=[1e-4, 1e-2, 1.0])
    assert traj.ok and traj.method == "BDF-Krylov"
    expected = np.exp(-np.outer(traj.times, rates))
    # solver rtol 1e-10 / atol 1e-12; global error layer 1e-7
    np.testing.assert_allclose(traj.states, expected, rtol=1e-7, atol=1e-10)


# --- BDF-Krylov (matrix-free implicit; issue 9.3) ---------------------------------------------

def _coupled_stiff(n=40, seed=0):
    """``ẏ = A y`` with a dense symmetric A, eigenvalues -1 ... -1e6 (stiffness 1e6)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = -np.logspace(0, 6, n)
    return (Q * lam) @ Q.T, Q, lam


def test_bdf_krylov_on_a_dense_stiff_linear_flow_matches_the_matrix_exponential():
    A, Q, lam = _coupled_stiff()
    y0 = np.linspace(1.0, 2.0, A.shape[0])
    t = np.array([1e-5, 1e-2, 1.0, 3.0])
    traj = integrate(lambda t, y: A @ y, y0, (0.0, 3.0), method="BDF-Krylov", t_eval=t)
    expected = np.array([Q @ (np.exp(lam * s) * (Q.T @ y0)) for s in t])
    # solver rtol 1e-10 / atol 1e-12; the global error stays within 1e-7 of the state's scale
    np.testing.assert_allclose(traj.states, expected, rtol=1e-7, atol=1e-9)
    assert traj.method == "BDF-Krylov" and traj.njev >= 1


def test_bdf_krylov_agrees_with_lsoda_on_a_deep_linear_flow():
    """A nonlinear gradient flow (deep linear net 3-4-4-2, squared loss): BDF-Krylov and LSODA with
    the exact Jacobian, both at rtol 1e-10, agree to 1e-7 relative (global-error layer)."""
    from solvers.datasets import make_whitened_regression
    from solvers.flows import deep_linear_flow

    X, Y = make_whitened_regression(20, 3, 2, seed=0)
    f = deep_linear_flow(X, Y, widths=(3, 4, 4, 2), loss="squared")
    y0 = 0.3 * np.random.default_rng(1).standard_normal(f.size)
    t = np.linspace(0.0, 20.0, 11)
    a = integrate(f, y0, (0.0, 20.0), method="BDF-Krylov", t_eval=t)
    b = integrate(f, y0, (0.0, 20.0), method="LSODA", t_eval=t)
    scale = np.abs(b.states).max()
    assert np.abs(a.states - b.states).max() / scale < 1e-7


def test_bdf_krylov_reproduces_saxe_mode_dynamics():
    """Saxe et al. 2014, eq. (7): the depth-2 mode strength u' = 2u(s - u) has
    u(t) = s e^{2st} / (e^{2st} - 1 + s/u0); the closed form is theory.saxe_mode_solution."""
    import sympy as sp

    from theory import saxe_mode_solution

    sol = saxe_mode_solution()
    sym = {x.name: x for x in sol.free_symbols}
    u_of = sp.lambdify((sym["t"], sym["s"], sym["u0"]), sol, "numpy")
    s = np.array([3.0, 2.0, 1.0, 0.5])
    u0 = np.array([1e-3, 1e-2, 1e-4, 1e-3])
    t = np.linspace(0.0, 10.0, 21)
    traj = integrate(lambda t, u: 2 * u * (s - u), u0, (0.0, 10.0), method="BDF-Krylov",
                     t_eval=t)
    expected = np.array([u_of(x, s, u0) for x in t])
    np.testing.assert_allclose(traj.states, expected, rtol=1e-7, atol=1e-10)


def test_bdf_krylov_error_is_proportional_to_rtol():
    """Tolerance proportionality (the order test of an adaptive method): on the dense stiff linear
    flow the global error at t = 1 falls with rtol at a fitted slope near 1 (between 0.7 and 1.3 in
    log-log) and stays within 100 x rtol of the matrix exponential."""
    A, Q, lam = _coupled_stiff(n=20, seed=1)
    y0 = np.ones(A.shape[0])
    exact = Q @ (np.exp(lam) * (Q.T @ y0))
    rtols = np.array([1e-5, 1e-6, 1e-7, 1e-8, 1e-9])
    errs = []
    for r in rtols:
        tr = integrate(lambda t, y: A @ y, y0, (0.0, 1.0), method="BDF-Krylov", rtol=r,
                       atol=r * 1e-3, t_eval=[1.0])
        errs.append(np.abs(tr.states[-1] - exact).max() / np.abs(exact).max())
    errs = np.array(errs)
    slope = np.polyfit(np.log10(rtols), np.log10(errs), 1)[0]
    assert 0.7 < slope < 1.3, (slope, errs)
    assert np.all(errs < 100 * rtols), errs


def test_small_flows_run_with_one_blas_thread_and_restore_the_callers_limits():
    # a second BLAS thread only spins on the small products of these right-hand sides (30 s
    # against 6.6 s for derive deep-linear 50^6); the caller's limits come back afterwards
    from threadpoolctl import threadpool_info, threadpool_limits

    from solvers.flows import SMALL_FLOW_BLAS_LIMIT

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    seen = []

    def rhs(t, y):
        seen.append(blas_threads())
        return -y

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        integrate(rhs, np.ones(3), (0.0, 1.0), method="RK45")
        after = blas_threads()
    # some BLAS pool ran with 2 threads before (other pools may be pinned at 1 by their library)
    assert 3 <= SMALL_FLOW_BLAS_LIMIT and any(t > 1 for t in before)
    assert seen and all(t == [1] * len(t) for t in seen)
    assert after == before
