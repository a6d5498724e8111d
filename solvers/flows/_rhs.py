r"""Hand-written vectorised numpy right-hand sides of the gradient flows
(docs/theory.md §1–3, §8, §9).

Every model here is a *linear predictor* :math:`f(\theta; x) = \beta(\theta)\, x` whose end-to-end
map :math:`\beta(\theta)` is a product structure (identity, chain, deep product, diagonal
squares). A flow is therefore computed in two steps (the structural chain rule of issue 3):

1. an **objective** gives :math:`G = \partial\mathcal L/\partial\beta` at :math:`\beta(\theta)`
   (squared loss as a mean, exp/logistic losses as a sum and in the log domain via
   :func:`solvers.losses.loss_weights`, matrix-sensing squared loss);
2. a **parametrisation** pulls :math:`G` back to the parameter blocks,
   :math:`\nabla_\theta \mathcal L = (\partial\beta/\partial\theta)^\top G`; for a deep linear net
   :math:`\nabla_{W_l}\mathcal L = (W_L\cdots W_{l+1})^\top G\, (W_{l-1}\cdots W_1)^\top`
   (docs/theory.md §2), computed with one forward and one backward sweep of products.

Flat-state layout: parameter blocks in order, each raveled in C order (see
:mod:`solvers.flows`). Factories (keyword-only configuration):

- :func:`linear_flow`, :func:`chain_flow`, :func:`deep_linear_flow`, :func:`diagonal_flow`,
  :func:`sensing_flow` -- gradient flow
  :math:`\dot\theta = -\nabla\mathcal L(\theta) - \lambda\theta`;
- :func:`minnorm_flow` -- the primal--dual Minnorm flow of Bansal et al. 2018 (docs/theory.md §8);
- :func:`normalized_flow` -- gradient flow of :math:`\Phi(\rho, v) = \mathcal L(\rho v)` with
  :math:`v` on the unit sphere (the normalised dynamics of Banburski et al. 2019,
  docs/theory.md §9);
- :func:`polar_flow` -- plain gradient flow written in polar coordinates :math:`\theta = \rho v`
  (same trajectory as :func:`linear_flow` & co.; its direction moves :math:`\rho^2` times slower
  than the normalised flow's, docs/theory.md §9).

Model names and block names are those of :mod:`theory` (see :mod:`solvers.flows._models`): a
compiled symbolic flow and its twin here have the same ``blocks``, ``pack`` and ``unpack``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit

from .._validation import as_float_array, check_labels, check_targets, check_X
from ..losses import CLASSIFICATION_LOSSES, log_loss
from ._models import MULTIPLIER, RADIUS, canonical_model, pack_arguments
from ._trajectory import normalise_blocks, pack_state, unpack_state

__all__ = [
    "FlowRHS",
    "GradientFlowRHS",
    "MinnormRHS",
    "NormalizedRHS",
    "PolarRHS",
    "linear_flow",
    "chain_flow",
    "deep_linear_flow",
    "diagonal_flow",
    "sensing_flow",
    "minnorm_flow",
    "normalized_flow",
    "polar_flow",
    "balanced_init",
]

LOSSES = ("squared",) + CLASSIFICATION_LOSSES


# =============================================================================================
# Objectives: β -> 𝓛(β), G = ∂𝓛/∂β, constraint residuals and multiplier maps (for Minnorm).
# =============================================================================================

class _Regression:
    """``𝓛(β) = (1/2n) Σ_i ||β x_i − y_i||²`` with β of shape (d,) (y (n,)) or (k, d) (y (n, k))."""

    kind = "regression"

    def __init__(self, X, Y):
        self.X = check_X(X)
        n, d = self.X.shape
        self.Y = check_targets(Y, n)
        self.n = n
        self.beta_shape = (d,) if self.Y.ndim == 1 else (self.Y.shape[1], d)
        self.Sxx = self.X.T @ self.X / n                       # (d, d)
        self.Syx = (self.Y.T @ self.X) / n                     # (d,) or (k, d)
        self.mult_shape = self.Y.shape

    def predict(self, beta):
        return self.X @ beta.T if beta.ndim == 2 else self.X @ beta

    def grad(self, beta):
        # ∂/∂β (1/2n)||Xβᵀ − Y||² = β Σxx − Σyx (Σxx = XᵀX/n, Σyx = YᵀX/n)
        return beta @ self.Sxx - self.Syx

    def value(self, beta):
        r = self.predict(beta) - self.Y
        return 0.5 * float(np.sum(r * r)) / self.n

    def constraint(self, beta):
        """c_i = y_i − f_i (zero at interpolation)."""
        return self.Y - self.predict(beta)

    def multiplier_map(self, lam):
        """Σ_i λ_i ∂f_i/∂β = Σ_i λ_i x_i (shape of β)."""
        return lam.T @ self.X if lam.ndim == 2 else self.X.T @ lam


class _Classification:
    """``𝓛(β) = Σ_i ℓ(y_i ⟨β, x_i⟩)`` (a sum, docs/theory.md §0), in the log domain."""

    kind = "classification"

    def __init__(self, X, y, loss):
        self.X = check_X(X)
        n, d = self.X.shape
        self.y = check_labels(y, n)
        self.loss = loss
        self.n = n
        self.beta_shape = (d,)
        self.Xy = self.X * self.y[:, None]                     # rows y_i x_i
        self.mult_shape = (n,)

    def margins(self, beta):
        return self.Xy @ beta

    def weights(self, beta):
        """``(e, m)`` with ``−ℓ'(q_i) = exp(m) e_i``, ``max_i e_i = 1``: the shift trick of
        :func:`solvers.losses.loss_weights` (same weights up to the normalisation ``Σ e_i``),
        without scipy's ``logsumexp`` overhead on the hot path."""
        q = self.margins(beta)
        log_neg = -q if self.loss == "exp" else log_expit(-q)
        m = float(log_neg.max())
        return np.exp(log_neg - m), m

    def grad(self, beta):
        # ∇𝓛 = Σ ℓ'(q_i) y_i x_i = −exp(m) Σ e_i y_i x_i, never forming the tiny ℓ' (log domain).
        e, m = self.weights(beta)
        return -np.exp(m) * (e @ self.Xy)

    def hessian(self, beta):
        # ∇²𝓛 = Σ ℓ''(q_i) x_i x_iᵀ; ℓ''(q) = e^{-q} (exp) or σ(q)σ(−q) (logistic), log domain.
        q = self.margins(beta)
        log_h = -q if self.loss == "exp" else log_expit(q) + log_expit(-q)
        m = float(log_h.max())
        h = np.exp(log_h - m)
        return np.exp(m) * (self.X.T * h) @ self.X

    def value(self, beta):
        return float(np.exp(log_loss(self.margins(beta), self.loss)))

    def log_value(self, beta):
        return log_loss(self.margins(beta), self.loss)

    def constraint(self, beta):
        """c_i = 1 − q_i (≤ 0 when the margin constraint holds)."""
        return 1.0 - self.margins(beta)

    def multiplier_map(self, lam):
        """Σ_i λ_i ∂q_i/∂β = Σ_i λ_i y_i x_i."""
        return lam @ self.Xy


class _Sensing:
    """Matrix sensing ``𝓛(W) = (1/2n) Σ_i (⟨A_i, W⟩ − y_i)²`` with A of shape (n, k, d)."""

    kind = "regression"

    def __init__(self, A, y):
        self.A = as_float_array(A, "A", ndim=3)
        n, k, d = self.A.shape
        self.y = as_float_array(y, "y", ndim=1)
        if self.y.shape[0] != n:
            raise ValueError(f"y has {self.y.shape[0]} entries but A has {n} measurements; "
                             f"pass one target per measurement matrix.")
        self.n = n
        self.beta_shape = (k, d)
        self.Aflat = self.A.reshape(n, k * d)
        self.mult_shape = (n,)

    def predict(self, beta):
        return self.Aflat @ beta.ravel()

    def grad(self, beta):
        r = (self.predict(beta) - self.y) / self.n
        return (r @ self.Aflat).reshape(self.beta_shape)

    def value(self, beta):
        r = self.predict(beta) - self.y
        return 0.5 * float(r @ r) / self.n

    def constraint(self, beta):
        return self.y - self.predict(beta)

    def multiplier_map(self, lam):
        return (lam @ self.Aflat).reshape(self.beta_shape)


def _objective(X, y, loss):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}.")
    return _Regression(X, y) if loss == "squared" else _Classification(X, y, loss)


# =============================================================================================
# Parametrisations: θ (blocks) -> β(θ), and the pull-back (∂β/∂θ)ᵀ G.
# =============================================================================================

class _Identity:
    name = "linear"

    def __init__(self, beta_shape):
        self.blocks = {"w": tuple(beta_shape)}
        self.beta_shape = tuple(beta_shape)

    def end_to_end(self, p):
        return p["w"]

    def pullback(self, p, G):
        return [G]


class _Chain:
    """``β = a_L ⋯ a_2 · w`` with ``w`` (d,) and the scalar blocks ``a2, ..., aL`` (shape ())."""

    name = "linear_chain"

    def __init__(self, d, depth):
        self._names = tuple(f"a{l}" for l in range(2, depth + 1))
        self.blocks = {"w": (d,), **{k: () for k in self._names}}
        self.beta_shape = (d,)

    @staticmethod
    def _others(a):
        # Π_{j≠l} a_j without dividing by a_l (prefix and suffix products).
        pre = np.concatenate(([1.0], np.cumprod(a[:-1])))
        suf = np.concatenate((np.cumprod(a[::-1][:-1])[::-1], [1.0]))
        return pre * suf

    def _a(self, p):
        return np.array([p[k] for k in self._names], dtype=np.float64)

    def end_to_end(self, p):
        return np.prod(self._a(p)) * p["w"]

    def pullback(self, p, G):
        a = self._a(p)
        return [np.prod(a) * G, *(self._others(a) * float(p["w"] @ G))]


class _Deep:
    """``β = W_L ⋯ W_1`` with ``W_l`` of shape (d_l, d_{l−1})."""

    name = "deep_linear"

    def __init__(self, widths):
        self.widths = tuple(int(w) for w in widths)
        self.L = len(self.widths) - 1
        self.blocks = {f"W{l}": (self.widths[l], self.widths[l - 1]) for l in range(1, self.L + 1)}
        self.beta_shape = (self.widths[-1], self.widths[0])

    def _prefix(self, Ws):
        P = [Ws[0]]
        for W in Ws[1:]:
            P.append(W @ P[-1])
        return P                                              # P[l-1] = W_l ⋯ W_1

    def end_to_end(self, p):
        return self._prefix([p[k] for k in self.blocks])[-1]

    def pullback(self, p, G):
        Ws = [p[k] for k in self.blocks]
        P = self._prefix(Ws[:-1]) if self.L > 1 else []
        out = [None] * self.L
        A = G                                                 # A_l = (W_L ⋯ W_{l+1})ᵀ G
        for l in range(self.L - 1, -1, -1):                   # 0-based layer index
            out[l] = A @ P[l - 1].T if l > 0 else A
            if l > 0:
                A = Ws[l].T @ A
        return out


class _Diagonal:
    """``β = u ⊙ u − v ⊙ v``."""

    name = "diagonal"

    def __init__(self, d):
        self.blocks = {"u": (d,), "v": (d,)}
        self.beta_shape = (d,)

    def end_to_end(self, p):
        return p["u"] ** 2 - p["v"] ** 2

    def pullback(self, p, G):
        return [2.0 * p["u"] * G, -2.0 * p["v"] * G]


# =============================================================================================
# Right-hand sides.
# =============================================================================================

class FlowRHS:
    """Base of the hand-written right-hand sides: layout helpers shared by all flows.

    Attributes
    ----------
    blocks : dict
        Ordered name -> shape of the flat state.
    model : str
        ``'linear'``, ``'linear_chain'``, ``'deep_linear'`` or ``'diagonal'`` (the names of
        ``theory``'s ``Model.name``).
    loss : str
        ``'squared'``, ``'exp'``, ``'logistic'`` or ``'sensing'``.
    """

    blocks: dict
    model: str
    loss: str

    def pack(self, values=None, /, **arrays) -> np.ndarray:
        """Flat state ``(N,)`` from named blocks: ``flow.pack(w=w0)`` or ``flow.pack({"w": w0})``.

        The same convention as ``theory``'s compiled flows. Old names still accepted:
        ``a=`` (vector) for the chain scalars ``a2, ..., aL``; ``lambda`` for ``mu``
        (deprecated).
        """
        return pack_state(self.blocks, pack_arguments(self.blocks, values, arrays))

    def unpack(self, y) -> dict[str, np.ndarray]:
        """Named blocks (copies) of a flat state ``(N,)`` or a stack ``(T, N)``."""
        return {k: np.array(v) for k, v in unpack_state(self.blocks, y).items()}

    @property
    def size(self) -> int:
        """N, the length of the flat state."""
        n = self.__dict__.get("_size_cache")
        if n is None:
            n = self.__dict__["_size_cache"] = int(sum(np.prod(s) for s in self.blocks.values()))
        return n

    def _split(self, y):
        """Named views of a flat state (precomputed slices: no layout checks on the hot path)."""
        cache = self.__dict__.get("_slices_cache")
        if cache is None:
            cache, start = [], 0
            for name, shape in self.blocks.items():
                size = int(np.prod(shape))
                cache.append((name, start, start + size, shape))
                start += size
            self.__dict__["_slices_cache"] = cache
        return {name: y[a:b].reshape(shape) for name, a, b, shape in cache}

    def _theta(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or y.shape[0] != self.size:
            raise ValueError(f"state has shape {y.shape}; this flow's state is ({self.size},) "
                             f"with blocks {self.blocks}.")
        return y

    def _beta(self, p):
        return self._param.end_to_end(p).reshape(self._obj.beta_shape)

    def _grad_theta(self, p):
        """∇_θ 𝓛 as a list of blocks (parameter blocks only)."""
        G = self._obj.grad(self._beta(p)).reshape(self._param.beta_shape)
        return self._param.pullback(p, G)

    def end_to_end(self, y) -> np.ndarray:
        """The end-to-end map β(θ) of a flat state, shape (d,) or (k, d)."""
        return self._beta(unpack_state(self.blocks, self._theta(y)))

    def loss_value(self, y) -> float:
        """𝓛(θ) at a flat state (may underflow to 0 for classification: see :meth:`log_loss`)."""
        return self._obj.value(self.end_to_end(y))

    def log_loss(self, y) -> float:
        """log 𝓛(θ), exact in the late phase of classification."""
        if self._obj.kind == "classification":
            return self._obj.log_value(self.end_to_end(y))
        return float(np.log(self.loss_value(y)))


def _make_param(model, d, k, *, depth=None, widths=None):
    model = canonical_model(model)
    if model == "linear":
        return _Identity((d,) if k is None else (k, d))
    if model == "linear_chain":
        if k is not None:
            raise ValueError("model='linear_chain' has a scalar output; pass 1-D targets y of "
                             "shape (n,).")
        if depth is None or int(depth) < 2:
            raise ValueError(f"depth must be an integer >= 2 for a linear chain; got {depth!r}.")
        return _Chain(d, int(depth))
    if model == "deep_linear":
        if widths is None or len(widths) < 2:
            raise ValueError(f"widths must list (d_0, ..., d_L) with L >= 1; got {widths!r}.")
        widths = tuple(int(w) for w in widths)
        if any(w < 1 for w in widths):
            raise ValueError(f"widths must be positive; got {widths!r}.")
        out = 1 if k is None else k
        if widths[0] != d or widths[-1] != out:
            raise ValueError(
                f"widths={widths} must start with the input dimension d = {d} and end with the "
                f"output dimension {out}; pass widths=({d}, ..., {out})."
            )
        return _Deep(widths)
    if model == "diagonal":
        if k is not None:
            raise ValueError("model='diagonal' has a scalar output; pass y of shape (n,).")
        return _Diagonal(d)
    raise AssertionError(model)  # unreachable: canonical_model checked the name


def _check_nonneg(value, name):
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return value


class GradientFlowRHS(FlowRHS):
    r"""Gradient flow with weight decay, :math:`\dot\theta = -\nabla\mathcal L - \lambda\theta`.

    Build it with :func:`linear_flow`, :func:`chain_flow`, :func:`deep_linear_flow`,
    :func:`diagonal_flow` or :func:`sensing_flow`. Calling ``flow(t, y)`` returns the flat
    derivative of shape ``(N,)``; ``flow.jac(t, y)`` is available for the linear model
    (``flow.jac is None`` otherwise, and the implicit integrators use finite differences).
    """

    def __init__(self, param, objective, *, weight_decay=0.0, loss):
        self._param = param
        self._obj = objective
        self.blocks = normalise_blocks(param.blocks)
        self.model = param.name
        self.loss = loss
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")

    def __call__(self, t, y):
        y = self._theta(y)
        if self.model == "linear":                     # θ = β: skip the block machinery
            out = -self._obj.grad(y.reshape(self._obj.beta_shape)).ravel()
        else:
            parts = self._grad_theta(self._split(y))
            out = -np.concatenate([b.ravel() for b in parts])
        if self.weight_decay:
            out -= self.weight_decay * y
        return out

    @property
    def jac(self):
        """``jac(t, y) -> (N, N)`` for the linear model with 1-D targets, else ``None``."""
        if self.model != "linear" or len(self._param.beta_shape) != 1:
            return None
        return self._jac_linear

    def _jac_linear(self, t, y):
        y = self._theta(y)
        H = self._obj.Sxx if self._obj.kind == "regression" else self._obj.hessian(y)
        return -H - self.weight_decay * np.eye(y.size)


class MinnormRHS(FlowRHS):
    r"""The Minnorm primal--dual flow of Bansal, Advani, Cox, Saxe 2018 (docs/theory.md §8).

    For :math:`\min \tfrac12\|\theta\|^2` subject to :math:`c_i(\theta) \le 0` (classification,
    :math:`c_i = 1 - q_i`) or :math:`c_i(\theta) = 0` (regression, :math:`c_i = y_i - f_i`):

    .. math::

        \dot\theta = -\beta\,\theta + \sum_i \lambda_i^+ \nabla_\theta g_i(\theta), \qquad
        \dot\lambda_i = \alpha\, c_i(\theta),

    with :math:`g_i = q_i` (classification) or :math:`f_i` (regression). For classification the
    multipliers are projected onto :math:`\lambda \ge 0`: :math:`\dot\lambda_i = \alpha\max(c_i, 0)`
    whenever :math:`\lambda_i \le 0`, and :math:`\lambda^+ = \max(\lambda, 0)` enters the primal
    equation. Equilibria are KKT points of the min-norm problem. State: the parameter blocks, then
    the multiplier block ``"mu"`` of shape ``(n,)`` (or ``(n, k)`` for matrix targets), as in
    ``theory.derive_minnorm_flow`` (the block was named ``"lambda"`` before; ``pack`` still
    accepts that name, with a DeprecationWarning).

    ``penalty = ρ > 0`` replaces :math:`\lambda` by :math:`\lambda + \rho\, c(\theta)` in the
    primal equation (an augmented Lagrangian; same equilibria, since :math:`c = 0` there). This is
    a deviation from Bansal et al., needed beyond the linear model: on a linear chain the plain
    flow (``penalty=0``) linearises to an undamped oscillation at the minimum-norm interpolant
    (depth 2: :math:`\delta\dot r \propto \delta\lambda`, :math:`\delta\dot\lambda \propto
    -\delta r`), and for degree ≥ 3 the origin (where :math:`\nabla f = 0`) attracts whole
    regions of initialisations while :math:`\lambda` grows without bound. On the linear model the
    plain flow converges exponentially.

    The classification projection makes the right-hand side non-smooth at :math:`\lambda_i = 0`:
    integrate it with an explicit method (``method="DOP853"``); LSODA's stiff mode stalls on the
    kinks.
    """

    def __init__(self, param, objective, *, alpha=1.0, beta=1.0, penalty=0.0, loss):
        self._param = param
        self._obj = objective
        if MULTIPLIER in param.blocks:
            raise ValueError(f"a parameter block is named {MULTIPLIER!r}; rename it.")
        self.blocks = normalise_blocks(dict(param.blocks, **{MULTIPLIER: objective.mult_shape}))
        self.model = param.name
        self.loss = loss
        self.alpha = _check_nonneg(alpha, "alpha")
        self.beta = _check_nonneg(beta, "beta")
        self.penalty = _check_nonneg(penalty, "penalty")
        self._n_theta = int(sum(np.prod(s) for s in param.blocks.values()))

    def __call__(self, t, y):
        y = self._theta(y)
        p = self._split(y)
        lam = p[MULTIPLIER]
        beta_map = self._beta(p)
        c = self._obj.constraint(beta_map)
        if self._obj.kind == "classification":
            lam_pos = np.maximum(lam + self.penalty * c, 0.0)
            dlam = self.alpha * np.where(lam > 0, c, np.maximum(c, 0.0))
        else:
            lam_pos = lam + self.penalty * c
            dlam = self.alpha * c
        M = self._obj.multiplier_map(lam_pos).reshape(self._param.beta_shape)
        push = np.concatenate([b.ravel() for b in self._param.pullback(p, M)])
        dtheta = push - self.beta * y[: self._n_theta]
        return np.concatenate([dtheta, dlam.ravel()])

    jac = None


class _SphereRHS(FlowRHS):
    """Shared code of the flows in the coordinates :math:`\\theta = \\rho v`, :math:`\\|v\\| = 1`.

    State: the model's parameter blocks holding ``v`` (jointly of unit norm), then ``"rho"`` of
    shape ``()`` -- the layout of ``theory.derive_normalized_flow`` / ``derive_polar_flow``.
    """

    _clock = None   # the power of ρ multiplying v̇ = −ρ^clock (I − vvᵀ) ∇𝓛(ρv)

    def __init__(self, param, objective, *, loss):
        if RADIUS in param.blocks:
            raise ValueError(f"a parameter block is named {RADIUS!r}; rename it.")
        self._param = param
        self._obj = objective
        self.blocks = normalise_blocks(dict(param.blocks, **{RADIUS: ()}))
        self.model = param.name
        self.loss = loss

    def _theta_blocks(self, y):
        return unpack_state(self._param.blocks, y[-1] * y[:-1])

    def end_to_end(self, y):
        y = self._theta(y)
        return self._beta(self._theta_blocks(y))

    def __call__(self, t, y):
        y = self._theta(y)
        rho, v = y[-1], y[:-1]
        g = np.concatenate([np.ravel(b) for b in self._grad_theta(self._theta_blocks(y))])
        vg = float(v @ g)
        dv = -(rho ** self._clock) * (g - vg * v)
        return np.concatenate([dv, [-vg]])

    jac = None


class NormalizedRHS(_SphereRHS):
    r"""The normalised dynamics of Banburski et al. 2019 ("Theory III"; docs/theory.md §9).

    Gradient flow of :math:`\Phi(\rho, v) = \mathcal L(\rho v)` in :math:`\rho` and, on the
    unit sphere, in :math:`v` (the weight-normalisation / Lagrange-multiplier dynamics; ``v``
    ranges over all parameter blocks jointly):

    .. math::

        \dot\rho = -\langle v, g\rangle, \qquad
        \dot v = -(I - v v^\top)\,\nabla_v\Phi = -\rho\,(I - v v^\top)\, g, \qquad
        g = \nabla\mathcal L(\rho v).

    Not a reparametrisation of plain gradient flow: :math:`\dot\rho` is that of gradient flow
    but :math:`v` moves :math:`\rho^2` times faster than in :class:`PolarRHS` (which is). The
    margin statements of Banburski et al. are about the limit of this flow.
    :math:`\|v\|` is conserved exactly by the flow (:math:`\tfrac{d}{dt}\|v\|^2 = 0`);
    numerically it drifts at the integrator's tolerance. State: the parameter blocks holding
    ``v``, then ``"rho"`` of shape ``()`` (``rho`` was the first block, of shape (1,), before
    issue 13).
    """

    _clock = 1


class PolarRHS(_SphereRHS):
    r"""Plain gradient flow :math:`\dot\theta = -\nabla\mathcal L` in polar coordinates
    :math:`\theta = \rho v`, :math:`\|v\| = 1` (docs/theory.md §9):

    .. math::

        \dot\rho = -\langle v, g\rangle, \qquad
        \dot v = -\frac{1}{\rho}\,(I - v v^\top)\, g, \qquad g = \nabla\mathcal L(\rho v).

    Exact change of variables (:math:`\rho = \|\theta\|`, :math:`v = \theta/\|\theta\|`): the
    trajectory is that of the gradient flow, e.g. :func:`linear_flow`. Same state layout as
    :class:`NormalizedRHS`.
    """

    _clock = -1


# =============================================================================================
# Factories.
# =============================================================================================

def _targets(X, y, loss, allow_matrix=True):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}.")
    X = check_X(X)
    if loss == "squared":
        y = check_targets(y, X.shape[0])
        if y.ndim == 2 and not allow_matrix:
            raise ValueError("this model has a scalar output; pass y of shape (n,).")
        k = None if y.ndim == 1 else y.shape[1]
    else:
        y = check_labels(y, X.shape[0])
        k = None
    return X, y, k


def linear_flow(X, y, *, loss="squared", weight_decay=0.0) -> GradientFlowRHS:
    r"""Gradient flow of the linear model :math:`f(w; x) = \langle w, x\rangle` (block ``"w"``).

    Squared loss (mean, :math:`\dot w = -X^\top(Xw - y)/n - \lambda w`; 2-D targets give
    ``"w"`` of shape (k, d)) or exp/logistic loss (sum, log domain). With separable data and
    exp/logistic loss, :math:`w(t) = \hat w \log t + O(1)` (Soudry et al. 2018, Theorem 3).

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,) (labels ±1 for exp/logistic) or (n, k) (squared)
    loss : {'squared', 'exp', 'logistic'}
    weight_decay : float
        λ ≥ 0 in :math:`\dot\theta = -\nabla\mathcal L - \lambda\theta`.
    """
    X, y, k = _targets(X, y, loss)
    return GradientFlowRHS(_make_param("linear", X.shape[1], k), _objective(X, y, loss),
                           weight_decay=weight_decay, loss=loss)


def chain_flow(X, y, *, depth, loss="squared", weight_decay=0.0) -> GradientFlowRHS:
    r"""Gradient flow of the linear chain :math:`f = a_L\cdots a_2\langle w, x\rangle`
    (docs/theory.md §1).

    Blocks ``"w"`` (d,) and the scalars ``"a2"``, ..., ``"aL"`` (shape ()), as in
    ``theory.linear_chain``; ``flow.pack(w=w0, a=a0)`` with a vector ``a0`` of shape
    (depth − 1,) also works. Conserved:
    :math:`a_2^2 - \|w\|^2` and :math:`a_{l+1}^2 - a_l^2`; with weight decay they decay as
    :math:`e^{-2\lambda t}` (docs/theory.md §3).
    """
    X, y, k = _targets(X, y, loss, allow_matrix=False)
    return GradientFlowRHS(_make_param("linear_chain", X.shape[1], k, depth=depth),
                           _objective(X, y, loss), weight_decay=weight_decay, loss=loss)


def deep_linear_flow(X, y, *, widths, loss="squared", weight_decay=0.0) -> GradientFlowRHS:
    r"""Gradient flow of the deep linear net :math:`f = W_L\cdots W_1 x` (docs/theory.md §2).

    .. math::

        \dot W_l = -(W_L\cdots W_{l+1})^\top G\,(W_{l-1}\cdots W_1)^\top - \lambda W_l,
        \qquad G = \partial\mathcal L/\partial W.

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, d_1, ..., d_L)`` with ``d_0 = d`` and ``d_L = k`` (1 for 1-D targets or labels).
        Blocks ``"W1"``, ..., ``"WL"`` of shapes ``(d_l, d_{l−1})``.
    """
    X, y, k = _targets(X, y, loss)
    return GradientFlowRHS(_make_param("deep_linear", X.shape[1], k, widths=widths),
                           _objective(X, y, loss), weight_decay=weight_decay, loss=loss)


def diagonal_flow(X, y, *, loss="squared", weight_decay=0.0) -> GradientFlowRHS:
    r"""Gradient flow of the diagonal linear net :math:`f = \langle u\odot u - v\odot v, x\rangle`.

    Blocks ``"u"``, ``"v"`` of shape (d,): :math:`\dot u = -2u\odot g - \lambda u`,
    :math:`\dot v = 2v\odot g - \lambda v` with :math:`g = \nabla_\beta\mathcal L`.
    """
    X, y, k = _targets(X, y, loss, allow_matrix=False)
    return GradientFlowRHS(_make_param("diagonal", X.shape[1], k), _objective(X, y, loss),
                           weight_decay=weight_decay, loss=loss)


def sensing_flow(A, y, *, widths, weight_decay=0.0) -> GradientFlowRHS:
    r"""Gradient flow of a deep factorisation :math:`W = W_L\cdots W_1` for matrix sensing.

    :math:`\mathcal L(W) = \tfrac{1}{2n}\sum_i (\langle A_i, W\rangle - y_i)^2`; the conjectured
    small-init limit of depth 2 is the minimum-nuclear-norm solution (Gunasekar et al. 2017).

    Parameters
    ----------
    A : array_like of shape (n, k, d)
        Measurement matrices.
    y : array_like of shape (n,)
    widths : sequence of int
        ``(d, d_1, ..., k)``: blocks ``"W1"``, ..., ``"WL"``.
    """
    obj = _Sensing(A, y)
    k, d = obj.beta_shape
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or widths[0] != d or widths[-1] != k:
        raise ValueError(f"widths={widths} must be ({d}, ..., {k}) for measurements of shape "
                         f"({k}, {d}).")
    return GradientFlowRHS(_Deep(widths), obj, weight_decay=weight_decay, loss="sensing")


def _param_and_objective(X, y, *, model, loss, depth, widths):
    X, y, k = _targets(X, y, loss)
    return _make_param(model, X.shape[1], k, depth=depth, widths=widths), _objective(X, y, loss)


def minnorm_flow(X, y, *, model="linear", loss="squared", depth=None, widths=None, alpha=1.0,
                 beta=1.0, penalty=0.0) -> MinnormRHS:
    r"""The Minnorm primal--dual flow (Bansal et al. 2018; docs/theory.md §8) for a linear
    predictor.

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,) or (n, k)
        Targets (``loss='squared'``: interpolation constraints ``f_i = y_i``) or labels ±1
        (``loss='exp'``/``'logistic'``: margin constraints ``q_i ≥ 1``, the loss only selects
        the constraint type).
    model : {'linear', 'linear_chain', 'deep_linear', 'diagonal'}
        (``'chain'``, the old name of ``'linear_chain'``, is accepted.)
    depth, widths : as in :func:`chain_flow` / :func:`deep_linear_flow`
    alpha, beta : float
        Dual and primal rates of :class:`MinnormRHS`.
    penalty : float
        Augmented-Lagrangian weight ρ ≥ 0 (0 = the flow of Bansal et al.); see :class:`MinnormRHS`.
    """
    param, obj = _param_and_objective(X, y, model=model, loss=loss, depth=depth, widths=widths)
    return MinnormRHS(param, obj, alpha=alpha, beta=beta, penalty=penalty, loss=loss)


def normalized_flow(X, y, *, model="linear", loss="logistic", depth=None, widths=None
                    ) -> NormalizedRHS:
    """The normalised dynamics of Banburski et al. 2019: gradient flow of ``𝓛(ρ v)`` on ``ρ``
    and the unit sphere (docs/theory.md §9); see :class:`NormalizedRHS`. Arguments as in
    :func:`minnorm_flow`. Twin of ``theory.derive_normalized_flow``."""
    param, obj = _param_and_objective(X, y, model=model, loss=loss, depth=depth, widths=widths)
    return NormalizedRHS(param, obj, loss=loss)


def polar_flow(X, y, *, model="linear", loss="logistic", depth=None, widths=None) -> PolarRHS:
    """Plain gradient flow in polar coordinates ``θ = ρ v`` (docs/theory.md §9); see
    :class:`PolarRHS`. Arguments as in :func:`minnorm_flow`. Twin of
    ``theory.derive_polar_flow``."""
    param, obj = _param_and_objective(X, y, model=model, loss=loss, depth=depth, widths=widths)
    return PolarRHS(param, obj, loss=loss)


def balanced_init(widths, *, scale=1.0, rng=None, seed=None) -> dict[str, np.ndarray]:
    r"""A balanced deep-linear initialisation: :math:`W_{l+1}^\top W_{l+1} = W_l W_l^\top`.

    :math:`W_l = U_l\, \mathrm{diag}(\sigma^{1/L})\, U_{l-1}^\top` with random orthonormal frames
    :math:`U_l` and a shared spectrum :math:`\sigma` (the end-to-end map has singular values
    :math:`\sigma`, each entry ``scale`` times a random number in [0.5, 1.5]). Needs all hidden
    widths ``>= min(d_0, d_L)``; the rank is ``r = min(widths)``.

    Returns
    -------
    dict name -> ndarray of shape (d_l, d_{l−1})
        Blocks ``"W1"``, ..., ``"WL"`` with :math:`D_l = 0` exactly up to rounding.
    """
    if rng is None:
        rng = np.random.default_rng(seed)
    widths = tuple(int(w) for w in widths)
    L = len(widths) - 1
    if L < 1:
        raise ValueError(f"widths must list (d_0, ..., d_L) with L >= 1; got {widths!r}.")
    r = min(widths)
    sv = scale * rng.uniform(0.5, 1.5, size=r)
    frames = []
    for w in widths:
        Q, _ = np.linalg.qr(rng.standard_normal((w, r)))
        frames.append(Q)                                       # (w, r) orthonormal columns
    root = sv ** (1.0 / L)
    return {f"W{l}": frames[l] @ np.diag(root) @ frames[l - 1].T for l in range(1, L + 1)}
