"""Gradient flows in numpy: integration (``integrate``, ``Trajectory``), hand-written right-hand
sides (``linear_flow`` … ``normalized_flow``), quantities along trajectories and Halpern iteration.

The implementation modules are private; every public name is re-exported here (and from
:mod:`solvers`), so no module name can shadow a function.
"""

from __future__ import annotations

from ._halpern import HalpernResult, halpern, halpern_least_squares
from ._integrate import DENSE_JACOBIAN_LIMIT, MAX_STEPS, METHODS, SMALL_FLOW_BLAS_LIMIT, integrate
from ._krylov import layerwise_gauss_newton
from ._models import MODELS, canonical_model
from ._quantities import (
    angle_to,
    chain_imbalance,
    direction_error,
    distance_to,
    effective_rank,
    end_to_end,
    infer_model,
    layer_imbalance,
    loss_along,
    margins_along,
    normalized_margin_along,
    parameter_norms,
)
from ._rhs import (
    FlowRHS,
    GradientFlowRHS,
    MinnormRHS,
    NormalizedRHS,
    PolarRHS,
    balanced_init,
    chain_flow,
    deep_linear_flow,
    diagonal_flow,
    linear_flow,
    minnorm_flow,
    normalized_flow,
    polar_flow,
    sensing_flow,
)
from ._trajectory import Trajectory, pack_state, unpack_state

__all__ = [
    "integrate", "METHODS", "Trajectory", "pack_state", "unpack_state",
    "MAX_STEPS", "DENSE_JACOBIAN_LIMIT", "SMALL_FLOW_BLAS_LIMIT",
    "FlowRHS", "GradientFlowRHS", "MinnormRHS", "NormalizedRHS",
    "linear_flow", "chain_flow", "deep_linear_flow", "diagonal_flow", "sensing_flow",
    "minnorm_flow", "normalized_flow", "balanced_init",
    "infer_model", "end_to_end", "loss_along", "margins_along", "normalized_margin_along",
    "parameter_norms", "layer_imbalance", "chain_imbalance", "distance_to", "angle_to",
    "direction_error", "effective_rank",
    "HalpernResult", "halpern", "halpern_least_squares",
    "PolarRHS", "polar_flow", "MODELS", "canonical_model",
    "layerwise_gauss_newton",
]
