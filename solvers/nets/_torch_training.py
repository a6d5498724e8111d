r"""Full-batch gradient descent for a homogeneous PyTorch network, with Lyu & Li's loss-based step
and roll-back, in the log domain (docs/theory.md §6.3, §7.1).

Lyu & Li 2019 (Appendix on loss-based learning-rate scheduling; their public code,
``LossBasedLRv1``) take the step ``η_t = lr_t · 𝓛_0 / 𝓛(θ_t)``: the update is
``θ ← θ − lr_t 𝓛_0 ∇ log 𝓛(θ)``. After a step whose loss did not increase,
``lr ← lr · grow`` (their ``α₁ = 2^{1/5}``); otherwise the step is rolled back and
``lr ← lr / shrink`` (their ``α₂ = 2^{1/10}``). The loss therefore never increases, and the step
keeps pace with the exponentially small gradients of the late phase. ``log 𝓛`` is computed as
a log-sum-exp over examples of ``log ℓ_n``, so losses far below ``1e-300`` stay exact:

- ``"exp"``: ``ℓ_n = Σ_{j≠y_n} e^{f_j − f_{y_n}}`` (one output: ``e^{−y_n f}``);
- ``"cross_entropy"``: ``ℓ_n = log(1 + Σ_{j≠y_n} e^{f_j − f_{y_n}})`` (one output: the logistic
  loss ``log(1 + e^{−y_n f})``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._progress import progress as _progress
from ..losses import inverse_loss
from ._torch_net import TorchNet

__all__ = ["train_torch", "TorchTrainingResult", "fit_torch", "TorchFitResult",
           "ROLLBACK_GROW", "ROLLBACK_SHRINK"]

log = logging.getLogger(__name__)

#: Lyu & Li's growth factor on success and shrink divisor on failure (their α₁, α₂).
ROLLBACK_GROW = 2 ** (1 / 5)
ROLLBACK_SHRINK = 2 ** (1 / 10)
LOSSES = ("exp", "cross_entropy")
OPTIMIZERS = ("adam", "sgd")
FIT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TorchTrainingResult:
    """The trained network and its history.

    Attributes
    ----------
    net : TorchNet
        The trained network (the user's module is never modified).
    steps, log_loss, lr, normalized_margin : numpy.ndarray
        Recorded every ``record_every`` accepted steps (and at the first and last): the accepted
        step count, ``log 𝓛``, the schedule's ``lr`` and ``q_min / ||θ||^L``.
    rollbacks : int
        Rejected steps (each rolled back).
    snapshots : dict of int to TorchNet
        The network at each requested checkpoint (accepted step count) that was reached.
    smoothed_margin : numpy.ndarray
        Lyu & Li's smoothed margin ``ℓ^{-1}(𝓛) / ||θ||^L`` at the recorded steps (``ℓ^{-1}`` of
        the exponential loss for ``"exp"``, of the logistic loss for ``"cross_entropy"``,
        docs/theory.md §7.1): a lower bound of ``normalized_margin`` that GD increases.
    status : str
        ``"fitted"`` when every example has a positive margin at the end, else ``"not fitted"``.
    """

    net: TorchNet
    steps: np.ndarray
    log_loss: np.ndarray
    lr: np.ndarray
    normalized_margin: np.ndarray
    rollbacks: int
    status: str
    notes: tuple = field(default=())
    snapshots: dict = field(default_factory=dict)
    smoothed_margin: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict:
        return {"steps": self.steps.tolist(), "log_loss": self.log_loss.tolist(),
                "lr": self.lr.tolist(), "normalized_margin": self.normalized_margin.tolist(),
                "smoothed_margin": self.smoothed_margin.tolist(),
                "rollbacks": self.rollbacks, "status": self.status, "notes": list(self.notes)}


def _log_loss(torch, out, y, loss):
    """log 𝓛 from outputs (n, K), as a log-sum-exp over examples of log ℓ_n."""
    n, K = out.shape
    if K == 1:
        s = -(y.to(out.dtype) * out[:, 0])                      # log e^{-y f}
    else:
        fy = out.gather(1, y.view(-1, 1))
        mask = torch.nn.functional.one_hot(y, K).bool()
        s = torch.logsumexp((out - fy).masked_fill(mask, -torch.inf), dim=1)
    if loss == "exp":
        log_l = s
    else:  # log(log1p(e^s)), exact for s ≪ 0 through its expansion s − e^s/2
        # both branches are differentiated: the log branch reads s clamped at -20, else its
        # gradient at a large margin is 0 · ∞ = NaN (softplus(s) underflows to 0 near s < -745)
        log_l = torch.where(s > -20,
                            torch.log(torch.nn.functional.softplus(torch.clamp(s, min=-20.0))),
                            s - torch.exp(s) / 2)
    return torch.logsumexp(log_l, dim=0)


def train_torch(module, X, y, *, loss: str = "cross_entropy", steps: int = 1000,
                lr: float = 0.1, grow: float = ROLLBACK_GROW, shrink: float = ROLLBACK_SHRINK,
                record_every: int = 10, max_rollbacks: int = 100,
                min_log_loss: float = -1e100, checkpoints=(),
                chunk_size: int = 1024) -> TorchTrainingResult:
    """Train a homogeneous PyTorch network by full-batch GD with Lyu & Li's loss-based step and
    roll-back (module docstring).

    Parameters
    ----------
    module : torch.nn.Module
        Any network :class:`TorchNet` accepts; it is copied, never modified.
    X : array_like, shape (n, ...)
    y : array_like, shape (n,)
        Labels ±1 for one output, class indices ``0 … K−1`` for ``K ≥ 2`` outputs.
    loss : {"cross_entropy", "exp"}
    steps : int
        Accepted steps to take.
    lr : float
        Initial ``lr`` of the schedule (the step is ``lr · 𝓛_0/𝓛 · ∇𝓛``).
    grow, shrink : float
        Factors ``> 1`` applied to ``lr`` after an accepted step and a rolled-back one.
    record_every : int
        History stride in accepted steps.
    max_rollbacks : int
        Stop after this many rejected steps in a row (``lr`` has then shrunk by
        ``shrink**max_rollbacks``; the notes say so).
    checkpoints : sequence of int
        Accepted step counts at which to keep a copy of the network (``snapshots``), e.g. to
        check KKT conditions along training.
    min_log_loss : float
        Stop once ``log 𝓛 < min_log_loss``: the outputs are then about ``|min_log_loss|`` and a
        forward pass in float64 overflows not far beyond (the notes say so). The step grows
        without bound, so this is reached quickly once every example is fitted.
    chunk_size : int
        Examples per forward/backward pass; the loss and its gradient are accumulated over
        chunks in the log domain (a running log-sum-exp), so memory is bounded by one chunk's
        activations. With ``n ≤ chunk_size`` it is one full-batch pass, as before.

    Returns
    -------
    TorchTrainingResult
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}.")
    for name, v in (("lr", lr), ("grow", grow - 1), ("shrink", shrink - 1)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be finite and > {0 if name == 'lr' else 1}; "
                             f"got {v if name == 'lr' else v + 1!r}.")
    if int(steps) != steps or steps < 1 or int(record_every) != record_every or record_every < 1:
        raise ValueError(f"steps and record_every must be positive integers; got {steps!r}, "
                         f"{record_every!r}.")
    if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer (examples per pass); got "
                         f"{chunk_size!r}.")
    chunk_size = int(chunk_size)
    net = TorchNet(module)
    torch = net._torch
    T = net._tensor(X)
    out0 = net.outputs(X)
    yy = torch.from_numpy(net.check_labels(y, out0.shape[0], out0.shape[1]))
    params = list(net.module.parameters())
    for p in params:
        p.requires_grad_(True)

    def value_and_grad():
        # log 𝓛 = logsumexp_c v_c over chunks c, so ∇log 𝓛 = Σ_c e^{v_c − log 𝓛} ∇v_c: a
        # running log-sum-exp, rescaling the accumulated gradient as the total grows (one
        # chunk when n ≤ chunk_size: exactly the full-batch value and gradient).
        total, grad = -np.inf, None
        for s in range(0, T.shape[0], chunk_size):
            for p in params:
                p.grad = None
            v = _log_loss(torch, net.module(T[s:s + chunk_size]).reshape(
                min(chunk_size, T.shape[0] - s), -1), yy[s:s + chunk_size], loss)
            v.backward()
            vc = float(v.detach())
            if grad is None:
                total, grad = vc, [p.grad.detach().clone() for p in params]
                continue
            new_total = float(np.logaddexp(total, vc))
            a, b = np.exp(total - new_total), np.exp(vc - new_total)
            for g_acc, p in zip(grad, params, strict=True):
                g_acc.mul_(a).add_(p.grad.detach(), alpha=b)
            total = new_total
        return total, grad

    def record(k, v):
        hist["steps"].append(k)
        hist["log_loss"].append(v)
        hist["lr"].append(lr_t)
        theta = net.flat()
        m = float(np.max(np.abs(theta)))      # q_min / ||θ||^L at unit norm: no overflow
        unit = net.scaled(1.0 / m).scaled(1.0 / float(np.linalg.norm(theta / m)))
        hist["normalized_margin"].append(float(unit.margins(X, y).min()))
        # Lyu & Li's smoothed margin ℓ^{-1}(𝓛) / ||θ||^L (docs/theory.md §7.1), ||θ||^L as a log
        log_rho = math.log(m) + math.log(float(np.linalg.norm(theta / m)))
        inv = inverse_loss(v, "exp" if loss == "exp" else "logistic")
        hist["smoothed_margin"].append(float(inv * math.exp(-net.degree * log_rho)))
        log.info("train_torch: step %d/%d, log loss %.6g, lr %.3g, %d rolled back, normalised "
                 "margin %.4g, smoothed margin %.4g", k, steps, v, lr_t, rollbacks,
                 hist["normalized_margin"][-1], hist["smoothed_margin"][-1])

    hist = {"steps": [], "log_loss": [], "lr": [], "normalized_margin": [],
            "smoothed_margin": []}
    wanted = {int(c) for c in checkpoints}
    if any(c < 0 for c in wanted):
        raise ValueError(f"checkpoints must be non-negative step counts; got {sorted(wanted)}.")
    snapshots: dict = {}

    def snapshot(k):
        if k in wanted:
            copy_ = net.scaled(1.0)          # a deep copy of the module
            for p in copy_.module.parameters():
                p.requires_grad_(False)
                p.grad = None
            snapshots[k] = copy_
    lr_t = float(lr)
    v, g = value_and_grad()
    v0 = v
    accepted = rollbacks = in_a_row = 0
    record(0, v)
    snapshot(0)
    while accepted < steps and in_a_row < max_rollbacks and v >= min_log_loss:
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            scale = lr_t * np.exp(v0)         # lr · 𝓛_0 · ∇log 𝓛 = lr · 𝓛_0/𝓛 · ∇𝓛
            for p, gp in zip(params, g, strict=True):
                p.sub_(scale * gp)
        v_new, g_new = value_and_grad()
        if np.isfinite(v_new) and v_new <= v:
            accepted += 1
            in_a_row = 0
            v, g = v_new, g_new
            lr_t *= grow
            snapshot(accepted)
            if accepted % record_every == 0 or accepted == steps:
                record(accepted, v)
        else:
            rollbacks += 1
            in_a_row += 1
            with torch.no_grad():
                for p, s in zip(params, saved, strict=True):
                    p.copy_(s)
            lr_t /= shrink
    for p in params:
        p.requires_grad_(False)
    if hist["steps"][-1] != accepted:
        record(accepted, v)
    fitted = bool(net.margins(X, y).min() > 0)
    notes = net.notes
    if in_a_row >= max_rollbacks:
        notes += (f"stopped after {max_rollbacks} roll-backs in a row at step {accepted}",)
    if v < min_log_loss:
        notes += (f"stopped at step {accepted}: log 𝓛 = {v:.3g} < min_log_loss = "
                  f"{min_log_loss:g} (outputs near float64's range)",)
    return TorchTrainingResult(
        net=copy.copy(net), steps=np.array(hist["steps"]), log_loss=np.array(hist["log_loss"]),
        lr=np.array(hist["lr"]), normalized_margin=np.array(hist["normalized_margin"]),
        rollbacks=rollbacks, status="fitted" if fitted else "not fitted", notes=notes,
        snapshots=snapshots, smoothed_margin=np.array(hist["smoothed_margin"]))


@dataclass(frozen=True)
class TorchFitResult:
    """A network trained by :func:`fit_torch` until every example is fitted, and its history.

    Attributes
    ----------
    net : TorchNet
        The trained network in float64 (after the roll-back phase when there was one).
    status : str
        ``"fitted"`` when every example has a positive margin ``q_n > 0``, computed in float64 on
        the whole set at the end; else ``"not fitted"``.
    epochs : int
        Minibatch epochs run.
    epoch_loss : numpy.ndarray, shape (epochs,)
        Mean cross-entropy over each epoch's minibatches (in ``dtype``, train mode).
    epoch_fitted : numpy.ndarray, shape (epochs,)
        Examples with a positive margin after each epoch (``dtype``, eval mode, whole set).
    seconds : dict of str to float
        Wall time of the stages: ``"minibatch"`` (including the per-epoch margin passes) and
        ``"rollback"``.
    rollback : TorchTrainingResult or None
        The float64 loss-based roll-back phase (:func:`train_torch`), when it ran.
    notes : tuple of str
    """

    net: TorchNet
    status: str
    epochs: int
    epoch_loss: np.ndarray
    epoch_fitted: np.ndarray
    seconds: dict
    rollback: TorchTrainingResult | None = None
    notes: tuple = field(default=())

    def to_dict(self) -> dict:
        return {"status": self.status, "epochs": self.epochs,
                "epoch_loss": self.epoch_loss.tolist(),
                "epoch_fitted": self.epoch_fitted.tolist(), "seconds": dict(self.seconds),
                "rollback": None if self.rollback is None else self.rollback.to_dict(),
                "notes": list(self.notes)}


def _positive_int(name, v, what):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer ({what}); got {v!r}.")
    return int(v)


def _margins_in(torch, module, T, y, chunk_size):
    """``q_n`` of ``module`` (in its own dtype, eval mode, no gradient) on ``T``, shape (n,)."""
    was_training = module.training
    module.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, T.shape[0], chunk_size):
            o = module(T[s:s + chunk_size])
            outs.append(o.reshape(o.shape[0], -1))
    module.train(was_training)
    out = torch.cat(outs)
    if out.shape[1] == 1:
        return y.to(out.dtype) * out[:, 0]
    fy = out.gather(1, y.view(-1, 1))[:, 0]
    other = out.scatter(1, y.view(-1, 1), -torch.inf)
    return fy - other.max(dim=1).values


def fit_torch(module, X, y, *, batch_size: int = 128, optimizer="adam", lr: float = 1e-3,
              max_epochs: int = 100, dtype: str = "float32", seed: int = 0,
              rollback_steps: int = 0, rollback_lr: float = 0.1,
              rollback_loss: str = "cross_entropy", chunk_size: int = 1024,
              progress: bool | None = None) -> TorchFitResult:
    """Train a homogeneous PyTorch network by minibatch SGD/Adam on the cross-entropy until every
    example is fitted, then optionally by float64 full-batch GD with Lyu & Li's loss-based step
    and roll-back (:func:`train_torch`) to move towards the KKT regime (docs/theory.md §6.3, §7.1).

    The minibatch phase is the recipe researchers use (Lyu & Li 2019, §6, train their MNIST CNN
    with SGD first, then switch to the loss-based schedule once the data are fitted): it runs in
    ``dtype`` on the CPU (float32: about twice as fast as float64), shuffling with ``seed``. After
    each epoch the margins ``q_n`` of the whole set are computed in ``dtype``; when all are
    positive they are recomputed in float64 from the network converted to float64 (the precision
    of the KKT check), and the phase stops only if every ``q_n > 0`` there too. The result is
    always a float64 :class:`TorchNet`.

    Parameters
    ----------
    module : torch.nn.Module
        Any network :class:`TorchNet` accepts (checked first); it is copied, never modified.
    X : array_like, shape (n, ...)
    y : array_like, shape (n,)
        Labels ±1 for one output, class indices ``0 … K−1`` for ``K ≥ 2`` outputs. With one
        output the minibatch loss is the logistic loss ``softplus(−y f)``.
    batch_size : int
        Examples per minibatch.
    optimizer : {"adam", "sgd"} or callable
        ``"adam"``: ``torch.optim.Adam(params, lr)``; ``"sgd"``: ``torch.optim.SGD(params, lr,
        momentum=0.9)``; or a callable ``params -> torch.optim.Optimizer`` (``lr`` is then
        unused).
    lr : float
        Learning rate of the named optimiser.
    max_epochs : int
        Give up (status ``"not fitted"``, the roll-back phase skipped) after this many epochs.
    dtype : {"float32", "float64"}
        Precision of the minibatch phase.
    seed : int
        Seed of the minibatch order.
    rollback_steps : int
        Accepted steps of the float64 roll-back phase after the data are fitted (0: none). Each is
        a full pass over the data in ``chunk_size`` chunks.
    rollback_lr, rollback_loss :
        ``lr`` and ``loss`` of :func:`train_torch` for that phase.
    chunk_size : int
        Examples per pass when computing margins and in the roll-back phase (memory bound).
    progress : bool, optional
        A tqdm bar over epochs (default: only on a terminal; elsewhere log lines). One INFO line
        per epoch and per stage goes to this module's logger either way.

    Returns
    -------
    TorchFitResult

    Raises
    ------
    ValueError
        For a bad argument (naming it, its value and the fix), before any training.
    NotHomogeneousError
        When :class:`TorchNet` refuses the module.

    References
    ----------
    K. Lyu and J. Li, "Gradient descent maximizes the margin of homogeneous neural networks",
    ICLR 2020 (arXiv:1906.05890), §6 and Appendix (loss-based learning rate).

    Examples
    --------
    >>> run = fit_torch(cnn, images, labels, batch_size=64, rollback_steps=50)  # doctest: +SKIP
    >>> run.status, run.epochs, run.net.module[0].weight.dtype                  # doctest: +SKIP
    ('fitted', 12, torch.float64)
    """
    batch_size = _positive_int("batch_size", batch_size, "examples per minibatch")
    max_epochs = _positive_int("max_epochs", max_epochs, "epochs before giving up")
    chunk_size = _positive_int("chunk_size", chunk_size, "examples per pass")
    if isinstance(rollback_steps, bool) or not isinstance(rollback_steps, (int, np.integer)) \
            or rollback_steps < 0:
        raise ValueError(f"rollback_steps must be a non-negative integer (0: no roll-back "
                         f"phase); got {rollback_steps!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer; got {seed!r}.")
    if not callable(optimizer) and optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a callable params -> "
                         f"torch.optim.Optimizer; got {optimizer!r}.")
    if dtype not in FIT_DTYPES:
        raise ValueError(f"dtype must be one of {FIT_DTYPES} (the precision of the minibatch "
                         f"phase); got {dtype!r}.")
    for name, v in (("lr", lr), ("rollback_lr", rollback_lr)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) \
                or not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite positive number; got {v!r}.")
    if rollback_loss not in LOSSES:
        raise ValueError(f"rollback_loss must be one of {LOSSES}; got {rollback_loss!r}.")
    net = TorchNet(module)               # homogeneity and labels checked before any training
    torch = net._torch
    T64 = net._tensor(X)
    n = T64.shape[0]
    K = int(np.prod(net.module(T64[:1]).shape[1:]))
    yy = torch.from_numpy(net.check_labels(y, n, K))

    tdtype = getattr(torch, dtype)
    work = copy.deepcopy(net.module).to(dtype=tdtype).train()
    for p in work.parameters():
        p.requires_grad_(True)
    T = T64.to(tdtype)
    opt = (optimizer(work.parameters()) if callable(optimizer)
           else torch.optim.Adam(work.parameters(), lr=float(lr)) if optimizer == "adam"
           else torch.optim.SGD(work.parameters(), lr=float(lr), momentum=0.9))
    gen = torch.Generator().manual_seed(int(seed))

    def batch_loss(out, t):
        out = out.reshape(out.shape[0], -1)
        if K == 1:
            return torch.nn.functional.softplus(-t.to(out.dtype) * out[:, 0]).mean()
        return torch.nn.functional.cross_entropy(out, t)

    losses, fitted_counts, notes = [], [], list(net.notes)
    fitted = False
    t0 = time.perf_counter()
    bar = _progress(range(max_epochs), total=max_epochs, desc="fit_torch", enabled=progress)
    try:
        for epoch in bar:
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for s in range(0, n, batch_size):
                idx = perm[s:s + batch_size]
                opt.zero_grad(set_to_none=True)
                v = batch_loss(work(T[idx]), yy[idx])
                v.backward()
                opt.step()
                total += float(v.detach()) * len(idx)
            q = _margins_in(torch, work, T, yy, chunk_size)
            count = int((q > 0).sum())
            losses.append(total / n)
            fitted_counts.append(count)
            log.info("fit_torch: epoch %d/%d, loss %.4g, fitted %d/%d (%s), min margin %.3g, "
                     "%.1f s", epoch + 1, max_epochs, total / n, count, n, dtype,
                     float(q.min()), time.perf_counter() - t0)
            if not np.isfinite(total):
                notes.append(f"stopped at epoch {epoch + 1}: the minibatch loss is not finite "
                             f"(lower lr)")
                break
            if count == n:
                q64 = _margins_in(torch, copy.deepcopy(work).to(torch.float64), T64, yy,
                                  chunk_size)
                if bool((q64 > 0).all()):
                    fitted = True
                    break
                log.info("fit_torch: every margin is positive in %s but %d are not in float64; "
                         "continuing", dtype, int((q64 <= 0).sum()))
    finally:
        if hasattr(bar, "close"):
            bar.close()
    seconds = {"minibatch": time.perf_counter() - t0}
    for p in work.parameters():
        p.requires_grad_(False)
    trained = TorchNet(work.eval())      # float64 (the notes say it was converted)
    if not fitted:
        notes.append(f"not every example was fitted after {len(losses)} epochs "
                     f"({fitted_counts[-1] if fitted_counts else 0}/{n} in {dtype}); "
                     f"the roll-back phase was skipped" if rollback_steps else
                     f"not every example was fitted after {len(losses)} epochs "
                     f"({fitted_counts[-1] if fitted_counts else 0}/{n} in {dtype})")
    log.info("fit_torch: minibatch phase %s after %d epochs, %.1f s",
             "fitted" if fitted else "NOT fitted", len(losses), seconds["minibatch"])
    rollback = None
    if fitted and rollback_steps:
        t1 = time.perf_counter()
        rollback = train_torch(trained.module, X, y, loss=rollback_loss, steps=int(rollback_steps),
                               lr=float(rollback_lr), chunk_size=chunk_size,
                               record_every=max(1, int(rollback_steps) // 20))
        seconds["rollback"] = time.perf_counter() - t1
        trained = rollback.net
        notes.extend(x for x in rollback.notes if x not in notes)
        log.info("fit_torch: roll-back phase %d accepted steps (%d rolled back), log loss "
                 "%.4g -> %.4g, normalised margin %.3g -> %.3g, %.1f s", rollback.steps[-1],
                 rollback.rollbacks, rollback.log_loss[0], rollback.log_loss[-1],
                 rollback.normalized_margin[0], rollback.normalized_margin[-1],
                 seconds["rollback"])
    final = bool(trained.margins(X, y).min() > 0)
    return TorchFitResult(net=trained, status="fitted" if final else "not fitted",
                          epochs=len(losses), epoch_loss=np.array(losses, dtype=float),
                          epoch_fitted=np.array(fitted_counts, dtype=int), seconds=seconds,
                          rollback=rollback, notes=tuple(notes))
