"""Small display helpers for notebooks: comparison tables and :class:`~theory.verdict.FigureData`.

The notebooks in ``notebooks/`` end with a table of the claims they reproduced
(``claim | theory | measured | holds``), each row a :class:`~theory.verdict.Comparison` computed in
that run. These helpers format such tables, draw a :class:`~theory.verdict.FigureData` on a
matplotlib axis, and show a whole :class:`~theory.verdict.Verdict` (its table and its figures).

Text goes to ``file`` (default :data:`sys.stdout`): showing it is the purpose of these functions.
matplotlib is imported lazily, and no backend is forced: in Jupyter the figures a cell creates are
displayed inline when the cell ends; under ``MPLBACKEND=Agg`` they are only drawn.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

from ..checking import RELATIONS, Comparison, Verdict
from ._figures import plot_figure
from ._report import Figure, Report, render_markdown

__all__ = [
    "ClaimsFailedError",
    "format_value",
    "format_comparisons",
    "format_verdict",
    "plot_figure",
    "show_verdict",
    "show_claims",
    "show_report",
]

#: Column headers of the claims table.
HEADERS = ("claim", "theory", "measured", "holds")


class ClaimsFailedError(RuntimeError):
    """Raised by :func:`show_claims` (``strict=True``) when an asserted claim did not hold.

    Attributes
    ----------
    failed : tuple of Comparison
        The comparisons whose assertion failed.
    """

    def __init__(self, message: str, failed: tuple = ()):
        super().__init__(message)
        self.failed = tuple(failed)


def format_value(x: Any) -> str:
    """A short text for a number or a text value: 4 significant digits, ``inf``/``nan`` spelled.

    >>> format_value(0.000123456), format_value(2.0), format_value("→ 0"), format_value(True)
    ('0.0001235', '2', '→ 0', 'True')
    """
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if isinstance(x, str):
        return x
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def _theory_cell(c: Comparison) -> str:
    """The theory column: the relation symbol and the theory's value (``≤ 0.05``, ``≈ 2.459``)."""
    if c.relation == "reported":
        return format_value(c.theory)
    if c.relation == "nondecreasing":
        return "non-decreasing"
    if c.relation == "in_band":
        return f"{format_value(c.theory)} ({c.tolerance})"
    return f"{RELATIONS[c.relation]} {format_value(c.theory)}"


def _holds_cell(c: Comparison) -> str:
    if c.relation == "reported":
        return "(reported)"
    return "yes" if c.passed else "NO"


def _check_comparisons(comparisons) -> tuple:
    if isinstance(comparisons, Comparison):
        comparisons = (comparisons,)
    if isinstance(comparisons, (str, bytes)) or not isinstance(comparisons, Iterable):
        raise TypeError(f"comparisons must be an iterable of theory.verdict.Comparison; got "
                        f"{type(comparisons).__name__}. Build them with theory.verdict's "
                        f"compare_close / compare_le / compare_ge / compare_in_band.")
    out = tuple(comparisons)
    bad = [type(c).__name__ for c in out if not isinstance(c, Comparison)]
    if bad:
        raise TypeError(f"comparisons must all be theory.verdict.Comparison; got {bad[:3]}. "
                        f"Build them with theory.verdict's compare_* functions.")
    return out


def format_comparisons(comparisons: Iterable[Comparison]) -> str:
    """A plain-text table ``claim | theory | measured | holds``, one row per comparison.

    The theory column carries the relation of the assertion (``≈``, ``≤``, ``≥``, a band or
    ``non-decreasing``); ``holds`` is ``yes``/``NO``, or ``(reported)`` for a value reported
    without an assertion.

    Parameters
    ----------
    comparisons : iterable of Comparison

    Returns
    -------
    str
        The table, columns padded to equal width, rows separated by newlines.
    """
    rows = [HEADERS] + [(c.name, _theory_cell(c), format_value(c.measured), _holds_cell(c))
                        for c in _check_comparisons(comparisons)]
    widths = [max(len(r[j]) for r in rows) for j in range(len(HEADERS))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def format_verdict(verdict: Verdict) -> str:
    """A heading (id, title, status, runtime) followed by :func:`format_comparisons`."""
    if not isinstance(verdict, Verdict):
        raise TypeError(f"verdict must be a theory.verdict.Verdict; got "
                        f"{type(verdict).__name__}. Get one from get_theorem(id).check().")
    head = (f"{verdict.theorem_id}: {verdict.title}\n"
            f"status: {verdict.status} ({verdict.runtime:.2f} s)")
    if verdict.error:
        head += f"\nerror: {verdict.error}"
    if not verdict.comparisons:
        return head
    return head + "\n" + format_comparisons(verdict.comparisons)


def show_verdict(verdict: Verdict, *, figures: bool = True, file=None) -> list:
    """Write the verdict's table to ``file`` and draw its figures (one matplotlib figure each).

    Parameters
    ----------
    verdict : Verdict
        E.g. ``get_theorem("soudry-direction").check()``.
    figures : bool
        Draw the verdict's :class:`FigureData` (inline in Jupyter).
    file : file-like, optional
        Where the text goes (default :data:`sys.stdout`).

    Returns
    -------
    list of matplotlib.axes.Axes
        The axes drawn (empty when ``figures=False`` or the verdict has none).
    """
    text = format_verdict(verdict)
    (sys.stdout if file is None else file).write(text + "\n")
    if not figures:
        return []
    return [plot_figure(f) for f in verdict.figures]


def show_claims(comparisons: Iterable[Comparison], *, title: str = "Claims reproduced",
                strict: bool = True, file=None) -> tuple:
    """Write the table of claims reproduced in this run; fail loudly if one did not hold.

    Parameters
    ----------
    comparisons : iterable of Comparison
        The claims, each pairing the theory's value with the value measured in this run.
    title : str
        A line written above the table.
    strict : bool
        Raise :class:`ClaimsFailedError` (after writing the table) when an asserted comparison
        failed, so that executing the notebook fails too.
    file : file-like, optional
        Where the text goes (default :data:`sys.stdout`).

    Returns
    -------
    tuple of Comparison
        The comparisons shown.

    Raises
    ------
    ClaimsFailedError
        ``strict`` and some asserted comparison did not hold; ``.failed`` lists them.
    """
    comps = _check_comparisons(comparisons)
    if not comps:
        raise ValueError("comparisons is empty; pass at least one claim to show.")
    out = sys.stdout if file is None else file
    n_ok = sum(c.passed for c in comps if c.relation != "reported")
    n_asserted = sum(c.relation != "reported" for c in comps)
    out.write(f"{title}: {n_ok}/{n_asserted} asserted claims hold\n")
    out.write(format_comparisons(comps) + "\n")
    failed = tuple(c for c in comps if not c.passed)
    if strict and failed:
        names = "; ".join(f"{c.name} (theory {_theory_cell(c)}, measured "
                          f"{format_value(c.measured)})" for c in failed)
        raise ClaimsFailedError(f"{len(failed)} claim(s) did not hold: {names}", failed)
    return comps


def _in_ipython_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_report(report: Report, *, markdown: bool | None = None, figures: bool = True,
                file=None) -> str:
    """Show a :class:`~theory.report.Report` (e.g. from :func:`theory.derive_report`) in a notebook.

    The text blocks are rendered as Markdown (:func:`theory.report.render_markdown`, math in
    ``$…$``) and the report's figures are drawn with :func:`plot_figure` instead of being linked
    as PNG files.

    Parameters
    ----------
    report : Report
    markdown : bool, optional
        Display rich Markdown through IPython (default: when running in an IPython kernel);
        otherwise the Markdown source is written to ``file``.
    figures : bool
        Draw the report's figures.
    file : file-like, optional
        Where the text goes when not displayed as Markdown (default :data:`sys.stdout`).

    Returns
    -------
    str
        The Markdown source (figures omitted).
    """
    if not isinstance(report, Report):
        raise TypeError(f"report must be a theory.report.Report; got {type(report).__name__}. "
                        f"Get one from theory.derive_report(DerivationSpec(...)).")
    text_blocks = tuple(b for b in report.blocks if not isinstance(b, Figure))
    md = render_markdown(Report(report.title, text_blocks, report.payload))
    if markdown is None:
        markdown = file is None and _in_ipython_kernel()
    if markdown:
        from IPython.display import Markdown, display

        display(Markdown(md))
    else:
        (sys.stdout if file is None else file).write(md + "\n")
    if figures:
        for b in report.blocks:
            if isinstance(b, Figure):
                plot_figure(b.data)
    return md
