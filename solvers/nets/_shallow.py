"""Shallow networks trained with all layers by gradient descent on the squared loss, the
Polyak–Łojasiewicz constant along the path, and the minimal width at which training succeeds
(the width experiments of Song et al. 2021).

The network is

.. math::

    f(x) = \\sum_{j=1}^{m} a_j \\, \\sigma(\\langle w_j, x \\rangle),

with ``W`` of shape ``(m, d)`` (row ``j`` is ``w_j``) and ``a`` of shape ``(m,)``, standard
initialisation (He for ``W``: ``N(0, 2/d)``; LeCun for ``a``: ``N(0, 1/m)``), activation
``σ ∈ {relu, gelu}`` and the mean squared loss ``𝓛 = (1/2n) Σ_i (f(x_i) − y_i)²``
(docs/theory.md §0). Both layers are trained by plain full-batch gradient descent with a constant
step
``η = 1 / (safety · λ_max(J Jᵀ) / n)`` fixed at initialisation, so no step is tuned per width.

The PL inequality ``||∇𝓛||² ≥ 2 μ 𝓛`` holds at every point with ``μ = λ_min(J Jᵀ) / n``
(``J`` the ``(n, P)`` Jacobian of the outputs): ``∇𝓛 = Jᵀ r / n`` with ``r = f(X) − y``, so

.. math::

    \\|\\nabla\\mathcal L\\|^2 = \\frac{r^\\top J J^\\top r}{n^2}
    \\ge \\frac{\\lambda_{\\min}(J J^\\top)}{n^2} \\|r\\|^2
    = \\frac{\\lambda_{\\min}(J J^\\top)}{n} \\, 2\\mathcal L .

For ReLU the derivative at 0 is taken as 0 in both ``J`` and the gradient, so the identity
``∇𝓛 = Jᵀ r / n`` — and with it the inequality — is exact at every point.

Gradient descent on ReLU networks is not smooth: a backtracking (Armijo) line search stalls at
kinks (the step collapses to ~1e-16 while the gradient is not small), which is why only the
constant step is offered.

References
----------
C. Song, A. Ramezani-Kebrya, T. Pethick, A. Eftekhari, V. Cevher (2021), Subquadratic
overparameterization for shallow neural networks, NeurIPS 34, arXiv:2111.01875.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from .._validation import as_float_array, check_X
from ..tolerances import TOLERANCES

__all__ = [
    "ACTIVATIONS",
    "ShallowRun",
    "WidthSearch",
    "init_shallow",
    "shallow_forward",
    "shallow_jacobian",
    "train_shallow",
    "train_shallow_batch",
    "minimal_width",
    "threshold_width",
]

#: Activations of :func:`train_shallow`: ReLU (σ'(0) := 0) and the exact GELU ``z Φ(z)``.
ACTIVATIONS = ("relu", "gelu")

#: Run statuses. ``stalled`` and ``budget exhausted`` are both failures; the distinction says
#: whether more steps could have helped (see :func:`train_shallow`).
STATUSES = ("converged", "stalled", "budget exhausted", "diverged")

_SQRT2 = np.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


# --------------------------------------------------------------------------- argument checks


def _check_activation(activation) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}.")
    return activation


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _positive_float(value, name: str, fix: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r}. {fix}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be positive and finite; got {value!r}. {fix}")
    return v


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int or a numpy Generator; got {seed!r}.")
    return np.random.default_rng(int(seed))


# --------------------------------------------------------------------------- the network


def _act(Z: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """``σ(Z)`` and ``σ'(Z)`` elementwise."""
    if activation == "relu":
        return np.maximum(Z, 0.0), (Z > 0).astype(np.float64)
    Phi = 0.5 * (1.0 + erf(Z / _SQRT2))
    return Z * Phi, Phi + Z * (_INV_SQRT_2PI * np.exp(-0.5 * Z * Z))


def init_shallow(d: int, width: int, *, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Standard initialisation: ``W ~ N(0, 2/d)`` (He), ``a ~ N(0, 1/m)`` (LeCun).

    ``W`` is drawn first, row by row, so with the same seed the first rows of ``W`` agree across
    widths (common random numbers for width sweeps).

    Returns
    -------
    W : ndarray of shape (width, d)
    a : ndarray of shape (width,)
    """
    d = _positive_int(d, "d")
    m = _positive_int(width, "width")
    rng = _rng(seed)
    W = rng.standard_normal((m, d)) * np.sqrt(2.0 / d)
    a = rng.standard_normal(m) * np.sqrt(1.0 / m)
    return W, a


def _check_params(X, W, a) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = check_X(X)
    W = as_float_array(W, "W", ndim=2)
    a = as_float_array(a, "a", ndim=1)
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"W has shape {W.shape} but X has {X.shape[1]} features; "
                         f"W must be (width, d) with one row per hidden unit.")
    if a.shape[0] != W.shape[0]:
        raise ValueError(f"a has {a.shape[0]} entries but W has {W.shape[0]} rows; "
                         f"pass one output weight per hidden unit.")
    return X, W, a


def shallow_forward(X, W, a, *, activation: str = "relu") -> np.ndarray:
    """Outputs ``f(x_i) = Σ_j a_j σ(⟨w_j, x_i⟩)``, shape ``(n,)``."""
    X, W, a = _check_params(X, W, a)
    return _act(X @ W.T, _check_activation(activation))[0] @ a


def shallow_jacobian(X, W, a, *, activation: str = "relu") -> np.ndarray:
    """Jacobian of the outputs with respect to ``(W, a)``.

    .. math::

        \\frac{\\partial f(x_i)}{\\partial W_{jk}} = a_j \\sigma'(\\langle w_j, x_i\\rangle) x_{ik},
        \\qquad
        \\frac{\\partial f(x_i)}{\\partial a_j} = \\sigma(\\langle w_j, x_i\\rangle).

    Returns
    -------
    J : ndarray of shape (n, m*d + m)
        Columns ordered as ``W.ravel()`` (row-major, unit by unit) then ``a``.
    """
    X, W, a = _check_params(X, W, a)
    H, Dp = _act(X @ W.T, _check_activation(activation))
    JW = (Dp * a)[:, :, None] * X[:, None, :]          # (n, m, d)
    return np.concatenate([JW.reshape(X.shape[0], -1), H], axis=1)


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class ShallowRun:
    """One gradient-descent run of a shallow network on the squared loss.

    Attributes
    ----------
    width : int
    n : int
    activation : str
    eta : float
        The constant step.
    final_loss : float
    success : bool
        ``final_loss <= loss_tol``.
    steps : int
        Gradient steps taken (the run stops at success, at a stall or at divergence).
    losses : ndarray of shape (k,)
        The loss every ``record_every`` steps (step 0 first).
    pl_steps : ndarray of shape (p,)
    pl_mu : ndarray of shape (p,)
        ``λ_min(J Jᵀ) / n`` at ``pl_steps`` (the PL constant); empty unless ``track_pl``.
    pl_ratio : ndarray of shape (p,)
        ``||∇𝓛||² / (2 𝓛)`` at ``pl_steps``: the PL inequality says ``pl_ratio >= pl_mu``.
    pl_scale : ndarray of shape (p,)
        ``λ_max(J Jᵀ) / n`` at ``pl_steps``: the scale of the eigenvalue rounding error.
    status : str
        ``converged``; ``stalled`` (the loss fell by less than ``stall_rtol`` over a whole stall
        window: a plateau or a spurious stationary point);
        ``budget exhausted`` (still on course at ``max_steps``: raise ``max_steps``);
        ``diverged`` (non-finite or exploding loss: raise ``safety``).
    """

    width: int
    n: int
    activation: str
    eta: float
    final_loss: float
    success: bool
    steps: int
    losses: np.ndarray
    pl_steps: np.ndarray
    pl_mu: np.ndarray
    pl_ratio: np.ndarray
    pl_scale: np.ndarray
    status: str

    def to_dict(self) -> dict:
        return {"width": self.width, "n": self.n, "activation": self.activation,
                "eta": float(self.eta), "final_loss": float(self.final_loss),
                "success": bool(self.success), "steps": int(self.steps),
                "losses": self.losses.tolist(), "pl_steps": self.pl_steps.tolist(),
                "pl_mu": self.pl_mu.tolist(), "pl_ratio": self.pl_ratio.tolist(),
                "pl_scale": self.pl_scale.tolist(), "status": self.status}


def _check_batch(Xs, ys) -> tuple[np.ndarray, np.ndarray]:
    Xs = as_float_array(Xs, "Xs", ndim=3)
    ys = as_float_array(ys, "ys", ndim=2)
    if ys.shape != Xs.shape[:2]:
        raise ValueError(f"ys has shape {ys.shape} but Xs has shape {Xs.shape}; pass ys of shape "
                         f"(S, n): one target vector per data set.")
    if Xs.shape[1] == 0 or Xs.shape[2] == 0:
        raise ValueError(f"Xs has shape {Xs.shape}; pass at least one example and one feature.")
    return Xs, ys


def _lambda_extremes(X, W, a, activation) -> tuple[float, float]:
    """``(λ_min, λ_max)`` of ``J Jᵀ``."""
    J = shallow_jacobian(X, W, a, activation=activation)
    ev = np.linalg.eigvalsh(J @ J.T)
    return float(ev[0]), float(ev[-1])


@np.errstate(over="ignore", invalid="ignore")   # diverging runs overflow; they are detected
def train_shallow_batch(Xs, ys, width: int, *, seeds, activation: str = "relu",
                        max_steps: int = 5000, loss_tol: float | None = None,
                        safety: float = 2.0, record_every: int = 100, track_pl: bool = False,
                        stall_window: int | None = None, stall_rtol: float | None = None
                        ) -> tuple[ShallowRun, ...]:
    """Train ``S`` independent networks at once, one per data set ``(Xs[s], ys[s])`` and seed.

    Vectorised over the batch (one matrix product per step for all runs), so a success rate over
    seeds costs about one run. Run ``s`` is exactly :func:`train_shallow` on
    ``(Xs[s], ys[s], width, seed=seeds[s])``: the runs do not interact.

    Parameters
    ----------
    Xs : array_like of shape (S, n, d)
    ys : array_like of shape (S, n)
    width : int
    seeds : sequence of int, length S
        Initialisation seeds (:func:`init_shallow`).
    activation, max_steps, loss_tol, safety, record_every, track_pl, stall_window, stall_rtol
        As in :func:`train_shallow`.

    Returns
    -------
    tuple of ShallowRun, length S
    """
    Xs, ys = _check_batch(Xs, ys)
    S, n, d = Xs.shape
    seeds = list(seeds)
    if len(seeds) != S:
        raise ValueError(f"seeds has {len(seeds)} entries but Xs holds {S} data sets; "
                         f"pass one seed per data set.")
    m = _positive_int(width, "width")
    activation = _check_activation(activation)
    max_steps = _positive_int(max_steps, "max_steps")
    tol = TOLERANCES.shallow_loss_tol if loss_tol is None else _positive_float(
        loss_tol, "loss_tol", "Pass a target loss such as 1e-3.")
    safety = _positive_float(safety, "safety", "Use safety >= 1 (2 is a safe default).")
    record_every = _positive_int(record_every, "record_every")
    window = max(100, max_steps // 10) if stall_window is None else _positive_int(
        stall_window, "stall_window")
    stall_rtol = TOLERANCES.shallow_stall_rtol if stall_rtol is None else float(stall_rtol)
    if not (0.0 <= stall_rtol < 1.0):
        raise ValueError(f"stall_rtol must be in [0, 1); got {stall_rtol!r}. Use 1e-3, or 0 to "
                         f"stop only runs whose loss does not decrease at all.")

    W = np.empty((S, d, m))                        # stored transposed: Z = X @ W
    A = np.empty((S, m, 1))
    eta = np.empty(S)
    for s in range(S):
        w0, a0 = init_shallow(d, m, seed=seeds[s])
        W[s], A[s, :, 0] = w0.T, a0
        eta[s] = 1.0 / (safety * max(_lambda_extremes(Xs[s], w0, a0, activation)[1] / n,
                                     np.finfo(float).tiny))
    # Only the live runs are computed: finished runs are dropped from the working arrays.
    live = np.arange(S)
    X, XT, Y = Xs, Xs.transpose(0, 2, 1), ys[:, :, None]

    def forward(X, W, A, Y):
        Z = X @ W                                  # (S', n, m)
        if activation == "relu":
            H = np.maximum(Z, 0.0)
            Dp = (Z > 0).astype(np.float64)
        else:
            H, Dp = _act(Z, activation)
        r = H @ A - Y                              # (S', n, 1)
        return H, Dp, r, 0.5 * np.einsum("sni,sni->s", r, r) / n

    H, Dp, r, loss = forward(X, W, A, Y)
    limit = 1e6 * (1.0 + loss)                     # "exploding": 1e6 times the initial loss
    checkpoint = loss.copy()
    final = loss.copy()
    status = np.array(["budget exhausted"] * S, dtype=object)
    steps = np.zeros(S, dtype=np.int64)
    losses = [[] for _ in range(S)]
    pl = [([], [], [], []) for _ in range(S)]

    for t in range(max_steps + 1):
        final[live] = loss
        done = np.zeros(live.size, dtype=bool)
        for k in np.flatnonzero(~(np.isfinite(loss) & (loss <= limit))):
            status[live[k]], done[k] = "diverged", True
        for k in np.flatnonzero(~done & (loss <= tol)):
            status[live[k]], done[k] = "converged", True
        if t % record_every == 0:
            for k, s in enumerate(live):
                losses[s].append(float(loss[k]))
        # ∂𝓛/∂w_j = (1/n) Σ_i r_i a_j σ'(z_ij) x_i: the factor a_j is applied after the product
        gW = (XT @ (Dp * r)) * (A.transpose(0, 2, 1) / n)    # (S', d, m)
        gA = H.transpose(0, 2, 1) @ r / n                      # (S', m, 1)
        if track_pl and t % record_every == 0:
            for k, s in enumerate(live):
                if not (np.isfinite(loss[k]) and loss[k] > 0):
                    continue
                lo, hi = _lambda_extremes(X[k], W[k].T, A[k, :, 0], activation)
                g2 = float(np.sum(gW[k] ** 2) + np.sum(gA[k] ** 2))
                for lst, v in zip(pl[s], (t, lo / n, g2 / (2.0 * loss[k]), hi / n), strict=True):
                    lst.append(v)
        if t > 0 and t % window == 0:
            # stall test: a relative decrease below stall_rtol over a whole window is a plateau
            # or a spurious stationary point (slow but steady runs go on to max_steps)
            for k in np.flatnonzero(~done & ~(loss < (1.0 - stall_rtol) * checkpoint)):
                status[live[k]], done[k] = "stalled", True
            checkpoint = loss.copy()
        if done.any():
            keep = ~done
            live = live[keep]
            X, XT, Y, W, A = X[keep], XT[keep], Y[keep], W[keep], A[keep]
            gW, gA, loss, checkpoint, limit = gW[keep], gA[keep], loss[keep], checkpoint[keep], \
                limit[keep]
        if t == max_steps or live.size == 0:
            break
        e = eta[live][:, None, None]
        W = W - e * gW
        A = A - e * gA
        H, Dp, r, loss = forward(X, W, A, Y)
        steps[live] += 1

    runs = []
    for s in range(S):
        rec = losses[s] + ([float(final[s])] if steps[s] % record_every else [])
        pst, pmu, prat, psc = pl[s]
        runs.append(ShallowRun(
            width=m, n=n, activation=activation, eta=float(eta[s]), final_loss=float(final[s]),
            success=bool(status[s] == "converged"), steps=int(steps[s]),
            losses=np.asarray(rec, dtype=np.float64), pl_steps=np.asarray(pst, dtype=np.int64),
            pl_mu=np.asarray(pmu, dtype=np.float64), pl_ratio=np.asarray(prat, dtype=np.float64),
            pl_scale=np.asarray(psc, dtype=np.float64), status=str(status[s])))
    return tuple(runs)


def train_shallow(X, y, width: int, *, seed=0, activation: str = "relu", max_steps: int = 5000,
                  loss_tol: float | None = None, safety: float = 2.0, record_every: int = 100,
                  track_pl: bool = False, stall_window: int | None = None,
                  stall_rtol: float | None = None) -> ShallowRun:
    """Train ``f(x) = Σ_j a_j σ(⟨w_j, x⟩)`` on ``(X, y)`` by full-batch gradient descent.

    Both layers are trained with the constant step

    .. math::

        \\eta = \\frac{1}{\\text{safety} \\cdot \\lambda_{\\max}(J_0 J_0^\\top)/n},

    ``J_0`` the Jacobian at initialisation (``λ_max(J Jᵀ)/n`` is the Gauss–Newton part of the
    Hessian of ``𝓛``). ``safety = 1`` is at the edge of stability and diverges on some seeds
    (measured); the default 2 did not diverge in any run of the width sweeps.

    A run stops early when it succeeds, diverges (non-finite loss, or 1e6 times the initial
    loss), or *stalls*: its loss fell by less than ``stall_rtol`` (relative) over the last
    ``stall_window`` steps. Runs still descending at ``max_steps`` end with status
    ``budget exhausted``: for those the budget, not the width, was binding. (A first version
    stopped runs whose current rate projected past the budget; it killed runs that were between
    two drops of an irregular, plateau-and-drop loss curve, and made ``m*`` depend on the budget.)

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,)
        Real targets.
    width : int
        Number of hidden units ``m``.
    seed : int or Generator
        Initialisation (:func:`init_shallow`).
    activation : {'relu', 'gelu'}
    max_steps : int
    loss_tol : float, optional
        Success when ``𝓛 <= loss_tol`` (default ``TOLERANCES.shallow_loss_tol``, absolute: the
        targets are O(1), so the initial loss is O(1)).
    safety : float
    record_every : int
        Record the loss (and the PL quantities) every ``record_every`` steps.
    track_pl : bool
        Record ``λ_min(J Jᵀ)/n``, ``λ_max(J Jᵀ)/n`` and ``||∇𝓛||²/(2𝓛)``.
    stall_window : int, optional
        Default ``max(100, max_steps // 10)``.
    stall_rtol : float, optional
        Default ``TOLERANCES.shallow_stall_rtol`` (1e-3); 0 stops only runs whose loss did not
        decrease at all over a window.

    Returns
    -------
    ShallowRun

    Raises
    ------
    ValueError, TypeError
        Bad arguments (the message names the argument and the fix).

    References
    ----------
    C. Song, A. Ramezani-Kebrya, T. Pethick, A. Eftekhari, V. Cevher (2021), Subquadratic
    overparameterization for shallow neural networks, NeurIPS, arXiv:2111.01875.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((8, 3))
    >>> run = train_shallow(X, np.sign(X[:, 0]), 16, seed=1)
    >>> run.success, run.status
    (True, 'converged')
    """
    X = check_X(X)
    y = as_float_array(y, "y", ndim=1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} entries but X has {X.shape[0]} rows; "
                         f"pass one target per example.")
    return train_shallow_batch(
        X[None], y[None], width, seeds=[seed], activation=activation, max_steps=max_steps,
        loss_tol=loss_tol, safety=safety, record_every=record_every, track_pl=track_pl,
        stall_window=stall_window, stall_rtol=stall_rtol)[0]


# --------------------------------------------------------------------------- minimal width


@dataclass(frozen=True)
class WidthSearch:
    """The smallest width at which gradient descent succeeds on at least a fraction of seeds.

    Attributes
    ----------
    n : int
    m_star : int
        The smallest width tried whose success rate reaches ``success_rate``, every larger width
        tried qualifying too; ``-1`` when none qualified (see ``status``).
    lower : int
        The largest width tried below ``m_star`` (it failed the rate), 0 if none.
    success_rate : float
        The required fraction of seeds.
    widths : ndarray of shape (k,)
        Widths tried, increasing.
    successes : ndarray of shape (k, S), bool
        ``successes[i, s]``: seed ``s`` reached the loss target at ``widths[i]``.
    budget_bound : ndarray of shape (k, S), bool
        The run failed only because ``max_steps`` ran out (status ``budget exhausted``).
    diverged : ndarray of shape (k, S), bool
    steps : ndarray of shape (k, S), int
    budget_binding : bool
        True when counting every budget-exhausted run as a success would lower ``m_star``:
        then ``m_star`` measures the step budget, not the width (raise ``max_steps``).
    status : str
    """

    n: int
    m_star: int
    lower: int
    success_rate: float
    widths: np.ndarray
    successes: np.ndarray
    budget_bound: np.ndarray
    diverged: np.ndarray
    steps: np.ndarray
    budget_binding: bool
    status: str

    @property
    def found(self) -> bool:
        return self.m_star > 0

    def rates(self) -> np.ndarray:
        """Success rate at each width tried, shape ``(k,)``."""
        return self.successes.mean(axis=1)

    def to_dict(self) -> dict:
        return {"n": self.n, "m_star": self.m_star, "lower": self.lower,
                "success_rate": self.success_rate, "widths": self.widths.tolist(),
                "successes": self.successes.astype(int).tolist(),
                "budget_bound": self.budget_bound.astype(int).tolist(),
                "diverged": self.diverged.astype(int).tolist(), "steps": self.steps.tolist(),
                "budget_binding": bool(self.budget_binding), "status": self.status}


def threshold_width(widths, successes, success_rate: float) -> int:
    """The smallest width whose success rate, and that of every larger width, is ``>= rate``.

    Parameters
    ----------
    widths : array_like of shape (k,), increasing
    successes : array_like of shape (k, S)
    success_rate : float

    Returns
    -------
    int
        ``-1`` when the largest width fails the rate.
    """
    widths = np.asarray(widths)
    ok = np.asarray(successes, dtype=float).mean(axis=1) >= success_rate - 1e-12
    if ok.size == 0 or not ok[-1]:
        return -1
    # last failing index; every width after it qualifies
    bad = np.flatnonzero(~ok)
    return int(widths[bad[-1] + 1]) if bad.size else int(widths[0])


def minimal_width(Xs, ys, *, seeds, success_rate: float = 0.9, start: int = 8,
                  max_width: int = 4096, resolution: float = 0.1, **train_kwargs) -> WidthSearch:
    """Smallest width at which gradient descent fits the data for at least ``success_rate`` of the
    seeds, by galloping then bisection (assuming the success rate is non-decreasing in width).

    Run ``s`` trains on ``(Xs[s], ys[s])`` from seed ``seeds[s]`` (:func:`train_shallow_batch`),
    so both the data and the initialisation may vary across the ``S`` trials. From ``start`` the
    width is doubled until the rate qualifies (or halved until it fails), then the bracket
    ``(lower, upper]`` is bisected geometrically until ``upper − lower <= max(1, resolution ·
    upper)``. No assumption on how ``m*`` scales with ``n`` enters the search.

    Parameters
    ----------
    Xs : array_like of shape (S, n, d)
    ys : array_like of shape (S, n)
    seeds : sequence of int, length S
    success_rate : float in (0, 1]
    start : int
        First width tried.
    max_width : int
        The search gives up (status says so) if this width does not qualify.
    resolution : float
        Relative bracket width at which bisection stops (0 bisects to adjacent integers).
    **train_kwargs
        Passed to :func:`train_shallow_batch` (``activation``, ``max_steps``, ``loss_tol``, …).

    Returns
    -------
    WidthSearch
    """
    Xs, ys = _check_batch(Xs, ys)
    if not (0.0 < float(success_rate) <= 1.0):
        raise ValueError(f"success_rate must be in (0, 1]; got {success_rate!r}.")
    start = _positive_int(start, "start")
    max_width = _positive_int(max_width, "max_width")
    if start > max_width:
        raise ValueError(f"start={start} exceeds max_width={max_width}; lower start.")
    if not (0.0 <= float(resolution) < 1.0):
        raise ValueError(f"resolution must be in [0, 1); got {resolution!r}.")
    rate = float(success_rate)
    tried: dict[int, tuple[ShallowRun, ...]] = {}

    def ok(m: int) -> bool:
        if m not in tried:
            tried[m] = train_shallow_batch(Xs, ys, m, seeds=seeds, **train_kwargs)
        return np.mean([r.success for r in tried[m]]) >= rate - 1e-12

    lower, upper = 0, None
    m = start
    if ok(m):
        upper = m
        while m > 1:
            m = max(1, m // 2)
            if ok(m):
                upper = m
            else:
                lower = m
                break
    else:
        lower = m
        while upper is None and m < max_width:
            m = min(max_width, 2 * m)
            if ok(m):
                upper = m
            else:
                lower = m
    if upper is not None:
        while upper - lower > max(1.0, resolution * upper):
            mid = int(round(np.sqrt(max(lower, 1) * upper)))
            mid = min(max(mid, lower + 1), upper - 1)
            if ok(mid):
                upper = mid
            else:
                lower = mid

    widths = np.array(sorted(tried), dtype=np.int64)
    runs = [tried[int(w)] for w in widths]
    succ = np.array([[r.success for r in rs] for rs in runs], dtype=bool)
    budget = np.array([[r.status == "budget exhausted" for r in rs] for rs in runs], dtype=bool)
    div = np.array([[r.status == "diverged" for r in rs] for rs in runs], dtype=bool)
    steps = np.array([[r.steps for r in rs] for rs in runs], dtype=np.int64)
    m_star = threshold_width(widths, succ, rate)
    lower = int(widths[widths < m_star].max()) if m_star > 0 and np.any(widths < m_star) else 0
    binding = bool(m_star > 0 and threshold_width(widths, succ | budget, rate) < m_star)
    if m_star < 0:
        status = (f"no width up to {int(widths.max())} reached success rate {rate:g}: raise "
                  f"max_width or max_steps")
    elif binding:
        status = (f"m*={m_star} but the step budget is binding (budget-exhausted runs below it): "
                  f"raise max_steps")
    else:
        status = "found"
    return WidthSearch(n=Xs.shape[1], m_star=m_star, lower=lower, success_rate=rate,
                       widths=widths, successes=succ, budget_bound=budget, diverged=div,
                       steps=steps, budget_binding=binding, status=status)
