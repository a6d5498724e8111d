"""Training loops for homogeneous networks on classification data (docs/theory.md §6, §7, §8).

Methods (``method=``), each a discretisation of a flow the theory studies:

``'gd'``
    Gradient descent ``θ ← θ − η_k ∇𝓛`` (Lyu & Li 2019; Soudry et al. 2018 for ``L = 1``).
``'normalized_gd'``
    ``θ ← θ − η ∇𝓛 / ||∇𝓛||_2``: fixed Euclidean step length ``η`` (``η_k = η/||∇𝓛||_2``).
``'sign'``
    Steepest descent w.r.t. ``ℓ∞``: ``θ ← θ − η_k ||∇𝓛||_1 sign(∇𝓛)`` (Gunasekar et al. 2018;
    Tsilivis, Vardi & Kempe 2024).
``'coordinate'``
    Steepest descent w.r.t. ``ℓ1`` (greedy coordinate descent): only the coordinate
    ``j = argmax_j |∂_j 𝓛|`` moves, ``θ_j ← θ_j − η_k ∂_j 𝓛``.
``'minnorm'``
    Minnorm training (Bansal, Advani, Cox & Saxe 2018; docs/theory.md §8): explicit Euler steps of
    the
    primal–dual flow of ``min ½||θ||² s.t. q_i(θ) ≥ 1``,
    ``θ ← θ + η(−β θ + Σ_i λ_i y_i ∇f_i)``, ``λ ← max(0, λ + η α (1 − q))`` (projected).

Loss-based adaptive step (``adaptive=True``, methods ``gd``, ``sign``, ``coordinate``):
``η_k = s_k / 𝓛(θ_k)``. Dividing by the loss makes the step scale-free in the late phase, where
``∇𝓛 ∝ 𝓛`` — the "normalised GD" of Nacson, Lee, Gunasekar, Savarese, Srebro & Soudry 2019
("Convergence of gradient descent on separable data", AISTATS, analysed there for linear models),
used for homogeneous networks in the experiments of Lyu & Li 2019 (§6, "loss-based learning rate
scheduling"; theirs also adapts the factor). With ``backtrack=True`` a step that does not decrease
``𝓛`` is rejected and ``s_k`` halved; after an accepted step ``s_k`` grows by ``lr_growth`` back
towards ``lr`` (never above it), so with small enough ``lr`` this is exactly ``η_k = lr/𝓛``.
The factor ``η_k ∇𝓛 = s_k e^{log_scale − log 𝓛} Σ_i w_i y_i ∇f_i`` is formed in the log domain
(:func:`solvers.losses.loss_weights`), so training proceeds normally when ``𝓛 ≪ 1e-300``.
Without ``adaptive`` the step is ``η_k = lr`` (and ``∇𝓛`` underflows to 0 once ``𝓛 < 1e-308``, as
plain gradient descent in float64 would).

Roll-back schedule (``adaptive='rollback'``; Lyu & Li 2019, §6 and App. L "loss-based learning
rate scheduling"): ``η_k = s_k 𝓛(θ_0)/𝓛(θ_k)`` with ``s_0 = lr``; after an accepted step (the loss
strictly decreased) ``s_k`` is multiplied by ``lr_growth`` with **no cap**, and a step that does
not decrease the loss is rolled back (never taken) and ``s_k`` divided by ``lr_shrink``. The
recorded loss is therefore strictly decreasing, and the step keeps growing as long as it can,
which is what lets a run reach the KKT regime (issue 11: ``lr/𝓛`` capped at ``lr`` plateaus).

Curvature-matched variant (``adaptive='loss_norm'``): ``η_k = s_k / (𝓛(θ_k) ρ_k^{2L−2})``,
``ρ = ||θ||_2``. For ``L ≥ 2`` the Hessian of ``𝓛`` at a degree-``L`` homogeneous ``θ`` scales like
``𝓛 ρ^{2L−2}`` (``q ~ ρ^L``), so ``lr/𝓛`` alone keeps the *relative* step ``||Δθ||/ρ`` constant:
``ρ`` then grows geometrically in the step count and the iterates eventually oscillate between
supports (seen as rejected steps, and a KKT residual that plateaus). Dividing by ``ρ^{2L−2}``
keeps the step below the curvature scale; since ``ρ^{2L−2} ≍ (log 1/𝓛)^{2−2/L}`` late in training
this is a step of the form ``1/(𝓛 · polylog(1/𝓛))`` as in the gradient-descent analysis of Lyu &
Li 2019 (Appendix E; their exact exponent and constants differ — this is a heuristic, not their
schedule). For ``L = 1`` both rules coincide.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .._progress import progress as _progress
from .._validation import check_labels
from ..errors import IntegrationError, MarginflowError
from ..losses import inverse_loss, log_loss, loss_weights
from ._margins import check_class_labels, class_margins, multiclass_log_loss
from ._network import HomogeneousMLP

__all__ = ["TRAINING_METHODS", "History", "TrainingResult", "train"]

log = logging.getLogger(__name__)

TRAINING_METHODS = ("gd", "normalized_gd", "sign", "coordinate", "minnorm")
_ALG_NORM = {"gd": 2.0, "normalized_gd": 2.0, "sign": np.inf, "coordinate": 1.0, "minnorm": 2.0}
_MAX_BACKTRACKS = 60


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()] if v.ndim else _jsonable(v.item())
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    return v


@dataclass(frozen=True)
class History:
    """Quantities recorded every ``record_every`` steps (and at the first and last step).

    All arrays have shape ``(m,)`` (``m`` records) unless stated.

    Attributes
    ----------
    step : ndarray of int
        Iteration index of the record (0 = initial network).
    log_time : ndarray
        ``log Σ_{j<k} η_j``, the log of the gradient-flow time reached (``-inf`` at step 0). For
        ``sign``/``coordinate`` it is the time of the steepest-descent flow ``θ̇ = −||∇𝓛||_* u*``.
    log_lr : ndarray
        ``log η_k`` of the step taken *from* this record (``nan`` at the last record).
    log_loss : ndarray
        ``log 𝓛(θ_k)`` (sum over examples).
    q_min : ndarray
    normalized_margin : ndarray
        ``q_min / ||θ||_p^L`` in the algorithm's norm ``p`` (:attr:`norm`).
    normalized_margin_l2 : ndarray
        ``q_min / ρ^L``, ``ρ = ||θ||_2``.
    smoothed_margin : ndarray
        ``ℓ^{-1}(𝓛) / ρ^L`` (Lyu & Li 2019).
    smoothed_margin_alg : ndarray
        ``ℓ^{-1}(𝓛) / ||θ||_p^L`` in the algorithm's norm.
    rho : ndarray
        ``||θ||_2``.
    layer_norms : ndarray of shape (m, L)
        Frobenius norms of ``W_1..W_L``.
    kkt_residual : ndarray
        ``kkt_fn(net)`` at the records where it was evaluated, ``nan`` elsewhere (all ``nan`` if
        no ``kkt_fn``; ``nan`` too where ``kkt_fn`` raised a :class:`MarginflowError`, e.g. a
        misclassified point).
    norm : float
        The algorithm's norm ``p`` (2 for gd/normalized_gd/minnorm, ``inf`` for sign, 1 for
        coordinate).
    loss : str
    """

    step: np.ndarray
    log_time: np.ndarray
    log_lr: np.ndarray
    log_loss: np.ndarray
    q_min: np.ndarray
    normalized_margin: np.ndarray
    normalized_margin_l2: np.ndarray
    smoothed_margin: np.ndarray
    smoothed_margin_alg: np.ndarray
    rho: np.ndarray
    layer_norms: np.ndarray
    kkt_residual: np.ndarray
    norm: float
    loss: str

    def __len__(self) -> int:
        return int(self.step.shape[0])

    @property
    def time(self) -> np.ndarray:
        """``Σ_{j<k} η_j`` (may overflow to ``inf`` with the adaptive step: use ``log_time``)."""
        with np.errstate(over="ignore"):
            return np.exp(self.log_time)

    def to_dict(self) -> dict:
        """JSON-serialisable dict (lists; non-finite floats as the strings 'nan', 'inf', '-inf')."""
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class TrainingResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    net : HomogeneousMLP
        The network after the last accepted step.
    history : History
    method, loss : str
    steps : int
        Number of accepted steps.
    n_rejected : int
        Steps rejected by backtracking (loss did not decrease).
    multipliers : ndarray of shape (n,) or None
        Final ``λ`` of ``minnorm`` (None for the other methods).
    status : str
        ``'completed'``; ``'stationary: ...'`` when the loss gradient vanished (e.g. all units
        dead); ``'stalled: ...'`` when backtracking could not decrease the loss (also warned).
    """

    net: HomogeneousMLP
    history: History
    method: str
    loss: str
    steps: int
    n_rejected: int
    status: str
    multipliers: np.ndarray | None = field(default=None)

    def to_dict(self) -> dict:
        """JSON-serialisable dict (the network as :meth:`HomogeneousMLP.to_dict`)."""
        return {"net": self.net.to_dict(), "history": self.history.to_dict(),
                "method": self.method, "loss": self.loss, "steps": self.steps,
                "n_rejected": self.n_rejected, "status": self.status,
                "multipliers": None if self.multipliers is None else self.multipliers.tolist()}


class _Recorder:
    def __init__(self, norm: float, loss: str, L: int):
        self.norm, self.loss, self.L = norm, loss, L
        self.rows: dict[str, list] = {k: [] for k in (
            "step", "log_time", "log_lr", "log_loss", "q_min", "normalized_margin",
            "normalized_margin_l2", "smoothed_margin", "smoothed_margin_alg", "rho",
            "layer_norms", "kkt_residual")}

    def add(self, k, log_time, net, q, lL, kkt):
        theta = net.flat()
        rho = float(np.linalg.norm(theta))
        pn = float(np.linalg.norm(theta, ord=self.norm))
        qmin = float(q.min())
        inv = inverse_loss(lL, self.loss)
        L = self.L

        def scaled(v, nrm):
            return float(v * np.exp(-L * np.log(nrm))) if nrm > 0 else float("nan")

        r = self.rows
        r["step"].append(k)
        r["log_time"].append(log_time)
        r["log_lr"].append(float("nan"))
        r["log_loss"].append(lL)
        r["q_min"].append(qmin)
        r["normalized_margin"].append(scaled(qmin, pn))
        r["normalized_margin_l2"].append(scaled(qmin, rho))
        r["smoothed_margin"].append(scaled(inv, rho))
        r["smoothed_margin_alg"].append(scaled(inv, pn))
        r["rho"].append(rho)
        r["layer_norms"].append([float(np.linalg.norm(W)) for W in net.weights])
        r["kkt_residual"].append(kkt)

    def set_lr(self, log_eta):
        if self.rows["log_lr"]:
            self.rows["log_lr"][-1] = float(log_eta)

    def history(self) -> History:
        r = self.rows
        arrays = {k: np.asarray(v, dtype=np.int64 if k == "step" else np.float64)
                  for k, v in r.items()}
        return History(**arrays, norm=self.norm, loss=self.loss)


def _evaluate(net: HomogeneousMLP, X, y, loss, k=0, rec=None):
    with np.errstate(over="ignore", invalid="ignore"):
        hs, zs = net.forward_pass(X, validate=False)
        f = (hs[-1] @ net.weights[-1].T)[:, 0]
    if net.n_outputs > 1:  # class-index labels: pairwise margins Q (n, K), q = min_j Q
        with np.errstate(over="ignore", invalid="ignore"):
            Q = class_margins(hs[-1] @ net.weights[-1].T, y)
        q = Q.min(axis=1)
        if not np.all(np.isfinite(q)):
            raise IntegrationError(
                f"training diverged at step {k}: the network outputs overflowed. Lower lr (or "
                f"keep backtrack=True / adaptive=True).",
                trajectory=None if rec is None else rec.history())
        return hs, zs, Q, multiclass_log_loss(Q, loss)
    q = y * f
    if not np.all(np.isfinite(q)):
        raise IntegrationError(
            f"training diverged at step {k}: the network outputs overflowed. Lower lr (or keep "
            f"backtrack=True / adaptive=True).", trajectory=None if rec is None else rec.history())
    return hs, zs, q, log_loss(q, loss)


def train(net: HomogeneousMLP, X, y, *, method: str = "gd", loss: str = "exp", steps: int = 1000,
          lr: float = 0.1, adaptive: bool | str | None = None, backtrack: bool = True,
          lr_growth: float = 1.1, lr_shrink: float = 2.0, record_every: int = 10,
          kkt_every: int | None = None,
          kkt_fn: Callable[[HomogeneousMLP], float] | None = None,
          minnorm_beta: float = 1.0, minnorm_alpha: float = 1.0,
          seed: int | None = None, rng: np.random.Generator | None = None,
          progress: bool | None = None) -> TrainingResult:
    """Train a homogeneous network on ±1 labels (class indices for ``K > 1`` outputs) and record
    the Lyu & Li quantities.

    Parameters
    ----------
    net : HomogeneousMLP
        Initial network (not modified).
    X : array_like of shape (n, d_0)
    y : array_like of shape (n,), labels ±1
        For a net with ``K > 1`` outputs: class indices ``0…K−1``; the loss is then the
        cross-entropy (``'logistic'``) or the multi-class exponential loss (``'exp'``) of the
        margins ``f_{y_n} − f_j`` (:func:`solvers.nets.multiclass_log_loss`), and the recorded
        margins are Lyu & Li's ``q_n = f_{y_n} − max_{j≠y_n} f_j``.
    method : {'gd', 'normalized_gd', 'sign', 'coordinate', 'minnorm'}
        See the module docstring.
    loss : {'exp', 'logistic'}
        Classification loss, summed over examples.
    steps : int
        Number of accepted steps.
    lr : float
        Base step: ``η`` (fixed), the factor ``s_0`` of ``η_k = s_k/𝓛`` (adaptive), the step
        length (normalized_gd) or the Euler step of the primal–dual flow (minnorm).
    adaptive : bool or {'loss', 'loss_norm', 'rollback'}, optional
        ``True`` or ``'loss'``: ``η_k = s_k / 𝓛(θ_k)``; ``'loss_norm'``:
        ``η_k = s_k / (𝓛 ρ^{2L−2})`` (stabler for long runs with ``L ≥ 2``, see the module
        docstring); ``'rollback'``: Lyu & Li's ``η_k = s_k 𝓛(θ_0)/𝓛(θ_k)`` with ``s_k`` grown by
        ``lr_growth`` (uncapped) on success and rolled back and divided by ``lr_shrink`` on a
        loss increase (needs ``backtrack=True``); ``False``: ``η_k = lr``.
        Default: ``'loss'`` for gd, sign and coordinate; it does not apply to normalized_gd and
        minnorm (passing a true value there is an error).
    backtrack : bool
        Reject a step that does not decrease ``𝓛`` and halve the step factor (not for minnorm).
    lr_growth : float
        After each accepted step the factor ``s_k`` is multiplied by this, capped at ``lr``
        (``>= 1``): it recovers after backtracking. Irrelevant when no step is rejected.
        With ``adaptive='rollback'`` the factor is not capped.
    lr_shrink : float
        ``adaptive='rollback'`` only: divisor of ``s_k`` after a rolled-back step (``> 1``;
        other modes halve).
    record_every : int
        Record the history every this many steps (and at the first and last step).
    kkt_every : int, optional
        Evaluate ``kkt_fn(net)`` at records whose step is a multiple of ``kkt_every``.
    kkt_fn : callable, optional
        ``net -> float``, e.g. ``lambda net: check_kkt(net, X, y).epsilon`` (training never imports
        the KKT checker itself).
    minnorm_beta, minnorm_alpha : float
        ``β`` (weight of ``−βθ``) and ``α`` (dual step factor) of the minnorm flow.
    seed, rng
        Randomness (only used to break ties in coordinate descent; first index when neither given).
    progress : bool, optional
        Show a progress bar (default: only on a terminal).

    Returns
    -------
    TrainingResult

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named).
    IntegrationError
        The parameters became non-finite (step too large); ``trajectory`` holds the partial
        :class:`History` for diagnosis.

    References
    ----------
    Lyu & Li 2019 (ICLR 2020), Theorem 4.1 (smoothed margin monotone along GD/GF); Nacson et al.
    2019 (loss-normalised step); Gunasekar et al. 2018 and Tsilivis, Vardi & Kempe 2024 (steepest
    descent); Bansal et al. 2018 (Minnorm).
    """
    if not isinstance(net, HomogeneousMLP):
        raise TypeError(f"net must be a HomogeneousMLP; got {type(net).__name__}.")
    if method not in TRAINING_METHODS:
        raise ValueError(f"method must be one of {TRAINING_METHODS}; got {method!r}.")
    X = net._check_input(X)
    n = X.shape[0]
    multi = net.n_outputs > 1
    y = check_class_labels(y, n, net.n_outputs) if multi else check_labels(y, n)
    if multi and method == "minnorm":
        raise ValueError("method='minnorm' needs a one-output net with ±1 labels; got a net with "
                         f"K={net.n_outputs} outputs. Use method='gd'.")
    log_loss(np.zeros(1), loss)  # validates the loss name
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0; got {steps}.")
    lr = float(lr)
    if not (lr > 0.0 and np.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite float; got {lr!r}.")
    if adaptive is None:
        adaptive = "loss" if method in ("gd", "sign", "coordinate") else False
    if adaptive is True:
        adaptive = "loss"
    if adaptive not in (False, "loss", "loss_norm", "rollback"):
        raise ValueError(
            f"adaptive must be True, False, 'loss', 'loss_norm' or 'rollback'; got {adaptive!r}."
        )
    if adaptive == "rollback" and not backtrack:
        raise ValueError("adaptive='rollback' rolls back loss increases, so it needs "
                         "backtrack=True; got backtrack=False.")
    if not (float(lr_shrink) > 1.0):
        raise ValueError(f"lr_shrink must be > 1; got {lr_shrink!r}.")
    if adaptive and method in ("normalized_gd", "minnorm"):
        raise ValueError(
            f"adaptive={adaptive!r} does not apply to method={method!r} (its step is already "
            f"{'a fixed length' if method == 'normalized_gd' else 'the Euler step of the flow'}); "
            f"leave adaptive=None."
        )
    if not (float(lr_growth) >= 1.0):
        raise ValueError(f"lr_growth must be >= 1; got {lr_growth!r}.")
    record_every = int(record_every)
    if record_every < 1:
        raise ValueError(f"record_every must be a positive int; got {record_every}.")
    if kkt_every is not None:
        kkt_every = int(kkt_every)
        if kkt_every < 1:
            raise ValueError(f"kkt_every must be a positive int; got {kkt_every}.")
        if kkt_fn is None:
            raise ValueError("kkt_every was given without kkt_fn; pass kkt_fn=lambda net: ...")
    if kkt_fn is not None and not callable(kkt_fn):
        raise TypeError(f"kkt_fn must be callable net -> float; got {type(kkt_fn).__name__}.")
    if rng is not None and seed is not None:
        raise ValueError("pass either rng or seed, not both.")
    gen = rng if rng is not None else (np.random.default_rng(seed) if seed is not None else None)
    backtrack = bool(backtrack) and method != "minnorm"

    norm = _ALG_NORM[method]
    rec = _Recorder(norm, loss, net.degree)

    def kkt_value(k, cur):
        if kkt_fn is None or kkt_every is None or k % kkt_every:
            return float("nan")
        try:
            return float(kkt_fn(cur))
        except MarginflowError as exc:
            log.info("kkt_fn raised at step %d: %s", k, exc)
            return float("nan")

    cur = net
    hs, zs, q, lL = _evaluate(cur, X, y, loss)  # q is the (n, K) pairwise Q when multi-class
    lL0 = lL  # log 𝓛(θ_0), the reference of the roll-back schedule
    log_time = -np.inf
    factor = lr  # s_k
    lam = np.zeros(n) if method == "minnorm" else None
    status = "completed"
    n_rejected = 0
    k = 0
    rec.add(0, log_time, cur, _qmin_rows(q), lL, kkt_value(0, cur))
    bar = _progress(range(steps), total=steps, desc=f"train[{method}]", enabled=progress)
    try:
        for _ in bar:
            theta = cur.flat()
            if method == "minnorm":
                g = cur._vjp_from(hs, zs, lam * y)
                new_theta = theta + lr * (-minnorm_beta * theta + g)
                new_lam = np.maximum(0.0, lam + lr * minnorm_alpha * (1.0 - q))
                log_eta = np.log(lr)
                trial = _finite_net(cur, new_theta, k, rec)
                hs, zs, q, lL = _evaluate(trial, X, y, loss, k, rec)
                cur, lam = trial, new_lam
            else:
                if multi:
                    w, log_scale = _multiclass_weights(q, y, loss)
                    gdir = -cur._vjp_from(hs, zs, w)  # w: (n, K) output cotangents
                else:
                    w, log_scale = loss_weights(q, loss)
                    gdir = -cur._vjp_from(hs, zs, w * y)  # ∇𝓛 = exp(log_scale) · gdir
                gnorm = float(np.linalg.norm(gdir))
                if gnorm == 0.0 or not np.isfinite(log_scale):
                    status = f"stationary: the loss gradient vanished at step {k}"
                    break
                step_dir = _direction(method, gdir, gnorm, gen)
                accepted = False
                for _bt in range(_MAX_BACKTRACKS):
                    if method == "normalized_gd":
                        log_eta = np.log(factor) - log_scale - np.log(gnorm)
                        delta = factor * step_dir
                    else:
                        log_eta = np.log(factor) - (lL if adaptive else 0.0)
                        if adaptive == "rollback":
                            log_eta += lL0
                        if adaptive == "loss_norm" and cur.degree > 1:
                            log_eta -= (2 * cur.degree - 2) * np.log(np.linalg.norm(theta))
                        # η_k ||∇𝓛||_* u* = exp(log η_k + log_scale) · (||gdir||_* u*)
                        delta = np.exp(log_eta + log_scale) * step_dir
                    trial = _finite_net(cur, theta - delta, k, rec)
                    t_hs, t_zs, t_q, t_lL = _evaluate(trial, X, y, loss, k, rec)
                    if not backtrack or t_lL < lL:
                        accepted = True
                        break
                    n_rejected += 1
                    factor /= float(lr_shrink) if adaptive == "rollback" else 2.0
                if not accepted:
                    status = (f"stalled: {_MAX_BACKTRACKS} halvings of the step could not decrease "
                              f"the loss at step {k} (log 𝓛 = {lL:.6g}): the iterate sits at a "
                              f"kink of the ReLU (a nonsmooth point where the chosen derivative "
                              f"is not a descent direction) or the loss is at float64 resolution; "
                              f"retry with backtrack=False or a smaller lr")
                    warnings.warn(status, RuntimeWarning, stacklevel=2)
                    break
                cur, hs, zs, q, lL = trial, t_hs, t_zs, t_q, t_lL
                factor = factor * float(lr_growth) if adaptive == "rollback" else \
                    min(lr, factor * float(lr_growth))
            rec.set_lr(log_eta)
            log_time = float(np.logaddexp(log_time, log_eta))
            k += 1
            if k % record_every == 0 or k == steps:
                rec.add(k, log_time, cur, _qmin_rows(q), lL, kkt_value(k, cur))
    finally:
        if hasattr(bar, "close"):
            bar.close()
    if rec.rows["step"][-1] != k:
        rec.add(k, log_time, cur, _qmin_rows(q), lL, kkt_value(k, cur))
    return TrainingResult(net=cur, history=rec.history(), method=method, loss=loss, steps=k,
                          n_rejected=n_rejected, status=status,
                          multipliers=None if lam is None else lam.copy())


def _qmin_rows(q):
    """Per-example margins from ``q`` (``(n,)``) or the pairwise ``Q`` (``(n, K)``)."""
    return q.min(axis=1) if q.ndim == 2 else q


def _multiclass_weights(Q, y, loss):
    """Output cotangents ``(n, K)`` of ``−∇𝓛`` normalised, and the log of their scale.

    ``−∂𝓛/∂q_{nj}``: ``e^{−q_{nj}} / (1 + Σ_k e^{−q_{nk}})`` (cross-entropy) or ``e^{−q_{nj}}``
    (exp), in the log domain; ``q_{nj} = (e_{y_n} − e_j)ᵀ f(x_n)`` gives the cotangent
    ``u_n = Σ_j w_{nj} (e_{y_n} − e_j)``.
    """
    from scipy.special import logsumexp

    lw = -Q  # −inf at the label
    if loss == "logistic":
        lw = lw - np.logaddexp(0.0, logsumexp(-Q, axis=1))[:, None]
    log_scale = float(logsumexp(lw))
    w = np.exp(lw - log_scale)
    U = -w
    rows = np.arange(Q.shape[0])
    U[rows, y] = w.sum(axis=1)
    return U, log_scale


def _direction(method, gdir, gnorm, gen):
    """``||g||_* u*`` for the method (up to the positive factor ``exp(log_scale)``)."""
    if method == "gd":
        return gdir
    if method == "normalized_gd":
        return gdir / gnorm
    if method == "sign":
        return np.abs(gdir).sum() * np.sign(gdir)
    # coordinate: steepest w.r.t. ℓ1 → move the largest |g_j| only, by η g_j
    a = np.abs(gdir)
    top = np.flatnonzero(a == a.max())
    j = int(top[0] if gen is None or top.size == 1 else gen.choice(top))
    d = np.zeros_like(gdir)
    d[j] = gdir[j]
    return d


def _finite_net(cur: HomogeneousMLP, theta: np.ndarray, k: int, rec: _Recorder) -> HomogeneousMLP:
    if not np.all(np.isfinite(theta)):
        raise IntegrationError(
            f"training diverged at step {k}: the parameters became non-finite. Lower lr "
            f"(or keep backtrack=True / adaptive=True).", trajectory=rec.history())
    return cur.with_flat(theta)
