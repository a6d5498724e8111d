"""The symbolic core (sympy only; imports no solver): models, losses, gradient flows,
conservation laws, closed forms and code generation.

Object flow: a :class:`Model` and a :class:`Loss` give a :class:`GradientFlow`
(``derive_gradient_flow`` and its weight-decay, Minnorm and normalized variants); conservation
laws are proved on it (``prove_conserved``); ``compile_flow`` turns it into a numpy right-hand side
interchangeable with the hand-written flows of :mod:`solvers.flows`.
"""

from __future__ import annotations

from ._closed_forms import (
    arora_end_to_end_expression,
    arora_end_to_end_rhs,
    gunasekar_projection,
    psd_power,
    saxe_mode_ode,
    saxe_mode_solution,
    saxe_mode_strength,
    saxe_mode_time,
    saxe_time_integral,
)
from ._codegen import BoundFlow, CompiledFlow, compile_flow
from ._conservation import ConservationProof, conserved_quantities, prove_conserved
from ._discovery import (
    DiscoveredLaws,
    LawCount,
    count_conserved,
    find_conserved,
    prove_law,
    reparametrisation,
)
from ._flows import (
    LAM,
    GradientFlow,
    derive_gradient_flow,
    derive_minnorm_flow,
    derive_normalized_flow,
    derive_polar_flow,
)
from ._losses import Loss, Sigmoid, Softplus, exp_loss, get_loss, logistic_loss, squared_loss
from ._models import (
    N_EXAMPLES,
    Block,
    Model,
    deep_linear_net,
    diagonal_linear_net,
    linear_chain,
    linear_model,
)

__all__ = [
    "Model", "Block", "N_EXAMPLES", "linear_model", "linear_chain", "deep_linear_net",
    "diagonal_linear_net",
    "Loss", "Sigmoid", "Softplus", "squared_loss", "logistic_loss", "exp_loss", "get_loss",
    "GradientFlow", "LAM", "derive_gradient_flow", "derive_minnorm_flow",
    "derive_normalized_flow",
    "derive_polar_flow",
    "ConservationProof", "conserved_quantities", "prove_conserved",
    "saxe_mode_ode", "saxe_mode_solution", "saxe_time_integral", "saxe_mode_time",
    "saxe_mode_strength", "psd_power", "arora_end_to_end_expression", "arora_end_to_end_rhs",
    "gunasekar_projection",
    "CompiledFlow", "BoundFlow", "compile_flow",
    "DiscoveredLaws", "LawCount", "find_conserved", "count_conserved", "reparametrisation",
    "prove_law",
]
