r"""Derived quantities along a :class:`~solvers.Trajectory` of a linear-predictor flow.

The models of docs/theory.md §1 other than the MLP are linear predictors
:math:`f(\theta;x) = \beta(\theta)x`;
the functions here recover the end-to-end map :math:`\beta(t)` from the block layout
(``"w"``: linear; ``"w"``, ``"a2"``, ..., ``"aL"``: linear chain; ``"W1"``, ..., ``"WL"``: deep
linear net; ``"u"``, ``"v"``: diagonal net; a ``"rho"`` block scales the rest, as in the normalised
and polar flows of :mod:`solvers.flows`; the ``"mu"`` block of the Minnorm flow is ignored; the
pre-issue-13 names ``"a"`` (chain vector) and ``"lambda"`` are still read), then evaluate
losses, margins, norms, the conserved quantities of docs/theory.md §3 and the distance/angle to a
reference.
All functions return one row per reported time, ``T = len(traj.times)``.
"""

from __future__ import annotations

import re

import numpy as np

from .._validation import as_float_array, check_labels, check_targets, check_X
from ..losses import CLASSIFICATION_LOSSES, log_loss
from ._models import MODELS as _MODELS
from ._models import canonical_model
from ._trajectory import Trajectory

__all__ = [
    "infer_model",
    "end_to_end",
    "loss_along",
    "margins_along",
    "normalized_margin_along",
    "parameter_norms",
    "layer_imbalance",
    "chain_imbalance",
    "distance_to",
    "angle_to",
    "direction_error",
    "effective_rank",
]


def _check_traj(traj) -> Trajectory:
    if not isinstance(traj, Trajectory):
        raise TypeError(f"traj must be a Trajectory (from solvers.integrate); got "
                        f"{type(traj).__name__}.")
    return traj


def _param_names(blocks) -> list[str]:
    return [k for k in blocks if k not in ("rho", "mu", "lambda")]


def _is_chain(names) -> bool:
    if names == ["w", "a"]:                                   # layout before issue 13
        return True
    return len(names) >= 2 and names[0] == "w" and \
        names[1:] == [f"a{l}" for l in range(2, len(names) + 1)]


def _chain_scalars(p) -> np.ndarray:
    """``(T, L − 1)``: the chain scalars a_2..a_L of either layout."""
    if "a" in p:
        return np.asarray(p["a"])
    return np.stack([p[k] for k in p if k != "w"], axis=1)


def infer_model(blocks) -> str:
    """The model of a block layout: ``'linear'``, ``'linear_chain'``, ``'deep_linear'`` or
    ``'diagonal'`` (the names of ``theory``'s ``Model.name``).

    Raises
    ------
    ValueError
        If the block names match none of the layouts of :mod:`solvers.flows`.
    """
    names = _param_names(blocks)
    if names == ["w"]:
        return "linear"
    if _is_chain(names):
        return "linear_chain"
    if names == ["u", "v"]:
        return "diagonal"
    if names and all(re.fullmatch(r"W\d+", k) for k in names) and \
            [int(k[1:]) for k in names] == list(range(1, len(names) + 1)):
        return "deep_linear"
    raise ValueError(
        f"cannot infer the model from blocks {list(blocks)}; pass model= one of {_MODELS} "
        f"or use the block names of solvers.flows ('w'; 'w','a2'..'aL'; 'W1'..'WL'; 'u','v')."
    )


def _parts(traj, model):
    model = infer_model(traj.blocks) if model is None else canonical_model(model)
    parts = {k: traj.block(k) for k in _param_names(traj.blocks)}
    if "rho" in traj.blocks:
        rho = traj.block("rho").reshape(len(traj.times), -1)[:, 0]
        parts = {k: v * rho.reshape((-1,) + (1,) * (v.ndim - 1)) for k, v in parts.items()}
    return model, parts


def end_to_end(traj: Trajectory, *, model: str | None = None) -> np.ndarray:
    r"""The end-to-end map :math:`\beta(t)`, shape ``(T, d)`` or ``(T, k, d)``.

    Linear :math:`w`; chain :math:`(\prod_l a_l) w`; deep :math:`W_L\cdots W_1`; diagonal
    :math:`u\odot u - v\odot v`.
    """
    model, p = _parts(_check_traj(traj), model)
    if model == "linear":
        return np.array(p["w"])
    if model == "linear_chain":
        return np.prod(_chain_scalars(p), axis=1)[:, None] * p["w"]
    if model == "diagonal":
        return p["u"] ** 2 - p["v"] ** 2
    Ws = list(p.values())
    M = Ws[0]
    for W in Ws[1:]:
        M = np.matmul(W, M)
    return M


def _flat(B):
    return B.reshape(B.shape[0], -1)


def _reference(reference, shape):
    ref = as_float_array(reference, "reference", ndim=(1, 2))
    if ref.size != int(np.prod(shape)):
        raise ValueError(f"reference has shape {ref.shape}; the end-to-end map has shape {shape}. "
                         f"Pass a reference of the same shape.")
    return ref.reshape(-1)


def loss_along(traj: Trajectory, X, y, *, loss: str, model: str | None = None,
               log: bool = False) -> np.ndarray:
    r"""The training loss :math:`\mathcal L(\theta(t))`, shape ``(T,)``.

    ``loss='squared'`` is the mean :math:`\tfrac{1}{2n}\sum_i\|\beta x_i - y_i\|^2`;
    ``'exp'``/``'logistic'`` the sums of docs/theory.md §0. With ``log=True`` returns
    :math:`\log\mathcal L`, exact far below the float64 underflow (use it for classification).
    """
    B = end_to_end(traj, model=model)
    X = check_X(X)
    if loss == "squared":
        y = check_targets(y, X.shape[0])
        pred = np.einsum("nd,tkd->tnk", X, B) if B.ndim == 3 else B @ X.T
        r = pred - (y if y.ndim == 2 else y[None, :])
        out = 0.5 * np.sum(r.reshape(r.shape[0], -1) ** 2, axis=1) / X.shape[0]
        return np.log(out) if log else out
    if loss not in CLASSIFICATION_LOSSES:
        raise ValueError(f"loss must be 'squared', 'exp' or 'logistic'; got {loss!r}.")
    q = margins_along(traj, X, y, model=model)
    out = np.array([log_loss(qi, loss) for qi in q])
    return out if log else np.exp(out)


def margins_along(traj: Trajectory, X, y, *, model: str | None = None) -> np.ndarray:
    r"""Margins :math:`q_i(t) = y_i\langle\beta(t), x_i\rangle`, shape ``(T, n)``."""
    B = end_to_end(traj, model=model)
    X = check_X(X)
    y = check_labels(y, X.shape[0])
    B = _flat(B)
    if B.shape[1] != X.shape[1]:
        raise ValueError(f"margins need a scalar-output model: the end-to-end map has "
                         f"{B.shape[1]} entries but X has {X.shape[1]} columns.")
    return (B @ X.T) * y[None, :]


def normalized_margin_along(traj: Trajectory, X, y, *, model: str | None = None) -> np.ndarray:
    r""":math:`\min_i q_i(t) / \|\beta(t)\|_2`, shape ``(T,)``: the ℓ2 margin of the end-to-end
    direction, at most the max margin :math:`\gamma_2` of docs/theory.md §5 (equal at the SVM
    direction)."""
    q = margins_along(traj, X, y, model=model)
    nb = np.linalg.norm(_flat(end_to_end(traj, model=model)), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(nb > 0, q.min(axis=1) / np.where(nb > 0, nb, 1.0), np.nan)


def parameter_norms(traj: Trajectory) -> dict[str, np.ndarray]:
    """Frobenius norm of every block along the trajectory, name -> ``(T,)``, plus ``"total"``
    (the Euclidean norm of all parameter blocks together; ``"lambda"`` excluded)."""
    _check_traj(traj)
    out = {k: np.linalg.norm(_flat(traj.block(k)), axis=1) for k in traj.blocks}
    out["total"] = np.sqrt(sum(out[k] ** 2 for k in _param_names(traj.blocks)))
    return out


def layer_imbalance(traj: Trajectory) -> tuple[np.ndarray, ...]:
    r"""Deep linear net balancedness :math:`D_l = W_{l+1}^\top W_{l+1} - W_l W_l^\top`.

    Constant under gradient flow for any differentiable loss of the end-to-end map (Arora, Cohen,
    Hazan 2018, Theorem 1; Du, Hu, Lee 2018); decays as :math:`e^{-2\lambda t}` with weight decay.

    Returns
    -------
    tuple of ndarray of shape (T, d_l, d_l), one per l = 1, ..., L − 1
    """
    model, p = _parts(_check_traj(traj), None)
    if model != "deep_linear":
        raise ValueError(f"layer_imbalance needs a deep linear net (blocks W1..WL); got {model}.")
    Ws = list(p.values())
    def gram_out(W):
        return np.matmul(np.swapaxes(W, 1, 2), W)

    def gram_in(W):
        return np.matmul(W, np.swapaxes(W, 1, 2))

    return tuple(gram_out(Ws[l + 1]) - gram_in(Ws[l]) for l in range(len(Ws) - 1))


def chain_imbalance(traj: Trajectory) -> np.ndarray:
    r"""Linear chain balancedness: columns :math:`a_2^2 - \|w\|^2, a_3^2 - a_2^2, \dots`.

    Constant under gradient flow, :math:`\propto e^{-2\lambda t}` with weight decay (docs/theory.md
    §3).

    Returns
    -------
    ndarray of shape (T, L − 1)
    """
    model, p = _parts(_check_traj(traj), None)
    if model != "linear_chain":
        raise ValueError(f"chain_imbalance needs a linear chain (blocks 'w', 'a2'..'aL'); "
                         f"got {model}.")
    sq = np.concatenate([np.sum(p["w"] ** 2, axis=1, keepdims=True), _chain_scalars(p) ** 2],
                        axis=1)
    return np.diff(sq, axis=1)


def distance_to(traj: Trajectory, reference, *, model: str | None = None) -> np.ndarray:
    r""":math:`\|\beta(t) - \beta_{\rm ref}\|_F`, shape ``(T,)``."""
    B = _flat(end_to_end(traj, model=model))
    ref = _reference(reference, B.shape[1:])
    return np.linalg.norm(B - ref[None, :], axis=1)


def _unit(B):
    nb = np.linalg.norm(B, axis=-1, keepdims=True)
    if np.any(nb == 0):
        raise ValueError("the end-to-end map is zero at some time: its direction is undefined. "
                         "Drop the times where it vanishes (e.g. the zero initialisation).")
    return B / nb


def direction_error(traj: Trajectory, reference, *, model: str | None = None) -> np.ndarray:
    r""":math:`\|\beta/\|\beta\| - \beta_{\rm ref}/\|\beta_{\rm ref}\|\|_2`, shape ``(T,)``.

    The quantity of Soudry et al. 2018 (Theorem 3): :math:`O(1/\log t)` for gradient flow on
    separable data with :math:`\beta_{\rm ref} = \hat w` the SVM solution.
    """
    B = _unit(_flat(end_to_end(traj, model=model)))
    ref = _unit(_reference(reference, B.shape[1:])[None, :])
    return np.linalg.norm(B - ref, axis=1)


def angle_to(traj: Trajectory, reference, *, model: str | None = None) -> np.ndarray:
    r"""Angle (radians) between :math:`\beta(t)` and the reference, shape ``(T,)``.

    Computed as :math:`2\,\mathrm{atan2}(\|a - b\|, \|a + b\|)` for unit vectors a, b, accurate
    at tiny angles (unlike arccos of the cosine).
    """
    B = _unit(_flat(end_to_end(traj, model=model)))
    ref = _unit(_reference(reference, B.shape[1:])[None, :])
    return 2.0 * np.arctan2(np.linalg.norm(B - ref, axis=1), np.linalg.norm(B + ref, axis=1))


def effective_rank(M) -> float:
    r"""Effective rank of a matrix (Roy & Vetterli 2007): :math:`\exp(-\sum_i p_i\log p_i)`,
    :math:`p_i = \sigma_i / \sum_j\sigma_j`; equals the rank for equal nonzero singular values."""
    M = as_float_array(M, "M", ndim=2)
    s = np.linalg.svd(M, compute_uv=False)
    total = s.sum()
    if total == 0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))
