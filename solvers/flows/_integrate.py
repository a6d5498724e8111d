"""Accurate integration of gradient-flow ODEs to very long horizons (numpy/scipy only).

:func:`integrate` drives one of scipy's ``OdeSolver`` classes step by step (so a failure still
leaves a partial trajectory for diagnosis), with tight default tolerances from
:data:`solvers.tolerances.TOLERANCES` (never scipy's ``rtol = 1e-3``), an optional log-time
reparametrisation for the slow logarithmic regimes of implicit-bias theory (Soudry et al. 2018),
events, and a frozen :class:`~solvers.Trajectory` as result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, Radau
from scipy.optimize import brentq
from threadpoolctl import threadpool_limits

from ..errors import IntegrationError
from ..tolerances import TOLERANCES
from ._krylov import KrylovBDF
from ._trajectory import Trajectory, normalise_blocks

__all__ = ["integrate", "METHODS", "MAX_STEPS", "DENSE_JACOBIAN_LIMIT", "SMALL_FLOW_BLAS_LIMIT"]

METHODS = {"LSODA": LSODA, "DOP853": DOP853, "Radau": Radau, "BDF": BDF, "RK45": RK45,
           "RK23": RK23, "BDF-Krylov": KrylovBDF}
_IMPLICIT = {"LSODA", "Radau", "BDF", "BDF-Krylov"}
#: Implicit methods that take the dense (or sparse) Jacobian ``jac``.
_USES_JAC = {"LSODA", "Radau", "BDF"}
_EPS = np.finfo(float).eps
_log = logging.getLogger(__name__)
#: Seconds between two progress lines of a long integration (logger ``solvers.flows._integrate``,
#: INFO; the ``marginflow`` command shows them on stderr).
_LOG_INTERVAL = 10.0

#: ``method='auto'``: the largest state for which LSODA with a dense P×P Jacobian is used. Above
#: it, DOP853 (explicit, memory O(P)): fastest on non-stiff flows (1.5 s against BDF-Krylov's
#: 4.5 s at P = 500), and on a stiff flow its step budget stops it early with a hint to use
#: ``method='BDF-Krylov'`` (:class:`~solvers.flows._krylov.KrylovBDF`: scipy's BDF with a
#: Jacobian-free Newton–GMRES solve, memory O(P); 10.4 s against DOP853's 14.7 s at P = 2000 on
#: the derive instance, docs/benchmarks.md), which is not held to a step ~ 1/|λ_max|. Measured
#: on the generated deep-linear flow
#: (widths w^6, t = 200, rtol 1e-10, 2 shared cores, docs/benchmarks.md): LSODA 2.1 s vs DOP853
#: 7.3 s at P = 125, but 52 s vs 22 s at P = 500 and 188 s vs 32 s at P = 2000 (the Jacobian
#: evaluations and LU factors grow as P³).
DENSE_JACOBIAN_LIMIT = 256

#: Flows with at most this many state variables are integrated with one BLAS thread (their
#: right-hand sides multiply matrices too small for a second thread to pay; it spins instead:
#: 30 s against 6.6 s for ``derive deep-linear --widths 50,50,50,50,50,50``, P = 12,500, on 2
#: cores). The caller's own limits are restored afterwards.
SMALL_FLOW_BLAS_LIMIT = 100_000

#: Default step budget of :func:`integrate`. The flows of the catalogue take a few hundred to a
#: few ten thousand steps (log-time to t = 1e100 in a few hundred); an explicit method on a stiff
#: flow (eigenvalues 1e8...1) would need ~1e7 per unit time.
MAX_STEPS = 500_000
#: Steps between two projections of the number of steps still needed; an integration whose
#: projected total exceeds ``_PROJECTION_FACTOR * max_steps`` stops at once (an early transient
#: with small steps does not trigger it: the projection uses the last window only and must
#: exceed the budget several times over).
_WINDOW = 1000
_PROJECTION_FACTOR = 4
# (and only while the step size is not growing: the mean step of a window at most twice that
# of the window before; an implicit method leaving a fast transient doubles its step quickly)


class _NonFinite(Exception):
    def __init__(self, t: float, where: str):
        super().__init__(where)
        self.t = t
        self.where = where


def _check_rhs_output(out, n: int, t: float) -> np.ndarray:
    out = np.asarray(out, dtype=np.float64)
    if out.shape != (n,):
        raise ValueError(
            f"rhs(t, y) returned shape {out.shape} for a state of shape ({n},); "
            f"it must return the flat time derivative of shape ({n},)."
        )
    if not np.isfinite(out).all():
        raise _NonFinite(t, "rhs")
    return out


def _wrap_event(event, log_time: bool):
    def g(s, y):
        return float(event(float(np.expm1(s)) if log_time else s, y))

    terminal = getattr(event, "terminal", False)
    g.terminal = int(terminal) if not isinstance(terminal, bool) else (1 if terminal else 0)
    g.direction = float(getattr(event, "direction", 0.0))
    return g


def _failure_hint(method: str, log_time: bool) -> str:
    hints = []
    if method not in _IMPLICIT:
        hints.append("an implicit method (method='LSODA' or 'Radau') if the flow is stiff")
    else:
        hints.append("method='DOP853' if the flow is not stiff, or pass jac= for a stiff one")
    if not log_time:
        hints.append("log_time=True for horizons spanning many decades")
    hints.append("looser rtol/atol (the defaults are in solvers.tolerances.TOLERANCES)")
    hints.append("a shorter t_span to see where the flow breaks down")
    return "Try " + "; ".join(hints) + "."


def _choose_method(n: int, has_jac: bool) -> tuple[str, str]:
    """``method='auto'``: the scipy method for a state of size ``n``, and why (one sentence)."""
    if n <= DENSE_JACOBIAN_LIMIT:
        return "LSODA", (f"method='auto' chose LSODA (switches between stiff and non-stiff "
                         f"modes; P = {n} <= {DENSE_JACOBIAN_LIMIT}, so its dense P x P "
                         f"Jacobian{' (from jac)' if has_jac else ''} is affordable)")
    return "DOP853", (f"method='auto' chose DOP853 (explicit, memory O(P): P = {n} > "
                      f"{DENSE_JACOBIAN_LIMIT}, a dense P x P Jacobian would take "
                      f"{8 * n * n / 2**20:.1f} MiB; method='BDF-Krylov' for a stiff flow)")


def _budget_message(method: str, n_steps: int, t_now: float, t_end: float, h: float,
                    projected: float | None, max_steps: int, rtol: float, atol,
                    n: int = 0, auto: bool = False) -> str:
    what = (f"{method} stopped after {n_steps} steps at t = {t_now:.6g} of {t_end:.6g}, "
            f"mean step {h:.3g} over the last {_WINDOW}")
    if projected is None:
        what = what.replace(f"over the last {_WINDOW}", "so far")
    if projected is not None:
        what += (f": at that step size it would need about {projected:.2g} steps, more than "
                 f"{_PROJECTION_FACTOR} x max_steps={max_steps}")
    else:
        what += f" (max_steps={max_steps})"
    if method == "BDF-Krylov":
        hint = (f"Try a looser rtol/atol (now {rtol:g}/{np.max(atol):g}) or a shorter t_span; "
                "BDF-Krylov solves its Newton systems by GMRES (unpreconditioned unless "
                "preconditioner= is given), whose cost grows with the stiffness "
                "h |lambda_max|; method='DOP853' if the flow is not "
                "stiff, method='LSODA' with jac= if a dense P x P Jacobian fits in memory.")
    elif method not in _IMPLICIT and auto and n > DENSE_JACOBIAN_LIMIT:
        hint = ("The flow is likely stiff for an explicit method (its step is limited by "
                f"stability, not accuracy), and at P = {n} an implicit method would need a "
                f"dense P x P Jacobian ({8 * n * n / 2**20:.1f} MiB, several copies). Try "
                f"method='BDF-Krylov' (implicit, Jacobian-free, memory O(P)), a shorter "
                f"t_span, or a looser rtol/atol (now {rtol:g}/{np.max(atol):g}); "
                f"method='LSODA' with jac= if that memory is available.")
    elif method not in _IMPLICIT:
        hint = ("The flow is likely stiff for an explicit method (its step is limited by "
                "stability, not accuracy). Try method='Radau' or 'BDF' (or 'LSODA', which "
                f"switches by itself), or a looser rtol/atol (now {rtol:g}/{np.max(atol):g}).")
    else:
        hint = (f"Try a looser rtol/atol (now {rtol:g}/{np.max(atol):g}), check that rhs is "
                f"smooth (a kink stalls the step control), log_time=True for horizons over "
                f"many decades, or jac= for a stiff flow.")
    return f"{what}. {hint} Raise max_steps= if this run is expected to be that long."


def integrate(
    rhs: Callable,
    y0,
    t_span: Sequence[float],
    *,
    method: str = "LSODA",
    rtol: float | None = None,
    atol: float | np.ndarray | None = None,
    t_eval=None,
    log_time: bool = False,
    events: Callable | Sequence[Callable] | None = None,
    jac: Callable | None = None,
    blocks=None,
    throw: bool = True,
    max_step: float = np.inf,
    first_step: float | None = None,
    max_steps: int | None = MAX_STEPS,
    preconditioner: Callable | None = None,
) -> Trajectory:
    r"""Integrate ``ẏ = rhs(t, y)`` over ``t_span`` and return a :class:`Trajectory`.

    With ``log_time=True`` the integration variable is :math:`s = \log(1 + t)`:

    .. math::

        \frac{dy}{ds} = (1 + t)\, f(t, y), \qquad t = \operatorname{expm1}(s),

    so a flow whose interesting time scale grows geometrically (the :math:`O(1/\log t)` direction
    convergence of Soudry et al. 2018, Theorem 3) is resolved with a step count that grows only
    with :math:`\log t`; ``t = 1e100`` is reached in a few hundred steps. Times, ``t_eval`` and
    events are always in the original time ``t``.

    Parameters
    ----------
    rhs : callable ``rhs(t, y) -> ndarray (N,)``
        The right-hand side (a hand-written flow of :mod:`solvers.flows` or a bound compiled flow).
        If it has attributes ``blocks`` (ordered name -> shape) and ``jac``, they are used when the
        corresponding arguments are not given.
    y0 : array_like of shape (N,)
        Initial flat state.
    t_span : (float, float)
        ``(t0, t1)``; with ``log_time=True`` both must exceed ``-1``.
    method : {'LSODA', 'DOP853', 'Radau', 'BDF', 'RK45', 'RK23', 'BDF-Krylov', 'auto'}, keyword-only
        The scipy integrator. LSODA switches between stiff and non-stiff modes by itself.
        ``'BDF-Krylov'`` is scipy's BDF with a Jacobian-free Newton–Krylov solve (GMRES on
        finite-difference directional derivatives of ``rhs``; Brown & Hindmarsh 1986): implicit,
        never forms a P×P matrix, ignores ``jac``. ``'auto'`` picks by the state size P: LSODA
        (with ``jac``) when P <= :data:`DENSE_JACOBIAN_LIMIT` (256), else ``'DOP853'`` (whose step
        budget stops a stiff flow early and names ``'BDF-Krylov'``);
        the choice and its reason are appended to the trajectory's ``message``
        (``Trajectory.method`` names the method used).
    rtol, atol : float, optional
        Default ``TOLERANCES.ode_rtol`` (1e-10) and ``TOLERANCES.ode_atol`` (1e-12).
    t_eval : array_like of shape (T,), optional
        Report only these times (sorted in the direction of integration, inside ``t_span``),
        interpolated with the integrator's dense output. Default: every accepted step.
    log_time : bool
        Integrate in :math:`s = \log(1 + t)` as above.
    events : callable or list of callables ``event(t, y) -> float``, optional
        Zero crossings are located with Brent's method on the dense output. Attributes
        ``terminal`` (bool or count) and ``direction`` as in :func:`scipy.integrate.solve_ivp`.
    jac : callable ``jac(t, y) -> ndarray (N, N)``, optional
        Jacobian of ``rhs`` for LSODA, Radau and BDF (ignored by explicit ones and by
        ``'BDF-Krylov'``, which uses directional derivatives of ``rhs``).
    blocks : mapping name -> shape, optional
        The block layout of the state; default ``rhs.blocks`` or a single block ``"y"``.
    throw : bool
        If True (default) a failed integration raises :class:`IntegrationError`; if False it
        returns the partial trajectory with ``status`` ``"failed"`` or ``"non-finite"``.
    max_step, first_step : float, optional
        Passed to the scipy integrator (in ``s`` when ``log_time=True``).
    max_steps : int or None, keyword-only
        Step budget (default :data:`MAX_STEPS` = 500 000; ``None``: unlimited). The integration
        fails (status ``"failed"``, :class:`IntegrationError` with ``throw=True``) when it is used
        up, and at once when, every 1000 steps, the mean step of the last 1000 steps (if it
        is not growing: at most twice that of the 1000 before) projects a total above
        4 × ``max_steps``: an explicit method on a stiff flow then stops within seconds with a
        hint to use an implicit one, instead of running for minutes.
    preconditioner : callable ``preconditioner(t, y) -> apply(c, v)``, optional, keyword-only
        For ``'BDF-Krylov'`` only (ignored by the other methods, like ``jac``): an approximation
        of :math:`v \mapsto (I - cJ(t, y))^{-1} v` set up at each linearisation point, which
        right-preconditions GMRES (fewer Krylov iterations on stiff flows; the accuracy is
        unchanged). :func:`solvers.flows.layerwise_gauss_newton` builds the one for deep linear
        nets under the squared loss. Given in ``t``; the log-time scaling is applied here.

    Returns
    -------
    Trajectory
        ``times`` (T,), ``states`` (T, N), ``blocks``, ``status``, solver statistics.

    Raises
    ------
    ValueError, TypeError
        Bad arguments (unknown method, non-finite ``y0``, ``t_eval`` outside ``t_span``, ...).
    IntegrationError
        The integrator failed or the state became non-finite (only with ``throw=True``); the
        partial trajectory is attached as ``error.trajectory``.

    Examples
    --------
    >>> import numpy as np
    >>> traj = integrate(lambda t, y: -y, [1.0], (0.0, 1.0), t_eval=[1.0])
    >>> bool(abs(traj.states[-1, 0] - np.exp(-1.0)) < 1e-9)
    True
    """
    if not callable(rhs):
        raise TypeError(f"rhs must be callable as rhs(t, y); got {type(rhs).__name__}.")
    if max_steps is not None and (isinstance(max_steps, bool) or
                                  not isinstance(max_steps, int | np.integer) or max_steps < 1):
        raise ValueError(f"max_steps must be a positive integer or None (unlimited); got "
                         f"{max_steps!r}. The default is MAX_STEPS = {MAX_STEPS}.")
    if method != "auto" and method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)} or 'auto'; got {method!r}.")
    y0 = np.array(y0, dtype=np.float64).reshape(-1)
    if y0.size == 0:
        raise ValueError("y0 is empty; pass the flat initial state of shape (N,).")
    if not np.all(np.isfinite(y0)):
        raise ValueError("y0 contains NaN or inf; pass a finite initial state.")
    n = y0.size
    try:
        t0, t1 = (float(v) for v in t_span)
    except (TypeError, ValueError):
        raise ValueError(f"t_span must be a pair (t0, t1) of floats; got {t_span!r}.") from None
    if not (np.isfinite(t0) and np.isfinite(t1)) or t0 == t1:
        raise ValueError(f"t_span must hold two distinct finite times; got {t_span!r}.")
    if log_time and min(t0, t1) <= -1.0:
        raise ValueError(
            f"log_time=True integrates in s = log(1 + t), which needs t > -1; "
            f"got t_span={t_span!r}."
        )
    rtol = TOLERANCES.ode_rtol if rtol is None else float(rtol)
    atol = TOLERANCES.ode_atol if atol is None else atol
    if not rtol > 0:
        raise ValueError(f"rtol must be positive; got {rtol!r}.")
    if np.any(np.asarray(atol) < 0):
        raise ValueError(f"atol must be non-negative; got {atol!r}.")
    if blocks is None:
        blocks = getattr(rhs, "blocks", None)
    blocks = normalise_blocks(blocks, n)
    if jac is None:
        jac = getattr(rhs, "jac", None)
    if jac is not None and not callable(jac):
        raise TypeError(f"jac must be callable as jac(t, y); got {type(jac).__name__}.")
    if preconditioner is not None and not callable(preconditioner):
        raise TypeError(f"preconditioner must be callable as preconditioner(t, y) -> "
                        f"apply(c, v); got {type(preconditioner).__name__}.")
    auto = method == "auto"
    choice = ""
    if auto:
        method, choice = _choose_method(n, jac is not None)
    if events is None:
        events = []
    elif callable(events):
        events = [events]
    else:
        events = list(events)
    sign = 1.0 if t1 > t0 else -1.0

    # --- change of variable -------------------------------------------------------------------
    if log_time:
        s0, s1 = float(np.log1p(t0)), float(np.log1p(t1))

        def fun(s, y):
            t = float(np.expm1(s))
            return np.exp(s) * _check_rhs_output(rhs(t, y), n, t)

        jac_s = None
        if jac is not None:
            def jac_s(s, y):
                return np.exp(s) * np.asarray(jac(float(np.expm1(s)), y), dtype=np.float64)
    else:
        s0, s1 = t0, t1

        def fun(s, y):
            return _check_rhs_output(rhs(s, y), n, s)

        jac_s = jac

    if t_eval is not None:
        t_eval = np.asarray(t_eval, dtype=np.float64).reshape(-1)
        lo, hi = min(t0, t1), max(t0, t1)
        if t_eval.size and (t_eval.min() < lo or t_eval.max() > hi):
            raise ValueError(
                f"t_eval must lie inside t_span={t_span!r}; got values in "
                f"[{t_eval.min():g}, {t_eval.max():g}]. Clip it to t_span."
            )
        if np.any(sign * np.diff(t_eval) < 0):
            raise ValueError("t_eval must be sorted in the direction of integration; sort it.")
        s_eval = np.log1p(t_eval) if log_time else t_eval
    wrapped = [_wrap_event(e, log_time) for e in events]

    # --- step loop ----------------------------------------------------------------------------
    kwargs = dict(rtol=rtol, atol=atol, max_step=max_step)
    if first_step is not None:
        kwargs["first_step"] = first_step
    if method in _USES_JAC and jac_s is not None:
        kwargs["jac"] = jac_s
    if method == "BDF-Krylov" and preconditioner is not None:
        if log_time:
            # dy/ds = e^s f(t, y): I - c J_s = I - (c e^s) J_t
            def precond_s(s, y):
                apply = preconditioner(float(np.expm1(s)), y)
                scale = float(np.exp(s))
                return lambda c, v: apply(c * scale, v)

            kwargs["preconditioner"] = precond_s
        else:
            kwargs["preconditioner"] = preconditioner
    out_t: list[float] = []
    out_y: list[np.ndarray] = []
    ev_t: list[list[float]] = [[] for _ in wrapped]
    ev_y: list[list[np.ndarray]] = [[] for _ in wrapped]
    ev_left = [g.terminal for g in wrapped]
    status, message = "success", "reached the end of t_span"
    t_user = (lambda s: float(np.expm1(s))) if log_time else float
    start = time.perf_counter()
    solver = None
    eval_pos = 0
    n_steps = 0
    # the right-hand sides of flows of this size multiply small matrices, where a second BLAS
    # thread only spins: derive deep-linear 50^6 (P = 12,500) took 30 s with OpenBLAS's default
    # threads against 6.6 s with one (2026-11-29, 2 cores). Above the limit, BLAS is left alone.
    blas_limit = (threadpool_limits(limits=1, user_api="blas") if n <= SMALL_FLOW_BLAS_LIMIT
                  else None)
    try:
        if t_eval is None:
            out_t.append(t0)
            out_y.append(y0.copy())
        else:
            while eval_pos < t_eval.size and s_eval[eval_pos] == s0:
                out_t.append(float(t_eval[eval_pos]))
                out_y.append(y0.copy())
                eval_pos += 1
        solver = METHODS[method](fun, s0, y0, s1, **kwargs)
        s_mark, h_prev = s0, np.inf
        last_log = start
        g_old = [g(s0, y0) for g in wrapped]
        while solver.status == "running":
            step_msg = solver.step()
            if solver.status == "failed":
                status = "failed"
                message = (f"{method} failed at t = {t_user(solver.t):.6g}: {step_msg}. "
                           + _failure_hint(method, log_time))
                break
            if not np.isfinite(solver.y).all():
                raise _NonFinite(solver.t, "state")
            n_steps += 1
            s_old, s_new = solver.t_old, solver.t
            dense = None
            stop_at = None
            if wrapped:
                g_new = [g(s_new, solver.y) for g in wrapped]
                dense = solver.dense_output()
                hits = []
                for i, g in enumerate(wrapped):
                    a, b = g_old[i], g_new[i]
                    up = a <= 0 <= b and a != b
                    down = a >= 0 >= b and a != b
                    fired = (up and g.direction >= 0) or (down and g.direction <= 0)
                    if fired:
                        root = brentq(lambda s, g=g, dense=dense: g(s, dense(s)), s_old, s_new,
                                      xtol=4 * _EPS, rtol=4 * _EPS)
                        hits.append((sign * root, i, root))
                for _, i, root in sorted(hits):
                    if stop_at is not None:
                        break
                    ev_t[i].append(t_user(root))
                    ev_y[i].append(dense(root))
                    if wrapped[i].terminal:
                        ev_left[i] -= 1
                        if ev_left[i] == 0:
                            stop_at = root
                g_old = g_new
            s_hi = s_new if stop_at is None else stop_at
            if t_eval is None:
                if stop_at is None:
                    out_t.append(t_user(s_new))
                    out_y.append(solver.y.copy())
                else:
                    out_t.append(t_user(stop_at))
                    out_y.append(dense(stop_at))
            else:
                j = eval_pos
                while j < t_eval.size and sign * (s_eval[j] - s_hi) <= 0:
                    j += 1
                if j > eval_pos:
                    if dense is None:
                        dense = solver.dense_output()
                    ys = dense(s_eval[eval_pos:j]) if j - eval_pos > 1 else \
                        dense(s_eval[eval_pos]).reshape(n, 1)
                    for k in range(eval_pos, j):
                        out_t.append(float(t_eval[k]))
                        out_y.append(np.asarray(ys[:, k - eval_pos], dtype=np.float64))
                    eval_pos = j
            if stop_at is not None:
                status, message = "event", f"a terminal event fired at t = {t_user(stop_at):.6g}"
                break
            if n_steps % 100 == 0 and time.perf_counter() - last_log > _LOG_INTERVAL:
                last_log = time.perf_counter()
                _log.info("integrate: %s at t = %.6g of %.6g after %d steps, %.0f s", method,
                          t_user(solver.t), t1, n_steps, last_log - start)
            if max_steps is not None and solver.status == "running":
                if n_steps % _WINDOW == 0:
                    h = abs(solver.t - s_mark) / _WINDOW
                    s_mark = solver.t
                    projected = n_steps + abs(s1 - solver.t) / max(h, _EPS * abs(solver.t))
                    growing = h > 2.0 * h_prev  # a transient: steps still growing fast
                    h_prev = h
                    if (n_steps >= 2 * _WINDOW and not growing
                            and projected > _PROJECTION_FACTOR * max_steps):
                        status = "failed"
                        message = _budget_message(method, n_steps, t_user(solver.t), t1,
                                                  h, projected, max_steps, rtol, atol, n, auto)
                        break
                if n_steps >= max_steps:
                    h = abs(solver.t - s0) / n_steps
                    status = "failed"
                    message = _budget_message(method, n_steps, t_user(solver.t), t1, h, None,
                                              max_steps, rtol, atol, n, auto)
                    break
    except _NonFinite as exc:
        status = "non-finite"
        message = (
            f"the {'right-hand side' if exc.where == 'rhs' else 'state'} became NaN/inf at "
            f"t = {t_user(exc.t):.6g} (the flow may blow up in finite time, e.g. a deep net from a "
            f"large initialisation, or overflow). " + _failure_hint(method, log_time)
        )
    finally:
        if blas_limit is not None:
            blas_limit.restore_original_limits()
    wall = time.perf_counter() - start
    if choice:
        message = f"{message} [{choice}]"
    states = np.array(out_y, dtype=np.float64).reshape(-1, n)
    traj = Trajectory(
        times=np.array(out_t, dtype=np.float64), states=states, blocks=blocks, status=status,
        message=message, method=method, log_time=bool(log_time), rtol=rtol,
        atol=float(np.max(atol)),
        nfev=int(getattr(solver, "nfev", 0)), njev=int(getattr(solver, "njev", 0)),
        nlu=int(getattr(solver, "nlu", 0)), n_steps=n_steps, wall_time=wall,
        t_events=tuple(np.array(t) for t in ev_t),
        y_events=tuple(np.array(y).reshape(-1, n) for y in ev_y),
    )
    if not traj.ok and throw:
        raise IntegrationError(f"integration failed ({status}): {message}", trajectory=traj)
    return traj
