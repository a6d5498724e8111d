import numpy as np
import pytest
from hypothesis import given, settings

from solvers.errors import NotSeparableError
from theory.catalogue import gunasekar2018 as mod

STEEPEST, LEAST_SQUARES = mod.THEOREMS


@pytest.mark.parametrize("theorem", mod.THEOREMS, ids=lambda t: t.id)
def test_default_instance_passes(theorem):
    v = theorem.check()
    assert v.status == "passed", v.to_dict()["comparisons"]
    assert v.figures and v.to_dict()["figures"][0]["series"]


def test_sign_descent_is_not_the_l2_svm():
    # sign descent maximises the ℓ∞ margin: measured in ℓ2 it stays well below the ℓ2 SVM's
    # margin (relative gap ≈ 0.23 on the default data), so the final-gap assertion must fail
    v = STEEPEST.check(mod.make_instance(0, methods=("sign",), reference_norms={"sign": 2}))
    assert v.status == "failed"
    gap = [c for c in v.comparisons if c.name.startswith("sign (ℓ2): (γ*")][0]
    assert not gap.passed and gap.measured > 0.1


def test_too_short_horizon_fails_the_final_gap():
    # after 30 steps the margin is far from γ* (relative gap ≈ 0.2): the limit is not reached
    v = STEEPEST.check(mod.make_instance(0, methods=("sign",), horizons=(10, 30)))
    assert v.status == "failed"


def test_least_squares_limit_ignoring_w0_fails():
    # X⁺y is the limit only from w₀ = 0; from w₀ ~ N(0, I) it misses by the null-space part of w₀
    v = LEAST_SQUARES.check(mod.make_instance(0, reference="min_norm"))
    assert v.status == "failed"
    assert LEAST_SQUARES.check(mod.make_instance(0, reference="min_norm",
                                                 w0_scale=0.0)).status == "passed"


def test_face_diameter_detects_a_non_unique_maximiser():
    # two points (1, 0) and (1, 1), both labelled +1. ℓ∞, radius 1: w = (1, s) needs w_1 ≥ 1
    # (so w_1 = 1) and 1 + s ≥ 1, |s| ≤ 1, i.e. s ∈ [0, 1]: the optimal face has diameter 1.
    X = np.array([[1.0, 0.0], [1.0, 1.0]])
    y = np.array([1.0, 1.0])
    assert mod._face_diameter(X, y, np.inf, 1.0) == pytest.approx(1.0, abs=1e-9)
    # in ℓ1 the face {||w||_1 ≤ 1, w_1 ≥ 1, w_1 + w_2 ≥ 1} is the single point (1, 0)
    assert mod._face_diameter(X, y, 1.0, 1.0) == pytest.approx(0.0, abs=1e-9)


def test_non_separable_data_is_refused():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    y = np.array([1.0, 1.0, -1.0])
    with pytest.raises(NotSeparableError):
        STEEPEST.check(mod.make_instance(0, X=X, y=y))


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="unknown instance parameter"):
        mod.make_instance(0, steps=3)


@settings(max_examples=3)
@given(mod.strategy())
def test_random_instances_pass(instance):
    for theorem in mod.THEOREMS:
        v = theorem.check(instance)
        assert v.status == "passed", v.to_dict()["comparisons"]


def test_a_step_above_the_theorems_condition_stalls_and_fails():
    # seed 8: lr = 0.1 > 1/B² = 0.024 (B = max ||x_i||_1) violates Gunasekar et al.'s step
    # condition; sign descent then stalls at a relative gap ≈ 0.03 that grows over the last decade
    v = STEEPEST.check(mod.make_instance(8, methods=("sign",), lr=0.1))
    assert v.status == "failed"
    slope = [c for c in v.comparisons if "log-log slope" in c.name][0]
    assert not slope.passed and slope.measured > 0
    assert STEEPEST.check(mod.make_instance(8, methods=("sign",))).status == "passed"
