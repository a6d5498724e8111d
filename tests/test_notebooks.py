"""The notebooks of ``notebooks/`` (issue 6): stored without outputs, importing only marginflow's
public API, ending with the table of claims reproduced, and executing without error.

Each notebook is executed with nbclient in a fresh kernel running *this* interpreter (a kernelspec
written to a temporary directory, so a fresh clone with only ``pip install -e ".[test]"`` needs no
``ipykernel install``), with ``MPLBACKEND=Agg`` and a temporary working directory. A notebook
fails when any cell raises — in particular its last cell, ``show_claims(claims)``, raises
``ClaimsFailedError`` when a claim measured in that run does not hold. Measured on the shared
2-core machine: 4–13 s of wall time per notebook, about 55 s for all seven.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

#: One notebook per source of issue 6, in order.
EXPECTED = (
    "01_implicit_bias_separable.ipynb",
    "02_homogeneous_margin_lyu_li.ipynb",
    "03_flavors_of_margin.ipynb",
    "04_minnorm_training.ipynb",
    "05_theory_iii_normalised_dynamics.ipynb",
    "06_subquadratic_width.ipynb",
    "07_deep_linear_closed_forms.ipynb",
    "08_potentials_diagonal_nets.ipynb",
    "09_conservation_discovery.ipynb",
    "10_kkt_cnn_digits.ipynb",
)

#: marginflow modules a notebook may import from: the packages' public ``__all__``, plus the
#: public modules of the display helpers and of the comparison builders.
ALLOWED_MODULES = {"solvers", "theory", "theory.display", "theory.verdict"}
#: Per-cell timeout of the execution test (seconds): far above the measured cell times (≤ 10 s),
#: it only turns a hang into a failure.
CELL_TIMEOUT = 600


def _read(name: str):
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_seven_notebooks_are_there():
    assert tuple(sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_stored_without_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    for i, cell in enumerate(_code_cells(nb)):
        assert cell.outputs == [], f"{name}: code cell {i} has stored outputs; clear them"
        assert cell.execution_count is None, f"{name}: code cell {i} has an execution count"
    assert "widgets" not in nb.metadata, f"{name}: widget state stored in the metadata"


def _marginflow_imports(source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] in ("solvers", "theory"):
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in ("solvers", "theory"):
                    yield a.name, []


@pytest.mark.parametrize("name", EXPECTED)
def test_imports_only_the_public_api(name):
    import solvers
    import theory

    public = {"solvers": set(solvers.__all__), "theory": set(theory.__all__)}
    seen = 0
    for cell in _code_cells(_read(name)):
        for module, names in _marginflow_imports(cell.source):
            seen += 1
            assert module in ALLOWED_MODULES, f"{name}: imports from {module}"
            for n in names:
                assert not n.startswith("_"), f"{name}: imports private {module}.{n}"
                if module in public:
                    assert n in public[module], f"{name}: {n} is not in {module}.__all__"
                else:
                    mod = __import__(module, fromlist=["__all__"])
                    assert n in mod.__all__, f"{name}: {n} is not in {module}.__all__"
    assert seen, f"{name} imports nothing from marginflow"


@pytest.mark.parametrize("name", EXPECTED)
def test_ends_with_the_claims_table(name):
    nb = _read(name)
    last = _code_cells(nb)[-1].source
    assert "show_claims(claims)" in last, f"{name}: the last code cell must show the claims"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "Source" in first.source, \
        f"{name}: the first cell must name the source paper"


def _kernel_manager(tmp_path: Path):
    """A kernel manager for an ipykernel running this interpreter (no installed spec needed)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = tmp_path / "kernels"
    spec_dir = kernels / "marginflow-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "marginflow test kernel", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)])
    return KernelManager(kernel_name="marginflow-test", kernel_spec_manager=ksm)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    work = tmp_path / "cwd"
    work.mkdir()
    nb = _read(name)
    km = _kernel_manager(tmp_path)
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(work)}})
    try:
        client.execute()    # raises CellExecutionError (with the traceback) on any error
    finally:                # a kernel we started never outlives its test (nbclient leaves a
        if km.has_kernel:   # kernel manager it was handed running)
            km.shutdown_kernel(now=True)
    last = _code_cells(nb)[-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    assert re.search(r"claim\s+\| theory\s+\| measured\s+\| holds", text), text
    assert re.search(r"(\d+)/\1 asserted claims hold", text), text
    # the notebook wrote nothing into the working directory (outputs are never stored)
    assert not any(work.iterdir())
