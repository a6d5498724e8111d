import functools
import json

import pytest

from tests import _sweep_targets as targets
from theory.checking import grid_points, point_key, read_results, run_sweep


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
    # a torn line, as if the process died mid-write, is ignored
    with out.open("a") as fh:
        fh.write('{"key": "torn')
    fn = functools.partial(targets.logged_square, log_path=str(log), fail_at=None)
    with pytest.warns(UserWarning, match="torn record"):
        res = run_sweep(fn, grid, seeds=[0], results=out)
    calls = [json.loads(line)["x"] for line in log.read_text().splitlines()]
    assert calls == [1, 2, 3, 4]  # 1 and 2 were not computed again
    assert res.n_skipped == 2 and res.n_computed == 2 and res.status == "complete"
    assert [r["result"]["value"] for r in res.records] == [1.0, 4.0, 9.0, 16.0]


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


def test_a_file_that_is_not_a_sweep_is_refused(tmp_path):
    bad = tmp_path / "notes.jsonl"
    bad.write_text("my notes\n")
    with pytest.raises(ValueError, match="not a sweep record"):
        read_results(bad)
    bad.write_text('{"a": 1}\n')
    with pytest.raises(ValueError, match="no 'key'"):
        read_results(bad)
