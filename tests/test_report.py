import json
import shutil
import subprocess

import pytest

import theory.reports._report as report_mod
from theory.checking import FigureData, Series, Verdict, compare_close
from theory.reports import Code, Equation, Paragraph, Report, Table, write_report


def _report():
    fig = FigureData("curve", "a curve with ℓ2 and γ̃", (Series.of([1, 2, 3], [1, 4, 9], "t²"),),
                     xlabel="t", ylabel="u(t)")
    v = Verdict("demo", "A demo claim", (compare_close("x_1 & 50%", 1.0, 1.0, rtol=1e-9, atol=0),),
                (fig,), 0.1, {"n": 3})
    blocks = (Paragraph("Model", heading=1),
              Paragraph("The flow $\\dot\\theta = -\\nabla \\mathcal{L}$ keeps θ_1 # balanced."),
              Equation(r"\dot W_1 = -W_2^\top G"),
              Table(("a", "b"), (("1", "x|y"),)),
              Code("def f(t, y):\n    return -y\n"),
              *report_mod.verdict_blocks(v))
    return Report("Demo report", blocks, {"verdict": v.to_dict()})


def test_report_files_and_json_roundtrip(tmp_path):
    out = write_report(_report(), tmp_path / "rep")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["curve.png", "curve.svg", "report.json", "report.md", "report.tex"]
    payload = json.loads((out / "report.json").read_text())
    assert payload["verdict"]["comparisons"][0]["passed"] is True
    md = (out / "report.md").read_text()
    assert "$\\dot\\theta = -\\nabla \\mathcal{L}$" in md and "x\\|y" in md
    tex = (out / "report.tex").read_text()
    assert r"x\_1 \& 50\%" in tex and r"$\dot\theta = -\nabla \mathcal{L}$" in tex


def test_existing_report_needs_force(tmp_path):
    write_report(_report(), tmp_path / "rep")
    with pytest.raises(FileExistsError, match="--force"):
        write_report(_report(), tmp_path / "rep")
    (tmp_path / "rep" / "marker").write_text("old")
    write_report(_report(), tmp_path / "rep", force=True)
    assert not (tmp_path / "rep" / "marker").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary left behind


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_mod, "draw_figure", boom)
    with pytest.raises(KeyboardInterrupt):
        write_report(_report(), tmp_path / "rep")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_forced_write_keeps_the_old_report(tmp_path, monkeypatch):
    write_report(_report(), tmp_path / "rep")
    before = (tmp_path / "rep" / "report.md").read_text()
    monkeypatch.setattr(report_mod, "draw_figure", lambda *a, **k: (_ for _ in ()).throw(OSError))
    with pytest.raises(OSError):
        write_report(_report(), tmp_path / "rep", force=True)
    assert (tmp_path / "rep" / "report.md").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(tmp_path):
    out = write_report(_report(), tmp_path / "rep")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "report.tex"], cwd=out, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (out / "report.pdf").exists()


def test_force_never_deletes_a_directory_that_is_not_a_report(tmp_path):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="not a marginflow report"):
        write_report(_report(), precious, force=True)
    assert (precious / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (write_report(_report(), empty, force=True) / "report.md").exists()
