"""Song, Ramezani-Kebrya, Pethick, Eftekhari & Cevher 2021: subquadratic width suffices for
gradient descent to reach zero training loss on a shallow network with standard initialisation,
all layers trained (docs/theory.md §10).

What the paper proves (NeurIPS 2021, arXiv:2111.01875; abstract and main result, theorem number
not confirmed here): for a shallow network ``f(x) = Σ_j a_j σ(⟨w_j, x⟩)`` with standard (He/LeCun)
initialisation, gradient descent on the squared loss over *both* layers reaches zero training loss
with high probability once the width ``m`` grows *subquadratically* in the number of examples
``n`` — earlier results under standard initialisation needed ``m ≳ n²``. A secondary source
(C. Hegde, *Foundations of Deep Learning* notes, ch. 5) states the bound as ``m = O(n^{3/2})``.
The mechanism is a Polyak–Łojasiewicz inequality ``||∇𝓛||² ≥ 2μ𝓛`` with ``μ`` bounded below along
the path through ``λ_min(J Jᵀ)`` (random-matrix bounds), together with smoothness; the abstract
names smoothness among the tools, which we read as a smooth activation (the paper's released
experiments use GELU as well as ReLU). The default instance uses ReLU, the common case; pass
``activation="gelu"`` for the smooth one. The result is a *sufficient* width, so the check is a
bound on the fitted exponent, not an equality.

Protocol (robust and cheap; every choice is a parameter of the instance):

* **Data**: ``n`` points uniform on the unit sphere of ``R^d`` with random ±1 targets drawn
  independently of ``x`` — pure memorisation, the setting of a "zero training loss for any labels"
  theorem. A teacher network would cap the needed width at the teacher's size and measure
  approximation, not overparameterisation.
* **Trials**: trial ``s`` draws its own data and its own initialisation from seed ``s``
  (:func:`width_trial`), so "with high probability" is over both.
* **Success**: the mean squared loss reaches ``loss_tol`` within ``max_steps`` steps of plain
  GD with the constant step ``1/(2 λ_max(J₀J₀ᵀ)/n)`` (step safety 1 diverges on some seeds;
  GELU needs safety 8: its curvature beyond the Gauss–Newton term makes narrow nets diverge).
  A diverged run must not be able to decide ``m*`` (checked).
  Runs on a plateau (loss down by < 0.1 % over a tenth of the budget) stop early as *stalled*;
  runs still descending at ``max_steps`` are *budget exhausted*, and the check fails if counting
  those as successes would change any ``m*`` (the budget, not the width, would be measured).
* **m\\*(n)**: the smallest width whose success rate over the seeds reaches ``success_rate``,
  found by galloping (×2) from ``2n/(d+1)`` then geometric bisection, assuming only that the
  success rate grows with the width; nothing about the exponent enters the search.
* **Exponent**: least-squares slope ``α`` of ``log m*`` on ``log n``; a 95 % bootstrap interval
  resamples the seeds (per ``n``, the same resample at every width) and draws the threshold
  log-uniformly inside the search's final bracket, so the interval covers both the seed noise and
  the width resolution. The claim checked is ``upper end of the interval < 2``.
* **PL along the path**: for the largest ``n`` the runs at ``m*`` and ``2m*`` are repeated
  recording ``λ_min(J Jᵀ)/n`` and ``||∇𝓛||²/(2𝓛)``. The PL inequality
  ``||∇𝓛||²/(2𝓛) ≥ λ_min(J Jᵀ)/n`` is exact (a second, independent check of the Jacobian and
  gradient code). On successful runs at ``2m*`` the PL constant must stay above ``PL_FLOOR``
  times its initial value; at ``m*`` itself the dip is only reported: there (seed 1) λ_min was
  measured to collapse to ~0 at some step of a run that still converged.

Measured (default instance, seed 0; d = 10, n ∈ {16, 24, 32, 48, 64}, 12 seeds, rate 3/4,
5000 steps; 14 s on one shared core): ``m* = 7, 9, 9, 10, 14``, ``α ≈ 0.43`` with 95 % interval
``[0.08, 0.90]`` (``[0.01, 0.84]`` counting budget-exhausted runs as successes) — far below 2.
The small-``n`` end is flattened by a floor (``m*(d+1)/n ≈ 5`` at ``n = 16`` against ``≈ 2.4`` at
``n = 64``), so ``α`` here is a finite-size value, not an asymptotic one. Two pitfalls found on
the way: a backtracking line search stalls at ReLU kinks (hence the constant step), and in low
dimension (``d = 4``) wide networks train *slower* under this step (the output-layer block of
``J Jᵀ`` grows like ``m`` and sets ``λ_max``), so the success rate is not monotone in the width.
With ``activation="gelu", safety=8`` (seed 0): ``m* = 3, 4, 5, 8, 13``, ``α ≈ 1.04``, interval
``[0.74, 1.31]``, 3 diverged runs at widths far below ``m*`` — closer to the linear scaling the
parameter count suggests.
"""

from __future__ import annotations

import numpy as np

from solvers.nets import (
    minimal_width,
    threshold_width,
    train_shallow,
    train_shallow_batch,
)
from solvers.tolerances import TOLERANCES

from ..checking import Source, Theorem, Verdict, compare_ge, compare_le, report_value
from ._common import line_figure, merge

__all__ = ["THEOREMS", "width_trial", "sphere_memorisation_data", "fit_width_exponent",
           "make_instance", "check_width_scaling", "strategy"]

SOURCE = Source(
    authors="C. Song, A. Ramezani-Kebrya, T. Pethick, A. Eftekhari, V. Cevher",
    year=2021,
    title="Subquadratic overparameterization for shallow neural networks (NeurIPS 34)",
    arxiv="2111.01875",
    where="main result (abstract): subquadratic width under standard initialisation, all layers "
          "trained, via a PL inequality; theorem number not confirmed",
)

#: The theory's exponent to beat: the upper end of the interval for α must lie below it.
QUADRATIC = 2.0
#: On successful runs λ_min(J Jᵀ) along the path must stay above this fraction of its initial
#: value ("bounded away from 0"). NTK-style proofs keep λ_min ≥ λ_min(0)/2 in the lazy regime;
#: at the threshold width with standard initialisation training is not lazy, so the floor is
#: looser (1/10), and it is asserted at 2m*. Measured (seeds 0–3): at 2m* λ_min never fell below
#: λ_min(0) (ratio 1.0); at m* one converged run of seed 1 had λ_min ≈ 0 at some step.
PL_FLOOR = 0.1

DEFAULTS = {
    "n_grid": (16, 24, 32, 48, 64),
    "d": 10,
    "n_seeds": 12,
    "seed": 0,
    "success_rate": 0.75,
    "max_steps": 5000,
    "loss_tol": TOLERANCES.shallow_loss_tol,
    "safety": 2.0,
    "activation": "relu",
    "start_factor": 2.0,
    "max_width_factor": 8.0,
    "resolution": 0.1,
    "n_boot": 2000,
    "ci_level": 0.95,
    "record_every": 50,
}


def make_instance(seed: int = 0, **overrides) -> dict:
    """The default instance: ``d = 10``, ``n ∈ {16, 24, 32, 48, 64}``, 8 trials per width.

    Trial seeds are ``1000·seed + s`` for ``s < n_seeds``. ``max_width_factor · n`` caps the
    width search (a search that hits it fails the check); ``start_factor · n/(d+1)`` is the first
    width tried. Runs in about 10 s on one core.
    """
    inst = merge({**DEFAULTS, "seed": seed}, overrides)
    _check_instance(inst)
    return inst


def _check_instance(inst: dict) -> None:
    grid = inst["n_grid"]
    if (isinstance(grid, (str, bytes)) or len(grid) < 2
            or any(int(n) != n or n < 2 for n in grid) or len(set(grid)) != len(grid)):
        raise ValueError(f"n_grid must list at least two distinct integers >= 2; got {grid!r}.")
    for key in ("d", "n_seeds", "max_steps", "n_boot", "record_every"):
        if isinstance(inst[key], bool) or int(inst[key]) != inst[key] or inst[key] < 1:
            raise ValueError(f"{key} must be a positive integer; got {inst[key]!r}.")
    if not 0.0 < inst["success_rate"] <= 1.0:
        raise ValueError(f"success_rate must be in (0, 1]; got {inst['success_rate']!r}.")
    if not 0.0 < inst["ci_level"] < 1.0:
        raise ValueError(f"ci_level must be in (0, 1); got {inst['ci_level']!r}.")


def sphere_memorisation_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform on the unit sphere of ``R^d`` and random ±1 targets (independent of x).

    Drawn from ``numpy.random.default_rng([seed, n, d])``, a stream independent of the
    initialisation's ``default_rng(seed)``.

    Returns
    -------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
    """
    if int(n) != n or n < 1 or int(d) != d or d < 1:
        raise ValueError(f"n and d must be positive integers; got n={n!r}, d={d!r}.")
    rng = np.random.default_rng([int(seed), int(n), int(d)])
    X = rng.standard_normal((int(n), int(d)))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, rng.choice(np.array([-1.0, 1.0]), size=int(n))


def width_trial(*, n: int, width: int, d: int, seed: int, activation: str = "relu",
                max_steps: int = DEFAULTS["max_steps"], loss_tol: float | None = None,
                safety: float = DEFAULTS["safety"]) -> dict:
    """One trial of the width experiment, for :func:`theory.sweep.run_sweep`.

    Draws :func:`sphere_memorisation_data` ``(n, d, seed)``, trains a width-``width`` network from
    initialisation seed ``seed`` (:func:`solvers.train_shallow`) and reports the outcome.
    The check uses exactly these trials (batched over seeds).

    Returns
    -------
    dict
        ``success`` (bool), ``final_loss``, ``steps``, ``status``, ``eta`` — JSON-serialisable.

    Examples
    --------
    >>> from theory.checking import run_sweep                                   # doctest: +SKIP
    >>> run_sweep(width_trial, {"n": [16, 32], "width": [8, 16], "d": [10]},
    ...           seeds=range(8), results="song.jsonl")                      # doctest: +SKIP
    """
    X, y = sphere_memorisation_data(n, d, seed)
    run = train_shallow(X, y, width, seed=int(seed), activation=activation, max_steps=max_steps,
                        loss_tol=loss_tol, safety=safety)
    return {"success": run.success, "final_loss": run.final_loss, "steps": run.steps,
            "status": run.status, "eta": run.eta}


def _batch(n: int, d: int, seeds) -> tuple[np.ndarray, np.ndarray]:
    pairs = [sphere_memorisation_data(n, d, s) for s in seeds]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def fit_width_exponent(n_values, searches, *, success_rate: float, n_boot: int = 2000,
                       ci_level: float = 0.95, seed: int = 0, optimistic: bool = False) -> dict:
    """Fit ``m* ∝ n^α`` and a bootstrap interval for ``α``.

    Parameters
    ----------
    n_values : sequence of int, length K
    searches : sequence of :class:`solvers.WidthSearch`, length K
        All found (``m_star > 0``).
    success_rate : float
    n_boot : int
    ci_level : float
    seed : int
        Seed of the bootstrap.
    optimistic : bool
        Count runs that ran out of steps while still descending (``budget_bound``) as successes.

    Returns
    -------
    dict
        ``alpha`` (least-squares slope of log m* on log n), ``ci_low``, ``ci_high``,
        ``censored`` (fraction of bootstrap thresholds that no tried width met; those are set to
        twice the largest width tried, which can only raise ``α`` at that ``n``).
    """
    n_values = np.asarray(n_values, dtype=np.float64)
    succ = [s.successes | s.budget_bound if optimistic else s.successes for s in searches]
    m_star = np.array([threshold_width(s.widths, ok, success_rate)
                       for s, ok in zip(searches, succ, strict=True)], dtype=np.float64)
    if np.any(m_star <= 0):
        raise ValueError("every search must have found m*; drop or redo the ones that did not.")
    ln = np.log(n_values)
    alpha = float(np.polyfit(ln, np.log(m_star), 1)[0])
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    censored = 0
    for b in range(n_boot):
        logs = np.empty(len(searches))
        for k, s in enumerate(searches):
            S = s.successes.shape[1]
            idx = rng.integers(0, S, S)
            m_b = threshold_width(s.widths, succ[k][:, idx], success_rate)
            if m_b < 0:
                censored += 1
                m_b = 2 * int(s.widths.max())
                lo = int(s.widths.max())
            else:
                below = s.widths[s.widths < m_b]
                lo = int(below.max()) if below.size else max(m_b / 2.0, 0.5)
            logs[k] = rng.uniform(np.log(lo), np.log(m_b)) if lo < m_b else np.log(m_b)
        boots[b] = np.polyfit(ln, logs, 1)[0]
    q = (1.0 - ci_level) / 2.0
    return {"alpha": alpha, "ci_low": float(np.quantile(boots, q)),
            "ci_high": float(np.quantile(boots, 1.0 - q)),
            "censored": censored / (n_boot * len(searches))}


def check_width_scaling(inst: dict) -> Verdict:
    """Run the width protocol of the module docstring and compare with ``α < 2``."""
    _check_instance(inst)
    d = int(inst["d"])
    seeds = [1000 * int(inst["seed"]) + s for s in range(int(inst["n_seeds"]))]
    grid = sorted(int(n) for n in inst["n_grid"])
    train = {"activation": inst["activation"], "max_steps": int(inst["max_steps"]),
             "loss_tol": inst["loss_tol"], "safety": inst["safety"]}
    searches = []
    for n in grid:
        Xs, ys = _batch(n, d, seeds)
        start = max(1, int(np.ceil(inst["start_factor"] * n / (d + 1))))
        max_width = max(start, int(np.ceil(inst["max_width_factor"] * n)))
        searches.append(minimal_width(Xs, ys, seeds=seeds, success_rate=inst["success_rate"],
                                      start=start, max_width=max_width,
                                      resolution=inst["resolution"], **train))
    found = [s for s in searches if s.found]
    comps = [compare_ge(
        "n values whose minimal width was found", len(found), len(grid),
        note="a search that reaches max_width_factor·n without the required success rate "
             "means GD failed at every width tried: " + "; ".join(
                 f"n={s.n}: {s.status}" for s in searches if not s.found))]
    binding = [s.n for s in searches if s.budget_binding]
    n_div = int(sum(s.diverged.sum() for s in searches))
    div_decides = [s.n for s in searches if s.found and threshold_width(
        s.widths, s.successes | s.diverged | s.budget_bound, s.success_rate) < threshold_width(
        s.widths, s.successes | s.budget_bound, s.success_rate)]
    comps.append(compare_le(
        "n values where diverged runs could decide m*", len(div_decides), 0,
        note=f"{n_div} diverged run(s) in all; a diverging run says nothing about the width, so "
             f"counting them as successes must not lower m* (n = {div_decides}): else raise "
             f"safety"))
    # The step budget is bracketed: budget-exhausted runs counted as failures (m* can only be
    # too large) and as successes (m* can only be too small). The claim must hold both ways.
    fits = {}
    for label, optimistic in (("budget-exhausted = failure", False),
                              ("budget-exhausted = success", True)):
        fit = None
        if len(found) == len(grid):
            fit = fit_width_exponent(grid, searches, success_rate=inst["success_rate"],
                                     n_boot=int(inst["n_boot"]), ci_level=inst["ci_level"],
                                     seed=int(inst["seed"]), optimistic=optimistic)
        fits[optimistic] = fit
        comps.append(compare_le(
            f"exponent α of m*(n) ∝ n^α ({label}): upper end of the "
            f"{inst['ci_level']:.0%} bootstrap interval",
            fit["ci_high"] if fit else float("nan"), QUADRATIC,
            note="subquadratic width suffices (Song et al. 2021); interval over seeds and the "
                 "search's width resolution" + (
                     "" if fit else "; no fit: some minimal width was not found")))
        if fit is not None:
            comps.append(report_value(
                f"exponent α, least squares ({label})", fit["alpha"], theory="< 2",
                note=f"interval [{fit['ci_low']:.3g}, {fit['ci_high']:.3g}]; "
                     f"{fit['censored']:.1%} of bootstrap thresholds censored"))
    fit = fits[False]
    comps.append(report_value(
        "n values where counting budget-exhausted runs as successes lowers m*", len(binding),
        theory=0, note=f"n = {binding}; both treatments are checked above"))
    counting = [s.m_star * (d + 1) / s.n for s in found]
    if counting:
        comps.append(report_value(
            "min over n of m*(d+1)/n (parameters per example)", float(min(counting)),
            theory="≳ 1",
            note="P = m(d+1) < n parameters cannot interpolate generic targets; near 1 means GD "
                 "memorises with almost no overparameterisation"))

    figures = []
    if found:
        figures.append(_width_figure(grid, searches, fit))
    if searches[-1].found:
        pl_comps, pl_fig = _pl_along_path(searches[-1], d, seeds, train, inst)
        comps += pl_comps
        figures.append(pl_fig)
    else:
        comps.append(compare_ge("successful runs with the PL constant recorded", 0, 1,
                                note="no width was found for the largest n"))
    return Verdict("song-width", "Subquadratic width suffices for GD to fit any labels",
                   tuple(comps), tuple(figures), instance=_summary(inst, searches),
                   kind="scaling")


def _pl_along_path(search, d, seeds, train, inst):
    """PL quantities along GD at ``m*`` and at ``2 m*`` for the largest ``n``."""
    n = search.n
    Xs, ys = _batch(n, d, seeds)
    runs = {m: train_shallow_batch(Xs, ys, m, seeds=seeds, track_pl=True,
                                   record_every=int(inst["record_every"]), **train)
            for m in (search.m_star, 2 * search.m_star)}
    gaps = [np.min((r.pl_ratio - r.pl_mu) / r.pl_scale)
            for rs in runs.values() for r in rs if r.pl_mu.size]
    worst_gap = float(min(gaps)) if gaps else float("nan")
    # ||∇𝓛||²/(2𝓛) ≥ λ_min(JJᵀ)/n holds for any θ (∇𝓛 = Jᵀr/n and ||Jᵀr||² ≥ λ_min ||r||²): a
    # consistency check of the gradient and Jacobian code (tested in tests/test_shallow.py), not
    # evidence for the theorem, so it is reported; the PL floor below carries the claim.
    comps = [report_value(
        f"n={n}, m ∈ {{m*, 2m*}} = {sorted(runs)}: min over runs and recorded steps of "
        "(||∇𝓛||²/(2𝓛) − λ_min(JJᵀ)/n) / (λ_max(JJᵀ)/n)", worst_gap, theory="≥ 0 (identity)",
        note="PL inequality with μ = λ_min(JJᵀ)/n holds for any θ; this is a code check")]

    def dip(rs):
        ok = [r for r in rs if r.success and r.pl_mu.size and r.pl_mu[0] > 0]
        return (float(min(np.min(r.pl_mu) / r.pl_mu[0] for r in ok)) if ok else float("nan"),
                ok)

    wide, ok_wide = dip(runs[2 * search.m_star])
    comps.append(compare_ge(
        f"n={n}, m=2m*={2 * search.m_star}: min over successful runs and steps of "
        "λ_min(JJᵀ)(t) / λ_min(JJᵀ)(0)", wide, PL_FLOOR,
        note=f"the PL constant stays bounded away from 0 along the path ({len(ok_wide)} "
             f"successful runs of {len(seeds)})"))
    at, ok_at = dip(runs[search.m_star])
    comps.append(report_value(
        f"n={n}, m=m*={search.m_star}: min over successful runs and steps of "
        "λ_min(JJᵀ)(t) / λ_min(JJᵀ)(0)", at, theory=f"≥ {PL_FLOOR} (asserted at 2m*)",
        note="at the empirical threshold training is not lazy: λ_min can collapse at some step "
             "(J loses rank) while the run still converges, its residual avoiding the "
             "degenerate direction"))
    curves = []
    for m, ok in ((2 * search.m_star, ok_wide), (search.m_star, ok_at)):
        for r in ok[:2]:
            curves.append((r.pl_steps, r.pl_mu, f"λ_min(JJᵀ)/n, m={m}"))
            curves.append((r.pl_steps, r.pl_ratio, f"||∇L||²/(2L), m={m}", ":"))
    if not curves:
        r = runs[search.m_star][0]
        curves.append((r.pl_steps, np.maximum(r.pl_mu, 1e-300), "λ_min(JJᵀ)/n (failed run)"))
    curves = [(x, np.maximum(y, 1e-300), *rest) for x, y, *rest in curves]
    fig = line_figure("song_pl_constant",
                      f"PL constant λ_min(JJᵀ)/n (solid) ≤ ||∇L||²/(2L) (dotted), n={n}",
                      curves,
                      xlabel="step", ylabel="value", yscale="log")
    return comps, fig


def _width_figure(grid, searches, fit):
    ns = np.array([s.n for s in searches if s.found], dtype=float)
    ms = np.array([s.m_star for s in searches if s.found], dtype=float)
    curves = [(ns, ms, "m*(n) measured", "o-")]
    if fit is not None:
        c = np.exp(np.mean(np.log(ms)) - fit["alpha"] * np.mean(np.log(ns)))
        curves.append((ns, c * ns ** fit["alpha"], f"fit n^{fit['alpha']:.2f}", "--"))
    curves.append((ns, ms[0] * (ns / ns[0]) ** 2, "n² (quadratic)", "k:"))
    curves.append((ns, ms[0] * (ns / ns[0]), "n (linear)", "k-."))
    return line_figure("song_minimal_width", "Minimal width for GD to fit random labels",
                       curves, xlabel="n", ylabel="m*", xscale="log", yscale="log")


def _summary(inst, searches) -> dict:
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in inst.items()}
    out["m_star"] = [s.m_star for s in searches]
    out["widths_tried"] = [s.widths.tolist() for s in searches]
    out["success_rates"] = [s.rates().tolist() for s in searches]
    return out


def strategy():
    """Small random instances (a few seconds each): three n values, few seeds, short budget."""
    from hypothesis import strategies as st

    return st.builds(
        lambda seed, d, n0: make_instance(seed, d=d, n_grid=(n0, 2 * n0), n_seeds=4,
                                          max_steps=1500, n_boot=200),
        st.integers(0, 2**16), st.integers(6, 10), st.integers(6, 12))


HYPOTHESES = (
    "shallow network f(x) = Σ_j a_j σ(⟨w_j, x⟩), both layers trained",
    "standard initialisation: W ~ N(0, 2/d), a ~ N(0, 1/m)",
    "mean squared loss, full-batch gradient descent with a constant step",
    "inputs on the unit sphere in general position; arbitrary (here random ±1) targets",
)

THEOREMS = (
    Theorem(
        id="song-width",
        title="Subquadratic width suffices for gradient descent to reach zero training loss",
        source=SOURCE,
        statement=r"$m^*(n) \propto n^{\alpha}$ with $\alpha < 2$, and along the path "
                  r"$\|\nabla\mathcal L\|^2 \ge 2\mu\mathcal L$, "
                  r"$\mu = \lambda_{\min}(JJ^\top)/n$ bounded away from 0",
        hypotheses=HYPOTHESES, kind="scaling", make_instance=make_instance,
        check_instance=check_width_scaling, strategy=strategy, quick=False,
        tags=("width", "pl", "shallow")),
)
