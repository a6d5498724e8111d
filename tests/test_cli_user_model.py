"""``marginflow derive --model``: a user's model file runs the whole derivation report; a broken
or missing module is one line with exit 2 (issue 10 §1)."""

from __future__ import annotations

import json
import textwrap

import pytest

from theory.cli import main

QUAD = textwrap.dedent("""
    from theory import Model

    def make():
        return Model.from_expression(
            "quad", {"U": (2, 2), "v": (2,)},
            lambda U, v, x: v.T * (U * x).applyfunc(lambda z: z**2), input_dim=2)
    """)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(QUAD)
    return path


def test_derive_user_model_file(model_file, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["derive", "--model", f"{model_file}:make", "--report", str(out)]) == 0
    payload = json.loads((out / "report.json").read_text())
    assert payload["model"]["degree"] == 3 and payload["model"]["blocks"] == {"U": [2, 2],
                                                                               "v": [2]}
    comps = {c["name"]: c for c in payload["verdict"]["comparisons"]}
    fd = next(c for n, c in comps.items() if n.startswith("generated RHS vs"))
    assert fd["passed"] and fd["measured"] < 1e-6
    assert "def rhs(t, y, params)" in (out / "report.md").read_text()
    # discovered laws: per-neuron ||u_j||² − 2 v_j², complete, and conserved numerically
    disc = payload["discovery"]
    assert len(disc["laws"]) == 2 and disc["complete"] is True
    assert all(p["holds"] for p in disc["proofs"])
    drift = next(c for n, c in comps.items() if n.startswith("max drift of the discovered"))
    assert drift["passed"]


def test_builtin_derive_reports_discovery(tmp_path):
    from theory.reports import DerivationSpec, derive_report

    rep = derive_report(DerivationSpec(model="linear-chain", depth=3, d=2), numerical=False)
    disc = rep.payload["discovery"]
    assert len(disc["laws"]) == 2 and disc["complete"] is True  # a2² − ||w||², a3² − a2²


def test_derive_user_model_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad_model.py"
    bad.write_text("raise RuntimeError('boom')\n")
    assert main(["derive", "--model", f"{bad}:make", "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad_model.py" in err[0] and "RuntimeError: boom" in err[0]
    assert main(["derive", "--model", "no_such_pkg_xyz.mod:make",
                 "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no_such_pkg_xyz.mod" in err and "ModuleNotFoundError" in err
    notmodel = tmp_path / "notmodel.py"
    notmodel.write_text("def make():\n    return 3\n")
    assert main(["derive", "--model", f"{notmodel}:make", "--report", str(tmp_path / "r")]) == 2
    assert "must be a theory.symbolic.Model" in capsys.readouterr().err
    assert main(["derive", "linear", "--model", f"{notmodel}:make",
                 "--report", str(tmp_path / "r")]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_derive_help_warns_that_loading_runs_code(capsys):
    with pytest.raises(SystemExit):
        main(["derive", "--help"])
    assert "RUNS THE MODULE'S CODE" in capsys.readouterr().out
