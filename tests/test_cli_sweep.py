import json

import pytest

from theory.checking import read_results
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
    stored = read_results(out)
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


@pytest.mark.parametrize("content", [b"my notes", b'{"a": 1'], ids=["text", "torn-looking"])
def test_sweep_leaves_a_file_it_did_not_write_untouched(content, tmp_path, capsys):
    user = tmp_path / "notes.txt"
    user.write_bytes(content)
    mtime = user.stat().st_mtime_ns
    code = main(["sweep", "soudry-residual", "--grid", "n=8", "--grid", "d=3",
                 "--results", str(user)])
    err = capsys.readouterr().err
    assert code == 2 and "not a marginflow sweep results file" in err and "unchanged" in err
    assert len(err.strip().splitlines()) == 1
    assert user.read_bytes() == content and user.stat().st_mtime_ns == mtime
