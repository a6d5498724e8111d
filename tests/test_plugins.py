"""Plug-in theorems (issue 10 §2): ``--plugin`` modules and the ``marginflow.theorems``
entry-point group join list/verify with their origin; id clashes name both origins; a plug-in
that fails to import is one line and the built-in catalogue still runs; theory.testing's contract
passes on a sound theorem and reports a check that cannot fail."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import theory.catalogue as cat
from theory import Source, Theorem, Verdict, compare_close
from theory.testing import assert_theorem_contract, check_theorem_contract

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''
    from theory import Source, Theorem, Verdict, compare_close

    def make(seed=0, *, value=2.0):
        return {"value": value}

    def check(inst):
        return Verdict("{tid}", "two", (compare_close("value", 2.0, inst["value"], rtol=0.0,
                                                       atol=1e-12),), kind="identity")

    THEOREMS = (Theorem(id="{tid}", title="two is two", source=Source("A. Author", 2024, "T"),
                        statement="$2 = 2$", hypotheses=(), kind="identity",
                        make_instance=make, check_instance=check),)
    ''')


def _env(*extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *map(str, extra),
                                         env.get("PYTHONPATH", "")])
    return env


def _cli(args, cwd, *extra_path):
    return subprocess.run([sys.executable, "-m", "theory.cli", *args], cwd=cwd,
                          env=_env(*extra_path), capture_output=True, text=True, timeout=300)


@pytest.fixture
def fresh_catalogue(monkeypatch):
    monkeypatch.setattr(cat, "_PLUGINS", {})
    monkeypatch.setattr(cat, "_ERRORS", [])
    monkeypatch.setattr(cat, "_ENTRY_POINTS", [])


def test_plugin_joins_catalogue_with_origin(tmp_path, fresh_catalogue):
    path = tmp_path / "two.py"
    path.write_text(PLUGIN.replace("{tid}", "two-is-two"))
    n = len(cat.catalogue())
    (t,) = cat.load_plugin(str(path))
    assert len(cat.catalogue()) == n + 1 and cat.get_theorem("two-is-two") is t
    assert cat.theorem_origin("two-is-two") == f"plugin {path}"
    assert cat.theorem_origin("soudry-direction") == "built-in theory.catalogue.soudry2018"


def test_id_clash_names_both_origins(tmp_path, fresh_catalogue):
    path = tmp_path / "clash.py"
    path.write_text(PLUGIN.replace("{tid}", "soudry-direction"))
    with pytest.raises(ValueError, match=r"'soudry-direction' is defined twice: by built-in "
                                         r"theory\.catalogue\.soudry2018 and by plugin .*clash"):
        cat.load_plugin(str(path))
    assert "soudry-direction" in [t.id for t in cat.catalogue()]  # the catalogue still works
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text(PLUGIN.replace("{tid}", "same-id"))
    b.write_text(PLUGIN.replace("{tid}", "same-id"))
    cat.load_plugin(str(a))
    with pytest.raises(ValueError, match=r"by plugin .*a\.py and by plugin .*b\.py"):
        cat.load_plugin(str(b))


def test_failing_plugin_is_one_line_and_builtins_still_run(tmp_path):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise ImportError('needs a missing dependency')\n")
    res = _cli(["verify", "gunasekar-least-squares", "--plugin", str(bad)], tmp_path)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "bad_plugin" in ln]
    assert len(lines) == 1
    assert "failed to import: ImportError: needs a missing dependency" in lines[0]
    assert "PASSED" in res.stdout and "Traceback" not in res.stderr


def test_list_and_verify_with_plugin(tmp_path):
    (tmp_path / "two.py").write_text(PLUGIN.replace("{tid}", "two-is-two"))
    res = _cli(["list", "--plugin", "two.py"], tmp_path)
    assert res.returncode == 0, res.stderr
    row = next(ln for ln in res.stdout.splitlines() if ln.startswith("two-is-two"))
    assert row.rstrip().endswith("plugin two.py")
    res = _cli(["verify", "two-is-two", "--plugin", "two.py", "--jobs", "2"], tmp_path)
    assert res.returncode == 0 and "PASSED" in res.stdout, res.stderr


def _fake_distribution(root: Path, value: str, module_src: str | None):
    """An installed distribution (dist-info on sys.path) declaring one entry point."""
    info = root / "fakedist-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakedist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[marginflow.theorems]\nfake = {value}\n")
    if module_src is not None:
        (root / "fake_theorems.py").write_text(module_src)


def test_entry_point_group(tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "fake_theorems", PLUGIN.replace("{tid}", "fake-two"))
    res = _cli(["list", "--json"], tmp_path, site)
    assert res.returncode == 0, res.stderr
    assert '"origin": "entry point fake = fake_theorems (fakedist)"' in res.stdout
    res = _cli(["verify", "fake-two"], tmp_path, site)
    assert res.returncode == 0 and "PASSED" in res.stdout


def test_broken_entry_point_is_one_line(tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "no_such_module_xyz", None)
    res = _cli(["verify", "gunasekar-least-squares"], tmp_path, site)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "no_such_module_xyz" in ln]
    assert len(lines) == 1 and "ModuleNotFoundError" in lines[0]


def _theorem(check):
    return Theorem(id="t", title="t", source=Source("A", 2024, "T"), statement="", hypotheses=(),
                   kind="identity", make_instance=lambda seed=0, **kw: {"v": kw.get("v", 1.0)},
                   check_instance=check)


def test_contract_helper_accepts_a_sound_theorem_and_refuses_one_that_cannot_fail():
    def sound(inst):
        return Verdict("t", "t", (compare_close("v", 1.0, inst["v"], rtol=0, atol=1e-12),))

    def blind(inst):  # never fails: the contract must say so
        return Verdict("t", "t", (compare_close("v", 1.0, 1.0, rtol=0, atol=1e-12),))

    res = assert_theorem_contract(_theorem(sound), broken=[{"v": 2.0}], n_random=0)
    assert res.holds and res.broken_statuses == ("failed",)
    res = check_theorem_contract(_theorem(blind), broken=[{"v": 2.0}], n_random=0)
    assert not res.holds and "cannot detect" in res.problems[0]
    with pytest.raises(AssertionError, match="no broken instance declared"):
        assert_theorem_contract(_theorem(sound), n_random=0)
