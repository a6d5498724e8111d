"""Certified convex reference programs: max margin, minimum norm, minimum nuclear norm.

Every function returns a frozen result whose :class:`Certificate` (primal infeasibility, dual
residual, duality gap, computed in numpy after the solve) verified; otherwise it raises. Fast
routes (NNLS working set, HiGHS LPs with constraint generation) are tried first, CVXPY + Clarabel
is the general route and the fallback.

The implementation modules are private; every public name is re-exported here.
"""

from __future__ import annotations

from ._certificate import Certificate
from ._max_margin import MAX_MARGIN_METHODS, MarginSolution, solve_max_margin
from ._min_norm import MIN_NORM_METHODS, MinNormSolution, solve_min_norm
from ._nuclear_norm import (
    NUCLEAR_NORM_METHODS,
    NuclearNormSolution,
    sensing_operator_from_regression,
    solve_min_nuclear_norm,
)
from ._potential import (
    MIN_POTENTIAL_METHODS,
    Potential,
    PotentialSolution,
    solve_min_potential,
)

__all__ = [
    "Certificate",
    "MarginSolution",
    "MinNormSolution",
    "NuclearNormSolution",
    "solve_max_margin",
    "solve_min_norm",
    "solve_min_nuclear_norm",
    "sensing_operator_from_regression",
    "MAX_MARGIN_METHODS",
    "MIN_NORM_METHODS",
    "NUCLEAR_NORM_METHODS",
    "Potential",
    "PotentialSolution",
    "solve_min_potential",
    "MIN_POTENTIAL_METHODS",
]
