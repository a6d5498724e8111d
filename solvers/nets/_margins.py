"""Margins of homogeneous networks and the Lyu & Li quantities (docs/theory.md §0, §3, §7).

For a network ``f(θ; ·)`` homogeneous of degree ``L`` and labels ``y_i ∈ {±1}``:

.. math::

    q_i = y_i f(\\theta; x_i), \\quad q_{\\min} = \\min_i q_i, \\quad
    \\bar\\gamma_p = \\frac{q_{\\min}}{\\|\\theta\\|_p^L}, \\quad
    \\tilde\\gamma = \\frac{\\ell^{-1}(\\mathcal L(\\theta))}{\\|\\theta\\|_2^L},

with the classification loss a **sum** ``𝓛 = Σ_i ℓ(q_i)`` (Lyu & Li 2019, "Gradient descent
maximizes the margin of homogeneous neural networks", ICLR 2020, §4: normalised margin ``γ̄`` and
smoothed margin ``γ̃``; Tsilivis, Vardi & Kempe 2024 for the ``ℓp`` margin of steepest descent).
For the exp loss ``γ̄ − ρ^{−L} log n ≤ γ̃ ≤ γ̄`` (a bound, tight when one example carries the loss).

Everything is computed from ``log 𝓛`` (:func:`solvers.losses.log_loss`), so the smoothed margin is
exact when ``𝓛 < 1e-300``. The balancedness quantities are the conserved quantities of gradient
flow on ReLU nets (Du, Hu & Lee 2018, Theorem 2.1 / Corollary 2.1): ``||W_{l+1}||_F² − ||W_l||_F²``
and, per hidden unit ``j`` of layer ``l``, ``||W_l[j, :]||² − ||W_{l+1}[:, j]||²``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_labels, check_norm
from ..losses import inverse_loss, log_loss
from ..tolerances import TOLERANCES
from ._network import HomogeneousMLP

__all__ = [
    "MarginSummary",
    "class_margins",
    "multiclass_log_loss",
    "margins",
    "min_margin",
    "parameter_norm",
    "normalized_margin",
    "smoothed_margin",
    "support_mask",
    "layer_norms",
    "layer_balance",
    "unit_balance",
    "margin_summary",
]


def _check_net(net) -> HomogeneousMLP:
    if not isinstance(net, HomogeneousMLP):
        raise TypeError(
            f"net must be a solvers.HomogeneousMLP; got {type(net).__name__}. "
            f"Convert a torch model with solvers.from_torch."
        )
    return net


def check_class_labels(y, n: int, K: int, name: str = "y") -> np.ndarray:
    """Class-index labels of shape ``(n,)`` with integer values in ``0…K−1``, as ``int64``."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) (one class index per example); got "
                         f"shape {arr.shape}.")
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "f" and not np.all(
            np.isfinite(arr) & (arr == np.round(arr))):
        raise ValueError(f"{name} must hold integer class indices 0…{K - 1}; got dtype "
                         f"{arr.dtype} with non-integer values. Pass y.astype(int).")
    idx = arr.astype(np.int64)
    bad = (idx < 0) | (idx >= K)
    if np.any(bad):
        raise ValueError(f"{name} must hold class indices 0…{K - 1} for a network with K={K} "
                         f"outputs; found {np.unique(idx[bad])[:5].tolist()}. Pass integer "
                         f"labels (e.g. Y.argmax(axis=1) for one-hot Y).")
    return idx


def class_margins(outputs, y) -> np.ndarray:
    """Pairwise margins ``Q[i, j] = f_{y_i}(x_i) − f_j(x_i)``, shape ``(n, K)``, with
    ``Q[i, y_i] = +inf``; ``q_i = min_j Q[i, j]`` is Lyu & Li's multi-class margin
    (docs/theory.md §7, multi-class).

    Parameters
    ----------
    outputs : array_like of shape (n, K), K >= 2
    y : array_like of shape (n,), class indices 0…K−1
    """
    F = np.asarray(outputs, dtype=np.float64)
    if F.ndim != 2 or F.shape[1] < 2:
        raise ValueError(f"outputs must have shape (n, K) with K >= 2 classes; got {F.shape}.")
    idx = check_class_labels(y, F.shape[0], F.shape[1])
    rows = np.arange(F.shape[0])
    Q = F[rows, idx][:, None] - F
    Q[rows, idx] = np.inf
    return Q


def multiclass_log_loss(Q, loss: str = "logistic") -> float:
    """``log 𝓛`` of the multi-class loss from pairwise margins ``Q`` (:func:`class_margins`).

    ``logistic`` (cross-entropy): ``𝓛 = Σ_i log(1 + Σ_{j≠y_i} e^{−Q_ij})``; ``exp`` (the
    multi-class exponential loss): ``𝓛 = Σ_i Σ_{j≠y_i} e^{−Q_ij}`` (Lyu & Li 2019, §4 and App. G).
    Evaluated in the log domain, exact when ``𝓛 < 1e-300``. With ``K = 2`` both reduce to the
    binary loss of the margin ``q_i = Q_{i, 1−y_i}``.
    """
    from scipy.special import logsumexp

    Q = np.asarray(Q, dtype=np.float64)
    a = logsumexp(-Q, axis=1)  # log Σ_j e^{−Q_ij}; the +inf entry contributes 0
    if loss == "exp":
        return float(logsumexp(a))
    if loss != "logistic":
        raise ValueError(f"loss must be 'logistic' (cross-entropy) or 'exp'; got {loss!r}.")
    # log log1p(e^a): a + log1p(−e^a/2) below −20 (error O(e^{2a}) < 1e-17), else directly
    with np.errstate(over="ignore"):
        per = np.where(a < -20.0, a + np.log1p(-np.exp(np.minimum(a, -20.0)) / 2.0),
                       np.log(np.logaddexp(0.0, np.maximum(a, -20.0))))
    return float(logsumexp(per))


def margins(net: HomogeneousMLP, X, y) -> np.ndarray:
    """``q_i = y_i f(θ; x_i)``, shape ``(n,)``; ``X`` is ``(n, d_0)``, ``y`` is ``(n,)`` in ±1.

    For a network with ``K > 1`` outputs, ``y`` holds class indices ``0…K−1`` and
    ``q_i = f_{y_i}(x_i) − max_{j≠y_i} f_j(x_i)`` (Lyu & Li 2019's multi-class margin).
    """
    net = _check_net(net)
    if net.n_outputs > 1:
        return class_margins(net.outputs(X), y).min(axis=1)
    f = net.forward(X)
    return check_labels(y, f.shape[0]) * f


def min_margin(net: HomogeneousMLP, X, y) -> float:
    """``q_min = min_i y_i f(θ; x_i)`` (positive iff every example is classified correctly)."""
    return float(np.min(margins(net, X, y)))


def parameter_norm(net: HomogeneousMLP, norm=2) -> float:
    """``||θ||_p`` of the flat parameter vector (``p`` real ``≥ 1`` or ``inf``)."""
    p = check_norm(norm)
    return float(np.linalg.norm(_check_net(net).flat(), ord=p))


def _scaled(value: float, norm_value: float, L: int) -> float:
    """``value / norm_value**L`` without overflow of the power (``norm_value > 0``)."""
    if norm_value <= 0.0:
        return float("nan")
    return float(value * np.exp(-L * np.log(norm_value)))


def normalized_margin(net: HomogeneousMLP, X, y, *, norm=2) -> float:
    """``γ̄_p = q_min / ||θ||_p^L``: invariant under ``θ → cθ`` (Lyu & Li 2019, §4).

    ``nan`` for ``θ = 0``. Its maximum over ``θ`` is the ``ℓp`` max margin of the architecture;
    for ``L = 1`` it is the linear ``p``-margin of docs/theory.md §5.
    """
    net = _check_net(net)
    q = margins(net, X, y)
    return _scaled(float(q.min()), parameter_norm(net, norm), net.degree)


def smoothed_margin(net: HomogeneousMLP, X, y, *, loss: str = "exp", norm=2) -> float:
    """``γ̃ = ℓ^{-1}(𝓛(θ)) / ||θ||_p^L`` from ``log 𝓛`` (Lyu & Li 2019, §4, eq. for ``γ̃``).

    ``exp``: ``γ̃ = log(1/𝓛)/ρ^L``; ``logistic``: ``γ̃ = −log(e^{𝓛} − 1)/ρ^L``. Exact for
    ``𝓛 < 1e-300``. Non-decreasing along gradient flow once ``𝓛 < ℓ(0)`` (Lyu & Li, Theorem 4.1,
    with ``p = 2``). For the exp loss, ``γ̄ − ρ^{−L} log n ≤ γ̃ ≤ γ̄``.
    """
    net = _check_net(net)
    if net.n_outputs > 1:  # cross-entropy / multi-class exp loss; ℓ^{-1} of the binary loss
        log_L = multiclass_log_loss(class_margins(net.outputs(X), y), loss)
    else:
        log_L = log_loss(margins(net, X, y), loss)
    return _scaled(inverse_loss(log_L, loss), parameter_norm(net, norm), net.degree)


def support_mask(q, *, rtol: float = TOLERANCES.support_rtol) -> np.ndarray:
    """Examples whose margin is within ``rtol`` (relative) of ``q_min``.

    The mask is ``q_i − q_min ≤ rtol·|q_min|``.

    Parameters
    ----------
    q : array_like of shape (n,)
        Margins.
    rtol : float
        Relative tolerance (default ``TOLERANCES.support_rtol``).

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 1 or q.size == 0:
        raise ValueError(f"q must be a non-empty 1-D array of margins; got shape {q.shape}.")
    if not (float(rtol) >= 0.0):
        raise ValueError(f"rtol must be >= 0; got {rtol!r}.")
    qmin = q.min()
    return q - qmin <= float(rtol) * abs(qmin)


def layer_norms(net: HomogeneousMLP) -> np.ndarray:
    """``(||W_1||_F, ..., ||W_L||_F)``, shape ``(L,)``."""
    return np.array([np.linalg.norm(W) for W in _check_net(net).weights])


def layer_balance(net: HomogeneousMLP) -> np.ndarray:
    """``||W_{l+1}||_F² − ||W_l||_F²`` for ``l = 1..L-1``, shape ``(L-1,)``.

    Constant along gradient flow of any loss for ReLU/LeakyReLU/linear nets (Du, Hu & Lee 2018,
    Corollary 2.1); drifts by ``O(η²)`` per step under gradient descent with step ``η``.
    """
    s = layer_norms(net) ** 2
    return np.diff(s)


def unit_balance(net: HomogeneousMLP) -> list[np.ndarray]:
    """Per hidden unit ``j`` of layer ``l``: ``||W_l[j, :]||² − ||W_{l+1}[:, j]||²``, ``(d_l,)``.

    Conserved by gradient flow (Du, Hu & Lee 2018, Theorem 2.1): incoming minus outgoing squared
    weight of each unit. One array per hidden layer ``l = 1..L-1``.
    """
    ws = _check_net(net).weights
    return [np.sum(ws[l] ** 2, axis=1) - np.sum(ws[l + 1] ** 2, axis=0)
            for l in range(len(ws) - 1)]


@dataclass(frozen=True)
class MarginSummary:
    """All margin quantities of one network on one data set.

    Attributes
    ----------
    q : ndarray of shape (n,)
        Margins ``y_i f(θ; x_i)``.
    q_min : float
    log_loss : float
        ``log 𝓛`` (sum over examples) for ``loss``.
    loss : str
        ``'exp'`` or ``'logistic'``.
    norm : float
        The ``p`` of ``normalized_margin`` (``inf`` stored as ``float('inf')``).
    rho : float
        ``||θ||_2``.
    normalized_margin : float
        ``q_min / ||θ||_p^L``.
    normalized_margin_l2 : float
        ``q_min / ρ^L``.
    smoothed_margin : float
        ``ℓ^{-1}(𝓛) / ρ^L``.
    n_support : int
        Number of examples with ``q_i − q_min ≤ support_rtol · |q_min|``.
    layer_norms : ndarray of shape (L,)
    layer_balance : ndarray of shape (L-1,)
    status : str
        ``'separated'`` (all ``q_i > 0``) or ``'not separated: k of n examples have q_i <= 0'``.
    """

    q: np.ndarray
    q_min: float
    log_loss: float
    loss: str
    norm: float
    rho: float
    normalized_margin: float
    normalized_margin_l2: float
    smoothed_margin: float
    n_support: int
    layer_norms: np.ndarray
    layer_balance: np.ndarray
    status: str

    def to_dict(self) -> dict:
        """JSON-serialisable dict (arrays as lists, ``inf`` norm as the string ``'inf'``)."""
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, np.ndarray):
                out[k] = v.tolist()
            elif isinstance(v, float) and np.isinf(v):
                out[k] = "inf" if v > 0 else "-inf"
            else:
                out[k] = v
        return out


def margin_summary(net: HomogeneousMLP, X, y, *, loss: str = "exp", norm=2,
                   support_rtol: float = TOLERANCES.support_rtol) -> MarginSummary:
    """Compute every margin quantity of :mod:`solvers.nets` in one pass (one forward pass).

    Parameters
    ----------
    net : HomogeneousMLP
    X : array_like of shape (n, d_0)
    y : array_like of shape (n,), labels ±1 (class indices 0…K−1 for ``K > 1`` outputs)
    loss : {'exp', 'logistic'}
        For ``K > 1``: the multi-class exponential loss or cross-entropy.
    norm : 1, 2, 'inf' or real p >= 1
        Norm of ``normalized_margin`` (the ℓ2 version is always reported too).
    support_rtol : float
        Relative tolerance of :func:`support_mask`.
    """
    net = _check_net(net)
    p = check_norm(norm)
    L = net.degree
    theta = net.flat()
    rho = float(np.linalg.norm(theta))
    if net.n_outputs > 1:  # class-index labels: cross-entropy / multi-class exp loss
        Q = class_margins(net.outputs(X), y)
        q = Q.min(axis=1)
        lL = multiclass_log_loss(Q, loss)
    else:
        q = margins(net, X, y)
        lL = log_loss(q, loss)
    q_min = float(q.min())
    bad = int(np.count_nonzero(q <= 0.0))
    status = "separated" if bad == 0 else f"not separated: {bad} of {q.size} examples have q_i <= 0"
    return MarginSummary(
        q=q, q_min=q_min, log_loss=lL, loss=loss, norm=p, rho=rho,
        normalized_margin=_scaled(q_min, float(np.linalg.norm(theta, ord=p)), L),
        normalized_margin_l2=_scaled(q_min, rho, L),
        smoothed_margin=_scaled(inverse_loss(lL, loss), rho, L),
        n_support=int(np.count_nonzero(support_mask(q, rtol=support_rtol))),
        layer_norms=layer_norms(net), layer_balance=layer_balance(net), status=status,
    )
