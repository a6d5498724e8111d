import json

import pytest

from theory.cli import main
from theory.cli._sweep import theorem_trial


def test_sweep_runs_a_theorem_and_resumes(tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    args = ["sweep", "soudry-residual", "--grid", "n=8,12", "--grid", "d=3",
            "--grid", "t_max=1e40", "--seeds", "0:2", "--results", str(out)]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "4 points computed, 0 resumed" in first.err
    lines = [json.loads(line) for line in first.out.splitlines()]
    assert [rec["status"] for rec in lines] == ["passed"] * 4
    # the same sweep again computes nothing; the stored results equal a direct evaluation
    assert main(args) == 0
    assert "0 points computed, 4 resumed" in capsys.readouterr().err
    stored = [json.loads(line) for line in out.read_text().splitlines()]
    direct = theorem_trial(theorem_id="soudry-residual", seed=1, n=12, d=3, t_max=1e40)
    match = next(r for r in stored if r["seed"] == 1 and r["params"]["n"] == 12)
    assert [c["measured"] for c in match["result"]["comparisons"]] == \
        [c["measured"] for c in direct["comparisons"]]


@pytest.mark.parametrize(("argv", "message"), [
    (["--grid", "n"], "--grid takes NAME=V1,V2"),
    (["--seeds", "3:3"], "selects no seed"),
])
def test_sweep_bad_arguments(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "soudry-residual", "--results", str(tmp_path / "r.jsonl"), *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_sweep_unknown_target(tmp_path, capsys):
    assert main(["sweep", "nope", "--results", str(tmp_path / "r.jsonl")]) == 2
    assert "unknown theorem id 'nope'" in capsys.readouterr().err
