"""Hostile and mistaken inputs (issue 14): files a user is handed, user errors on the command line.

Each test asserts the exact outcome: the error class or exit status, the key words of the message,
and, where the tool writes nothing, that no file changed. Memory claims are measured in a
subprocess with ``resource.getrusage`` (peak RSS growth across the call), never timed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from solvers.nets import (
    MAX_ARRAY_BYTES,
    HomogeneousMLP,
    detect_file_format,
    load_data,
    load_weights,
    save_data,
    save_weights,
)

ROOT = Path(__file__).resolve().parents[1]
X = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
Y = np.array([1.0, -1.0, 1.0])


# --- crafted files ---------------------------------------------------------------------------

def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def _write_npz(path: Path, arrays: dict[str, np.ndarray], *, zeros: dict | None = None,
               headers_only: dict | None = None) -> Path:
    """An ``.npz`` with real ``arrays``, plus float64 members of ``zeros[name]`` zero entries
    streamed through deflate (a decompression bomb: a few hundred KB on disk), plus members
    holding only a header that declares ``headers_only[name]`` (shape) and no data."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(a), allow_pickle=True)
            zf.writestr(name + ".npy", buf.getvalue())
        for name, n in (zeros or {}).items():
            with zf.open(name + ".npy", "w", force_zip64=True) as fh:
                fh.write(_npy_header("<f8", (n,)))
                chunk = bytes(8 * 2**20)
                left = 8 * n
                while left:
                    fh.write(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))
        for name, shape in (headers_only or {}).items():
            zf.writestr(name + ".npy", _npy_header("<f8", shape))
    return path


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


class _Run:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __repr__(self):
        return f"exit {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def _marginflow(*args, cwd=None):
    """``marginflow ARGS`` in this process (``theory.cli.main``), output captured."""
    from contextlib import redirect_stderr, redirect_stdout

    from theory.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse's errors (and --help) exit from parse_args
                code = exc.code
    finally:
        os.chdir(old)
    return _Run(code, out.getvalue(), err.getvalue())


def _peak_growth_mib(calls: list[tuple[str, str]]) -> tuple[float, list[str]]:
    """Run each call ``(function of solvers.nets, path)`` in one fresh interpreter (solvers.nets
    and torch imported first); return the growth of the peak RSS over all the calls in MiB, and
    the exception each raised
    (``'ValueError: ...'``) or ``'returned'``. Peak RSS is monotone, so one large call shows."""
    prog = textwrap.dedent("""
        import json, resource, sys
        import numpy as np
        import solvers.nets
        try:
            import torch
        except ImportError:
            pass
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcomes = []
        for fn, path in json.loads(sys.argv[1]):
            try:
                getattr(solvers.nets, fn)(path)
                outcomes.append("returned")
            except Exception as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"growth_kb": after - before, "outcomes": outcomes}))
    """)
    out = subprocess.run([sys.executable, "-c", prog, json.dumps(calls)], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["growth_kb"] / 1024, res["outcomes"]


# Peak-RSS growth allowed while refusing every hostile file below: the interpreter's own noise is
# a few MiB; expanding any one of them would add 192 MiB or more.
REFUSAL_GROWTH_MIB = 64


def test_hostile_files_under_10_mb_keep_peak_memory_bounded(tmp_path):
    """Issue 14.1-2: bombs in an extra and in a needed member, torch specs without weights."""
    files = {
        "junk": _write_npz(tmp_path / "bomb.npz", {"X": X, "y": Y}, zeros={"junk": 24_000_000}),
        "xbomb": _write_npz(tmp_path / "xbomb.npz", {"y": Y}, zeros={"X": 36_000_000}),
    }
    calls = [("load_data", str(files["junk"])), ("load_data", str(files["xbomb"]))]
    words = ["unexpected arrays ['junk']", "above the limit"]
    try:
        import torch
    except ImportError:  # the .npz cases still run
        torch = None
    if torch is not None:
        for d in (30_000, 3000):
            p = tmp_path / f"spec{d}.pt"
            torch.save(_torch_payload(torch, [{"type": "Linear", "in_features": d,
                                               "out_features": d, "bias": False}], {}), p)
            files[p.name] = p
            calls.append(("load_torch", str(p)))
        words += ["above the limit", "state_dict does not match"]
    assert all(f.stat().st_size < 10 * 2**20 for f in files.values())
    growth, outcomes = _peak_growth_mib(calls)
    for outcome, word in zip(outcomes, words, strict=True):
        assert outcome.startswith("ValueError") and word in outcome, outcome
    assert growth < REFUSAL_GROWTH_MIB, f"refusals grew the peak RSS by {growth:.0f} MiB"


# --- .npz files --------------------------------------------------------------------------------

def test_decompression_bomb_member_is_refused_unread(tmp_path):
    """Issue 14.2: an extra member ``junk`` declaring 250M zeros (2 GB) is refused by name."""
    path = _write_npz(tmp_path / "bomb.npz", {"X": X, "y": Y},
                      headers_only={"junk": (250_000_000,)})
    with pytest.raises(ValueError, match=r"unexpected arrays \['junk'\] \(not read\)"):
        load_data(path)


def test_declared_size_above_the_limit_is_refused_before_decompressing(tmp_path):
    path = _write_npz(tmp_path / "huge.npz", {"y": Y}, headers_only={"X": (200_000, 20_000)})
    with pytest.raises(ValueError, match=r"huge\.npz.*declare 30517\.6 MiB.*above the limit of "
                                         r"256\.0 MiB; nothing was decompressed.*max_bytes="):
        load_data(path)
    # a real, large-ish member is refused by its header alone and accepted with a larger limit
    path = _write_npz(tmp_path / "big.npz", {"y": np.ones(2)}, zeros={"X": 2 * 3_000_000})
    with pytest.raises(ValueError, match="above the limit of 8.0 MiB"):
        load_data(path, max_bytes=8 * 2**20)
    with pytest.raises(ValueError, match="X must be 2-D"):  # read, then checked as usual
        load_data(path, max_bytes=64 * 2**20)
    assert MAX_ARRAY_BYTES == 256 * 2**20


@pytest.mark.parametrize("which", ["data", "weights"])
def test_extra_arrays_are_refused_alike_in_data_and_weights(tmp_path, which):
    p = tmp_path / "f.npz"
    if which == "data":
        np.savez(p, X=X, y=Y, notes=np.arange(3))
        with pytest.raises(ValueError, match=r"data file .*unexpected arrays \['notes'\]"):
            load_data(p)
    else:
        np.savez(p, W1=np.ones((1, 2)), notes=np.arange(3))
        with pytest.raises(ValueError, match=r"weights file .*unexpected arrays \['notes'\]"):
            load_weights(p)


@pytest.mark.parametrize("bad,words", [
    (X.astype(complex) + 1j, "complex values"),
    (X > 1, "booleans"),
    (np.array([["a", "b"]] * 3), "non-numeric values"),
    (np.array([[2**60, 1]] * 3, dtype=np.int64), "integers beyond 2\\*\\*53"),
])
def test_wrong_dtypes_in_X_are_refused_by_name(tmp_path, bad, words):
    p = tmp_path / "d.npz"
    np.savez(p, X=bad, y=Y)
    with pytest.raises(ValueError, match=rf"data file .*d\.npz.*'X' holds {words}"):
        load_data(p)


def test_wrong_dtypes_in_y_and_weights_are_refused(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X=X, y=Y.astype(complex))
    with pytest.raises(ValueError, match="'y' holds complex values"):
        load_data(p)
    np.savez(p, X=X, y=Y > 0)
    with pytest.raises(ValueError, match="'y' holds booleans"):
        load_data(p)
    p = tmp_path / "w.npz"
    np.savez(p, W1=np.ones((1, 2), dtype=complex))
    with pytest.raises(ValueError, match="'W1' holds complex values"):
        load_weights(p)
    # exactly representable integers are fine (labels stored as int8 are common)
    np.savez(tmp_path / "ok.npz", X=np.array([[1, 0], [0, 1], [3, 0]]), y=Y.astype(np.int8))
    Xi, yi = load_data(tmp_path / "ok.npz")
    np.testing.assert_array_equal(Xi, X)
    np.testing.assert_array_equal(yi, Y)


def test_text_and_single_array_files_get_their_own_message(tmp_path):
    p = tmp_path / "data.npz"
    p.write_text("1.0,2.0,1\n0.5,0.1,-1\n")
    with pytest.raises(ValueError, match="is a text file, not an .npz archive") as info:
        load_data(p)
    assert "unsafe" not in str(info.value) and "pickle" not in str(info.value)
    np.save(tmp_path / "a.npy", X)
    with pytest.raises(ValueError, match="holds a single array"):
        load_data(tmp_path / "a.npy")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty, not an .npz"):
        load_data(tmp_path / "empty.npz")


@given(cut=st.floats(0.0, 0.999))
def test_truncated_npz_is_always_a_value_error(tmp_path_factory, cut):
    """The zip directory sits at the end: any truncation must give ValueError, nothing else."""
    d = tmp_path_factory.mktemp("trunc")
    full = save_data(d / "full.npz", X, Y).read_bytes()
    p = d / "cut.npz"
    p.write_bytes(full[:int(cut * len(full))])
    with pytest.raises(ValueError, match="cut.npz"):
        load_data(p)


@given(pos=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_corrupted_npz_raises_only_value_error(tmp_path_factory, pos, byte):
    """One byte changed anywhere: either the data still read back as valid (X, y), or a
    ValueError naming the file; never another exception type."""
    d = tmp_path_factory.mktemp("flip")
    raw = bytearray(save_data(d / "full.npz", X, Y).read_bytes())
    raw[pos % len(raw)] = byte
    p = d / "flip.npz"
    p.write_bytes(bytes(raw))
    try:
        Xb, yb = load_data(p)
    except ValueError as exc:
        assert "flip.npz" in str(exc)
    else:
        assert Xb.shape == (3, 2) and set(np.unique(yb)) <= {-1.0, 1.0}


# --- torch files -------------------------------------------------------------------------------

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _torch_payload(torch, layers, state):
    return {"format": "marginflow-torch-v1", "layers": layers, "state_dict": state}


@pytest.mark.parametrize("d_in,d_out,words", [
    (30_000, 30_000, r"declare 6866\.5 MiB of weights .*above the limit .*nothing was allocated"),
    (200_000, 200_000, r"above the limit"),
    (-5, 1, r"in_features=-5; it must be a positive integer"),
    (True, 1, r"in_features=True; it must be a positive integer"),
    (3000, 1, r"state_dict does not match the layer list \(missing \['0.weight'\]"),
])
def test_torch_spec_is_checked_against_the_state_dict_before_allocating(tmp_path, torch, d_in,
                                                                          d_out, words):
    from solvers.nets import load_torch

    p = tmp_path / "spec.pt"
    torch.save(_torch_payload(torch, [{"type": "Linear", "in_features": d_in,
                                       "out_features": d_out, "bias": False}], {}), p)
    assert p.stat().st_size < 4096
    with pytest.raises(ValueError, match=words):
        load_torch(p)


def test_torch_state_dict_shape_and_dtype_mismatches(tmp_path, torch):
    spec = [{"type": "Linear", "in_features": 4, "out_features": 1, "bias": False}]
    p = tmp_path / "m.pt"
    torch.save(_torch_payload(torch, spec, {"0.weight": torch.ones(1, 2)}), p)
    with pytest.raises(ValueError, match=r"'0.weight'\] has shape \(1, 2\) but the layer list "
                                         r"says \(1, 4\)"):
        from solvers.nets import load_torch
        load_torch(p)
    torch.save(_torch_payload(torch, spec, {"0.weight": torch.ones(1, 4, dtype=torch.complex64)}),
               p)
    with pytest.raises(ValueError, match="has dtype torch.complex64; marginflow reads real"):
        load_torch(p)
    torch.save(_torch_payload(torch, spec, {"0.weight": torch.ones(1, 4),
                                            "0.bias": torch.ones(1)}), p)
    with pytest.raises(ValueError, match=r"unexpected \['0.bias'\]"):
        load_torch(p)


@pytest.mark.parametrize("name", ["net.npz", "net.bin", "net.PT"])
def test_torch_file_is_recognised_by_content_in_the_cli(tmp_path, torch, name):
    from solvers.nets import save_torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False)).to(torch.float64)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
    w = save_torch(tmp_path / name, model)
    d = save_data(tmp_path / "data.npz", X, Y)
    assert detect_file_format(w) == "torch"
    out = _marginflow("kkt", "--weights", w, "--data", d, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["is_kkt"] is True
    with pytest.raises(ValueError, match=r"is a PyTorch \(torch.save\) file, not an .npz"):
        load_weights(w)


def test_npz_named_pt_is_read_as_npz(tmp_path):
    w = tmp_path / "net.pt"
    np.savez(w, W1=np.array([[1.0, -1.0]]), activation=np.array("linear"))
    w = tmp_path / "net.pt.npz"  # np.savez appends .npz; rename to the misleading name
    w.rename(tmp_path / "net.pt")
    d = save_data(tmp_path / "data.npz", X, Y)
    out = _marginflow("kkt", "--weights", tmp_path / "net.pt", "--data", d, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["is_kkt"] is True


def test_constant_feature_applies_to_npz_weights(tmp_path):
    """W1 of shape (1, d + 1): the last column multiplies the constant feature. With the flag the
    file is checked (w = (1, -1, 0) is the KKT point of the augmented data); without, W1 does
    not fit X."""
    w = save_weights(tmp_path / "net.npz",
                     HomogeneousMLP((np.array([[1.0, -1.0, 0.0]]),), activation="linear"))
    d = save_data(tmp_path / "data.npz", X, Y)
    out = _marginflow("kkt", "--weights", w, "--data", d, "--constant-feature", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["is_kkt"] is True
    out = _marginflow("kkt", "--weights", w, "--data", d)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1


def test_cli_hostile_files_are_one_line_exit_2_and_write_nothing(tmp_path):
    (tmp_path / "text.npz").write_text("1,2\n")
    _write_npz(tmp_path / "bomb.npz", {"X": X, "y": Y}, headers_only={"junk": (250_000_000,)})
    np.savez(tmp_path / "cplx.npz", X=X + 1j, y=Y)
    w = save_weights(tmp_path / "net.npz",
                     HomogeneousMLP((np.array([[1.0, -1.0]]),), activation="linear"))
    before = _tree(tmp_path)
    for data, words in (("text.npz", "is a text file"), ("bomb.npz", "unexpected arrays"),
                        ("cplx.npz", "complex values")):
        out = _marginflow("kkt", "--weights", w, "--data", tmp_path / data, cwd=tmp_path)
        assert out.returncode == 2, out
        assert out.stderr.startswith("marginflow kkt: error:") and words in out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
        assert out.stdout == ""
    assert _tree(tmp_path) == before


def test_detect_file_format_reads_only_the_head_and_directory(tmp_path):
    p = tmp_path / "a.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="zip archive but neither an .npz"):
        detect_file_format(p)
    assert detect_file_format(save_data(tmp_path / "d", X, Y)) == "npz"


# --- user errors on the command line (issue 14.9) ---------------------------------------------

@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a check or a sweep starts: the errors below must come first."""
    import theory.checking
    from theory.cli import _verify

    def boom(*args, **kwargs):
        raise AssertionError("work started before the bad argument was refused")

    monkeypatch.setattr(_verify, "run_checks", boom)
    monkeypatch.setattr(theory.checking, "run_sweep", boom)


def _unwritable_dir() -> str:
    """/sys refuses new files even to root (where chmod-based read-only dirs do not)."""
    try:
        with __import__("tempfile").TemporaryFile(dir="/sys"):
            pass
    except OSError:
        return "/sys"
    pytest.skip("/sys is writable here: no read-only directory to test with")


SWEEP = ["sweep", "song-width", "--grid", "width=8", "--grid", "d=10"]


@pytest.mark.parametrize("argv,words", [
    (["verify", "--report", "{ro}/out"], "--report '{ro}/out': cannot write in '{ro}' "
                                         "(Permission denied)"),
    (["verify", "--report", "{tmp}/no/such/out"], "the directory '{tmp}/no/such' does not exist"),
    (["verify", "--report", "{tmp}/file.txt"], "exists and is not a directory"),
    (["derive", "linear", "--report", "{ro}/out"], "cannot write in '{ro}'"),
    ([*SWEEP, "--grid", "n=16", "--results", "{ro}/r.jsonl"], "cannot write in '{ro}'"),
    ([*SWEEP, "--grid", "n=16", "--results", "{tmp}/no/r.jsonl"], "does not exist"),
    ([*SWEEP, "--grid", "n=16", "--results", "."], "--results '.' is a directory"),
    ([*SWEEP, "--grid", "n=1e9", "--results", "{tmp}/r.jsonl"],
     "n·d·width = 8e+10 elements, above the limit of 5e+07"),
    ([*SWEEP, "--grid", "n=1,,2", "--results", "{tmp}/r.jsonl"], "--grid n: empty value"),
    ([*SWEEP, "--grid", "n=abc", "--results", "{tmp}/r.jsonl"], "--grid n: 'abc' is not a number"),
    ([*SWEEP, "--grid", "n=2.5", "--results", "{tmp}/r.jsonl"], "--grid n: 2.5 is not a positive"),
    ([*SWEEP, "--grid", "n=16", "--seeds", "-3:-1", "--results", "{tmp}/r.jsonl"],
     "--seeds '-3:-1': seeds must lie in [0, 2**32)"),
    ([*SWEEP, "--grid", "n=16", "--jobs", "0", "--results", "{tmp}/r.jsonl"],
     "--jobs must be at least 1; got 0"),
    (["verify", "--jobs", "0"], "--jobs must be at least 1; got 0"),
    (["verify", "--jobs", "-5"], "--jobs must be at least 1; got -5"),
    (["verify", "--seed", "-1"], "--seed must be in [0, 2**32)"),
    (["derive", "linear", "--seed", "-1", "--report", "{tmp}/d"], "--seed must be in [0, 2**32)"),
])
def test_user_errors_are_one_line_exit_2_before_work(tmp_path, no_work, argv, words):
    ro = _unwritable_dir() if any("{ro}" in a for a in argv) else "/sys"
    (tmp_path / "file.txt").write_text("mine")
    argv = [a.format(tmp=tmp_path, ro=ro) for a in argv]
    before = _tree(tmp_path)
    run = _marginflow(*argv, cwd=tmp_path)
    code, err = run.returncode, run.stderr
    assert code == 2, err
    assert words.format(tmp=tmp_path, ro=ro) in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_unreachable_scheduler_is_named_within_the_timeout(tmp_path, no_work):
    import socket

    with socket.socket() as s:  # a port nobody listens on: bind, never listen
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        run = _marginflow(*SWEEP, "--grid", "n=16", "--results", tmp_path / "r.jsonl",
                          "--scheduler", f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "2")
    assert run.returncode == 2
    assert f"--scheduler 'tcp://127.0.0.1:{port}' is unreachable (connection refused" in run.stderr
    assert not (tmp_path / "r.jsonl").exists()


# --- audit of issue 14 (session 3): variants the issue implies ---------------------------------

@pytest.mark.parametrize("which", ["data", "weights"])
def test_a_zip_of_many_members_gets_a_short_line(tmp_path, which):
    """A 1 MB .npz of 20,000 empty extra members: one short line naming a few, and the count
    (it listed all 20,000 names, a 200 KB "line")."""
    p = tmp_path / "many.npz"
    real = {"X": X, "y": Y} if which == "data" else {"W1": np.ones((1, 2))}
    with zipfile.ZipFile(p, "w") as zf:
        for name, a in real.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a)
            zf.writestr(name + ".npy", buf.getvalue())
        for i in range(20_000):
            zf.writestr(f"m{i:05d}.npy", b"")
    out = _marginflow("kkt", "--weights", p if which == "weights" else _weights(tmp_path),
                      "--data", p if which == "data" else _data(tmp_path))
    assert out.returncode == 2, out
    line = out.stderr.strip()
    assert "\n" not in line and len(line) < 600, line[:300]
    assert "unexpected arrays ['m00000', 'm00001'" in line and "and 19992 more" in line


def _weights(tmp_path: Path) -> Path:
    save_weights(tmp_path / "w.npz", HomogeneousMLP([np.ones((3, 2)), np.ones((1, 3))]))
    return tmp_path / "w.npz"


def _data(tmp_path: Path) -> Path:
    save_data(tmp_path / "d.npz", X, Y)
    return tmp_path / "d.npz"


@pytest.mark.parametrize("command", ["verify", "derive"])
def test_force_on_a_directory_that_is_no_report_is_refused_before_any_work(tmp_path, monkeypatch,
                                                                          command):
    """``--report DIR --force`` on the user's own directory (no report in it) is refused before
    any check or derivation runs (it was refused only after all of them, e.g. 63 s for
    ``verify --quick``), and the directory is left unchanged."""
    import theory.cli._verify as verify_cli
    import theory.reports as reports

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the --report directory was checked")

    monkeypatch.setattr(verify_cli, "run_checks", no_work)
    monkeypatch.setattr(reports, "derive_report", no_work)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    before = _tree(mine)
    args = (["verify", "saxe-depth2"] if command == "verify" else ["derive", "linear"])
    out = _marginflow(*args, "--report", mine, "--force")
    assert out.returncode == 2, out
    assert f"marginflow {command}: error: " in out.stderr
    assert "is not a marginflow report" in out.stderr and len(out.stderr.splitlines()) == 1
    assert _tree(mine) == before
