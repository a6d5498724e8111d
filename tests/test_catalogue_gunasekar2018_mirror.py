import pytest

from theory.catalogue import gunasekar2018_mirror as mod

(MIRROR,) = mod.THEOREMS


def test_default_instance_passes():
    v = MIRROR.check()
    assert v.status == "passed", v.to_dict()["comparisons"]
    assert v.figures and v.to_dict()["figures"][0]["series"]


@pytest.mark.parametrize("reference", ["w0_ignored", "euclidean"])
def test_wrong_reference_fails(reference):
    # measured distances 0.5–0.75 (w0 ignored) and 0.07 (Euclidean projection) against 1e-6
    v = MIRROR.check(mod.make_instance(0, reference=reference))
    assert v.status == "failed"
    assert all(not c.passed for c in v.comparisons if "argmin" in c.name)


def test_non_interpolating_data_fails():
    v = MIRROR.check(mod.make_instance(0, interpolating=False))
    assert v.status == "failed"
    assert any("||Xw(T) − y||" in c.name and not c.passed for c in v.comparisons)


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="unknown instance parameter"):
        mod.make_instance(0, alpha=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_seeds_pass(seed):
    v = MIRROR.check(mod.make_instance(seed))
    assert v.status == "passed", v.to_dict()["comparisons"]
