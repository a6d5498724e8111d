"""Tests of theory.display: the claims table, verdict text, figures drawn from FigureData, and
derivation reports shown in notebooks. Expected strings are written out by hand."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from theory.checking import (  # noqa: E402
    FigureData,
    Series,
    Verdict,
    compare_close,
    compare_ge,
    compare_in_band,
    compare_le,
    compare_nondecreasing,
    report_value,
)
from theory.reports import (  # noqa: E402  # noqa: E402
    ClaimsFailedError,
    Code,
    Equation,
    Figure,
    Paragraph,
    Report,
    Table,
    format_comparisons,
    format_value,
    format_verdict,
    plot_figure,
    show_claims,
    show_report,
    show_verdict,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _claims():
    return [
        compare_close("slope", 2.0, 2.0000001, rtol=1e-6, atol=0.0),
        compare_le("residual", 0.5, 0.1),                       # fails: 0.5 > 0.1
        compare_ge("count", 3, 3),
        compare_in_band("exponent", -1.02, -1.1, -0.9, theory=-1.0),
        compare_nondecreasing("margin", [0.1, 0.2, 0.3], atol=0.0),
        report_value("gap", 0.25, theory="→ 0"),
    ]


def _figure():
    return FigureData("f", "a caption", (Series.of([1, 10, 100], [3, 2, 1], "decay", "o-"),
                                         Series.of([1, 100], [1, 1], "", "k--")),
                      xlabel="t", ylabel="err", xscale="log", yscale="log")


def test_format_value():
    assert format_value(0.000123456) == "0.0001235"
    assert format_value(2.0) == "2"
    assert format_value(np.float64(1e-300)) == "1e-300"
    assert format_value(float("inf")) == "inf"
    assert format_value(np.int64(7)) == "7"
    assert format_value(True) == "True"
    assert format_value("→ 0") == "→ 0"
    assert format_value("1.5") == "1.5"


def test_claims_table_rows_by_hand():
    lines = format_comparisons(_claims()).splitlines()
    cells = [[c.strip() for c in line.split("|")] for line in lines]
    assert cells[0] == ["claim", "theory", "measured", "holds"]
    assert set(lines[1]) <= {"-", "+"}
    assert cells[2:] == [
        ["slope", "≈ 2", "2", "yes"],
        ["residual", "≤ 0.1", "0.5", "NO"],
        ["count", "≥ 3", "3", "yes"],
        ["exponent", "-1 (band [-1.1, -0.9])", "-1.02", "yes"],
        ["margin", "non-decreasing", "0.1", "yes"],       # measured: the smallest step
        ["gap", "→ 0", "0.25", "(reported)"],
    ]
    # columns are aligned: every separator sits at the same offset in every row
    offsets = {tuple(i for i, ch in enumerate(line) if ch == "|") for line in lines
               if "|" in line}
    assert len(offsets) == 1


def test_show_claims_strict_raises_after_writing_the_table():
    out = io.StringIO()
    with pytest.raises(ClaimsFailedError, match="1 claim") as info:
        show_claims(_claims(), file=out)
    assert [c.name for c in info.value.failed] == ["residual"]
    text = out.getvalue()
    assert text.startswith("Claims reproduced: 4/5 asserted claims hold\n")
    assert "residual" in text and "NO" in text
    # non-strict: the same table, no exception, the comparisons returned
    out = io.StringIO()
    shown = show_claims(_claims(), strict=False, title="T", file=out)
    assert len(shown) == 6 and out.getvalue().startswith("T: 4/5")
    passing = [c for c in _claims() if c.passed]
    assert show_claims(passing, file=io.StringIO()) == tuple(passing)


def test_bad_claims_input():
    with pytest.raises(TypeError, match="Comparison"):
        format_comparisons([("slope", 1.0, 1.0)])
    with pytest.raises(TypeError, match="iterable"):
        format_comparisons("slope")
    with pytest.raises(ValueError, match="empty"):
        show_claims([], file=io.StringIO())
    # a single comparison is accepted as a one-row table
    assert len(format_comparisons(compare_ge("count", 3, 3)).splitlines()) == 3


def test_plot_figure_draws_the_series_on_a_given_axis():
    fig, ax = plt.subplots()
    out = plot_figure(_figure(), ax=ax)
    assert out is ax
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1.0, 10.0, 100.0])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [3.0, 2.0, 1.0])
    assert ax.lines[0].get_marker() == "o" and ax.lines[1].get_linestyle() == "--"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_title() == "a caption" and ax.get_xlabel() == "t" and ax.get_ylabel() == "err"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["decay"]
    # without an axis, a new figure is created
    before = len(plt.get_fignums())
    plot_figure(_figure())
    assert len(plt.get_fignums()) == before + 1
    with pytest.raises(TypeError, match="FigureData"):
        plot_figure({"name": "f"})


def test_show_verdict_text_and_figures():
    v = Verdict("demo-id", "a demo theorem", tuple(_claims()[:1]), (_figure(), _figure()),
                runtime=1.234, kind="rate")
    out = io.StringIO()
    axes = show_verdict(v, file=out)
    assert len(axes) == 2
    lines = out.getvalue().splitlines()
    assert lines[0] == "demo-id: a demo theorem"
    assert lines[1] == "status: passed (1.23 s)"
    assert lines[4].split("|")[0].strip() == "slope"
    assert show_verdict(v, figures=False, file=io.StringIO()) == []
    # a failed check shows its error and no table
    err = Verdict("x", "y", (), error="boom")
    assert format_verdict(err) == "x: y\nstatus: error (0.00 s)\nerror: boom"
    with pytest.raises(TypeError, match="Verdict"):
        show_verdict({"theorem_id": "x"})


def test_show_report_markdown_and_figures():
    rep = Report("a title", (Paragraph("Model", heading=1), Paragraph("text"),
                             Equation(r"\dot W = -G"), Table(("a", "b"), (("1", "2"),)),
                             Code("x = 1"), Figure(_figure())), {"k": 1})
    out = io.StringIO()
    before = len(plt.get_fignums())
    md = show_report(rep, markdown=False, file=out)
    assert out.getvalue() == md + "\n"
    assert md.startswith("# a title\n")
    for piece in ("## Model", "text", "$$\n\\dot W = -G\n$$", "| a | b |", "| 1 | 2 |",
                  "```python\nx = 1\n```"):
        assert piece in md
    assert "f.png" not in md                          # the figure is drawn, not linked
    assert len(plt.get_fignums()) == before + 1
    show_report(rep, markdown=False, figures=False, file=io.StringIO())
    assert len(plt.get_fignums()) == before + 1
    with pytest.raises(TypeError, match="Report"):
        show_report("# not a report")
