import pytest
from hypothesis import given, settings

from solvers.errors import InconsistentSystemError
from theory.catalogue import woodworth2020 as mod

FLOW, SWEEP = mod.THEOREMS


@pytest.mark.parametrize("theorem", mod.THEOREMS, ids=lambda t: t.id)
def test_default_instance_passes(theorem):
    v = theorem.check()
    assert v.status == "passed", v.to_dict()["comparisons"]
    assert v.figures and v.to_dict()["figures"][0]["series"]


def test_wrong_alpha_in_the_reference_fails():
    # the flow from α against argmin Q_{10α}: measured distances 1e-2 to 0.35, far above 1e-6
    v = FLOW.check(mod.make_instance(0, reference_alpha_factor=10.0))
    assert v.status == "failed"
    failed = [c for c in v.comparisons if not c.passed]
    assert failed and all("argmin" in c.name for c in failed)


@pytest.mark.parametrize("theorem", mod.THEOREMS, ids=lambda t: t.id)
def test_wrong_potential_fails(theorem):
    # the ℓ2 interpolant is the limit only as α → ∞: the rich-regime comparisons must fail
    assert theorem.check(mod.make_instance(0, reference="l2")).status == "failed"


def test_non_interpolating_data_fails_or_is_refused():
    # n = 2d noisy rows: the flow stops at least squares (residual ≈ 0.39), no interpolant exists
    v = FLOW.check(mod.make_instance(0, interpolating=False))
    assert v.status == "failed"
    assert any("||Xβ(T) − y||" in c.name and not c.passed for c in v.comparisons)
    with pytest.raises(InconsistentSystemError):
        SWEEP.check(mod.make_instance(0, interpolating=False))


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="unknown instance parameter"):
        mod.make_instance(0, alpha=3)


@settings(max_examples=2, deadline=None)
@given(mod.strategy())
def test_random_instances_pass(instance):
    for theorem in mod.THEOREMS:
        v = theorem.check(instance)
        assert v.status == "passed", v.to_dict()["comparisons"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_seeds_pass(seed):
    for theorem in mod.THEOREMS:
        v = theorem.check(mod.make_instance(seed))
        assert v.status == "passed", v.to_dict()["comparisons"]
