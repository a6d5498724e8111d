import json

import pytest

import theory.catalogue as cat
from theory.checking import Source, Theorem, Verdict, compare_le
from theory.cli import main


def _fake(theorem_id, measured):
    def check(inst):
        return Verdict(theorem_id, "fake", (compare_le("x", inst["x"], 1.0),), kind="bound")

    return Theorem(theorem_id, "fake", Source("A. Author", 2024, "T"), "$x \\le 1$", (), "bound",
                   make_instance=lambda seed, **kw: {"x": measured, **kw},
                   check_instance=check)


@pytest.fixture
def fake_catalogue(monkeypatch):
    fakes = (_fake("fake-ok", 0.5), _fake("fake-bad", 2.0))
    monkeypatch.setattr(cat, "catalogue", lambda: fakes)
    return fakes


def test_verify_exit_status_follows_the_verdicts(fake_catalogue, capsys):
    assert main(["verify", "fake-ok"]) == 0
    assert main(["verify", "fake-ok", "fake-bad"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "1/2 checks passed" in out


def test_verify_json_and_report(fake_catalogue, tmp_path, capsys):
    assert main(["verify", "fake-ok", "--json", "--report", str(tmp_path / "r")]) == 0
    verdicts = json.loads(capsys.readouterr().out)
    assert verdicts[0]["theorem_id"] == "fake-ok" and verdicts[0]["status"] == "passed"
    payload = json.loads((tmp_path / "r" / "report.json").read_text())
    assert payload["verdicts"][0]["comparisons"][0]["measured"] == 0.5
    # an existing report is not overwritten without --force, and nothing is run before refusing
    assert main(["verify", "fake-ok", "--report", str(tmp_path / "r")]) == 2
    assert main(["verify", "fake-ok", "--report", str(tmp_path / "r"), "--force"]) == 0


def test_a_check_that_raises_is_an_error_not_a_pass(monkeypatch, capsys):
    def boom(inst):
        raise RuntimeError("integrator exploded")

    t = Theorem("fake-err", "fake", Source("A", 2024, "T"), "", (), "bound",
                make_instance=lambda seed: {}, check_instance=boom)
    monkeypatch.setattr(cat, "catalogue", lambda: (t,))
    assert main(["verify"]) == 1
    assert "integrator exploded" in capsys.readouterr().out


def test_list_and_unknown_ids(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "soudry-direction" in out and "Soudry et al. 2018" in out
    assert main(["verify", "no-such-theorem"]) == 2
    assert "unknown theorem id" in capsys.readouterr().err


def test_the_real_catalogue_covers_the_ten_sources():
    modules = {t.source.arxiv for t in cat.catalogue()}
    # gunasekar2018 and gunasekar2018_mirror are two modules of one paper (arXiv 1802.08246)
    assert len(cat.MODULES) == 14 and len(modules) == 13  # + marcotte2023
    assert all(t.id and t.statement and t.hypotheses for t in cat.catalogue())
