import subprocess
import sys

from theory.cli import main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "marginflow" in capsys.readouterr().out
    assert main([]) == 0
    assert "usage: marginflow" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "theory.cli", "--help"], capture_output=True,
                         text=True, check=True)
    assert "usage: marginflow" in out.stdout


def _env():
    import os
    from pathlib import Path

    return dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))


def test_building_the_parser_imports_no_sympy_or_scipy():
    """``marginflow --help``/``--version`` must not pay for sympy and scipy (issue 14.13)."""
    code = ("import sys; from theory.cli import build_parser; p = build_parser(); "
            "p.format_help(); [s.format_help() for a in p._subparsers._group_actions "
            "for s in a.choices.values()]; "
            "print(sorted(m for m in ('sympy', 'scipy', 'cvxpy', 'torch', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(), check=True)
    assert out.stdout.strip() == "[]"


def test_derive_lists_the_models_of_the_reports():
    from theory.cli._derive import MODEL_ALIASES, MODELS
    from theory.reports import MODEL_ALIASES as REPORT_ALIASES
    from theory.reports import MODELS as REPORT_MODELS

    assert MODELS == REPORT_MODELS
    assert set(MODEL_ALIASES) == set(REPORT_ALIASES)


def test_closed_output_pipe_exits_quietly():
    """``marginflow list | head -1``: the reader is gone before the first write."""
    for extra in ([], ["--json"]):
        p = subprocess.Popen([sys.executable, "-m", "theory.cli", "list", *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        p.stdout.close()
        err = p.stderr.read().decode()
        p.stderr.close()
        assert p.wait(timeout=120) == 141 and err == ""


def test_debug_shows_the_traceback_that_a_user_error_hides(tmp_path, capsys):
    import pytest

    argv = ["kkt", "--weights", str(tmp_path / "nope.npz"), "--data", str(tmp_path / "d.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("marginflow kkt: error:") and "does not exist" in err
    assert err.count("\n") == 1
    with pytest.raises(ValueError, match="does not exist"):
        main(["--debug", *argv])


def test_negative_values_reach_their_option():
    from theory.cli._main import _glue_negative_values

    assert _glue_negative_values(["sweep", "--seeds", "-3:-1", "--grid", "a=-1"]) == \
        ["sweep", "--seeds=-3:-1", "--grid", "a=-1"]
    assert _glue_negative_values(["verify", "--seed", "--json"]) == ["verify", "--seed", "--json"]


def test_progress_off_a_terminal_is_one_line_per_finished_check(monkeypatch, capsys):
    """Issue 14.13: captured stderr is not a terminal, so each finished check logs a line."""
    import theory.catalogue as cat
    from theory.checking import Source, Theorem, Verdict, compare_le

    def fake(theorem_id):
        return Theorem(theorem_id, "fake", Source("A. Author", 2024, "T"), "$x \\le 1$", (),
                       "bound", make_instance=lambda seed, **kw: {"x": 0.5},
                       check_instance=lambda inst: Verdict(
                           theorem_id, "fake", (compare_le("x", inst["x"], 1.0),), kind="bound"))

    monkeypatch.setattr(cat, "catalogue", lambda: (fake("fake-a"), fake("fake-b")))
    assert main(["verify", "fake-a", "fake-b"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in err if line.startswith("marginflow: verify:")] == \
        ["marginflow: verify: 1/2 done", "marginflow: verify: 2/2 done"]


def test_progress_lines_and_silence():
    import logging

    from solvers._progress import LOGGER_NAME, progress

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger(LOGGER_NAME)
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert list(progress(range(3), desc="stage")) == [0, 1, 2]  # pytest: not a terminal
        assert [r.split(",")[0] for r in records] == ["stage: 1/3 done", "stage: 2/3 done",
                                                      "stage: 3/3 done"]
        records.clear()
        bar = progress(total=1000, desc="many")  # 1000 items: spaced lines, the last always
        for _ in range(1000):
            bar.update(1)
        bar.close()
        assert [r.split(",")[0] for r in records] == ["many: 1000/1000 done"]
        records.clear()
        assert list(progress(range(2), enabled=False)) == [0, 1] and records == []
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_derive_records_the_integrator_it_picked(tmp_path, capsys):
    """Issue 9.3: the report says which integrator method='auto' chose, and why."""
    import json

    assert main(["derive", "linear", "--report", str(tmp_path / "r")]) == 0
    payload = json.loads((tmp_path / "r" / "report.json").read_text())
    instance = payload["verdict"]["instance"]
    assert instance["integrator"] == "LSODA"
    assert instance["integrator_choice"].startswith("method='auto' chose LSODA")
    err = capsys.readouterr().err
    assert "marginflow: derive: integrating P = 4 parameters" in err


def test_every_command_turns_sigterm_into_exit_143_with_one_line(monkeypatch, capsys):
    # a command that is stopped by SIGTERM while it works (derive has no handler of its own)
    import os
    import signal

    from theory.cli import _derive, main

    def stopped(args):
        os.kill(os.getpid(), signal.SIGTERM)   # delivered under main's stop_on_signals
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(_derive, "run", stopped)
    assert main(["derive", "linear", "--report", "never-written"]) == 143
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["marginflow derive: terminated (SIGTERM)"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was restored
