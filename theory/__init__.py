"""marginflow theory: symbolic models, losses, gradient flows, conservation laws, closed forms and
code generation (sympy only; these import no solver), then the theorem catalogue, reports, sweeps
and the CLI (which use :mod:`solvers`). Dependencies point one way: ``theory -> solvers``.

Layout: :mod:`theory.symbolic` (the sympy core), :mod:`theory.checking` (theorem, verdict,
sweep), :mod:`theory.catalogue` (one module per paper), :mod:`theory.reports` and
:mod:`theory.cli`. Public names are loaded lazily from those packages (PEP 562).
"""

from __future__ import annotations

import importlib

_LAZY = {
    # the symbolic core
    **{n: "theory.symbolic" for n in (
        "Model", "linear_model", "linear_chain", "deep_linear_net", "diagonal_linear_net",
        "Loss", "squared_loss", "logistic_loss", "exp_loss", "get_loss",
        "GradientFlow", "derive_gradient_flow", "derive_minnorm_flow", "derive_normalized_flow",
        "ConservationProof", "conserved_quantities", "prove_conserved",
        "saxe_mode_ode", "saxe_mode_solution", "saxe_time_integral", "saxe_mode_time",
        "saxe_mode_strength", "psd_power", "arora_end_to_end_expression", "arora_end_to_end_rhs",
        "gunasekar_projection", "CompiledFlow", "BoundFlow", "compile_flow",
        "derive_polar_flow")},
    **{n: "theory.symbolic" for n in (
        "find_conserved", "count_conserved", "DiscoveredLaws", "LawCount", "reparametrisation",
        "prove_law")},
    # the checking framework and the catalogue
    **{n: "theory.checking" for n in (
        "Theorem", "Source", "Verdict", "Comparison", "FigureData", "Series", "compare_close",
        "compare_le", "compare_ge", "compare_in_band", "compare_nondecreasing", "report_value",
        "run_sweep", "SweepResult", "read_results")},
    **{n: "theory.catalogue" for n in ("get_theorem", "select")},
    # reports and the CLI
    **{n: "theory.reports" for n in (
        "show_claims", "show_verdict", "show_report", "plot_figure", "Report", "write_report",
        "verify_report", "DerivationSpec", "derive_report")},
    "run_checks": "theory.cli",
}

__all__ = [*_LAZY, "catalogue"]


def __getattr__(name: str):
    if name == "catalogue":  # the callable package (see theory/catalogue/__init__.py)
        value = importlib.import_module("theory.catalogue")
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'theory' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
