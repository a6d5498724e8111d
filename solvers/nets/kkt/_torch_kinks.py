r"""Clarke slopes at the kinks of a :class:`~solvers.nets.TorchNet` in the ℓ2 KKT check (private;
docs/theory.md §7.5).

Autograd differentiates a ReLU at 0 with slope 0 (LeakyReLU: ``α``) and a max-pool window at a tie
through its first maximal entry: one element of the Clarke subdifferential. The ℓ2 program of
:mod:`._torch` may use any element, so at each near-kink the choice is made a variable:

* a ReLU/LeakyReLU input ``z_u`` of pair ``a`` (example ``e``) with ``|z_u| <= kink_rtol · max|z|``
  (over the layer and the checked examples, as :meth:`TorchNet.kink_counts`): the **kink column**
  ``c = (s' − s) · ∂q_a/∂h_u · ∇_θ z_u(θ̃; x_e)`` — the change of ``∇q_a`` when the slope goes from
  autograd's value ``s`` to the other end ``s'`` of its interval ``[min(α, 1), max(α, 1)]``;
* a max-pool window whose first maximal entry ``i*`` and another entry ``t`` differ by at most
  ``kink_rtol · max|x|``: ``c = ∂q_a/∂o · (∇_θ x_t − ∇_θ x_{i*})`` (``o`` the window's output),
  the change of ``∇q_a`` when the max is taken through ``t``.

With ``μ_k = λ_a w_k`` (``w_k ∈ [0, 1]`` the position of the slope in its interval, or the weight on
``t``), ``λ_a ∇q_a + Σ_k μ_k c_k`` ranges over ``λ_a`` times the chain-rule gradients with those
slopes in their intervals, and ``0 <= μ_k <= λ_a`` is the cone of :class:`._qp.ConeStructure` with
``α = 0``. When every pair's kinks lie in one module, ``∇q_a`` is affine in them and their box is
the hull of the vertex choices: the program is **exact** (docs/theory.md §7.5). Otherwise the kinks
of one module per pair are freed (the others keep autograd's choice, a valid subset) and ε is an
**upper bound**; the same when a window has three or more tied entries (one alternative entry is
freed: the simplex of all of them is not this cone), when a module is called more than once, and
when the explicit columns would exceed :data:`_MAX_COLUMN_ENTRIES` (nothing is freed).

What contributes nothing is not counted: a kink whose upstream derivative ``∂q_a/∂h_u`` (or
``∂q_a/∂o``) is exactly 0, and a kink column that is exactly 0 (a tie between entries that do not
depend on θ, e.g. a window of ReLU outputs with negative pre-activations). A **dead unit** — a
ReLU reading a Linear/Conv layer directly whose unit (channel) has incoming weights and bias of
norm at most ``kink_rtol`` times the layer's largest (issue 11: four such units left 1,814
near-kink pairs) — keeps autograd's slope, as the numpy path does (:mod:`._problem`): where
``z_u != 0`` that is the derivative at ``θ̃`` itself; where ``z_u = 0`` exactly, with a nonzero
upstream derivative, it is one Clarke choice and ε is an upper bound.

The Gram entries of the ``k`` kink columns are computed explicitly: the columns ``(k, P)`` by
``torch.func`` (``vmap(grad)`` of ``c · z`` at the hooked module's input, chunked), ``⟨c, c'⟩ =
C Cᵀ``, ``⟨c, ∇q_a⟩`` by one forward-mode pass per column (tangent ``c``) when there are fewer
columns than examples, else against the working set's per-example gradients swept in chunks of
at most :data:`_GRAD_CHUNK_ENTRIES` floats (never all ``(m, P)`` at once), ``⟨c, θ̃⟩ = C θ̃``.
The ℓ1/ℓ∞ check (:mod:`._torch_lp`) uses :func:`kink_columns` only: its LP reads rows of ``C``.

Detection costs one forward pass (the scale) and one forward-mode pass (along a random
direction: a kink column is identically 0 exactly when its entries' tangents agree) over the
distinct examples, and one backward pass over the pairs of the examples that have candidates.

The cone QP over ``(λ, μ)`` is solved warm-started from the working set's multipliers
(``μ = 0``, autograd's choice, is feasible), certified by :func:`._qp.cone_optimality`, and ε is
recomputed from the final ``(λ, μ)``: ``θ̃ − ∇_θ Σ_a λ_a q_a − Cᵀμ``. Pairs outside the
(multi-class) working set are priced again with the new residual and their own kink columns: the
reduced cost is that of the worst Clarke vertex, ``⟨∇q_a, v − θ̃⟩ + η (q_a − 1) + Σ_k min(0,
⟨c_k, v − θ̃⟩)``; a violation makes the result "inaccurate" (the working-set loop of
:mod:`._torch` itself prices by autograd's gradient, so it does not add such pairs).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np

from ...tolerances import TOLERANCES
from ._qp import ConeStructure, cone_optimality

__all__: list[str] = []

#: The explicit kink columns ``(k, P)`` are formed only when ``k · P`` is at most this many float64
#: (512 MiB); above it no slope is freed and ε stays an upper bound (the report says why).
_MAX_COLUMN_ENTRIES = 2 ** 26
#: Per-example gradients held at once while computing ``⟨c, ∇q_a⟩`` and the columns (64 MiB).
_GRAD_CHUNK_ENTRIES = 2 ** 23
#: ``⟨∇q_a, c_k⟩`` by one forward-mode pass per column while the columns are fewer than this
#: times the distinct examples (a pass costs about one example's gradient per example), else by
#: one sweep of per-example gradients.
_JVP_PER_EXAMPLE = 1.0
#: Examples (pairs) per pass of the detection: the forward-mode pass holds each hooked input
#: and its tangent (Lyu & Li's CNN: 128 × 2 × 18,432 floats per module, 36 MiB).
_CHUNK = 128


@dataclass(frozen=True)
class KinkResult:
    """What freeing the Clarke slopes gave (all fields in the working set's pair order).

    ``freed`` is False when there was nothing to free (or the columns were too large): then the
    multipliers and residual are None and the caller keeps its own. ``n_kinks`` counts the kinks
    that matter (nonzero column; kinks left at autograd's choice that could matter), by module in
    ``by_module``; ``exact`` says whether the minimum over the Clarke subdifferential was searched
    in full; ``words`` is the verdict's explanation when it was not.
    """

    freed: bool
    n_kinks: int
    by_module: dict
    exact: bool
    words: str
    n_freed: int = 0
    lam: np.ndarray | None = None
    mu: np.ndarray | None = None
    eta: float = 0.0
    eps: float | None = None
    resid: dict | None = None
    viol: float = 0.0
    comp: float = 0.0
    viol_out: float | None = None     # None: the caller's pricing of the pairs outside stands
    n_viol_out: int = 0
    method: str = ""
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"freed": self.freed, "n_kinks": self.n_kinks, "n_freed": self.n_freed,
                "by_module": dict(self.by_module), "exact": self.exact, "words": self.words,
                "eps": self.eps, "method": self.method, **self.info}


@dataclass(frozen=True)
class KinkColumns:
    """The kink columns ``C`` ``(k, P)`` of a set of pairs and each one's pair ``pair`` ``(k,)``,
    with the count of kinks that matter (``n_kinks``, ``by_module``), whether freeing them is
    exact (``exact``; else ``words`` says why ε is an upper bound), diagnostics ``info``, and
    the pairs' inputs ``T``, example indices ``r`` and output weights ``Wp``."""

    C: np.ndarray
    pair: np.ndarray
    n_kinks: int
    by_module: dict
    exact: bool
    words: str
    info: dict
    T: object
    r: np.ndarray
    Wp: object


# --- detection ------------------------------------------------------------------------------


@contextlib.contextmanager
def _forward_hooks(mods, paths, fn):
    """Call ``fn(path, inputs)`` on each forward of the modules ``paths``; removed on exit."""
    handles = [mods[p].register_forward_hook(lambda m, inp, out, p=p: fn(p, inp)) for p in paths]
    try:
        yield
    finally:
        for h in handles:
            h.remove()

def _relu_alpha(mod) -> float:
    return float(getattr(mod, "negative_slope", 0.0)) if type(mod).__name__ == "LeakyReLU" \
        else 0.0


def _pool_windows(tn, mod, x):
    """The windows of a max-pool over its input ``x``: values ``(b, C, k, npos)`` and the flat
    index (per example) of each entry in ``x``, ``(C, k, npos)`` (−1 on padding); None when the
    pool's geometry is not supported (``ceil_mode``)."""
    torch = tn._torch
    F = torch.nn.functional
    if getattr(mod, "ceil_mode", False):
        return None
    one_d = type(mod).__name__ == "MaxPool1d"

    def pair(v):
        return (1, v if isinstance(v, int) else v[0]) if one_d else \
            (v if isinstance(v, tuple) else (v, v))
    ks = pair(mod.kernel_size)
    st = pair(mod.stride if mod.stride is not None else mod.kernel_size)
    pd = (0, pair(mod.padding)[1]) if one_d else pair(mod.padding)
    dl = pair(mod.dilation)
    x4 = x.unsqueeze(2) if one_d else x
    b, C = x4.shape[0], x4.shape[1]
    idx = torch.arange(x4[0].numel(), dtype=torch.float64).reshape(1, *x4.shape[1:])
    xp = F.pad(x4, (pd[1], pd[1], pd[0], pd[0]), value=-math.inf)
    ip = F.pad(idx, (pd[1], pd[1], pd[0], pd[0]), value=-1.0)
    w = F.unfold(xp, ks, dilation=dl, stride=st)
    i = F.unfold(ip, ks, dilation=dl, stride=st)
    kk = ks[0] * ks[1]
    return (w.reshape(b, C, kk, -1),
            i.reshape(C, kk, -1).round().to(torch.int64))


def _input_tangents(tn, Xc, paths, v):
    """Each module's input and its directional derivative ``⟨∇_θ inp, v⟩`` along the parameter
    direction ``v`` (name → tensor), by one forward-mode pass: a kink column vanishes exactly
    when this is 0 for its entries (``v`` random: a nonzero gradient orthogonal to it has
    probability 0). Two dicts path → tensor shaped like the input (tangent zeros where the input
    does not depend on θ)."""
    torch = tn._torch
    import torch.autograd.forward_ad as fwAD
    from torch.func import functional_call

    mods = dict(tn.module.named_modules())
    got, prim = {}, {}

    def keep(p, inp):
        pr, t = fwAD.unpack_dual(inp)
        prim[p] = pr.detach()
        got[p] = torch.zeros_like(pr) if t is None else t.detach()
    with _forward_hooks(mods, paths, lambda p, inp: keep(p, inp[0])), torch.no_grad(), \
            fwAD.dual_level():
        params = {k: fwAD.make_dual(q.detach(), v[k]) for k, q in tn.module.named_parameters()}
        functional_call(tn.module, params, (Xc,))
    return prim, got


def _dead_mask(tn, path, size, rtol) -> np.ndarray:
    """Dead units of the ReLU ``path`` over its flat per-example input positions (``size``):
    where the ReLU reads a Linear/Conv layer directly, the output units (channels) whose
    incoming weights (and bias) have norm at most ``rtol`` times the layer's largest — the
    numpy path's rule (:mod:`._problem`); all False when the input comes from anything else."""
    torch = tn._torch
    mask = np.zeros(size, dtype=bool)
    mods = dict(tn.module.named_modules())
    try:
        gm = torch.fx.symbolic_trace(tn.module)
    except Exception:  # noqa: BLE001 - TorchNet traced it already; be safe, find no dead unit
        return mask
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target != path or not node.args:
            continue
        src = node.args[0]
        if not (isinstance(src, torch.fx.Node) and src.op == "call_module"):
            return mask
        lay = mods.get(src.target)
        if type(lay).__name__ not in ("Linear", "Conv1d", "Conv2d"):
            return mask
        W = lay.weight.detach().reshape(lay.weight.shape[0], -1).numpy()
        if lay.bias is not None:
            W = np.hstack([W, lay.bias.detach().numpy()[:, None]])
        rn = np.linalg.norm(W, axis=1)
        d = rn <= rtol * rn.max()
        if type(lay).__name__ == "Linear":          # units last: (..., out)
            return np.tile(d, size // d.size)
        return np.repeat(d, size // d.size)         # channels first: (C, positions)
    return mask


def _detect(tn, X, y, rows, classes, rtol):
    """Near-kinks of the pairs ``(rows, classes)`` with their upstream derivatives.

    Three passes: the scale ``max|z|`` per module over the distinct examples (no gradients); per
    example, by one forward-mode pass along a random parameter direction, the near-kink ReLU
    inputs and near-tied max-pool entries whose column is not identically 0 (and each example's
    ties of entries with equal gradients); then, only for the pairs of examples that have such
    kinks, one backward pass for the upstream derivatives ``∂q_a/∂h`` (``∂q_a/∂o``).

    Returns ``(kinks, flags, T, r, Wp)``: ``kinks`` a dict of arrays over the kinks with a
    nonzero upstream derivative — ``pair``, ``path``, ``plus``/``minus`` (flat input positions;
    ``minus = −1`` for a ReLU), ``coef`` (the column's factor), ``zero`` (``z_u = 0`` exactly),
    ``dead`` (a dead unit's position) — and ``shadow`` over the pairs (a tie of entries with equal
    gradients that ``q_a`` depends on); ``flags`` counts what cannot be freed exactly."""
    torch = tn._torch
    T, r, Wp = tn._pair_setup(X, y, rows, classes)
    mods = dict(tn.module.named_modules())
    relus, pools = tuple(tn._relus), tuple(tn._pools)
    paths = relus + pools
    calls = {p: tn._calls.get(p, 1) for p in paths}
    once = [p for p in paths if calls[p] == 1]
    ex = np.unique(r)
    flags = {"multi_tie": 0, "repeated_module": 0, "unsupported_pool": 0, "n_dead": 0}
    if not paths:                                  # no ReLU or max-pool module: no kink
        empty = np.zeros(0, dtype=np.int64)
        return ({"pair": empty, "path": np.zeros(0, dtype=object), "plus": empty,
                 "minus": empty, "coef": np.zeros(0), "zero": np.zeros(0, dtype=bool),
                 "dead": np.zeros(0, dtype=bool), "shadow": np.zeros(r.size, dtype=bool)},
                flags, T, r, Wp)

    # pass 1: the scale max|z| over the layer and the checked examples (as kink_counts), and
    # the near-kinks of modules called more than once (counted, not freed)
    scale = {p: 0.0 for p in paths}
    with _forward_hooks(mods, paths, lambda p, inp: scale.__setitem__(
            p, max(scale[p], float(inp[0].abs().max())))), torch.no_grad():
        for s in range(0, ex.size, _CHUNK):
            tn.module(T[torch.from_numpy(ex[s:s + _CHUNK])])
    tol = {p: rtol * (scale[p] or 1.0) for p in paths}
    if len(once) < len(paths):
        rep = [p for p in paths if calls[p] != 1]
        with _forward_hooks(mods, rep, lambda p, inp: flags.__setitem__(
                "repeated_module", flags["repeated_module"]
                + tn._near_kinks(p, mods[p], inp[0], tol[p]))), torch.no_grad():
            for s in range(0, ex.size, _CHUNK):
                tn.module(T[torch.from_numpy(ex[s:s + _CHUNK])])

    # pass 2, per example: candidate kinks whose column is not identically 0
    gen = torch.Generator().manual_seed(0)
    v = {k: torch.randn(q.shape, generator=gen, dtype=torch.float64)
         for k, q in tn.module.named_parameters()}
    cand = {k: [] for k in ("ex", "path", "plus", "minus", "zero", "win", "zval", "multi")}
    shadow_of: dict[int, dict[str, np.ndarray]] = {}   # example → path → flat window indices
    all_near = {}
    for s in range(0, ex.size, _CHUNK):
        e_chunk = ex[s:s + _CHUNK]
        prim, tang = _input_tangents(tn, T[torch.from_numpy(e_chunk)], once, v)
        for p in once:
            z, dz = prim[p], tang[p]
            b = z.shape[0]
            if p in relus:
                zf = z.reshape(b, -1)
                near = zf.abs() <= tol[p]
                if p not in all_near:
                    all_near[p] = _dead_mask(tn, p, zf.shape[1], rtol)
                i, u = torch.nonzero(near & (dz.reshape(b, -1) != 0), as_tuple=True)
                cand["ex"].append(e_chunk[i.numpy()])
                cand["path"].append(np.full(i.numel(), p, dtype=object))
                cand["plus"].append(u.numpy())
                cand["minus"].append(np.full(i.numel(), -1))
                cand["zero"].append((zf[i, u] == 0).numpy())
                cand["win"].append(np.full(i.numel(), -1))
                cand["zval"].append(zf[i, u].numpy())
                cand["multi"].append(np.zeros(i.numel(), dtype=bool))
                continue
            win = _pool_windows(tn, mods[p], z)
            if win is None:
                flags["unsupported_pool"] += tn._near_kinks(p, mods[p], z, tol[p])
                continue
            w, pos = win                                       # (b, C, k, npos), (C, k, npos)
            dw = _pool_windows(tn, mods[p], dz)[0]             # their tangents (padding: 0)
            dw = dw.nan_to_num(0.0, posinf=0.0, neginf=0.0)
            top, arg = w.max(dim=2)                            # first maximal entry, as autograd
            tied = top.unsqueeze(2) - w <= tol[p]
            tied.scatter_(2, arg.unsqueeze(2), False)
            # ∇x_t = ∇x_{i*} (e.g. both 0: ReLU outputs of negative pre-activations): the column
            # is 0, nothing to free — but such a tie may hide ReLU kinks upstream (kept per
            # example, judged per pair below)
            same = (dw - dw.gather(2, arg.unsqueeze(2))) == 0
            sh = (tied & same).any(2).reshape(b, -1)
            for j in torch.nonzero(sh.any(1)).ravel().tolist():
                shadow_of.setdefault(int(e_chunk[j]), {})[p] = \
                    torch.nonzero(sh[j]).ravel().numpy()
            tied &= ~same
            n_tied = tied.sum(2)
            bi, ci, wi = torch.nonzero(n_tied > 0, as_tuple=True)
            t = tied[bi, ci, :, wi].to(torch.int8).argmax(1)   # the first tied entry
            cand["ex"].append(e_chunk[bi.numpy()])
            cand["path"].append(np.full(bi.numel(), p, dtype=object))
            cand["plus"].append(pos[ci, t, wi].numpy())
            cand["minus"].append(pos[ci, arg[bi, ci, wi], wi].numpy())
            cand["zero"].append(np.zeros(bi.numel(), dtype=bool))
            cand["win"].append((ci * w.shape[3] + wi).numpy())
            cand["zval"].append(np.zeros(bi.numel()))
            cand["multi"].append((n_tied[bi, ci, wi] > 1).numpy())
    types = {"ex": np.int64, "path": object, "plus": np.int64, "minus": np.int64, "zero": bool,
             "win": np.int64, "zval": np.float64, "multi": bool}
    cat = {k: (np.concatenate(cand[k]).astype(t) if cand[k] else np.zeros(0, dtype=t))
           for k, t in types.items()}
    # a dead unit (negligible incoming weights) keeps autograd's slope: not a candidate, unless
    # exactly at 0 (then whether q depends on it decides whether ε is an upper bound)
    dead = np.zeros(cat["ex"].size, dtype=bool)
    for p, mask in all_near.items():
        on = cat["path"] == p
        dead[on] = mask[cat["plus"][on]]
    n_dead = int(dead.sum())
    keep = ~dead | cat["zero"]
    cat = {k: a[keep] for k, a in cat.items()}
    cat["dead"] = dead[keep]

    # pass 3, per pair of an example with candidates: the upstream derivatives
    out = {k: [] for k in ("pair", "cand", "coef")}
    shadow = np.zeros(r.size, dtype=bool)
    pairs = np.flatnonzero(np.isin(r, np.unique(cat["ex"])))
    for s in range(0, pairs.size, _CHUNK):
        pc = pairs[s:s + _CHUNK]
        cap: dict[str, object] = {}

        def hook(m, inp, o, p, cap=cap):
            o.retain_grad()
            cap[p] = o
        handles = [mods[p].register_forward_hook(
            lambda m, inp, o, p=p, hook=hook: hook(m, inp, o, p)) for p in once]
        try:
            with torch.enable_grad():
                Xg = T[torch.from_numpy(r[pc])].clone().requires_grad_(True)
                f = tn.module(Xg)
                (f.reshape(f.shape[0], -1) * Wp[torch.from_numpy(pc)]).sum().backward()
        finally:
            for h in handles:
                h.remove()
        grads = {p: (o.grad.detach().reshape(o.shape[0], -1).numpy() if o.grad is not None
                     else np.zeros((o.shape[0], o[0].numel()))) for p, o in cap.items()}
        for j, a in enumerate(pc):
            for p, wins in shadow_of.get(int(r[a]), {}).items():
                shadow[a] |= bool(np.any(grads[p][j, wins] != 0))
        # join: every candidate of example e with every pair of e in this chunk
        order = np.argsort(r[pc], kind="stable")
        se = r[pc][order]
        lo = np.searchsorted(se, cat["ex"], "left")
        cnt = np.searchsorted(se, cat["ex"], "right") - lo
        kk = np.repeat(np.arange(cat["ex"].size), cnt)
        jj = order[np.repeat(lo, cnt) + (np.arange(kk.size) - np.repeat(np.cumsum(cnt) - cnt,
                                                                           cnt))]
        g = np.zeros(kk.size)
        for p in np.unique(cat["path"][kk]).tolist():
            on = cat["path"][kk] == p
            at = np.where(cat["minus"][kk[on]] >= 0, cat["win"][kk[on]], cat["plus"][kk[on]])
            g[on] = grads[p][jj[on], at]
        nz = g != 0.0
        out["pair"].append(pc[jj[nz]])
        out["cand"].append(kk[nz])
        out["coef"].append(g[nz])
    kc = np.concatenate(out["cand"]) if out["cand"] else np.zeros(0, dtype=np.int64)
    coef = np.concatenate(out["coef"]) if out["coef"] else np.zeros(0)
    # a ReLU's column: (s' − s) times the upstream derivative (s autograd's slope, s' the other
    # end of [min(α, 1), max(α, 1)]); a max-pool tie's: the upstream derivative of the window
    alpha = np.array([_relu_alpha(mods[p]) for p in cat["path"][kc]])
    relu = cat["minus"][kc] < 0
    pos = cat["zval"][kc] > 0
    coef = np.where(relu, coef * np.where(pos, alpha - 1.0, 1.0 - alpha), coef)
    kinks = {"pair": (np.concatenate(out["pair"]) if out["pair"]
                      else np.zeros(0, dtype=np.int64)).astype(np.int64),
             "path": cat["path"][kc], "plus": cat["plus"][kc], "minus": cat["minus"][kc],
             "coef": coef, "zero": cat["zero"][kc], "dead": cat["dead"][kc],
             "shadow": shadow}
    flags["multi_tie"] = int(np.sum(cat["multi"][kc]))
    flags["n_dead"] = n_dead
    return kinks, flags, T, r, Wp


# --- columns and Gram entries ----------------------------------------------------------------

def _columns(tn, T, r, kinks, sel):
    """The kink columns ``(k, P)`` of the kinks ``sel``, in :meth:`TorchNet.flat` order: per
    module, ``∇_θ Σ_j w_j · inp_j(θ̃; x_e)`` by ``torch.func`` with a forward hook on the module
    (``w`` holds ``coef`` at ``plus`` and ``−coef`` at ``minus``)."""
    torch = tn._torch
    from torch.func import functional_call, grad, vmap

    mods = dict(tn.module.named_modules())
    params = {k: v.detach() for k, v in tn.module.named_parameters()}
    names = tn.parameter_names
    P = tn.n_params
    C = np.zeros((sel.size, P))
    for p in np.unique(kinks["path"][sel]).tolist():
        ks = np.flatnonzero(kinks["path"][sel] == p)
        cap = {}
        h = mods[p].register_forward_hook(
            lambda m, inp, o, cap=cap: cap.__setitem__("z", inp[0]))
        try:
            def one(prm, x, w, cap=cap):
                functional_call(tn.module, prm, (x.unsqueeze(0),))
                return torch.dot(cap["z"].reshape(-1), w)
            with torch.no_grad():
                tn.module(T[:1])                           # the hook sets cap["z"]
            D = cap["z"][0].numel()
            chunk = max(1, min(ks.size, _GRAD_CHUNK_ENTRIES // max(P + D, 1)))
            for s0 in range(0, ks.size, chunk):
                kk = sel[ks[s0:s0 + chunk]]
                Wt = torch.zeros((kk.size, D), dtype=torch.float64)
                ar = torch.arange(kk.size)
                coef = torch.from_numpy(kinks["coef"][kk].astype(np.float64))
                Wt[ar, torch.from_numpy(kinks["plus"][kk])] += coef
                has_m = torch.from_numpy(kinks["minus"][kk] >= 0)
                Wt[ar[has_m], torch.from_numpy(kinks["minus"][kk])[has_m]] -= coef[has_m]
                Xk = T[torch.from_numpy(r[kinks["pair"][kk]])]
                g = vmap(grad(one), in_dims=(None, 0, 0))(params, Xk, Wt)
                C[ks[s0:s0 + chunk]] = torch.cat(
                    [g[n].reshape(kk.size, -1) for n in names], dim=1).numpy()
        finally:
            h.remove()
    return C


def _cross(tn, X, y, rows, classes, T, r, Wp, C):
    """``⟨∇q_a, c_k⟩`` for every pair ``a`` and column ``k``, shape ``(m, k)``: one forward-mode
    pass per column (tangent ``c_k``) over the distinct examples when there are fewer columns than
    examples times :data:`_JVP_PER_EXAMPLE`, else per-example gradients swept in chunks of at most
    :data:`_GRAD_CHUNK_ENTRIES` floats (one pass over the pairs)."""
    torch = tn._torch
    P = tn.n_params
    if C.shape[0] < _JVP_PER_EXAMPLE * np.unique(r).size:
        from ._torch import _pair_directional

        shapes = [tuple(s) for s in tn._shapes]
        cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
        out = np.empty((r.size, C.shape[0]))
        for k, c in enumerate(C):
            tangent = {n: torch.from_numpy(np.ascontiguousarray(part).reshape(s))
                       for n, part, s in zip(tn.parameter_names, np.split(c, cuts), shapes,
                                             strict=True)}
            out[:, k] = _pair_directional(tn, X, y, rows, classes, tangent)
        return out
    chunk = max(1, min(r.size, _GRAD_CHUNK_ENTRIES // max(P, 1)))
    out = np.empty((r.size, C.shape[0]))
    for s in range(0, r.size, chunk):
        J = tn._autograd_jacobian(T[torch.from_numpy(r[s:s + chunk])], Wp[s:s + chunk],
                                  tn.parameter_names)
        out[s:s + chunk] = J.numpy() @ C.T
    return out


# --- the check ---------------------------------------------------------------------------------

def kink_columns(tn, X, y, rows, classes, rtol) -> KinkColumns:
    """The kink columns of the pairs ``(rows, classes)`` at ``θ̃`` (``tn``), with what could not
    be freed exactly (module docstring): detection, one module per pair, the memory limit, zero
    columns dropped."""
    rows = np.asarray(rows, dtype=np.int64)
    classes = np.asarray(classes, dtype=np.int64)
    paths = (*tn._relus, *tn._pools)
    kinks, flags, T, r, Wp = _detect(tn, X, y, rows, classes, rtol)
    live = ~kinks["dead"]
    dead_zero = int(np.sum(kinks["dead"] & kinks["zero"]))
    # per pair: the modules with live kinks; pairs with several keep all but the largest
    sel = np.flatnonzero(live)
    multi = 0
    if sel.size:
        key = np.char.add(kinks["pair"][sel].astype(str),
                          np.char.add("|", kinks["path"][sel].astype(str)))
        uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        pair_of = np.array([int(k.split("|", 1)[0]) for k in uk])
        best = {}
        for j in np.argsort(-cnt, kind="stable"):
            best.setdefault(int(pair_of[j]), int(j))
        multi = int(np.sum(np.unique(pair_of, return_counts=True)[1] > 1))
        keep = np.isin(inv, np.array(sorted(best.values())))
        unfreed_other = sel[~keep]
        sel = sel[keep]
    else:
        unfreed_other = sel
    P = tn.n_params
    problems = []
    relu_pairs = np.unique(kinks["pair"][live & np.isin(kinks["path"], list(tn._relus))])
    hidden = int(np.sum(kinks["shadow"][relu_pairs])) if relu_pairs.size else 0
    if hidden:
        problems.append(f"{hidden} pair(s) have ReLU kinks and max-pool ties of entries with "
                        f"equal gradients (the tied entries' own ReLU slopes may matter)")
    if multi:
        problems.append(f"{multi} pair(s) have kinks in several modules: those of one module "
                        f"are freed")
    if flags["multi_tie"]:
        problems.append(f"{flags['multi_tie']} max-pool window(s) with three or more tied "
                        f"entries: one alternative entry is freed")
    if dead_zero:
        problems.append(f"{dead_zero} dead-unit input(s) exactly at 0 keep autograd's slope")
    for k, words in (("repeated_module", "in modules called more than once"),
                     ("unsupported_pool", "in max-pools with ceil_mode")):
        if flags[k]:
            problems.append(f"{flags[k]} near-kink(s) {words} are not freed")
    by_module = {p: 0 for p in paths}
    too_big = sel.size * P > _MAX_COLUMN_ENTRIES
    if too_big:     # nothing is freed: the reasons above (what would be freed) do not apply
        problems = [f"the {sel.size} kink columns x {P} parameters would exceed the "
                    f"{_MAX_COLUMN_ENTRIES:.1e} entries of explicit columns: no slope is freed"]
        C = np.zeros((0, P))
        counted = np.concatenate([sel, unfreed_other])
        sel = sel[:0]
    else:
        C = _columns(tn, T, r, kinks, sel)
        nz = np.any(C != 0.0, axis=1)                # an exactly zero column changes nothing
        C, sel = C[nz], sel[nz]
        counted = np.concatenate([sel, unfreed_other])
    counted = np.concatenate([counted, np.flatnonzero(kinks["dead"] & kinks["zero"])])
    for p in kinks["path"][counted].tolist():
        by_module[p] += 1
    n_kinks = int(counted.size) + flags["repeated_module"] + flags["unsupported_pool"]
    exact = not problems
    words = ("; ε is an upper bound (" + "; ".join(problems) + ")") if problems else ""
    info = {"n_dead_kinks": flags.pop("n_dead"), "multi_module_pairs": multi,
            "shadow_tie_pairs": hidden,
            **{k: int(v) for k, v in flags.items()}}
    return KinkColumns(C=C, pair=kinks["pair"][sel], n_kinks=n_kinks, by_module=by_module,
                       exact=exact, words=words, info=info, T=T, r=r, Wp=Wp)


def _price_outside(tn, X, y, rows, classes, lam, resid_flat, eta, rtol, outside, *,
                   always=False):
    """Reduced costs of the candidate pairs outside the working set with their own kinks freed:
    ``⟨∇q_a, v − θ̃⟩ + η (q_a − 1) + Σ_k min(0, ⟨c_k, v − θ̃⟩)`` (the dual cone of §7.4 with
    ``α = 0``), relative to ``L q_a`` as in :mod:`._torch`. ``resid_flat = θ̃ − v`` (None: from
    ``lam`` by a backward pass). Returns ``(largest violation, count above
    kkt_optimality_rtol, exact, words)``, or None when there is nothing outside or (unless
    ``always``) no kink among the pairs outside (the caller's pricing then stands)."""
    from ._torch import _combination, _pair_directional

    if outside is None or np.asarray(outside[0]).size == 0:
        return None
    ro, co, qo = (np.asarray(a) for a in outside)
    kc = kink_columns(tn, X, y, ro, co, rtol)
    if kc.C.shape[0] == 0 and kc.exact and not always:
        return None
    torch = tn._torch
    if resid_flat is None:
        parts = _combination(tn, X, y, rows, classes, lam)
        resid_flat = tn.flat() - np.concatenate([parts[n].ravel() for n in tn.parameter_names])
    shapes = [tuple(sh) for sh in tn._shapes]
    cuts = np.cumsum([int(np.prod(sh)) for sh in shapes])[:-1]
    tangent = {n: torch.from_numpy(np.ascontiguousarray(-part).reshape(sh))
               for n, part, sh in zip(tn.parameter_names, np.split(resid_flat, cuts), shapes,
                                      strict=True)}
    g_out = _pair_directional(tn, X, y, ro, co, tangent) + eta * (qo - 1.0)
    if kc.C.shape[0]:
        np.add.at(g_out, kc.pair, np.minimum(kc.C @ (-resid_flat), 0.0))
    rel = np.maximum(-g_out, 0.0) / (tn.degree * qo)
    words = ("" if kc.exact else
             kc.words.replace("upper bound (", "upper bound (outside the working set: ", 1))
    return (float(np.max(rel, initial=0.0)),
            int(np.sum(rel > TOLERANCES.kkt_optimality_rtol)), kc.exact, words)


def free_kinks(tn, X, y, rows, classes, *, G, b, qc, nu, eta, R, budget, rtol, cfg,
               outside=None) -> KinkResult:
    """Free the Clarke slopes of the working set's near-kinks and solve the ℓ2 cone QP again
    (module docstring). ``G, b, qc, nu, eta`` are the working set's Gram matrix, linear term,
    margins and solution at ``θ̃`` (``tn``); ``R = ||θ̃||``, ``budget`` the δ budget;
    ``outside = (rows, classes, q)`` the candidate pairs outside the working set, priced again
    with the new residual."""
    from ._torch import _combination, _solve_qp

    rows = np.asarray(rows, dtype=np.int64)
    classes = np.asarray(classes, dtype=np.int64)
    nw = rows.size
    kc = kink_columns(tn, X, y, rows, classes, rtol)
    C, T, r, Wp, P = kc.C, kc.T, kc.r, kc.Wp, tn.n_params
    n_kinks, by_module, exact, words, info = kc.n_kinks, kc.by_module, kc.exact, kc.words, \
        kc.info
    if C.shape[0] == 0:
        out = _price_outside(tn, X, y, rows, classes, nu, None, eta, rtol, outside)
        if out is None:
            return KinkResult(False, n_kinks, by_module, exact, words, info=info)
        return KinkResult(False, n_kinks, by_module, exact and out[2], words + out[3],
                          viol_out=out[0], n_viol_out=out[1], info=info)

    # the cone QP over (λ, μ): G extended by the kink columns' rows
    k = C.shape[0]
    Gx = _cross(tn, X, y, rows, classes, T, r, Wp, C)         # (nw, k)
    Gk = C @ C.T
    G = G.dense() if hasattr(G, "dense") else G            # the working set's block rows
    Ga = np.block([[G, Gx], [Gx.T, 0.5 * (Gk + Gk.T)]])
    theta = tn.flat()
    ba = np.concatenate([b, C @ theta])
    cone = ConeStructure(nw, kc.pair, 0.0)
    colscale = np.sqrt(np.maximum(np.diag(Ga), 1e-300))
    x0 = np.concatenate([nu, np.zeros(k)])
    nu_a, eta_a, meth = _solve_qp(Ga, ba, nw + k, R, qc - 1.0, budget, x0, cfg,
                                  warm="the working set's multipliers", cone=cone)
    viol, comp = cone_optimality(Ga, ba, nu_a, cone, colscale, R, budget_row=qc - 1.0,
                                 budget=budget, eta=eta_a)
    lam, mu = nu_a[:nw], nu_a[nw:]
    parts = _combination(tn, X, y, rows, classes, lam)
    v = np.concatenate([parts[n].ravel() for n in tn.parameter_names]) + C.T @ mu
    resid_flat = theta - v
    eps = float(np.linalg.norm(resid_flat))                 # recomputed from (λ, μ)
    sizes = [parts[n].size for n in tn.parameter_names]
    resid = dict(zip(tn.parameter_names, np.split(resid_flat, np.cumsum(sizes)[:-1]),
                     strict=True))
    viol_out, n_viol_out = None, 0
    out = _price_outside(tn, X, y, rows, classes, lam, resid_flat, eta_a, rtol, outside,
                         always=True)
    if out is not None:
        viol_out, n_viol_out = out[0], out[1]
        exact, words = exact and out[2], words + out[3]
    method = (f"; Clarke slopes freed at {k} kink(s) ({meth} over {nw} pairs + {k} kink "
              f"variables, 0 <= μ <= λ; kink columns explicit, {k}x{P})")
    return KinkResult(True, n_kinks, by_module, exact, words, n_freed=k, lam=lam, mu=mu,
                      eta=float(eta_a), eps=eps, resid=resid, viol=viol, comp=comp,
                      viol_out=viol_out, n_viol_out=n_viol_out, method=method, info=info)
