"""Drawing a :class:`~theory.checking.FigureData` with matplotlib: on an axis of your choice
(:func:`plot_figure`, used by the notebook display helpers) or to PNG + SVG files
(:func:`draw_figure`, used by :func:`theory.reports.write_report`).

One module for both, imported by ``_report`` and ``_display`` alike, so that the two no longer
import each other (issue 13). matplotlib is imported lazily.
"""

from __future__ import annotations

from pathlib import Path

from ..checking import FigureData

__all__ = ["plot_figure", "draw_figure"]


def plot_figure(fig_data: FigureData, ax=None):
    """Draw ``fig_data`` on a matplotlib axis (a new figure when ``ax`` is None).

    Each :class:`~theory.verdict.Series` becomes one line with its style and label; scales,
    axis labels and the caption (as title) come from ``fig_data``. The same drawing as the
    figures of :func:`theory.write_report`, on an axis you choose.

    Parameters
    ----------
    fig_data : FigureData
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(fig_data, FigureData):
        raise TypeError(f"fig_data must be a theory.verdict.FigureData; got "
                        f"{type(fig_data).__name__}.")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
    for s in fig_data.series:
        ax.plot(s.x, s.y, s.style, label=s.label)
    ax.set_xscale(fig_data.xscale)
    ax.set_yscale(fig_data.yscale)
    ax.set_xlabel(fig_data.xlabel)
    ax.set_ylabel(fig_data.ylabel)
    ax.set_title(fig_data.caption, fontsize=9)
    if any(s.label for s in fig_data.series):
        ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax


def draw_figure(fig_data: FigureData, directory: Path) -> list[Path]:
    """Draw ``fig_data`` to ``NAME.png`` and ``NAME.svg`` in ``directory``.

    Uses a bare :class:`matplotlib.figure.Figure` (no pyplot), so it works headless and leaves the
    caller's backend (e.g. a notebook's inline one) alone.
    """
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(6.0, 4.0), layout="constrained")
    plot_figure(fig_data, fig.subplots())
    paths = [directory / f"{fig_data.name}.png", directory / f"{fig_data.name}.svg"]
    for p in paths:
        fig.savefig(p, dpi=120)
    return paths
