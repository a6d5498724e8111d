"""Import structure (issue 13): no private module of another package (other than an ancestor
package's shared helpers) is imported, and the
reports' ``_report`` and ``_display`` modules do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path):
    """Absolute dotted names of the modules ``path`` imports (relative imports resolved)."""
    pkg = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            out.append(".".join(base + ([node.module] if node.module else [])))
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return out


def _private_foreign(path: Path):
    pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    bad = []
    for mod in _imports(path):
        parts = mod.split(".")
        for i, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__"):
                owner = ".".join(parts[:i])           # the package the private module lives in
                # a package's private modules serve it and its subpackages (solvers._validation
                # for solvers.flows); a sibling or another package must use the public names
                if not (pkg == owner or pkg.startswith(owner + ".")):
                    bad.append(mod)
                break
    return bad


#: Left for a follow-up (reported on issue 13): the progress bar has no public name in solvers yet.
KNOWN: dict = {}  # no exceptions


def test_no_private_imports_across_packages():
    bad = {str(p.relative_to(ROOT)): _private_foreign(p)
           for top in ("theory", "solvers") for p in (ROOT / top).rglob("*.py")}
    bad = {k: v for k, v in bad.items() if v}
    assert bad == KNOWN


def test_report_and_display_do_not_import_each_other():
    rep = _imports(ROOT / "theory/reports/_report.py")
    disp = _imports(ROOT / "theory/reports/_display.py")
    assert "theory.reports._display" not in rep
    assert "theory.reports._figures" in rep and "theory.reports._figures" in disp


def test_training_uses_the_networks_public_forward_pass():
    src = (ROOT / "solvers/nets/_training.py").read_text(encoding="utf-8")
    assert "._forward_all" not in src and ".forward_pass(" in src
