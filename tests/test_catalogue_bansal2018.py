"""Tests of the Minnorm checks (theory.catalogue.bansal2018)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings

from solvers.errors import NotSeparableError
from theory.catalogue import bansal2018 as mod

SVM, CHAIN, DEEP = mod.THEOREMS


@pytest.mark.parametrize("theorem", mod.THEOREMS, ids=lambda t: t.id)
def test_default_instance_passes(theorem):
    v = theorem.check()
    assert v.status == "passed", v.to_dict()["comparisons"]
    json.dumps(v.to_dict())


def test_wrong_reference_fails_the_rate_check():
    # the ℓ1 max-margin solution is not Minnorm's limit: the error floors, the fitted rate ≈ 0
    v = SVM.check(mod.make_instance(0, reference_norm=1))
    assert v.status == "failed"
    assert abs(v.comparisons[0].measured) < 0.1


def test_non_separable_data_is_refused():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    y = np.array([1.0, 1.0, -1.0])
    with pytest.raises(NotSeparableError):
        SVM.check(mod.make_instance(0, X=X, y=y))


def test_plain_minnorm_on_a_depth3_chain_fails():
    # pinned limitation of the plain flow (penalty 0): the origin attracts it at degree >= 3
    v = CHAIN.check(mod.make_instance(0, chain_penalty=0.0))
    assert v.status == "failed"
    assert not v.comparisons[0].passed


def test_unconverged_minnorm_fails_the_init_independence_check():
    v = DEEP.check(mod.make_instance(0, deep_t=1.0))
    assert v.status == "failed"


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="unknown instance parameter"):
        mod.make_instance(0, alpha=2.0)


@settings(max_examples=3)
@given(mod.strategy())
def test_random_instances_pass(instance):
    for theorem in (SVM, DEEP):
        assert theorem.check(instance).status == "passed", theorem.id


def test_data_without_a_complementarity_gap_fail_and_the_generator_adds_it():
    # make_separable's seed 18 has a non-support point at q_i − 1 = 3e-4: its multiplier leaves
    # the support only at rate α(q_i − 1), so Minnorm is still far from (ŵ, λ*) at t_max = 400
    from solvers.datasets import make_separable, make_separable_with_slack
    from solvers.programs import solve_max_margin

    X, y = make_separable(20, 3, gap=0.3, seed=18)
    v = SVM.check(mod.make_instance(18, X=X, y=y))
    assert v.status == "failed"
    limit = [c for c in v.comparisons if c.name.startswith("Minnorm: ||(w, λ)(t_max)")][0]
    assert not limit.passed and limit.measured > 1.0
    # the family's generator moves only non-support points: same SVM, gap ≥ slack
    Xs, ys = make_separable_with_slack(20, 3, gap=0.3, slack=mod.SVM_SLACK, seed=18)
    s, s2 = solve_max_margin(X, y, norm=2), solve_max_margin(Xs, ys, norm=2)
    np.testing.assert_allclose(s2.w, s.w, rtol=1e-6, atol=1e-6)   # certificate tolerance
    q = ys * (Xs @ s2.w)
    off = s2.dual <= 1e-6 * s2.dual.max()
    assert q[off].min() >= 1 + mod.SVM_SLACK - 1e-6
    assert SVM.check(mod.make_instance(18)).status == "passed"
