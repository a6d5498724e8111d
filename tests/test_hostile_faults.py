"""Faults a real run meets (issue 14, items 4-8), each in a subprocess of the real command.

SIGTERM/SIGINT during ``marginflow sweep --jobs 2`` (workers stopped, finished points kept, one
line, exit 143/130, no process of the run survives); two sweeps on one results file (the second
is refused and writes nothing); SIGTERM while ``verify --report`` writes (no temporary directory,
an earlier report and the user's files beside it unchanged). Every test checks that no file
outside the tool's own outputs changed.

The slow points come from ``tests/_sweep_targets.slow_square``, registered as a sweep trial by a
two-line runner (the CLI only knows catalogue ids and its own trials); the workers import it by
name, so the subprocesses get the repository root on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import _sweep_targets as targets
from theory.checking import (
    Terminated,
    interrupt_exit_code,
    prepare_worker,
    read_results,
    run_sweep,
    stop_on_signals,
)
from theory.checking._signals import deferred_signals

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists() or os.name != "posix",
                                reason="needs POSIX signals and /proc")

ROOT = Path(__file__).resolve().parents[1]

SWEEP_RUNNER = (
    "import sys\n"
    "from theory.cli import _sweep, main\n"
    "_sweep.TRIALS['slow-square'] = ('tests._sweep_targets', 'slow_square')\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

#: makes the report writer stop inside write_report (after the temporary directory exists)
VERIFY_RUNNER = (
    "import pathlib, sys, time\n"
    "import theory.reports._report as r\n"
    "flag = pathlib.Path(sys.argv[1])\n"
    "render = r.render_latex\n"
    "def slow(report):\n"
    "    flag.touch()\n"
    "    time.sleep(120)\n"
    "    return render(report)\n"
    "r.render_latex = slow\n"
    "from theory.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)

#: generous bounds for a loaded 2-core machine; the tests stop as soon as the event happens
STARTUP_TIMEOUT = 90.0
EXIT_TIMEOUT = 30.0
#: how long the processes of a stopped run may take to disappear ("within a few seconds")
REAP_TIMEOUT = 10.0



def _messages(stderr: str) -> list[str]:
    """stderr without the progress log ("marginflow: <stage>: k/n done ..." off a terminal)."""
    return [ln for ln in stderr.strip().splitlines() if not ln.startswith("marginflow: ")]

def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["MPLBACKEND"] = "Agg"
    return env


def _start(runner: str, *args: str, cwd: Path) -> subprocess.Popen:
    # its own session: the process id is the group id, which the workers inherit and keep even
    # when they are orphaned (reparented to init), so the group finds every process of the run
    return subprocess.Popen([sys.executable, "-c", runner, *args], cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            pids.append(int(entry))
    return pids


def _wait_for(condition, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{err}")
        time.sleep(0.1)
    _kill_group(proc)
    pytest.fail(f"timed out waiting for {what}")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _assert_no_survivors(pgid: int) -> None:
    """Every process of the run is gone within REAP_TIMEOUT (survivors are killed, then fail)."""
    deadline = time.monotonic() + REAP_TIMEOUT
    while (alive := _group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:  # leave nothing running, even when the test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert alive == [], f"processes of the stopped run still alive: {alive}"


def _n_records(path: Path) -> int:
    try:
        return len(read_results(path))
    except (OSError, ValueError):  # not created yet, or the header is being written
        return 0


def _sweep_args(results: Path, started: Path) -> list[str]:
    return ["sweep", "slow-square", "--grid", "x=0,1,2", "--grid", f"started={started}",
            "--results", str(results), "--jobs", "2"]


def _busy(results: Path, started: Path):
    """The first point is saved and both workers are inside their slow points: no worker is
    still starting up. (A Ctrl-C that reaches a worker still importing prints that worker's
    KeyboardInterrupt traceback; prepare_worker can only ignore SIGINT once a task runs.)"""
    return lambda: _n_records(results) >= 1 and {p.name for p in started.iterdir()} == {"1", "2"}


# ------------------------------------------------------------------------- the signal helpers


def test_sigterm_becomes_terminated_and_waits_for_a_critical_section():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    steps = []
    with stop_on_signals():
        with pytest.raises(Terminated) as exc:
            with deferred_signals():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(100):  # the handler runs between these bytecodes: held back
                    time.sleep(0.001)
                steps.append("finished the critical section")
        assert steps == ["finished the critical section"]
        assert interrupt_exit_code(exc.value) == 143
        with pytest.raises(KeyboardInterrupt) as exc:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert not isinstance(exc.value, Terminated) and interrupt_exit_code(exc.value) == 130
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_prepare_worker_leaves_the_parent_process_alone():
    from tqdm import tqdm

    saved = vars(tqdm).get("_lock")
    try:
        if saved is not None:
            del tqdm._lock
        prepare_worker(os.getpid())  # the work runs in the process that sent it
        assert "_lock" not in vars(tqdm)
        prepare_worker(os.getpid() + 1)  # a worker: a thread lock, no semaphore
        assert type(tqdm.get_lock()).__module__ == "_thread"
    finally:  # leave this process's tqdm as it was
        if saved is not None:
            tqdm._lock = saved
        elif "_lock" in vars(tqdm):
            del tqdm._lock


# ------------------------------------------------------------------------- item 4: signals


@pytest.mark.parametrize(("signum", "whole_group", "code", "words"), [
    (signal.SIGTERM, False, 143, "terminated (SIGTERM)"),   # `kill PID`, a batch scheduler
    (signal.SIGINT, True, 130, "interrupted (SIGINT)"),     # Ctrl-C: the terminal's whole group
], ids=["sigterm", "sigint"])
def test_a_signal_stops_the_sweep_workers_and_keeps_finished_points(tmp_path, signum,
                                                                     whole_group, code, words):
    (tmp_path / "notes.txt").write_text("mine")
    results = tmp_path / "r.jsonl"
    started = tmp_path / "started"
    started.mkdir()
    proc = _start(SWEEP_RUNNER, *_sweep_args(results, started), cwd=tmp_path)
    try:
        # x=0 returns at once; x=1 and x=2 sleep 60 s in the two workers
        _wait_for(_busy(results, started), STARTUP_TIMEOUT, proc, "two busy workers")
        assert len(_group(proc.pid)) >= 3  # the command and its two loky workers at least
        if whole_group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == code, err
    lines = _messages(err)
    assert len(lines) == 1, err
    assert words in lines[0] and "workers stopped" in lines[0]
    assert f"finished points saved in {results}: 1" in lines[0]
    assert [r["params"] for r in read_results(results)] == [{"x": 0, "started": str(started)}]
    _assert_no_survivors(proc.pid)  # no worker (nor loky's resource tracker) runs on
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "r.jsonl", "started"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------- item 5: two writers


def test_a_second_sweep_on_the_same_results_file_is_refused(tmp_path):
    results = tmp_path / "r.jsonl"
    started = tmp_path / "started"
    started.mkdir()
    first = _start(SWEEP_RUNNER, *_sweep_args(results, started), cwd=tmp_path)
    try:
        _wait_for(_busy(results, started), STARTUP_TIMEOUT, first, "two busy workers")
        before = results.read_bytes(), results.stat().st_mtime_ns
        second = subprocess.run([sys.executable, "-c", SWEEP_RUNNER,
                                 *_sweep_args(results, started)],
                                cwd=tmp_path, env=_env(), capture_output=True, text=True,
                                timeout=STARTUP_TIMEOUT)
        assert second.returncode == 2, second.stderr
        lines = _messages(second.stderr)
        assert len(lines) == 1 and "in use by another sweep" in lines[0], second.stderr
        assert (results.read_bytes(), results.stat().st_mtime_ns) == before
        assert first.poll() is None  # the first sweep runs on, undisturbed
    finally:
        _kill_group(first)  # SIGKILL: no cleanup at all, yet the kernel drops the lock
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl", "started"]  # no lock file
    # the dead writer's lock is gone: a new sweep resumes from the point it finished
    res = run_sweep(targets.slow_square, {"x": [0], "started": [str(started)]}, seeds=[0],
                    results=results)
    assert res.n_skipped == 1 and res.n_computed == 0


# ------------------------------------------------------------------------- item 8: verify --report


@pytest.mark.parametrize("existing", [False, True], ids=["new-report", "force-over-old-report"])
def test_sigterm_while_writing_a_report_leaves_no_temporary(tmp_path, existing):
    out = tmp_path / "out"
    (tmp_path / "notes.txt").write_text("mine")
    args = ["verify", "soudry-residual", "--report", str(out)]
    if existing:
        from theory.reports import Paragraph, Report, write_report

        write_report(Report("old", (Paragraph("old report"),)), out)
        (out / "notes.txt").write_text("my notes beside the report")
        args.append("--force")

    def snapshot():
        return {str(p.relative_to(tmp_path)): (p.read_bytes() if p.is_file() else None,
                                               p.stat().st_mtime_ns)
                for p in sorted(tmp_path.rglob("*")) if p.name != "flag"}

    before = snapshot()
    flag = tmp_path / "flag"
    proc = _start(VERIFY_RUNNER, str(flag), *args, cwd=tmp_path)
    try:
        _wait_for(flag.exists, STARTUP_TIMEOUT, proc, "the report being written")
        assert [p.name for p in tmp_path.glob(".out.tmp-*")]  # the temporary exists now
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == 143, err
    lines = _messages(err)
    assert len(lines) == 1 and "terminated (SIGTERM)" in lines[0], err
    assert "no report written" in lines[0]
    flag.unlink()
    assert snapshot() == before  # no .out.tmp-*, the old report and every user file unchanged
    _assert_no_survivors(proc.pid)


def test_a_temporary_left_by_a_killed_report_writer_is_removed_by_the_next_one(tmp_path):
    out = tmp_path / "out"
    flag = tmp_path / "flag"
    proc = _start(VERIFY_RUNNER, str(flag), "verify", "soudry-residual", "--report", str(out),
                  cwd=tmp_path)
    try:
        _wait_for(flag.exists, STARTUP_TIMEOUT, proc, "the report being written")
    finally:
        _kill_group(proc)  # SIGKILL: nothing can clean up
    flag.unlink()
    (left,) = tmp_path.glob(".out.tmp-*")
    manifest = json.loads((left / ".marginflow-manifest.json").read_text())
    assert manifest["pid"] == proc.pid and manifest["complete"] is False
    from theory.reports import Paragraph, Report, write_report

    write_report(Report("next", (Paragraph("a later run"),)), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ------------------------------------------------------------------------- item 4: Dask path

DASK_SCRIPT = '''\
import sys

from dask.distributed import Client, LocalCluster

from tests import _sweep_targets as targets
from theory.checking import interrupt_exit_code, run_sweep

if __name__ == "__main__":
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            run_sweep(targets.slow_square, {"x": [0, 1, 2]}, results=sys.argv[1],
                      client=client)
    except KeyboardInterrupt as exc:  # Terminated on SIGTERM: the `with` blocks have run
        print("stopped", file=sys.stderr)
        sys.exit(interrupt_exit_code(exc))
'''


@pytest.mark.slow  # a LocalCluster with two worker processes: ~15 s on a loaded 2-core machine
def test_sigterm_stops_a_sweep_on_a_dask_local_cluster(tmp_path):
    pytest.importorskip("dask.distributed")  # the optional [dask] extra, not our module
    script = tmp_path / "run.py"
    script.write_text(DASK_SCRIPT)
    results = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, str(script), str(results)], cwd=tmp_path,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _wait_for(lambda: _n_records(results) >= 1, STARTUP_TIMEOUT, proc, "the first point")
        assert len(_group(proc.pid)) >= 3  # the script and its two worker processes at least
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "stopped"
    assert [r["params"] for r in read_results(results)] == [{"x": 0}]
    _assert_no_survivors(proc.pid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl", "run.py"]
