"""Named default tolerances, in one place (after neural-tangents' single table).

Every numerical default of marginflow lives here, so a reader can see how the layers relate:
solver tolerances are tight, certificate tolerances sit above them, and test tolerances (in the
test suite) sit above those. Change a value here, never inline.
"""

from __future__ import annotations

__all__ = ["TOLERANCES", "Tolerances"]

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerances:
    """The default tolerances of marginflow.

    Attributes
    ----------
    solver_eps : float
        Tolerance requested from convex solvers (Clarabel ``tol_gap_*``/``tol_feas``, HiGHS
        feasibility/optimality).
    certificate_rtol : float
        Relative tolerance under which a primal/dual certificate computed in numpy is accepted
        (primal infeasibility, dual residual and duality gap, each relative to the problem scale).
        Must exceed ``solver_eps`` by a margin: 1e-6 against 1e-9.
    support_rtol : float
        A constraint ``y_i <w, x_i> >= 1`` is *active* (the example is a support example) when
        ``y_i <w, x_i> - 1 <= support_rtol``.
    rank_rtol : float
        Singular values below ``rank_rtol * s_max`` count as zero in least-squares closed forms.
    farkas_atol : float
        A Farkas certificate ``mu`` (``sum(mu) = 1``) is accepted when
        ``||sum_i mu_i y_i x_i|| <= farkas_atol * max_i ||x_i||``, measured on the equilibrated
        data (rows scaled to unit ℓ2 norm, then columns to unit max-abs: Gordan's alternative is
        invariant under both). Below it the data are *not separable at this resolution*.
    farkas_proof_atol : float
        Such a certificate *proves* non-separability (NotSeparableError) only when its residual
        is at float64 rounding level, ``<= farkas_proof_atol`` (exact certificates measured
        ~1e-16 on random non-separable data up to 1000×50); between the two, separability is
        undecided at this tolerance (MarginBelowResolutionError).
    consistency_rtol : float
        A linear system ``X w = y`` (or ``<A_i, W> = y_i``) counts as inconsistent when its
        least-squares residual exceeds ``consistency_rtol * ||y||_2`` (float64 round-off of a
        consistent system is ~1e-15; well below ``certificate_rtol``, which must still hold).
    ode_rtol, ode_atol : float
        Default relative/absolute tolerances of :func:`solvers.integrate` (never scipy's 1e-3).
    halpern_tol : float
        :func:`solvers.flows` stops when the fixed-point residual
        ``||θ_k − T(θ_k)|| <= halpern_tol · (1 + ||θ_k||)``. Halpern's residual decays only as
        ``O(1/k)`` (Lieder 2021), so this is loose next to ``ode_rtol``.
    kink_rtol : float
        A ReLU pre-activation ``z`` is *at a kink* when ``|z| <= kink_rtol * scale``, the scale
        being the layer's largest pre-activation magnitude for that example.
    kkt_support_factor : float
        Examples with ``q_i <= kkt_support_factor * q_min`` are candidate supports in the KKT check.
    kkt_eps_tol, kkt_delta_tol : float
        Verdict thresholds of :func:`solvers.check_kkt`: an approximate KKT point needs
        ``ε / ||θ̃|| <= kkt_eps_tol`` and ``δ / ||θ̃||² <= kkt_delta_tol``.
    kkt_qp_tol : float
        Termination tolerance (relative residuals, complementarity ``≤ tol²``) of the KKT check's
        interior-point QP on the scaled Gram matrix.
    kkt_optimality_rtol : float
        The KKT check's QP solution is certified optimal when its relative dual-cone violation and
        complementarity are below this (else ``solver_status='inaccurate'`` and a warning; the
        reported ε is then still an achieved upper bound).
    kkt_norm_rtol : float
        ℓ1/ℓ∞ KKT check: coordinates with ``|θ_j| <= kkt_norm_rtol · max|θ|`` count as zero (ℓ1) and
        ``|θ_j| >= (1 − kkt_norm_rtol) · max|θ|`` as tied at the maximum (ℓ∞).
    kkt_multiplier_rtol : float
        An example is in the reported support when ``λ_i > kkt_multiplier_rtol · max λ``.
    kkt_working_set_rtol : float
        ℓ2 KKT check with a working set: a candidate outside the working set is added when its
        relative dual-cone violation (as in ``kkt_optimality_rtol``) exceeds this; it is set
        below ``kkt_optimality_rtol`` so a converged working set certifies the full program.
    shallow_loss_tol : float
        Default success target of :func:`solvers.train_shallow`: the mean squared loss
        ``(1/2n) Σ (f(x_i) − y_i)²`` must fall to this (absolute; targets are ±1, so the loss
        starts near 1/2).
    shallow_stall_rtol : float
        A training run of :func:`solvers.train_shallow` is *stalled* when its loss fell by
        less than this fraction over a whole stall window (a plateau or a spurious stationary
        point; measured: such runs stay flat for thousands of steps).
    pl_rtol : float
        The exact PL inequality ``||∇𝓛||²/(2𝓛) >= λ_min(J Jᵀ)/n`` is accepted up to
        ``pl_rtol · λ_max(J Jᵀ)/n`` (the rounding error of a symmetric eigensolver is
        ``O(n ε λ_max)``, about 1e-13 here).
    """

    solver_eps: float = 1e-9
    certificate_rtol: float = 1e-6
    support_rtol: float = 1e-6
    rank_rtol: float = 1e-12
    farkas_atol: float = 1e-7
    farkas_proof_atol: float = 1e-12
    consistency_rtol: float = 1e-9
    ode_rtol: float = 1e-10
    ode_atol: float = 1e-12
    halpern_tol: float = 1e-6
    kink_rtol: float = 1e-6
    kkt_support_factor: float = 1.5
    kkt_eps_tol: float = 1e-2
    kkt_delta_tol: float = 1e-2
    kkt_qp_tol: float = 1e-10
    kkt_optimality_rtol: float = 1e-6
    kkt_norm_rtol: float = 1e-6
    kkt_multiplier_rtol: float = 1e-8
    kkt_working_set_rtol: float = 1e-7
    shallow_loss_tol: float = 1e-3
    shallow_stall_rtol: float = 1e-3
    pl_rtol: float = 1e-9


TOLERANCES = Tolerances()
