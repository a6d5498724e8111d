"""Tests of the Song et al. 2021 width-scaling check (theory.catalogue.song2021)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings

from solvers.nets import WidthSearch, train_shallow_batch
from theory.catalogue import song2021
from theory.checking import run_sweep

THEOREM = song2021.THEOREMS[0]
#: Bootstrap replicates for the synthetic-fit tests (percentiles of a few hundred draws).
N_BOOT = 400


def _search(n, m_star, *, S=8, lower_factor=0.8):
    """A synthetic search: every seed fails at ``lower`` and succeeds at ``m_star`` and above."""
    lower = max(1, int(np.floor(lower_factor * m_star)))
    widths = np.array(sorted({lower, m_star, 2 * m_star}), dtype=np.int64)
    succ = np.array([[w >= m_star] * S for w in widths], dtype=bool)
    z = np.zeros_like(succ)
    return WidthSearch(n=n, m_star=m_star, lower=lower, success_rate=0.75, widths=widths,
                       successes=succ, budget_bound=z, diverged=z,
                       steps=np.zeros(succ.shape, dtype=np.int64), budget_binding=False,
                       status="found")


def test_default_instance_passes():
    verdict = THEOREM.check(seed=0)
    assert verdict.status == "passed", [c.to_dict() for c in verdict.comparisons
                                        if not c.passed]
    names = [c.name for c in verdict.comparisons]
    assert any("upper end" in n for n in names)
    assert any("||∇𝓛||²/(2𝓛)" in n for n in names)
    assert {f.name for f in verdict.figures} == {"song_minimal_width", "song_pl_constant"}
    m_star = verdict.instance["m_star"]
    assert all(m > 0 for m in m_star)
    json.dumps(verdict.to_dict())


@pytest.mark.parametrize("broken", [{"max_steps": 1}, {"safety": 0.01}])
def test_a_broken_protocol_fails_the_check(broken):
    """Nothing can succeed in one step, or with a step 100 times too large (every run diverges):
    no width is found, so the check must fail (not pass)."""
    inst = song2021.make_instance(0, n_grid=(16, 32), n_seeds=2, max_width_factor=2.0,
                                  **broken)
    verdict = THEOREM.check(inst)
    assert verdict.status == "failed"
    failed = [c.name for c in verdict.comparisons if not c.passed]
    assert "n values whose minimal width was found" in failed
    assert any("upper end" in n for n in failed)


@pytest.mark.parametrize("alpha", [1.0, 1.5])
def test_fit_recovers_a_planted_exponent(alpha):
    """m* = round(4 n^α) exactly: the least-squares slope is α up to the rounding of m*
    (|Δ log m*| ≤ 0.5/m* ≤ 0.02 here, so |Δα| ≤ 0.02 / (spread of log n) < 0.02)."""
    ns = [16, 32, 64, 128]
    searches = [_search(n, int(round(4 * n ** alpha))) for n in ns]
    fit = song2021.fit_width_exponent(ns, searches, success_rate=0.75, n_boot=N_BOOT)
    assert fit["alpha"] == pytest.approx(alpha, abs=0.02)
    # the interval comes only from the width resolution (m* known within (0.8 m*, m*])
    assert fit["ci_low"] <= alpha + 0.02 and fit["ci_high"] >= alpha - 0.15
    assert fit["ci_high"] - fit["ci_low"] < 0.5


def test_a_quadratic_protocol_would_fail_the_claim():
    """If m* grew like n², the interval's upper end would reach 2: the claim is falsifiable."""
    ns = [8, 16, 32, 64]
    searches = [_search(n, n * n // 4) for n in ns]
    fit = song2021.fit_width_exponent(ns, searches, success_rate=0.75, n_boot=N_BOOT)
    assert fit["alpha"] == pytest.approx(2.0, abs=0.01)   # exact powers of two: slope exactly 2
    assert fit["ci_high"] >= song2021.QUADRATIC


def test_width_trial_matches_the_batched_runs_of_the_check():
    n, d, width, seeds = 16, 10, 8, [0, 1, 2]
    trials = [song2021.width_trial(n=n, width=width, d=d, seed=s, max_steps=800) for s in seeds]
    Xs, ys = song2021._batch(n, d, seeds)
    runs = train_shallow_batch(Xs, ys, width, seeds=seeds, max_steps=800)
    for t, r in zip(trials, runs, strict=True):
        assert (t["success"], t["steps"], t["status"]) == (r.success, r.steps, r.status)
        assert t["final_loss"] == pytest.approx(r.final_loss, rel=1e-10)
    json.dumps(trials)


def test_width_trial_runs_in_a_sweep(tmp_path):
    res = run_sweep(song2021.width_trial, {"n": [12], "width": [4, 8], "d": [10],
                                           "max_steps": [300]},
                    seeds=[0, 1], results=tmp_path / "song.jsonl")
    assert res.status == "complete" and len(res.records) == 4
    again = run_sweep(song2021.width_trial, {"n": [12], "width": [4, 8], "d": [10],
                                             "max_steps": [300]},
                      seeds=[0, 1], results=tmp_path / "song.jsonl")
    assert again.n_computed == 0 and again.n_skipped == 4


def test_sphere_data():
    X, y = song2021.sphere_memorisation_data(20, 5, 3)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-12)
    assert set(np.unique(y)) <= {-1.0, 1.0}
    X2, _ = song2021.sphere_memorisation_data(20, 5, 3)
    assert np.array_equal(X, X2)


@pytest.mark.parametrize(("overrides", "match"), [
    ({"n_grid": (16,)}, "n_grid must list at least two"),
    ({"n_seeds": 0}, "n_seeds must be a positive integer"),
    ({"success_rate": 1.5}, "success_rate must be in"),
    ({"widths": 3}, "unknown instance parameter"),
])
def test_bad_instances(overrides, match):
    with pytest.raises(ValueError, match=match):
        song2021.make_instance(0, **overrides)


def test_theorem_metadata():
    assert THEOREM.id == "song-width" and THEOREM.kind == "scaling" and not THEOREM.quick
    assert "2111.01875" in THEOREM.source.cite()


@settings(max_examples=3)
@given(song2021.strategy())
def test_random_small_instances_keep_the_pl_inequality(inst):
    verdict = THEOREM.check(inst)
    pl = [c for c in verdict.comparisons if "||∇𝓛||²/(2𝓛)" in c.name]
    assert all(c.passed for c in pl)
    json.dumps(verdict.to_dict())
