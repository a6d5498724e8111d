"""Builders of :class:`FigureData` shared by the catalogue and the reports (issue 13: no
private imports across packages)."""

from __future__ import annotations

from ._verdict import FigureData, Series

__all__ = ["line_figure"]


def line_figure(name, caption, curves, *, xlabel="", ylabel="", xscale="linear",
                yscale="linear") -> FigureData:
    """A FigureData from ``[(x, y, label[, style]), ...]``: one :class:`Series` per curve."""
    series = tuple(Series.of(*c) for c in curves)
    return FigureData(name, caption, series, xlabel, ylabel, xscale, yscale)
