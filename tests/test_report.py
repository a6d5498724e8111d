import json
import os
import shutil
import socket
import subprocess
import sys
import time

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
    assert names == [".marginflow-manifest.json", "curve.png", "curve.svg", "report.json",
                     "report.md", "report.tex"]
    manifest = json.loads((out / ".marginflow-manifest.json").read_text())
    assert manifest["files"] == names[1:] and manifest["format"] == "marginflow-report"
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
    (tmp_path / "rep" / "report.md").write_text("stale")
    write_report(_report(), tmp_path / "rep", force=True)
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# Demo report")
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary left behind


def _tree(root):
    """Every path under ``root`` with its bytes (files), target (symlinks) and mtime."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        body = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None
        out[str(p.relative_to(root))] = (body, st.st_mtime_ns if p.is_file() else None)
    return out


def test_force_replaces_only_what_the_report_wrote(tmp_path):
    rep = write_report(_report(), tmp_path / "rep")
    (rep / "notes.txt").write_text("my notes on the run")
    (rep / "drafts").mkdir()
    (rep / "drafts" / "fig.tex").write_text("\\begin{figure}")
    (rep / "link").symlink_to("notes.txt")
    mine = {k: v for k, v in _tree(rep).items() if k.startswith(("notes", "drafts", "link"))}
    manifest = json.loads((rep / ".marginflow-manifest.json").read_text())
    (rep / "curve.svg").unlink()  # a file of the old report that the user deleted: fine
    out = write_report(_report(), rep, force=True)
    assert {k: v for k, v in _tree(out).items() if k in mine} == mine  # bytes and mtimes kept
    assert (out / "curve.svg").exists()
    again = json.loads((out / ".marginflow-manifest.json").read_text())
    assert again["files"] == manifest["files"]  # the user's files never enter the manifest
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_force_refuses_a_user_file_named_like_a_report_file(tmp_path):
    rep = write_report(_report(), tmp_path / "rep")
    # a report from before manifests: report.json with a title; curve.png/svg are in report.md
    (rep / ".marginflow-manifest.json").unlink()
    (rep / "report.md").write_text("# old\n\n![a [bracketed] caption](curve.png)\n")
    write_report(_report(), rep, force=True)  # the old report's own files are replaced
    (rep / ".marginflow-manifest.json").unlink()
    (rep / "report.md").write_text("# old, no figures\n")
    before = _tree(rep)
    with pytest.raises(FileExistsError, match="curve.png.*not written by marginflow"):
        write_report(_report(), rep, force=True)  # curve.png is not the old report's
    assert _tree(rep) == before
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_stale_temporaries_of_a_killed_run_are_removed_and_no_others(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)  # a process that has exited
    host = socket.gethostname()

    def leftover(name, pid, manifest=True):
        d = tmp_path / name
        d.mkdir()
        (d / "report.md").write_text("half")
        if manifest:
            (d / ".marginflow-manifest.json").write_text(json.dumps(
                {"format": "marginflow-report", "version": 1, "files": [], "complete": False,
                 "pid": pid, "host": host}))
        old = time.time() - 60
        os.utime(d, (old, old))
        return d

    stale = leftover(".rep.tmp-abc123", dead_pid)
    running = leftover(".rep.tmp-def456", os.getpid())  # a run still going: not stale
    foreign = leftover(".rep.tmp-user", dead_pid, manifest=False)  # not ours
    other = leftover(".other.tmp-xyz", dead_pid)  # another report's
    write_report(_report(), tmp_path / "rep")
    assert not stale.exists()
    assert running.exists() and foreign.exists() and other.exists()


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
