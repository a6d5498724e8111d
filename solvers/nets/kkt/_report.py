"""The result of :func:`solvers.check_kkt` (private): :class:`KKTReport`.

The report names the KKT conditions of the margin problem as CVXPY names those of a convex
program (docs/theory.md §7): **stationarity** (ε, the residual ``||g − Σ λ_i h_i||_*``),
**complementary slackness** (δ, ``Σ λ_i (q_i(θ̃) − 1)``), **primal feasibility** (``q_i(θ̃) >= 1``,
exact by the rescaling ``θ̃ = θ / q_min^{1/L}`` up to rounding) and **dual feasibility**
(``λ >= 0``, exact: the program's cone keeps it). :attr:`KKTReport.conditions` lists them with
their residuals and tolerances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["KKTReport", "NORM_NAMES"]

NORM_NAMES = {1.0: "1", 2.0: "2", math.inf: "inf"}


@dataclass(frozen=True)
class KKTReport:
    """Result of :func:`check_kkt`: the best (ε, δ) of the margin problem at ``θ̃``.

    ``θ̃ = θ / q_min^{1/L}`` is the rescaled (feasible) point.

    Attributes
    ----------
    norm : str
        ``'2'``, ``'1'`` or ``'inf'``: the ``p`` of ``min ½||θ||_p² s.t. q_i ≥ 1``.
    epsilon : float
        The stationarity residual ``||g − Σ λ_i h_i||_*`` (``g = θ̃`` for ℓ2) at the optimal
        multipliers and Clarke choices (an achieved value; the minimum when ``exact``).
    epsilon_relative : float
        ``epsilon / ||θ̃||_p`` (``||θ̃||_p = ||g||_*`` for every ``g`` of the subdifferential, so the
        ratio is comparable across norms).
    delta, delta_relative : float
        ``Σ_i λ_i (q_i(θ̃) − 1)`` and ``delta / ||θ̃||_p²``.
    multipliers : ndarray of shape (n,)
        The optimal ``λ`` (zeros off the candidate set), in the order of the examples.
    support : ndarray of shape (k,), int
        Indices with ``λ_i > kkt_multiplier_rtol · max λ``.
    n_kink_pairs : int
        Near-kink (candidate example, hidden unit) pairs whose slope ranged over its Clarke
        interval.
    natural_epsilon, natural_epsilon_relative : float
        The same residual for the natural multipliers (loss-gradient weights, optimal scale,
        numerical slopes). Always ``>= epsilon``.
    natural_multipliers : ndarray of shape (n,)
        ``c · (-ℓ'(q_i))`` on the candidates (zeros elsewhere).
    natural_delta : float
        ``δ`` of the natural multipliers.
    delta_budget : float
        ``delta_tol · ||θ̃||_p²``: ε is minimised subject to ``δ <= delta_budget``, so the verdict
        (``epsilon_relative <= eps_tol`` and ``delta_relative <= delta_tol``) is decided exactly
        when ``exact`` (the minimum ε over the admissible δ), not by one choice of multipliers.
    q_min : float
        ``min_i q_i(θ)`` of the given (not rescaled) parameters.
    normalised_margin : float
        ``q_min / ||θ||_p^L``.
    degree : int
        ``L``.
    n_candidates : int
        Examples with ``q_i(θ̃) <= support_factor``.
    support_factor : float
        The candidate threshold used.
    excluded_weight : float
        Share of the loss-gradient weight ``-ℓ'(q_i(θ))`` (normalised to sum 1) on the examples
        outside the candidate set: small means the exclusion cannot change ε much.
    exact : bool
        Whether ε is the minimum over all Clarke subgradients *at θ̃* (kinks of each candidate in
        at most one layer, and every freed pair exactly at z = 0). False either for the upper
        bound from block-coordinate descent over layers, or when near-kink pairs
        (``extra['n_near_kink_pairs']``) were freed: ε is then the minimum for the nearby point
        with those pre-activations at 0.
    method : str
        How the program was solved.
    solver_status : str
        ``'optimal'`` (QP/LP optimality verified) or ``'inaccurate'`` (ε is an achieved upper bound
        but optimality was not certified).
    euler_residual : float
        ``max_i |⟨h_i, θ̃⟩ − L q_i(θ̃)| / (L max q)`` over the candidate columns (ℓ2 path; Euler's
        identity). Large values mean the network is not homogeneous as described.
    optimality_residual : float
        Largest relative violation of the QP/LP optimality conditions (0 for an exact optimum).
    eps_tol, delta_tol : float
        Thresholds of the verdict.
    is_kkt : bool
        ``epsilon_relative <= eps_tol and delta_relative <= delta_tol``.
    status : str
        ``'approximate_kkt'``; ``'not_kkt'`` when the *minimal* ε (or δ) exceeds its tolerance;
        ``'undecided'`` when ε above the tolerance is only an upper bound (kinks whose Clarke
        slopes were not freed, an uncertified solve) or homogeneity failed its check — an upper
        bound above the tolerance proves nothing (:func:`decide`).
    verdict : str
        One sentence with the numbers and thresholds.
    extra : dict
        Diagnostics (block-coordinate history, working-set rounds, ``P``, ...).
    log_q_min : float
        ``log q_min``, finite even when ``q_min`` itself over- or underflows (weights scaled by
        ``1e±300``: the check runs at a normalised scale, see :func:`solvers.check_kkt`).
    primal_feasibility : float
        ``max(0, 1 − min_i q_i(θ̃))`` over the candidates: 0 up to rounding (``θ̃`` is rescaled to
        ``q_min = 1``).
    """

    norm: str
    epsilon: float
    epsilon_relative: float
    delta: float
    delta_relative: float
    multipliers: np.ndarray
    support: np.ndarray
    n_kink_pairs: int
    natural_epsilon: float
    natural_epsilon_relative: float
    natural_multipliers: np.ndarray
    natural_delta: float
    delta_budget: float
    q_min: float
    normalised_margin: float
    degree: int
    n_candidates: int
    support_factor: float
    excluded_weight: float
    exact: bool
    method: str
    solver_status: str
    euler_residual: float
    optimality_residual: float
    eps_tol: float
    delta_tol: float
    is_kkt: bool
    status: str
    verdict: str
    extra: dict = field(default_factory=dict)
    log_q_min: float = math.nan
    primal_feasibility: float = 0.0

    @property
    def conditions(self) -> dict:
        """The KKT conditions by name (as CVXPY names them), each ``{'residual', 'tolerance',
        'satisfied'}``; residuals are relative (ε/||θ̃||_p, δ/||θ̃||_p²).

        ``stationarity`` and ``complementary_slackness`` decide the verdict; ``primal_feasibility``
        and ``dual_feasibility`` hold by construction (rescaling; the program's cone), their
        residuals are reported so that a reader need not take that on trust.
        """
        lam_min = float(self.multipliers.min(initial=0.0))
        rows = {
            "stationarity": (self.epsilon_relative, self.eps_tol),
            "complementary_slackness": (self.delta_relative, self.delta_tol * (1.0 + 1e-9)),
            # q(θ̃) >= 1 holds by the rescaling; the recomputed forward pass differs by rounding
            # (relative ~ depth · width · 1e-16), far below the same 1e-9 slack as δ's budget
            "primal_feasibility": (self.primal_feasibility, 1e-9),
            "dual_feasibility": (max(0.0, -lam_min), 0.0),
        }
        return {k: {"residual": float(r), "tolerance": float(t), "satisfied": bool(r <= t)}
                for k, (r, t) in rows.items()}

    def to_dict(self) -> dict:
        """JSON-serialisable dict (arrays as lists, floats as floats)."""
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, np.ndarray):
                out[k] = v.tolist()
            elif isinstance(v, (bool, np.bool_)):
                out[k] = bool(v)
            elif isinstance(v, (int, np.integer)):
                out[k] = int(v)
            elif isinstance(v, (float, np.floating)):
                out[k] = float(v)
            else:
                out[k] = v
        out["conditions"] = self.conditions
        return out

    def summary(self) -> str:
        """A few lines of text for people: verdict, ε, δ, supports, candidates and kinks, and
        the conversions made to a PyTorch model (``extra['notes']``: dtype, device, eval mode)."""
        lines = [
            self.verdict,
            f"  norm l{self.norm}, degree L = {self.degree}, q_min = {self.q_min:.6g}, "
            f"normalised margin q_min/||θ||^L = {self.normalised_margin:.6g}",
            f"  epsilon = {self.epsilon:.3e} (relative {self.epsilon_relative:.3e}); natural "
            f"multipliers give {self.natural_epsilon:.3e} (relative "
            f"{self.natural_epsilon_relative:.3e})",
            f"  delta = {self.delta:.3e} (relative {self.delta_relative:.3e})",
            f"  {self.n_candidates} candidate(s) with q_i <= {self.support_factor:g} q_min "
            f"(excluded examples carry {self.excluded_weight:.2e} of the loss-gradient weight); "
            f"{self.support.size} in the support; {self.n_kink_pairs} near-kink pair(s)",
            "  " + ("exact minimum over Clarke subgradients" if self.exact
                    else "minimum over the Clarke subgradients of the nearby point with the "
                         f"{self.extra.get('n_near_kink_pairs', 0)} near-kink pre-activation(s) "
                         "set to 0 (θ̃ itself is differentiable there)"
                    if self.extra.get("n_near_kink_pairs", 0)
                    else "upper bound (block-coordinate over layers)")
            + f"; {self.method}; solver {self.solver_status}",
        ]
        pairs = self.extra.get("support_pairs")
        if pairs:
            top = sorted(pairs, key=lambda r: -r[2])[:5]
            lines.append("  largest multipliers (example, competing class, λ): " + ", ".join(
                f"({i}, {j}, {lam:.3g})" for i, j, lam in top)
                + (f" … ({len(pairs)} pairs)" if len(pairs) > 5 else ""))
        if self.extra.get("n_dead_units"):
            lines.append(f"  {self.extra['n_dead_units']} dead hidden unit(s) (incoming weights "
                         f"negligible against their layer) kept their slope, not counted as kinks")
        for note in self.extra.get("notes", ()):  # conversions of a PyTorch model (dtype, device)
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def decide(within_tolerance: bool, *, upper_bound: bool, homogeneous: bool = True
           ) -> tuple[str, str]:
    """``(status, head of the verdict)`` of a KKT report.

    ``within_tolerance``: the achieved ε and δ are below their tolerances (then the point *is* an
    approximate KKT point, whatever else holds: ε is achieved by explicit multipliers).
    ``upper_bound``: ε is not certified minimal, so ε above the tolerance decides nothing.
    ``homogeneous``: Euler's identity held, so the margin problem applies at all.
    """
    if not homogeneous:
        return "undecided", ("not checked: Euler's identity fails, so the network may not be "
                             "homogeneous and the margin problem may not apply")
    if within_tolerance:
        return "approximate_kkt", "approximate KKT point (stationary)"
    if upper_bound:
        return "undecided", "not shown to be an approximate KKT point (ε is an upper bound)"
    return "not_kkt", "not an approximate KKT point"

