"""Reports a researcher can put next to a paper: Markdown, standalone LaTeX, JSON and figures.

A :class:`Report` is a list of content blocks (paragraphs with ``$…$`` math, display equations,
tables, code listings, figures). :func:`write_report` renders it to ``report.md`` (readable on
GitHub), ``report.tex`` (a standalone document for pdflatex), ``report.json`` (every number) and
each figure as PNG and SVG (matplotlib, Agg). The directory is written to a temporary sibling and
moved into place, so an interrupted run never leaves a half report, and an existing report is only
replaced with ``force=True`` — and then only the files it wrote (listed in its manifest,
``.marginflow-manifest.json``); a user's own files in the directory are kept.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checking import FigureData, Verdict, jsonable
from ._figures import draw_figure

#: Stage lines of :func:`write_report` go to the logger of :func:`solvers.progress` (the
#: ``marginflow`` command prints them on stderr).
_log = logging.getLogger("marginflow.progress")

__all__ = [
    "Report",
    "Paragraph",
    "Equation",
    "Table",
    "Code",
    "Figure",
    "verdict_blocks",
    "verify_report",
    "write_report",
]


@dataclass(frozen=True)
class Paragraph:
    """Text; inline math between ``$…$``; ``heading`` makes it a section title instead."""

    text: str
    heading: int = 0


@dataclass(frozen=True)
class Equation:
    """A display equation in LaTeX (no surrounding ``$$``)."""

    latex: str


@dataclass(frozen=True)
class Table:
    headers: tuple
    rows: tuple


@dataclass(frozen=True)
class Code:
    source: str
    language: str = "python"


@dataclass(frozen=True)
class Figure:
    data: FigureData


@dataclass(frozen=True)
class Report:
    """A titled sequence of blocks plus the machine-readable payload of ``report.json``."""

    title: str
    blocks: tuple
    payload: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- verdicts → blocks


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def verdict_blocks(verdict: Verdict, *, statement: str = "", source: str = "") -> list:
    """The blocks describing one verdict: heading, statement, comparison table, figures."""
    blocks: list = [Paragraph(f"{verdict.theorem_id}: {verdict.title}", heading=2)]
    if source:
        blocks.append(Paragraph(f"Source: {source}."))
    if statement:
        blocks.append(Paragraph(f"Claim: {statement}"))
    blocks.append(Paragraph(f"Verdict: **{verdict.status}** in {verdict.runtime:.2f} s."))
    if verdict.error:
        blocks.append(Paragraph(f"Error: {verdict.error}"))
    rows = tuple(
        (c.name, _fmt(c.theory), _fmt(c.measured), c.reads, c.tolerance,
         "yes" if c.passed else "NO")
        for c in verdict.comparisons
    )
    if rows:
        blocks.append(Table(("quantity", "theory", "measured", "assertion", "tolerance", "holds"),
                            rows))
    blocks.extend(Figure(f) for f in verdict.figures)
    return blocks


def verify_report(verdicts, theorems=None, *, title: str = "marginflow verify") -> Report:
    """A report of a ``marginflow verify`` run: summary table, then one section per theorem."""
    by_id = {t.id: t for t in (theorems or ())}
    summary = tuple(
        (v.theorem_id, v.title, v.status, f"{v.runtime:.2f}") for v in verdicts
    )
    blocks: list = [
        Paragraph("Each theorem's value is paired with the measured one under a declared "
                  "tolerance; a KKT check says *stationary*, never *maximum margin*."),
        Table(("id", "claim", "verdict", "time (s)"), summary),
    ]
    for v in verdicts:
        th = by_id.get(v.theorem_id)
        blocks += verdict_blocks(v, statement=th.statement if th else "",
                                 source=th.source.cite() if th else "")
    payload = {"verdicts": [v.to_dict() for v in verdicts],
               "theorems": [by_id[v.theorem_id].to_dict() for v in verdicts
                            if v.theorem_id in by_id]}
    return Report(title, tuple(blocks), payload)


# ----------------------------------------------------------------------------- rendering


def _md_escape_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """The report as GitHub Markdown (math in ``$…$`` and ``$$…$$``)."""
    out = [f"# {report.title}", ""]
    for b in report.blocks:
        if isinstance(b, Paragraph):
            out += [("#" * (b.heading + 1) + " " + b.text) if b.heading else b.text, ""]
        elif isinstance(b, Equation):
            out += ["$$", b.latex, "$$", ""]
        elif isinstance(b, Table):
            out.append("| " + " | ".join(map(_md_escape_cell, b.headers)) + " |")
            out.append("|" + "---|" * len(b.headers))
            out += ["| " + " | ".join(_md_escape_cell(str(c)) for c in row) + " |"
                    for row in b.rows]
            out.append("")
        elif isinstance(b, Code):
            out += [f"```{b.language}", b.source.rstrip(), "```", ""]
        elif isinstance(b, Figure):
            out += [f"![{b.data.caption}]({b.data.name}.png)", "", f"*{b.data.caption}*", ""]
    return "\n".join(out)


_TEX_SPECIAL = {"&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}

#: Unicode that appears in marginflow's prose, declared for pdflatex (text and math mode alike).
_UNICODE_TEX = {
    "ℓ": r"\ell", "≤": r"\le", "≥": r"\ge", "≈": r"\approx", "θ": r"\theta", "λ": r"\lambda",
    "ε": r"\varepsilon", "δ": r"\delta", "γ": r"\gamma", "ρ": r"\rho", "σ": r"\sigma",
    "μ": r"\mu", "α": r"\alpha", "β": r"\beta", "η": r"\eta", "τ": r"\tau", "Σ": r"\Sigma",
    "∇": r"\nabla", "∈": r"\in", "→": r"\to", "×": r"\times", "−": r"-", "·": r"\cdot",
    "∞": r"\infty", "∝": r"\propto", "⟨": r"\langle", "⟩": r"\rangle", "𝓛": r"\mathcal{L}",
    "‖": r"\|", "√": r"\surd", "Θ": r"\Theta", "ŵ": r"\hat{w}", "γ̃": r"\tilde\gamma",
    "≠": r"\neq", "⊙": r"\odot", "∂": r"\partial", "±": r"\pm",
    "²": r"^2", "ᵀ": r"^\top", "₀": r"_0", "₁": r"_1", "₂": r"_2", "∗": r"*", "…": r"\dots",
    "⁺": r"^{+}", "³": r"^3", "⁻": r"^{-}", "¹": r"^1", "₃": r"_3", "ₗ": r"_l", "ᵢ": r"_i",
    "⊥": r"\perp", "⋯": r"\cdots", "≪": r"\ll", "≫": r"\gg", "∑": r"\sum", "∏": r"\prod",
    "⇒": r"\Rightarrow", "⇔": r"\Leftrightarrow", "∀": r"\forall", "∃": r"\exists",
    "≡": r"\equiv", "∼": r"\sim", "°": r"^\circ", "Δ": r"\Delta", "ξ": r"\xi", "ζ": r"\zeta",
    "ω": r"\omega", "κ": r"\kappa", "ν": r"\nu", "χ": r"\chi", "ψ": r"\psi", "Λ": r"\Lambda",
    "Ω": r"\Omega", "φ": r"\phi", "π": r"\pi",
}


#: Unicode declared in text mode (dashes, quotes) or dropped (a combining tilde: γ̃ prints as γ).
_UNICODE_TEXT_MODE = {"—": "---", "–": "--", "’": "'", "\u0303": ""}


def _tex_text(s: str) -> str:
    """Escape plain text for LaTeX, keeping ``$…$`` math and ``**bold**``/``*italic*``."""
    parts = re.split(r"(\$[^$]+\$)", s)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1:
            out.append(part)
            continue
        t = "".join(_TEX_SPECIAL.get(ch, ch) for ch in part)
        t = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", t)
        t = re.sub(r"\*(.+?)\*", r"\\emph{\1}", t)
        out.append(t)
    return "".join(out)


def render_latex(report: Report) -> str:
    """The report as a standalone LaTeX document (compiles with pdflatex)."""
    decl_lines = (
        [f"\\DeclareUnicodeCharacter{{{ord(ch):04X}}}{{\\ensuremath{{{cmd}}}}}"
         for ch, cmd in _UNICODE_TEX.items() if len(ch) == 1]
        + [f"\\DeclareUnicodeCharacter{{{ord(ch):04X}}}{{{cmd}}}"
           for ch, cmd in _UNICODE_TEXT_MODE.items()]
    )
    head = [
        r"\documentclass[11pt]{article}",
        r"\usepackage[utf8]{inputenc}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{amsmath,amssymb,graphicx,longtable,array}",
        r"\usepackage[margin=2cm]{geometry}",
        "%DECLARATIONS%",
        r"\newcommand{\marginflowverbatimsize}{\footnotesize}",
        r"\begin{document}",
        rf"\title{{{_tex_text(report.title)}}}",
        r"\date{}",
        r"\maketitle",
    ]
    body = []
    for b in report.blocks:
        if isinstance(b, Paragraph):
            if b.heading:
                cmd = {1: "section", 2: "subsection"}.get(b.heading, "subsubsection")
                body.append(f"\\{cmd}*{{{_tex_text(b.text)}}}")
            else:
                body += [_tex_text(b.text), ""]
        elif isinstance(b, Equation):
            multi = "\\\\" in b.latex and "\\begin{" not in b.latex
            body += [r"\begin{equation*}", *([r"\begin{aligned}"] if multi else []),
                     b.latex.strip(), *([r"\end{aligned}"] if multi else []),
                     r"\end{equation*}"]
        elif isinstance(b, Table):
            cols = "|".join(["p{%.2f\\linewidth}" % (0.9 / len(b.headers))] * len(b.headers))
            body.append(r"{\small\begin{longtable}{|" + cols + "|}\\hline")
            body.append(" & ".join(_tex_text(str(h)) for h in b.headers) + r" \\ \hline")
            body += [" & ".join(_tex_text(str(c)) for c in row) + r" \\ \hline"
                     for row in b.rows]
            body.append(r"\end{longtable}}")
        elif isinstance(b, Code):
            body += [r"{\marginflowverbatimsize", r"\begin{verbatim}",
                     b.source.rstrip().encode("ascii", "replace").decode(), r"\end{verbatim}}"]
        elif isinstance(b, Figure):
            body += [r"\begin{figure}[h]\centering",
                     rf"\includegraphics[width=0.7\linewidth]{{{b.data.name}.png}}",
                     rf"\caption*{{{_tex_text(b.data.caption)}}}", r"\end{figure}"]
    doc = "\n".join(head + body + [r"\end{document}", ""])
    # any other non-ASCII character (inputenc knows Latin-1 letters) prints as '?', never an error
    known = set(_UNICODE_TEX) | set(_UNICODE_TEXT_MODE)
    unknown = sorted({ch for ch in doc if ord(ch) > 0x17F and ch not in known})
    decl_lines += [f"\\DeclareUnicodeCharacter{{{ord(ch):04X}}}{{?}}" for ch in unknown]
    return doc.replace("%DECLARATIONS%", "\n".join(decl_lines), 1)


#: The file in every report directory that lists what marginflow wrote there (and nothing else).
MANIFEST_NAME = ".marginflow-manifest.json"
_MANIFEST_FORMAT = "marginflow-report"


def write_report(report: Report, directory: str | os.PathLike, *, force: bool = False,
                 progress: bool | None = None) -> Path:
    """Write ``report`` into ``directory`` atomically and return its path.

    The files are written into a temporary directory beside ``directory`` and renamed into place
    in one step; if anything fails (or the process is interrupted: SIGINT, or SIGTERM under
    :func:`theory.checking.stop_on_signals`) no partial report is left. Temporary directories
    that an earlier run left behind (it was killed outright) are removed first, but only ours:
    named ``.DIR.tmp-*``, holding a marginflow manifest, written by a process of this machine
    that no longer runs, and older than this call.

    Every report holds ``.marginflow-manifest.json``, the list of files it wrote. With
    ``force=True`` an earlier report is replaced, and only the files it wrote: anything else in
    the directory (a user's ``notes.txt``) is kept, unchanged (hard-linked into the new report
    before the swap).

    Progress goes through :func:`solvers.progress`: a tqdm bar over the figures on a terminal;
    elsewhere (CI logs, pipes) one line per finished figure (``report figures: 3/20 done,
    2.1 s``) to the ``marginflow.progress`` logger, plus one line per stage (text files written,
    report moved into place), which a library caller sees only if it configures logging.
    ``progress=False`` silences them all, ``True`` forces the bar.

    Raises
    ------
    FileExistsError
        ``directory`` exists and ``force`` is False; or it is neither an earlier report nor an
        empty directory; or a file of the user's there has the name of a file the new report
        writes.
    """
    started = time.time()
    target = Path(directory).resolve()
    if target.exists() and not force:
        raise FileExistsError(
            f"report directory {str(target)!r} exists; choose another --report DIR or pass "
            f"--force to replace it."
        )
    if target.exists() and _report_files(target) is None:
        raise FileExistsError(_not_a_report(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target, started)
    tmp = old = None
    moved = placed = False
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a report is an ordinary directory
        _write_manifest(tmp, [], complete=False)  # marks the temporary directory as ours
        (tmp / "report.md").write_text(render_markdown(report), encoding="utf-8")
        (tmp / "report.tex").write_text(render_latex(report), encoding="utf-8")
        payload = {"title": report.title, **report.payload}
        (tmp / "report.json").write_text(
            json.dumps(_num_tree(payload), indent=2, ensure_ascii=False), encoding="utf-8")
        figures = [b.data for b in report.blocks if isinstance(b, Figure)]
        if progress is not False:
            _log.info("report: report.md, report.tex and report.json written, %.1f s; %d "
                      "figures (PNG + SVG) to draw", time.time() - started, len(figures))
        from solvers import progress as bar

        for fig in bar(figures, desc="report figures", enabled=progress):
            draw_figure(fig, tmp)
        written = sorted(p.name for p in tmp.iterdir() if p.name != MANIFEST_NAME)
        _write_manifest(tmp, written, complete=True)
        if target.exists():  # force: carry the user's files over, swap, drop the old report
            _carry_over_user_files(target, tmp)
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "report")
            moved = True
            os.replace(tmp, target)
            placed = True
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
            placed = True
        if progress is not False:
            _log.info("report: %d files in place in %s, %.1f s", len(written), target,
                      time.time() - started)
    except BaseException:
        if moved and not placed:  # put the old report back
            os.replace(old / "report", target)
        if tmp is not None and not placed:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not (moved and placed):
            shutil.rmtree(old, ignore_errors=True)
        raise
    return target


def check_replaceable(directory: str | os.PathLike) -> None:
    """Raise FileExistsError now if ``write_report(..., force=True)`` would refuse ``directory``
    (it exists and is neither an earlier report nor an empty directory), so that a command can
    refuse it before any work starts rather than after."""
    target = Path(directory).resolve()
    if target.exists() and _report_files(target) is None:
        raise FileExistsError(_not_a_report(target))


def _not_a_report(target: Path) -> str:
    return (f"{str(target)!r} exists and is not a marginflow report (no {MANIFEST_NAME} or "
            f"report.json with a title, or not a directory); --force only replaces an earlier "
            f"report or an empty directory. Choose another --report DIR.")


def _write_manifest(directory: Path, files: list, *, complete: bool) -> None:
    manifest = {"format": _MANIFEST_FORMAT, "version": 1, "files": list(files),
                "complete": complete, "pid": os.getpid(), "host": socket.gethostname(),
                "written": time.time()}
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _read_manifest(directory: Path) -> dict | None:
    """The manifest in ``directory`` if it is a valid marginflow one, else None."""
    try:
        m = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(m, dict) and m.get("format") == _MANIFEST_FORMAT
            and isinstance(m.get("files"), list)
            and all(isinstance(f, str) and f and "/" not in f and f not in (".", "..")
                    for f in m["files"])):
        return None
    return m


def _report_files(path: Path) -> set | None:
    """The names in ``path`` an earlier report wrote, or None if ``path`` is not a report.

    An empty directory has none; a report with a manifest, the files listed there; a report from
    before manifests (a ``report.json`` with a ``title``), ``report.{md,tex,json}`` and the
    figures ``report.md`` shows (``NAME.png`` and ``NAME.svg``).
    """
    if path.is_symlink() or not path.is_dir():
        return None
    if not any(path.iterdir()):
        return set()
    manifest = _read_manifest(path)
    if manifest is not None:
        return set(manifest["files"]) | {MANIFEST_NAME}
    try:
        payload = json.loads((path / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(payload, dict) and "title" in payload):
        return None
    names = {"report.md", "report.tex", "report.json"}
    try:
        md = (path / "report.md").read_text(encoding="utf-8")
    except (OSError, ValueError):
        md = ""
    for stem in re.findall(r"^!\[.*\]\(([^()/\s]+)\.png\)$", md, flags=re.MULTILINE):
        names |= {f"{stem}.png", f"{stem}.svg"}
    return names


def _carry_over_user_files(target: Path, tmp: Path) -> None:
    """Hard-link every entry of ``target`` that no report wrote into ``tmp`` (the new report).

    Called just before the swap. Raises FileExistsError (leaving ``target`` untouched) when a
    user's file has the name of a file of the new report, or cannot be linked.
    """
    ours = _report_files(target)
    if ours is None:
        raise FileExistsError(_not_a_report(target))
    for entry in sorted(target.iterdir()):
        if entry.name in ours and entry.is_file() and not entry.is_symlink():
            continue  # the earlier report's file: replaced
        dest = tmp / entry.name
        if dest.exists() or dest.is_symlink():
            raise FileExistsError(
                f"{str(entry)!r} was not written by marginflow, and the new report writes a file "
                f"of that name; move it out of {str(target)!r} or choose another --report DIR.")
        try:
            _link_tree(entry, dest)
        except OSError as exc:
            raise FileExistsError(
                f"cannot keep {str(entry)!r} (not written by marginflow) in the replaced report: "
                f"{exc.strerror or exc}; move it out of {str(target)!r} or choose another "
                f"--report DIR.") from None


def _link_tree(src: Path, dest: Path) -> None:
    """Recreate ``src`` at ``dest`` without copying data: hard links for files, the same symlink
    for symlinks, directories rebuilt with their mode and times."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dest)
        st = src.lstat()
        with contextlib.suppress(NotImplementedError, OSError):  # no lutimes on this platform
            os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    elif src.is_dir():
        dest.mkdir()
        for child in src.iterdir():
            _link_tree(child, dest / child.name)
        shutil.copystat(src, dest)
    elif src.is_file():
        os.link(src, dest)
    else:
        raise OSError(0, "not a regular file, directory or symlink")


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # unknown owner: keep its files
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(target: Path, started: float) -> None:
    """Remove ``.NAME.tmp-*`` directories an earlier, killed run of write_report left beside
    ``target``: only ours (a marginflow manifest inside), from this host, whose process is gone,
    and older than ``started``."""
    host = socket.gethostname()
    for cand in target.parent.glob(f".{glob.escape(target.name)}.tmp-*"):
        if cand.is_symlink() or not cand.is_dir():
            continue
        manifest = _read_manifest(cand)
        try:
            older = cand.stat().st_mtime < started
        except OSError:
            continue
        if (manifest is not None and manifest.get("host") == host
                and not _pid_alive(manifest.get("pid")) and older):
            shutil.rmtree(cand, ignore_errors=True)


def _num_tree(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _num_tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_num_tree(v) for v in x]
    return jsonable(x)
