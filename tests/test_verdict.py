import json

import numpy as np
import pytest

from theory.checking import (
    FigureData,
    Series,
    Verdict,
    compare_close,
    compare_ge,
    compare_in_band,
    compare_le,
    compare_nondecreasing,
    report_value,
)


def test_close_uses_both_tolerances():
    assert compare_close("a", 1.0, 1.0 + 1e-7, rtol=1e-6, atol=0.0).passed
    assert not compare_close("a", 1.0, 1.0 + 1e-5, rtol=1e-6, atol=0.0).passed
    assert compare_close("a", 0.0, 1e-10, rtol=1e-6, atol=1e-9).passed
    assert not compare_close("a", 0.0, np.nan, rtol=1, atol=1).passed


def test_inequalities_and_bands():
    assert compare_le("x", 1.0, 2.0).passed and not compare_le("x", 3.0, 2.0).passed
    assert compare_ge("x", 3.0, 2.0).passed and not compare_ge("x", 1.0, 2.0).passed
    assert compare_in_band("r", -1.0, -1.2, -0.8, theory=-1.0).passed
    assert not compare_in_band("r", -0.5, -1.2, -0.8, theory=-1.0).passed


def test_nondecreasing_reports_the_worst_step():
    c = compare_nondecreasing("s", [0.0, 1.0, 0.9, 2.0], atol=0.01)
    assert not c.passed and c.measured == pytest.approx(-0.1)
    assert compare_nondecreasing("s", [0.0, 1.0, 0.995, 2.0], atol=0.01).passed


def test_verdict_status_and_json_roundtrip():
    good = compare_close("a", 1.0, 1.0, rtol=1e-9, atol=0.0)
    bad = compare_le("b", 3.0, 2.0)
    fig = FigureData("f", "cap", (Series.of([1, 2], [3, np.inf], "s"),), yscale="log")
    v = Verdict("t", "title", (good, bad), (fig,), 0.5, {"n": np.int64(3)}, "limit")
    assert v.status == "failed" and not v.passed
    d = json.loads(json.dumps(v.to_dict()))
    assert d["comparisons"][1]["passed"] is False and d["instance"]["n"] == 3
    assert d["figures"][0]["series"][0]["y"] == [3.0, "inf"]
    assert Verdict("t", "c", (report_value("gap", 0.3),)).status == "reported"
    assert Verdict("t", "c", ()).status == "failed"  # nothing compared is not a pass
    assert Verdict("t", "c", (good,), error="boom").status == "error"


def test_unknown_relation_is_refused():
    from theory.checking import Comparison

    with pytest.raises(ValueError, match="relation must be one of"):
        Comparison("x", 1.0, 1.0, "approx", "", True)


def test_a_conjecture_is_reported_never_passed():
    ok = compare_le("side condition", 0.0, 1.0)
    assert Verdict("c", "t", (ok,), kind="conjecture").status == "reported"
    bad = compare_le("side condition", 2.0, 1.0)
    assert Verdict("c", "t", (bad,), kind="conjecture").status == "failed"
