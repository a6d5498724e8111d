"""Bias-free positively homogeneous multilayer perceptrons (docs/theory.md §1, §7).

The network is

.. math::

    f(\\theta; x) = W_L\\, \\sigma(W_{L-1} \\cdots \\sigma(W_1 x)), \\qquad
    \\theta = (W_1, \\dots, W_L),\\; W_l \\in \\mathbb{R}^{d_l \\times d_{l-1}},\\; d_L = K,

with :math:`\\sigma` the ReLU, the LeakyReLU of slope :math:`\\alpha` or the identity, and
``K = 1`` output (binary labels ±1) or ``K`` class scores (labels ``0…K−1``, Lyu & Li's
multi-class margin ``f_y − max_{j≠y} f_j``; gradients of ``uᵀ f`` through ``cotangent=``).
Every such network is positively homogeneous of degree :math:`L`
(``f(cθ; x) = c^L f(θ; x)`` for ``c > 0``; Lyu & Li 2019, §3), which is what the margin theory of
:mod:`solvers.nets` and the KKT check rely on.

Everything here is plain numpy and vectorised over examples: the forward pass, the per-example
gradients ``∂f(x_i)/∂θ`` (one backward pass for all examples, written straight into the output
``(n, P)`` array block by block) and the matrix-free products ``J v`` and ``Jᵀ u`` that never form
the ``(n, P)`` Jacobian.

Derivative convention at a kink: ``σ'(0) := 0`` for ReLU and ``σ'(0) := α`` for LeakyReLU (the
left derivative, as PyTorch does). This is ONE element of the Clarke interval (``[0, 1]``,
``[α, 1]``); a KKT check must let the derivative of near-kink pairs (see
:meth:`HomogeneousMLP.kinks`) range over the whole interval, which the ``slopes=`` argument of the
gradient methods allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._validation import check_X
from ..tolerances import TOLERANCES

__all__ = ["ACTIVATIONS", "HomogeneousMLP"]

ACTIVATIONS = ("relu", "leaky_relu", "linear")

# Intermediate arrays of one chunk of the backward pass are kept below this many float64 entries
# (≈ 64 MiB); the (n, P) output itself is the caller's to size.
_CHUNK_ENTRIES = 8_000_000


@dataclass(frozen=True, eq=False)
class HomogeneousMLP:
    """A bias-free ReLU / LeakyReLU / linear MLP, homogeneous of degree ``L``.

    Parameters
    ----------
    weights : sequence of ndarray
        ``(W_1, ..., W_L)``; ``W_l`` has shape ``(d_l, d_{l-1})`` (PyTorch's ``Linear.weight``
        layout: rows are output units) and ``W_L`` has shape ``(K, d_{L-1})``: ``K = 1`` for a
        scalar output (binary labels ±1), ``K`` class scores otherwise. Stored as read-only
        float64 copies.
    activation : {'relu', 'leaky_relu', 'linear'}
        The activation ``σ`` applied after every layer but the last.
    alpha : float
        LeakyReLU slope, ``0 <= alpha < 1``; must be 0 for ``'relu'`` and ``'linear'``.

    Notes
    -----
    ``f(x) = W_L σ(W_{L-1} ⋯ σ(W_1 x))``, degree ``L = len(weights)``. The flat parameter vector
    ``θ`` (:meth:`flat`) is the concatenation of ``W_1.ravel(), ..., W_L.ravel()`` (C order), with
    named blocks ``'W1', ..., 'WL'``. At a kink ``σ'(0) := 0`` (ReLU) or ``α`` (LeakyReLU).

    Equality is identity (``eq=False``): compare networks with
    ``np.array_equal(a.flat(), b.flat())``.

    Examples
    --------
    >>> import numpy as np
    >>> net = HomogeneousMLP((np.array([[1.0, 0.0], [0.0, -1.0]]), np.array([[1.0, 1.0]])))
    >>> net.degree, net.n_params, net.block_names
    (2, 6, ('W1', 'W2'))
    >>> net.forward(np.array([[2.0, -3.0]])).tolist()
    [5.0]
    """

    weights: tuple[np.ndarray, ...]
    activation: str = "relu"
    alpha: float = 0.0

    # ------------------------------------------------------------------ construction
    def __post_init__(self):
        act = self.activation
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {ACTIVATIONS}; got {act!r}. Other activations are not "
                f"positively homogeneous (use 'relu', 'leaky_relu' with alpha=..., or 'linear')."
            )
        try:
            alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise TypeError(f"alpha must be a real number; got {self.alpha!r}.") from None
        if act == "leaky_relu":
            if not (0.0 <= alpha < 1.0):
                raise ValueError(
                    f"alpha must satisfy 0 <= alpha < 1 for 'leaky_relu'; got {alpha!r}. "
                    f"Use the negative slope of the LeakyReLU, e.g. alpha=0.01."
                )
        elif alpha != 0.0:
            raise ValueError(
                f"alpha must be 0 for activation={act!r}; got {alpha!r}. "
                f"Use activation='leaky_relu' for a nonzero negative slope."
            )
        object.__setattr__(self, "alpha", alpha)

        ws = self.weights
        if isinstance(ws, np.ndarray) or not isinstance(ws, Sequence) or len(ws) == 0:
            raise ValueError(
                f"weights must be a non-empty sequence (W_1, ..., W_L) of 2-D arrays; got "
                f"{type(ws).__name__}. Pass e.g. (W1, W2) with W1 of shape (width, d)."
            )
        checked = []
        for l, W in enumerate(ws, start=1):
            try:
                a = np.array(W, dtype=np.float64, copy=True)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"weights[{l - 1}] (W{l}) must be a real numeric array; got "
                    f"{type(W).__name__} ({exc})."
                ) from exc
            if a.ndim != 2:
                raise ValueError(
                    f"weights[{l - 1}] (W{l}) must be 2-D of shape (d_{l}, d_{l - 1}); got shape "
                    f"{a.shape}. Reshape it, e.g. w.reshape(1, -1) for a linear model's last layer."
                )
            if a.size == 0:
                raise ValueError(f"weights[{l - 1}] (W{l}) is empty (shape {a.shape}).")
            if not np.all(np.isfinite(a)):
                bad = int(a.size - np.count_nonzero(np.isfinite(a)))
                raise ValueError(
                    f"weights[{l - 1}] (W{l}) contains {bad} non-finite value(s) (NaN or inf); "
                    f"the network is undefined. Check the training run that produced it."
                )
            if checked and a.shape[1] != checked[-1].shape[0]:
                raise ValueError(
                    f"weights[{l - 1}] (W{l}) has shape {a.shape} but W{l - 1} has "
                    f"{checked[-1].shape[0]} output rows; W_l must have shape (d_l, d_{{l-1}}) "
                    f"with d_{{l-1}} = rows of W_{{l-1}}. Check the layer order and transpose "
                    f"(rows are output units, as in torch.nn.Linear.weight)."
                )
            a.setflags(write=False)
            checked.append(a)
        object.__setattr__(self, "weights", tuple(checked))

    @classmethod
    def random(cls, sizes: Sequence[int], *, activation: str = "relu", alpha: float = 0.0,
               scale: float = 1.0, rng: np.random.Generator | None = None,
               seed: int | None = None) -> HomogeneousMLP:
        """A network with He-scaled Gaussian weights ``W_l ~ scale · N(0, 2/d_{l-1})``.

        Parameters
        ----------
        sizes : sequence of int
            ``(d_0, d_1, ..., d_{L-1}, 1)``: input dimension, hidden widths, and the output 1.
        activation, alpha
            As in the constructor.
        scale : float
            Multiplier of the He standard deviation (small ``scale`` = small initialisation).
        rng, seed
            A ``numpy.random.Generator`` or a seed for a new one (exactly one may be given; neither
            means a fresh unseeded generator).
        """
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(
                f"sizes must be (d_0, ..., K) with at least two positive entries (K = 1 for one "
                f"output); got {sizes}."
            )
        if rng is not None and seed is not None:
            raise ValueError("pass either rng or seed, not both.")
        gen = rng if rng is not None else np.random.default_rng(seed)
        ws = tuple(gen.standard_normal((sizes[l + 1], sizes[l])) * (scale * np.sqrt(2.0 / sizes[l]))
                   for l in range(len(sizes) - 1))
        return cls(ws, activation=activation, alpha=alpha)

    # ------------------------------------------------------------------ structure
    @property
    def degree(self) -> int:
        """The homogeneity degree ``L`` (number of weight matrices)."""
        return len(self.weights)

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(d_0, d_1, ..., d_L)`` with ``d_L = K`` (:attr:`n_outputs`)."""
        return (self.weights[0].shape[1],) + tuple(W.shape[0] for W in self.weights)

    @property
    def n_outputs(self) -> int:
        """``K``, the rows of ``W_L``: 1 for a binary classifier (labels ±1), ``K`` class scores
        for a multi-class one (labels 0…K−1; docs/theory.md §7)."""
        return int(self.weights[-1].shape[0])

    @property
    def n_params(self) -> int:
        """``P``, the total number of weights."""
        return int(sum(W.size for W in self.weights))

    @property
    def block_names(self) -> tuple[str, ...]:
        """``('W1', ..., 'WL')``, the names of the parameter blocks in :meth:`flat` order."""
        return tuple(f"W{l}" for l in range(1, self.degree + 1))

    @property
    def blocks(self) -> dict[str, tuple[int, int]]:
        """``{name: shape}`` of the parameter blocks, in :meth:`flat` order."""
        return {name: W.shape for name, W in zip(self.block_names, self.weights, strict=True)}

    @property
    def block_slices(self) -> dict[str, slice]:
        """``{name: slice}`` locating each block in the flat vector of length ``P``."""
        out, start = {}, 0
        for name, W in zip(self.block_names, self.weights, strict=True):
            out[name] = slice(start, start + W.size)
            start += W.size
        return out

    def flat(self) -> np.ndarray:
        """``θ`` of shape ``(P,)``: ``W_1.ravel(), ..., W_L.ravel()`` (C order) concatenated."""
        return np.concatenate([W.ravel() for W in self.weights])

    def unflatten(self, theta) -> tuple[np.ndarray, ...]:
        """Split a ``(P,)`` vector into blocks shaped like the weights (inverse of :meth:`flat`)."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.n_params,):
            raise ValueError(
                f"theta must have shape ({self.n_params},) (the network's n_params); got "
                f"{theta.shape}. Use net.flat() for the layout."
            )
        out, start = [], 0
        for W in self.weights:
            out.append(theta[start:start + W.size].reshape(W.shape))
            start += W.size
        return tuple(out)

    def with_flat(self, theta) -> HomogeneousMLP:
        """A new network with the same architecture and parameters ``theta`` of shape ``(P,)``."""
        return HomogeneousMLP(self.unflatten(theta), activation=self.activation, alpha=self.alpha)

    def with_weights(self, weights: Sequence[np.ndarray]) -> HomogeneousMLP:
        """A new network with the same activation and the given weights."""
        return HomogeneousMLP(tuple(weights), activation=self.activation, alpha=self.alpha)

    def to_dict(self) -> dict:
        """JSON-serialisable description: activation, alpha, sizes and the weights as lists."""
        return {"activation": self.activation, "alpha": self.alpha, "degree": self.degree,
                "sizes": list(self.sizes), "weights": [W.tolist() for W in self.weights]}

    # ------------------------------------------------------------------ activation
    def _sigma(self, z: np.ndarray) -> np.ndarray:
        if self.activation == "linear":
            return z
        if self.activation == "relu":
            return np.maximum(z, 0.0)
        return np.where(z > 0.0, z, self.alpha * z)

    def _dsigma(self, z: np.ndarray) -> np.ndarray:
        """``σ'(z)`` with ``σ'(0) := 0`` (ReLU) / ``α`` (LeakyReLU)."""
        if self.activation == "linear":
            return np.ones_like(z)
        low = 0.0 if self.activation == "relu" else self.alpha
        return np.where(z > 0.0, 1.0, low)

    @property
    def clarke_interval(self) -> tuple[float, float]:
        """The Clarke generalised derivative of ``σ`` at 0: ``(0, 1)``, ``(α, 1)`` or ``(1, 1)``."""
        if self.activation == "linear":
            return (1.0, 1.0)
        return (0.0 if self.activation == "relu" else self.alpha, 1.0)

    def _check_input(self, X, name: str = "X") -> np.ndarray:
        X = check_X(X, name)
        d0 = self.weights[0].shape[1]
        if X.shape[1] != d0:
            raise ValueError(
                f"{name} has {X.shape[1]} features (shape {X.shape}) but the network's first layer "
                f"W1 expects d_0 = {d0}; pass X of shape (n, {d0}) with one example per row."
            )
        return X

    def _check_slopes(self, slopes, n: int):
        if slopes is None:
            return None
        slopes = list(slopes)
        hidden = [W.shape[0] for W in self.weights[:-1]]
        if len(slopes) != len(hidden):
            raise ValueError(
                f"slopes must hold one (n, d_l) array per hidden layer ({len(hidden)}); got "
                f"{len(slopes)}."
            )
        out = []
        for l, (s, dl) in enumerate(zip(slopes, hidden, strict=True), start=1):
            s = np.asarray(s, dtype=np.float64)
            if s.shape != (n, dl):
                raise ValueError(
                    f"slopes[{l - 1}] must have shape ({n}, {dl}) (examples × units of layer {l}); "
                    f"got {s.shape}."
                )
            out.append(s)
        return out

    # ------------------------------------------------------------------ forward
    def forward_pass(self, X, *, validate: bool = True):
        """The stored forward pass: activations ``[h_0 = X, h_1, ..., h_{L-1}]`` (``h_l`` of
        shape ``(n, d_l)``) and pre-activations ``[z_1, ..., z_{L-1}]``; the output is
        ``h_{L-1} @ W_L.T``.

        ``validate=False`` skips the input check, for callers (training loops) that validated
        ``X`` once already.
        """
        if validate:
            X = self._check_input(X)
        return self._forward_all(X)

    def _forward_all(self, X: np.ndarray):
        """Activations ``h_0 = X, h_1, ..., h_{L-1}`` and pre-activations ``z_1..z_{L-1}``."""
        hs, zs = [X], []
        h = X
        for W in self.weights[:-1]:
            z = h @ W.T
            zs.append(z)
            h = self._sigma(z)
            hs.append(h)
        return hs, zs

    def forward(self, X) -> np.ndarray:
        """``f(θ; x_i)`` for every row of ``X`` of shape ``(n, d_0)``; returns shape ``(n,)`` for
        one output, ``(n, K)`` for ``K > 1`` outputs (:meth:`outputs` is always ``(n, K)``)."""
        out = self.outputs(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def outputs(self, X) -> np.ndarray:
        """The ``K`` outputs ``f_k(θ; x_i)``, shape ``(n, K)`` (also for ``K = 1``)."""
        X = self._check_input(X)
        h = X
        for W in self.weights[:-1]:
            h = self._sigma(h @ W.T)
        return h @ self.weights[-1].T

    __call__ = forward

    def preactivations(self, X) -> list[np.ndarray]:
        """``[z_1, ..., z_{L-1}]``, ``z_l`` of shape ``(n, d_l)``, ``z_l = h_{l-1} W_lᵀ``."""
        X = self._check_input(X)
        return self._forward_all(X)[1]

    def activation_slopes(self, X) -> list[np.ndarray]:
        """``[σ'(z_1), ..., σ'(z_{L-1})]`` with the kink convention of this module, ``(n, d_l)``."""
        return [self._dsigma(z) for z in self.preactivations(X)]

    def kinks(self, X, *, rtol: float = TOLERANCES.kink_rtol) -> list[np.ndarray]:
        """Boolean masks ``(n, d_l)`` of the (example, unit) pairs at a kink, one per hidden layer.

        A pair is at a kink when ``|z_l[i, j]| <= rtol · max_k |z_l[i, k]|`` (relative to the
        example's largest pre-activation magnitude in that layer; an all-zero row is all kinks).
        Always all-False for ``activation='linear'`` (no kink).
        """
        rtol = float(rtol)
        if not (rtol >= 0.0):
            raise ValueError(f"rtol must be >= 0; got {rtol!r}.")
        return self._kink_masks(self.preactivations(X), rtol)

    def _kink_masks(self, zs: list[np.ndarray], rtol: float) -> list[np.ndarray]:
        """:meth:`kinks` from pre-activations already computed (no second forward pass)."""
        if self.activation == "linear":
            return [np.zeros(z.shape, dtype=bool) for z in zs]
        out = []
        for z in zs:
            a = np.abs(z)
            scale = a.max(axis=1, keepdims=True)
            out.append(a <= rtol * scale)
        return out

    # ------------------------------------------------------------------ derivatives
    def _check_cotangent(self, cotangent, n: int):
        """``(n, K)`` output weights ``u`` (the gradients are those of ``uᵀ f``), or None: all
        ones, allowed only for ``K = 1``."""
        K = self.n_outputs
        if cotangent is None:
            if K != 1:
                raise ValueError(
                    f"cotangent is required for a network with K={K} outputs: pass an (n, {K}) "
                    f"array u so that the gradients are those of u_iᵀ f(x_i) (e.g. e_y − e_j for "
                    f"the margin of class y over class j).")
            return None
        u = np.asarray(cotangent, dtype=np.float64)
        if u.shape != (n, K):
            raise ValueError(f"cotangent must have shape ({n}, {K}) (examples × outputs); got "
                             f"{u.shape}.")
        return u

    def _deltas(self, X: np.ndarray, slopes, cotangent=None):
        """``h_0..h_{L-1}`` and ``δ_l = ∂(uᵀf)/∂z_l`` (``δ_L = u``, default 1), ``(n, d_l)``."""
        hs, zs = self._forward_all(X)
        ds = slopes if slopes is not None else [self._dsigma(z) for z in zs]
        n = X.shape[0]
        deltas = [None] * self.degree
        delta = np.ones((n, 1)) if cotangent is None else cotangent
        deltas[-1] = delta
        for l in range(self.degree - 1, 0, -1):  # hidden layer l (1-based) has index l-1
            delta = (delta @ self.weights[l]) * ds[l - 1]
            deltas[l - 1] = delta
        return hs, deltas

    def deltas(self, X, *, slopes=None, cotangent=None) -> list[np.ndarray]:
        """``[δ_1, ..., δ_L]``: ``δ_l = ∂f/∂z_l`` of shape ``(n, d_l)``, ``δ_L = 1`` (``(n, 1)``).

        The backward pass behind :meth:`per_example_gradients` (``∂f/∂W_l = δ_l h_{l-1}ᵀ``), with
        the same ``slopes`` and ``cotangent`` (then ``f`` reads ``uᵀf``, ``δ_L = u``);
        ``δ_{l+1} W_{l+1}`` is ``∂f/∂h_l``.
        """
        X = self._check_input(X)
        slopes = self._check_slopes(slopes, X.shape[0])
        u = self._check_cotangent(cotangent, X.shape[0])
        return self._deltas(X, slopes, u)[1]

    def per_example_gradients(self, X, *, slopes=None, chunk_size: int | None = None,
                              out: np.ndarray | None = None, cotangent=None) -> np.ndarray:
        """The Jacobian ``J[i] = ∂f(θ; x_i)/∂θ``, shape ``(n, P)``, columns in :meth:`flat` order.

        .. math::

            \\frac{\\partial f(x_i)}{\\partial W_l[j, k]} = \\delta_l[i, j]\\, h_{l-1}[i, k],
            \\qquad \\delta_L = 1,\\; \\delta_{l} = (\\delta_{l+1} W_{l+1}) \\odot \\sigma'(z_l).

        One vectorised backward pass over a chunk of examples; each block is written straight
        into the output as a broadcast outer product (no Python loop over examples).

        Parameters
        ----------
        X : array_like of shape (n, d_0)
        slopes : list of ndarray of shape (n, d_l), optional
            Override ``σ'(z_l)`` (e.g. a Clarke choice in the kink interval). Default: the module's
            convention ``σ'(0) := 0`` (ReLU) / ``α`` (LeakyReLU).
        chunk_size : int, optional
            Examples per backward pass (default: bounded so intermediates stay ≈ 64 MiB).
        out : ndarray of shape (n, P), float64, optional
            Preallocated output.
        cotangent : ndarray of shape (n, K), optional
            Output weights ``u``: row ``i`` is then ``∂(u_iᵀ f(x_i))/∂θ`` (required when
            ``K > 1``; e.g. ``u_i = e_{y_i} − e_j`` gives the gradient of a multi-class margin).
        """
        X = self._check_input(X)
        n = X.shape[0]
        slopes = self._check_slopes(slopes, n)
        u = self._check_cotangent(cotangent, n)
        P = self.n_params
        if out is None:
            out = np.empty((n, P))
        elif out.shape != (n, P) or out.dtype != np.float64:
            raise ValueError(f"out must be a float64 array of shape ({n}, {P}); got "
                             f"{out.dtype} {out.shape}.")
        width = max(self.sizes)
        if chunk_size is None:
            chunk_size = max(1, _CHUNK_ENTRIES // max(1, width * self.degree))
        chunk_size = int(chunk_size)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int; got {chunk_size}.")
        offsets = np.cumsum([0] + [W.size for W in self.weights])
        for a in range(0, n, chunk_size):
            b = min(n, a + chunk_size)
            sl = None if slopes is None else [s[a:b] for s in slopes]
            hs, deltas = self._deltas(X[a:b], sl, None if u is None else u[a:b])
            for l, W in enumerate(self.weights):
                view = out[a:b, offsets[l]:offsets[l + 1]].reshape(b - a, W.shape[0], W.shape[1])
                np.multiply(deltas[l][:, :, None], hs[l][:, None, :], out=view)
        return out

    def jvp(self, X, v, *, slopes=None) -> np.ndarray:
        """``J v`` of shape ``(n,)`` (``(n, K)`` for ``K > 1`` outputs) for ``v`` of shape ``(P,)``,
        by forward-mode differentiation.

        Never forms ``J``: ``ż_l = ḣ_{l-1} W_lᵀ + h_{l-1} V_lᵀ``, ``ḣ_l = σ'(z_l) ⊙ ż_l``.
        """
        X = self._check_input(X)
        slopes = self._check_slopes(slopes, X.shape[0])
        Vs = self.unflatten(np.asarray(v, dtype=np.float64))
        h, hdot = X, np.zeros_like(X)
        for l, (W, V) in enumerate(zip(self.weights[:-1], Vs[:-1], strict=True)):
            z = h @ W.T
            zdot = hdot @ W.T + h @ V.T
            s = self._dsigma(z) if slopes is None else slopes[l]
            h, hdot = self._sigma(z), s * zdot
        WL, VL = self.weights[-1], Vs[-1]
        out = hdot @ WL.T + h @ VL.T
        return out[:, 0] if out.shape[1] == 1 else out

    def vjp(self, X, u, *, slopes=None) -> np.ndarray:
        """``Jᵀ u = Σ_i ∂(u_iᵀ f(x_i))/∂θ`` of shape ``(P,)`` for ``u`` of shape ``(n,)``
        (``(n, K)`` for ``K > 1`` outputs), by backprop.

        Never forms ``J``: block ``l`` is ``(u ⊙ δ_l)ᵀ h_{l-1}``.
        """
        X = self._check_input(X)
        n = X.shape[0]
        u = np.asarray(u, dtype=np.float64)
        K = self.n_outputs
        if u.shape != ((n,) if K == 1 else (n, K)):
            want = f"({n},) (one weight per example)" if K == 1 else f"({n}, {K}) (per output)"
            raise ValueError(f"u must have shape {want}; got {u.shape}.")
        slopes = self._check_slopes(slopes, n)
        hs, zs = self._forward_all(X)
        return self._vjp_from(hs, zs, u, slopes)

    def _vjp_from(self, hs, zs, u, slopes=None) -> np.ndarray:
        """``Jᵀ u`` given the stored forward pass (``hs``, ``zs`` of :meth:`_forward_all`)."""
        ds = slopes if slopes is not None else [self._dsigma(z) for z in zs]
        grads = [None] * self.degree
        delta = u[:, None] if u.ndim == 1 else u
        for l in range(self.degree - 1, -1, -1):
            grads[l] = delta.T @ hs[l]
            if l > 0:
                delta = (delta @ self.weights[l]) * ds[l - 1]
        return np.concatenate([g.ravel() for g in grads])
