import functools
import json
import os
import warnings
from pathlib import Path

import pytest

from tests import _sweep_targets as targets
from theory.checking import (
    RESULTS_HEADER,
    ResultsFileLockedError,
    grid_points,
    point_key,
    read_results,
    run_sweep,
)


def test_grid_is_the_cartesian_product_in_order():
    pts = grid_points({"a": [1, 2], "b": ["u"]}, [0, 1])
    assert pts == [({"a": 1, "b": "u"}, 0), ({"a": 1, "b": "u"}, 1),
                   ({"a": 2, "b": "u"}, 0), ({"a": 2, "b": "u"}, 1)]


@pytest.mark.parametrize("grid", [{"a": []}, {"a": "abc"}, {"a": 3}])
def test_bad_grid_is_named(grid):
    with pytest.raises(ValueError, match=r"grid\['a'\]"):
        grid_points(grid, [0])


def test_results_match_direct_evaluation(tmp_path):
    res = run_sweep(targets.noisy_square, {"x": [0, 1, 2]}, seeds=[0, 1],
                    results=tmp_path / "r.jsonl")
    assert res.status == "complete" and res.n_computed == 6 and len(res.records) == 6
    for rec in res.records:
        direct = targets.noisy_square(x=rec["params"]["x"], seed=rec["seed"])
        assert rec["result"] == direct


def test_interrupted_sweep_resumes_without_recomputing(tmp_path):
    log = tmp_path / "calls.log"
    out = tmp_path / "r.jsonl"
    grid = {"x": [1, 2, 3, 4]}
    fn = functools.partial(targets.logged_square, log_path=str(log), fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(fn, grid, seeds=[0], results=out)
    assert [r["params"]["x"] for r in read_results(out)] == [1, 2]
    # a torn line, as if the process was killed mid-write, is cut off once by the next run
    intact = out.read_bytes()
    with out.open("a") as fh:
        fh.write('{"key": "torn')
    fn = functools.partial(targets.logged_square, log_path=str(log), fail_at=None)
    with pytest.warns(UserWarning, match="cut off a torn last record"):
        res = run_sweep(fn, grid, seeds=[0], results=out)
    calls = [json.loads(line)["x"] for line in log.read_text().splitlines()]
    assert calls == [1, 2, 3, 4]  # 1 and 2 were not computed again
    assert res.n_skipped == 2 and res.n_computed == 2 and res.status == "complete"
    assert [r["result"]["value"] for r in res.records] == [1.0, 4.0, 9.0, 16.0]
    assert out.read_bytes().startswith(intact) and b"torn" not in out.read_bytes()
    # repaired once: later runs and reads see a clean file and say nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = run_sweep(fn, grid, seeds=[0], results=out)
        assert len(read_results(out)) == 4
    assert again.n_computed == 0 and again.n_skipped == 4


def test_joblib_processes_give_the_same_results(tmp_path):
    a = run_sweep(targets.noisy_square, {"x": [0, 1, 2]}, seeds=[3, 4],
                  results=tmp_path / "a.jsonl")
    b = run_sweep(targets.noisy_square, {"x": [0, 1, 2]}, seeds=[3, 4],
                  results=tmp_path / "b.jsonl", n_jobs=2)
    assert [r["result"] for r in a.records] == [r["result"] for r in b.records]


def test_dask_local_cluster_gives_the_same_results(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    local = run_sweep(targets.noisy_square, {"x": [0, 1, 2]}, seeds=[5, 6],
                      results=tmp_path / "local.jsonl")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dask = run_sweep(targets.noisy_square, {"x": [0, 1, 2]}, seeds=[5, 6],
                         results=tmp_path / "dask.jsonl", client=client)
    assert [r["key"] for r in dask.records] == [r["key"] for r in local.records]
    assert [r["result"] for r in dask.records] == [r["result"] for r in local.records]


def test_point_key_is_order_independent():
    assert point_key({"a": 1, "b": 2}, 0) == point_key({"b": 2, "a": 1}, 0)


def _snapshot(path):
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_size


@pytest.mark.parametrize("content", [
    b"my notes",                      # a text file without a final newline
    b"my notes\n",
    b'{"a": 1',                       # looks like a torn record, but nothing identifies the file
    b'{"a": 1}\n',                    # JSON, not a sweep record
    b'{"key": "k", "params": {}, "seed": 0, "result": {}}\n',  # key does not match the point
    b"\x89PNG\r\n\x1a\n\x00\x00",        # binary
], ids=["text", "text-newline", "torn-looking", "json", "bad-key", "binary"])
def test_run_sweep_refuses_a_file_it_did_not_write_before_writing_a_byte(tmp_path, content):
    user = tmp_path / "notes.jsonl"
    user.write_bytes(content)
    before = _snapshot(user)
    with pytest.raises(ValueError, match="not a marginflow sweep results file|not a sweep record"):
        run_sweep(targets.noisy_square, {"x": [0]}, seeds=[0], results=user)
    assert _snapshot(user) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.jsonl"]  # nothing beside it


def test_read_results_refuses_a_file_that_is_not_a_sweep(tmp_path):
    bad = tmp_path / "notes.jsonl"
    bad.write_text("my notes\n")
    with pytest.raises(ValueError, match="not a marginflow sweep results file"):
        read_results(bad)
    bad.write_text('{"format": "marginflow-sweep-results", "version": 1}\n{"a": 1}\n')
    with pytest.raises(ValueError, match=":2 is JSON but not a sweep record"):
        read_results(bad)


def test_a_read_only_results_file_is_refused_before_any_point_runs(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    run_sweep(targets.noisy_square, {"x": [0]}, seeds=[0], results=out)
    real_open = os.open

    def read_only(path, flags, *args):  # what a 0444 file gives a non-root user
        if Path(path) == out and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    log = tmp_path / "calls.log"
    fn = functools.partial(targets.logged_square, log_path=str(log))
    with pytest.raises(ValueError, match="cannot open results file .*Permission denied; pass a "
                                         "writable path"):
        run_sweep(fn, {"x": [1]}, seeds=[0], results=out)
    assert not log.exists()  # refused before any point ran


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is a directory; pass a file path"):
        run_sweep(targets.noisy_square, {"x": [0]}, seeds=[0], results=tmp_path)


def test_a_new_file_starts_with_the_header_and_an_empty_file_is_adopted(tmp_path):
    out = tmp_path / "r.jsonl"
    run_sweep(targets.noisy_square, {"x": [0]}, seeds=[0], results=out)
    assert json.loads(out.read_text().splitlines()[0]) == RESULTS_HEADER
    empty = tmp_path / "empty.jsonl"
    empty.touch()  # e.g. made by mktemp: nothing in it to lose
    res = run_sweep(targets.noisy_square, {"x": [0]}, seeds=[0], results=empty)
    assert res.n_computed == 1 and empty.read_text().splitlines()[0] == out.read_text(
    ).splitlines()[0]


def test_a_file_from_before_the_header_is_resumed(tmp_path):
    # what run_sweep wrote before results files had a header: records only
    legacy = tmp_path / "old.jsonl"
    rec = {"key": point_key({"x": 1}, 0), "params": {"x": 1}, "seed": 0,
           "result": {"value": -7.0}, "runtime": 0.1}
    legacy.write_text(json.dumps(rec, sort_keys=True) + "\n")
    res = run_sweep(targets.noisy_square, {"x": [1, 2]}, seeds=[0], results=legacy)
    assert res.n_skipped == 1 and res.n_computed == 1
    assert res.records[0]["result"] == {"value": -7.0}  # the stored point, not recomputed


def test_a_whole_record_missing_only_its_newline_is_kept(tmp_path):
    out = tmp_path / "r.jsonl"
    run_sweep(targets.noisy_square, {"x": [0, 1]}, seeds=[0], results=out)
    out.write_bytes(out.read_bytes()[:-1])  # killed between the record and its newline
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = run_sweep(targets.noisy_square, {"x": [0, 1]}, seeds=[0], results=out)
    assert res.n_computed == 0 and res.n_skipped == 2
    assert out.read_bytes().endswith(b"}\n")


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    fcntl = pytest.importorskip("fcntl")  # POSIX only
    out = tmp_path / "r.jsonl"
    run_sweep(targets.noisy_square, {"x": [0]}, seeds=[0], results=out)
    before = _snapshot(out)
    fd = os.open(out, os.O_RDONLY)  # another sweep: a separate open file holding the lock
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(ResultsFileLockedError, match="in use by another sweep"):
            run_sweep(targets.noisy_square, {"x": [0, 1]}, seeds=[0], results=out)
        assert _snapshot(out) == before
    finally:
        os.close(fd)
    # the lock goes with the file descriptor: now the sweep runs
    assert run_sweep(targets.noisy_square, {"x": [0, 1]}, seeds=[0], results=out).n_computed == 1
