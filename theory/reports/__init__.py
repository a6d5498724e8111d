"""Reports: a :class:`Report` of blocks rendered to Markdown, standalone LaTeX and JSON with
figures (``write_report``), the verify report, the derivation report (``derive_report``) and the
notebook display helpers (``show_claims`` …).
"""

from __future__ import annotations

from ._derivation import (
    MODEL_ALIASES,
    MODELS,
    DerivationSpec,
    build_model,
    derive_report,
    derive_user_report,
    load_user_model,
)
from ._display import (
    ClaimsFailedError,
    format_comparisons,
    format_value,
    format_verdict,
    plot_figure,
    show_claims,
    show_report,
    show_verdict,
)
from ._report import (
    Code,
    Equation,
    Figure,
    Paragraph,
    Report,
    Table,
    check_replaceable,
    verdict_blocks,
    verify_report,
    write_report,
)

__all__ = [
    "Report", "Paragraph", "Equation", "Table", "Code", "Figure", "verdict_blocks",
    "verify_report", "write_report", "check_replaceable",
    "MODELS", "DerivationSpec", "build_model", "derive_report",
    "MODEL_ALIASES",
    "derive_user_report", "load_user_model",
    "ClaimsFailedError", "format_value", "format_comparisons", "format_verdict", "plot_figure",
    "show_verdict", "show_claims", "show_report",
]
