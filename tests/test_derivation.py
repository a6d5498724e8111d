import json

import pytest

from theory.cli import main
from theory.reports import DerivationSpec, derive_report

CASES = [
    DerivationSpec(model="deep-linear", widths=(3, 4, 2)),
    DerivationSpec(model="linear", d=5),
    DerivationSpec(model="linear-chain", depth=3, d=2),
    DerivationSpec(model="diagonal", d=4, weight_decay=0.1),
    DerivationSpec(model="linear", d=3, loss="logistic"),
]


@pytest.mark.parametrize("spec", CASES, ids=lambda s: f"{s.model}-{s.loss}")
def test_derivation_report_checks_pass(spec):
    report = derive_report(spec)
    verdict = report.payload["verdict"]
    assert verdict["status"] in ("passed", "reported"), verdict["comparisons"]
    # the generated code is shown, and every conservation law has a symbolic proof
    assert "def " in json.dumps(report.payload["flow"]) or report.blocks
    assert all(p["holds"] for p in report.payload["proofs"].values())


def test_a_wrong_flow_fails_the_comparison(monkeypatch):
    # a sign flip in the hand-written reference must be caught by the RHS comparison
    import theory.reports._derivation as der

    real = der._hand_written

    def flipped(spec, data):
        f = real(spec, data)
        return type("Flipped", (), {"__call__": lambda self, t, y: -f(t, y),
                                    "loss_value": staticmethod(f.loss_value),
                                    "end_to_end": staticmethod(f.end_to_end)})()

    monkeypatch.setattr(der, "_hand_written", flipped)
    verdict = derive_report(DerivationSpec(model="linear", d=4)).payload["verdict"]
    assert verdict["status"] == "failed"


def test_cli_derive_writes_and_refuses_overwrite(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["derive", "deep-linear", "--widths", "2,3,1", "--report", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.tex", "report.json"}
    assert main(["derive", "deep-linear", "--widths", "2,3,1", "--report", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_cli_derive_bad_widths(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["derive", "deep-linear", "--widths", "3,x", "--report", "unused"])
    assert exc.value.code == 2
    assert "--widths must be comma-separated" in capsys.readouterr().err
