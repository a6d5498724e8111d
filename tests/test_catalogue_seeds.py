"""Every catalogue check on every seed 0–19 of its documented instance family (issue 13.6).

A theorem check must hold on each seed of its family, not only on the default seed 0. Slow: run
one theorem at a time, e.g. ``python -m pytest -m slow tests/test_catalogue_seeds.py -k soudry``.
"""

import pytest

from theory.catalogue import catalogue

SEEDS = range(20)
CASES = [pytest.param(t, s, id=f"{t.id}-seed{s}") for t in catalogue() for s in SEEDS]


@pytest.mark.slow
@pytest.mark.parametrize(("theorem", "seed"), CASES)
def test_every_check_holds_on_seeds_0_to_19(theorem, seed):
    v = theorem.check(seed=seed)
    expected = "reported" if theorem.kind == "conjecture" else "passed"
    failed = [c.to_dict() for c in v.comparisons if not c.passed]
    assert v.status == expected, (v.error, failed)
