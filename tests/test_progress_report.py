"""Issue 14.13: writing a report is not silent off a terminal.

``write_report`` logs one line per stage and one per finished figure through
:func:`solvers.progress` (a tqdm bar on a terminal); ``marginflow verify --report`` prints them on
stderr, and stdout stays what it is without ``--report``.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from solvers._progress import LOGGER_NAME
from theory.checking import FigureData, Series
from theory.reports import Figure, Paragraph, Report, write_report

ROOT = Path(__file__).resolve().parents[1]


def _report(n_figures: int) -> Report:
    x = np.linspace(0.0, 1.0, 5)
    figs = tuple(Figure(FigureData(f"fig_{i}", f"figure {i}", (Series.of(x, x * i, "line"),)))
                 for i in range(n_figures))
    return Report("progress", (Paragraph("text"), *figs))


@pytest.fixture
def records():
    """Messages of the progress logger."""
    kept: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            kept.append(record.getMessage())

    logger = logging.getLogger(LOGGER_NAME)
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield kept
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_write_report_logs_each_stage_and_each_figure(tmp_path, records, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, even under pytest -s
    path = write_report(_report(3), tmp_path / "r")
    heads = [re.sub(r", \d+\.\d s.*$", "", r) for r in records]
    assert heads == [
        "report: report.md, report.tex and report.json written",
        "report figures: 1/3 done",
        "report figures: 2/3 done",
        "report figures: 3/3 done",
        f"report: 9 files in place in {path}",  # 3 text files + 3 × (PNG, SVG)
    ]
    assert "3 figures (PNG + SVG) to draw" in records[0]
    # off a terminal no tqdm bar: stderr holds at most the log lines (when `marginflow`'s
    # handler is installed by an earlier test), never a bar's carriage returns
    err = sys.stderr.getvalue()
    assert "\r" not in err and all(ln.startswith("marginflow: ") for ln in err.splitlines())


def test_write_report_progress_false_is_silent(tmp_path, records, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    write_report(_report(2), tmp_path / "r", progress=False)
    assert records == [] and sys.stderr.getvalue() == ""
    assert sorted(p.name for p in (tmp_path / "r").glob("fig_*")) == [
        "fig_0.png", "fig_0.svg", "fig_1.png", "fig_1.svg"]


_TIME = re.compile(r"\d+\.\d+")


def _verify(*extra: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "theory.cli", "verify", "saxe-depth2",
                           "soudry-residual", *extra], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_verify_report_logs_each_figure_on_a_pipe_and_leaves_stdout_alone(tmp_path):
    """stderr is a pipe: one line per theorem, per report stage, per figure; stdout unchanged."""
    from contextlib import redirect_stderr, redirect_stdout

    from theory.cli import main

    with_report = _verify("--report", str(tmp_path / "out"), cwd=tmp_path)
    plain = io.StringIO()  # the same command without --report, in this process (half the time)
    with redirect_stdout(plain), redirect_stderr(io.StringIO()):
        assert main(["verify", "saxe-depth2", "soudry-residual"]) == 0
    assert with_report.returncode == 0, with_report.stderr
    # stdout: the same table (times masked), no progress line
    assert _TIME.sub("T", with_report.stdout) == _TIME.sub("T", plain.getvalue())
    assert "marginflow:" not in with_report.stdout
    lines = [ln for ln in with_report.stderr.splitlines() if ln.startswith("marginflow: ")]
    heads = [re.sub(r", \d+\.\d s.*$", "", ln) for ln in lines
             if not ln.startswith(("marginflow: saxe-depth2:", "marginflow: soudry-residual:"))]
    out = (tmp_path / "out").resolve()
    assert heads == [
        "marginflow: verify: 1/2 done",
        "marginflow: verify: 2/2 done",
        f"marginflow: verify: writing the report (markdown, LaTeX, JSON, figures) to "
        f"{tmp_path / 'out'}",
        "marginflow: report: report.md, report.tex and report.json written",
        "marginflow: report figures: 1/2 done",
        "marginflow: report figures: 2/2 done",
        f"marginflow: report: 7 files in place in {out}",
    ]
    assert with_report.stderr.splitlines()[-1] == f"report written to {out}"
    assert "\r" not in with_report.stderr  # no tqdm bar on a pipe
    figures = sorted(p.name for p in out.glob("*.png"))
    assert len(figures) == 2


def test_derive_report_logs_each_symbolic_stage():
    """The symbolic part of a derivation (seconds for deep nets) logs a line per stage."""
    from theory.reports import DerivationSpec, derive_report

    kept: list[str] = []

    class Keep(logging.Handler):  # on the logger itself: `marginflow` turns propagation off
        def emit(self, record):
            kept.append(record.getMessage())

    logger = logging.getLogger("theory.reports._derivation")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        derive_report(DerivationSpec(model="deep_linear", widths=(2, 2, 1)), numerical=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert [re.sub(r", \d+\.\d s$", "", r) for r in kept] == [
        "derive: gradient flow derived (P = 6 parameters)",
        "derive: 1 conservation laws proved symbolically",
        "derive: code generated",
        "derive: conservation-law discovery done"]


def test_many_items_log_at_least_every_five_seconds(records, monkeypatch):
    """A sweep of 360 points or 3000 training steps: off a terminal, a line at least every 5 s
    of work (was every 10 s), and the last item always; fewer lines than items."""
    import solvers._progress as progress_module

    clock = iter(range(10_000))  # each finished item takes 1 s of (fake) time
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: float(next(clock)))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress_module.progress(total=360, desc="sweep")
    for _ in range(360):
        bar.update(1)
    done = [int(re.match(r"sweep: (\d+)/360 done", r).group(1)) for r in records]
    assert done[-1] == 360 and len(done) < 360
    gaps = np.diff([0, *done])  # items between two lines = seconds of silence here
    assert gaps.max() <= 5, gaps.max()
