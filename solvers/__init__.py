"""marginflow numerics: convex reference programs, ODE integration, homogeneous networks, training
loops and KKT checks.

Numpy, scipy and cvxpy only; this package never imports sympy or :mod:`theory`. The public names
below are loaded lazily from the subpackages that export them (PEP 562), so ``import solvers``
stays cheap. The layout follows the subjects: :mod:`solvers.programs`, :mod:`solvers.flows`,
:mod:`solvers.nets` and :mod:`solvers.nets.kkt`, each a thin public surface over private modules.
"""

from __future__ import annotations

import importlib

from .errors import (
    InconsistentSystemError,
    IntegrationError,
    MarginBelowResolutionError,
    MarginflowError,
    NotFeasibleError,
    NotHomogeneousError,
    NotSeparableError,
    PrecisionLimitError,
    SolverError,
)
from .tolerances import TOLERANCES, Tolerances

#: public name -> subpackage that exports it (programs, flows, nets, nets.kkt)
_LAZY = {
    # certified convex reference programs
    **{n: "solvers.programs" for n in (
        "Certificate", "MarginSolution", "MinNormSolution", "NuclearNormSolution",
        "solve_max_margin", "solve_min_norm", "solve_min_nuclear_norm",
        "sensing_operator_from_regression",
        "Potential", "PotentialSolution", "solve_min_potential")},
    # gradient flows: integration, hand-written right-hand sides, quantities, Halpern
    **{n: "solvers.flows" for n in (
        "integrate", "Trajectory", "pack_state", "unpack_state",
        "linear_flow", "chain_flow", "deep_linear_flow", "diagonal_flow", "sensing_flow",
        "minnorm_flow", "normalized_flow", "balanced_init",
        "end_to_end", "loss_along", "margins_along", "normalized_margin_along",
        "parameter_norms", "layer_imbalance", "chain_imbalance", "distance_to", "angle_to",
        "direction_error", "effective_rank", "HalpernResult", "halpern", "halpern_least_squares",
        "polar_flow")},
    # homogeneous networks, margins, training, weight files, shallow nets, KKT
    **{n: "solvers.nets" for n in (
        "HomogeneousMLP", "load_weights", "save_weights", "load_data", "save_data",
        "from_torch", "load_torch", "save_torch", "augment_constant_feature",
        "MarginSummary", "margin_summary", "margins", "min_margin", "parameter_norm",
        "normalized_margin", "smoothed_margin", "support_mask", "layer_norms", "layer_balance",
        "unit_balance", "train", "TrainingResult", "History",
        "train_shallow", "ShallowRun", "minimal_width")},
    **{n: "solvers.nets.kkt" for n in ("check_kkt", "KKTReport")},
    **{n: "solvers.nets" for n in ("TorchNet", "train_torch", "TorchTrainingResult")},
    # progress: a bar on a terminal, one log line per finished item otherwise
    "progress": "solvers._progress",
    # losses and data
    **{n: "solvers.losses" for n in ("log_loss", "loss_value", "loss_weights", "inverse_loss")},
    **{n: "solvers.datasets" for n in ("make_separable", "make_underdetermined",
                                       "make_whitened_regression", "make_sensing")},
}

#: earlier spellings that keep working (one vocabulary: "normalized" throughout)
_ALIASES = {"normalised_flow": "normalized_flow"}

__all__ = [
    "MarginflowError",
    "NotSeparableError",
    "MarginBelowResolutionError",
    "InconsistentSystemError",
    "NotHomogeneousError",
    "NotFeasibleError",
    "SolverError",
    "PrecisionLimitError",
    "IntegrationError",
    "TOLERANCES",
    "Tolerances",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _ALIASES:
        value = __getattr__(_ALIASES[name])
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'solvers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
