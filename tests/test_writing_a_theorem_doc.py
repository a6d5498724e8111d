"""Executes docs/writing-a-theorem.md end to end: its ``# file:`` blocks are written out, its other
python blocks run in order in one fresh interpreter, its ``marginflow`` commands run through
the CLI (issue 10 §2). A doc whose example breaks fails here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-theorem.md"
ROOT = DOC.parents[1]
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)


def _blocks():
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("MPLBACKEND", "Agg")
    return env


def test_doc_has_the_three_parts():
    kinds = [(lang, code.splitlines()[0]) for lang, code in _blocks()]
    assert kinds[0] == ("python", "# file: my_theorems.py")
    assert [k for k, _ in kinds].count("bash") == 1 and len(kinds) == 3


def test_doc_example_runs(tmp_path):
    scripts = []
    commands = []
    for lang, code in _blocks():
        first = code.splitlines()[0]
        if lang == "python" and first.startswith("# file: "):
            (tmp_path / first.removeprefix("# file: ").strip()).write_text(code)
        elif lang == "python":
            scripts.append(code)
        else:
            commands += [line for line in code.splitlines() if line.startswith("marginflow ")]
    (tmp_path / "doc_script.py").write_text("\n".join(scripts))
    out = subprocess.run([sys.executable, "doc_script.py"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "passed ('failed',) ('passed', 'passed', 'passed')" in out.stdout
    assert len(commands) == 2
    for cmd in commands:
        argv = shlex.split(cmd)[1:]
        res = subprocess.run([sys.executable, "-m", "theory.cli", *argv], cwd=tmp_path,
                             env=_env(), capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, (cmd, res.stdout, res.stderr)
        assert "euler-quadratic-net" in res.stdout
    assert "plugin my_theorems.py" in subprocess.run(
        [sys.executable, "-m", "theory.cli", "list", "--plugin", "my_theorems.py"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300).stdout
