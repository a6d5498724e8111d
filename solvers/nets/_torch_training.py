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
from dataclasses import dataclass, field

import numpy as np

from ._torch_net import TorchNet

__all__ = ["train_torch", "TorchTrainingResult", "ROLLBACK_GROW", "ROLLBACK_SHRINK"]

#: Lyu & Li's growth factor on success and shrink divisor on failure (their α₁, α₂).
ROLLBACK_GROW = 2 ** (1 / 5)
ROLLBACK_SHRINK = 2 ** (1 / 10)
LOSSES = ("exp", "cross_entropy")


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

    def to_dict(self) -> dict:
        return {"steps": self.steps.tolist(), "log_loss": self.log_loss.tolist(),
                "lr": self.lr.tolist(), "normalized_margin": self.normalized_margin.tolist(),
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
        log_l = torch.where(s > -20, torch.log(torch.nn.functional.softplus(s)),
                            s - torch.exp(s) / 2)
    return torch.logsumexp(log_l, dim=0)


def train_torch(module, X, y, *, loss: str = "cross_entropy", steps: int = 1000,
                lr: float = 0.1, grow: float = ROLLBACK_GROW, shrink: float = ROLLBACK_SHRINK,
                record_every: int = 10, max_rollbacks: int = 100,
                min_log_loss: float = -1e100, checkpoints=()) -> TorchTrainingResult:
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
    net = TorchNet(module)
    torch = net._torch
    T = net._tensor(X)
    out0 = net.outputs(X)
    yy = torch.from_numpy(net.check_labels(y, out0.shape[0], out0.shape[1]))
    params = list(net.module.parameters())
    for p in params:
        p.requires_grad_(True)

    def value_and_grad():
        for p in params:
            p.grad = None
        v = _log_loss(torch, net.module(T).reshape(T.shape[0], -1), yy, loss)
        v.backward()
        return float(v.detach()), [p.grad.detach().clone() for p in params]

    def record(k, v):
        hist["steps"].append(k)
        hist["log_loss"].append(v)
        hist["lr"].append(lr_t)
        theta = net.flat()
        m = float(np.max(np.abs(theta)))      # q_min / ||θ||^L at unit norm: no overflow
        unit = net.scaled(1.0 / m).scaled(1.0 / float(np.linalg.norm(theta / m)))
        hist["normalized_margin"].append(float(unit.margins(X, y).min()))

    hist = {"steps": [], "log_loss": [], "lr": [], "normalized_margin": []}
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
    record(0, v)
    snapshot(0)
    accepted = rollbacks = in_a_row = 0
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
        snapshots=snapshots)
