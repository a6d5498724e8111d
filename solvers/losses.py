"""Numerically stable classification and regression losses (docs/theory.md §0).

Classification losses are **sums** over examples of ``ℓ(q_i)``, ``q_i = y_i f(θ; x_i)``:
``ℓ_exp(q) = exp(-q)`` and ``ℓ_log(q) = log(1 + exp(-q))``. Useful regimes have
``𝓛 < 1e-300``, so every function here also has a log-domain form: ``log_loss`` returns
``log 𝓛`` without ever forming ``𝓛`` (shift by ``q_min``, ``logaddexp``, ``log1p``), and
``loss_weights`` returns the normalised weights ``w_i = -ℓ'(q_i) / Σ_j -ℓ'(q_j)`` together with
``log Σ_j -ℓ'(q_j)``, so that ``∇𝓛 = -exp(log_scale) Σ_i w_i ∇q_i`` is available at any loss.

The regression loss is a **mean**: ``𝓛 = (1/2n) Σ_i ||f(x_i) - y_i||²``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = [
    "CLASSIFICATION_LOSSES",
    "loss_value",
    "log_loss",
    "loss_derivative",
    "loss_weights",
    "inverse_loss",
    "squared_loss",
]

CLASSIFICATION_LOSSES = ("exp", "logistic")


def _check_name(loss: str) -> str:
    if loss not in CLASSIFICATION_LOSSES:
        raise ValueError(
            f"loss must be one of {CLASSIFICATION_LOSSES}; got {loss!r}. "
            f"Use 'exp' for exp(-q) or 'logistic' for log(1 + exp(-q))."
        )
    return loss


def _lse(a: np.ndarray) -> float:
    """``log Σ exp(a)`` in plain numpy (scipy's logsumexp costs ~0.3 ms a call: hot in training)."""
    m = float(a.max())
    return m + float(np.log(np.exp(a - m).sum()))


def _log_ell(q: np.ndarray, loss: str) -> np.ndarray:
    """``log ℓ(q_i)`` elementwise, finite for all finite q."""
    if loss == "exp":
        return -q
    # log(log(1 + e^{-q})): for q > 30, log1p(e^{-q}) ≈ e^{-q}(1 - e^{-q}/2),
    # so log ≈ -q + log1p(-e^{-q}/2)
    out = np.empty_like(q)
    big = q > 30.0
    out[big] = -q[big] + np.log1p(-0.5 * np.exp(-q[big]))
    out[~big] = np.log(np.logaddexp(0.0, -q[~big]))
    return out


def log_loss(q, loss: str = "logistic") -> float:
    """``log 𝓛 = log Σ_i ℓ(q_i)``, computed without underflow.

    Parameters
    ----------
    q : array_like of shape (n,)
        Margins ``y_i f(θ; x_i)``.
    loss : {'exp', 'logistic'}
    """
    q = np.asarray(q, dtype=np.float64)
    return _lse(_log_ell(q, _check_name(loss)))


def loss_value(q, loss: str = "logistic") -> float:
    """``𝓛 = Σ_i ℓ(q_i)`` (may underflow to 0.0; use :func:`log_loss` in the late phase)."""
    return float(np.exp(log_loss(q, loss)))


def loss_derivative(q, loss: str = "logistic") -> np.ndarray:
    """``ℓ'(q_i)`` elementwise (negative): ``-e^{-q}`` (exp) or ``-σ(-q)`` (logistic)."""
    q = np.asarray(q, dtype=np.float64)
    if _check_name(loss) == "exp":
        return -np.exp(-q)
    return -expit(-q)


def loss_weights(q, loss: str = "logistic") -> tuple[np.ndarray, float]:
    """Normalised weights of the loss gradient and the log of their total.

    Returns
    -------
    weights : ndarray of shape (n,)
        ``w_i = -ℓ'(q_i) / Σ_j -ℓ'(q_j)``, non-negative, summing to 1.
    log_scale : float
        ``log Σ_j -ℓ'(q_j)``, so ``∇_θ 𝓛 = -exp(log_scale) Σ_i w_i ∇_θ q_i``.
    """
    q = np.asarray(q, dtype=np.float64)
    log_neg = -q if _check_name(loss) == "exp" else -np.logaddexp(0.0, q)  # log σ(−q)
    log_scale = _lse(log_neg)
    return np.exp(log_neg - log_scale), log_scale


def inverse_loss(log_L: float, loss: str = "logistic") -> float:
    """``ℓ^{-1}(𝓛)`` from ``log 𝓛``: the numerator of the smoothed margin (Lyu & Li 2019, §4).

    ``exp``: ``log(1/𝓛) = -log 𝓛``. ``logistic``: ``-log(e^{𝓛} - 1) = -log(expm1(𝓛))``,
    evaluated as ``-log 𝓛 - log(expm1(𝓛)/𝓛)`` so it stays exact when ``𝓛 < 1e-300``.
    """
    if _check_name(loss) == "exp":
        return -float(log_L)
    L = np.exp(log_L)
    if L == 0.0:
        return -float(log_L)  # expm1(L)/L -> 1
    return -float(log_L) - float(np.log(np.expm1(L) / L))


def squared_loss(pred, target) -> float:
    """Mean squared loss ``(1/2n) Σ_i ||pred_i - target_i||²`` over the first axis."""
    r = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    n = r.shape[0]
    return float(0.5 * np.sum(r * r) / n)
