"""The checking framework: a :class:`Theorem` (statement, source, claim kind, instance factory,
check) returns a :class:`Verdict` made of named :class:`Comparison` s; ``run_sweep`` runs checks
or trials over a grid of parameters and seeds (joblib or Dask), resumable from a results file.
"""

from __future__ import annotations

from ._figures import line_figure
from ._signals import Terminated, interrupt_exit_code, prepare_worker, stop_on_signals
from ._sweep import (
    RESULTS_HEADER,
    ResultsFileLockedError,
    SweepResult,
    grid_points,
    point_key,
    read_results,
    run_sweep,
)
from ._theorem import CLAIM_KINDS, Source, Theorem
from ._verdict import (
    RELATIONS,
    Comparison,
    FigureData,
    Series,
    Verdict,
    compare_close,
    compare_ge,
    compare_in_band,
    compare_le,
    compare_nondecreasing,
    jsonable,
    report_value,
)

__all__ = [
    "Theorem", "Source", "CLAIM_KINDS",
    "Verdict", "Comparison", "FigureData", "Series", "compare_close", "compare_le",
    "compare_ge", "compare_in_band", "compare_nondecreasing", "report_value", "jsonable",
    "RELATIONS",
    "run_sweep", "SweepResult", "read_results", "grid_points", "point_key",
    "line_figure",
    "RESULTS_HEADER", "ResultsFileLockedError", "Terminated", "stop_on_signals",
    "interrupt_exit_code", "prepare_worker",
]
