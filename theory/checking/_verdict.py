"""Verdicts: each compared quantity pairs the theory's value with the measured one (after PEPit).

A :class:`Comparison` states *how* the assertion reads — equal within tolerance, ``≤``, ``≥``,
non-decreasing, a fitted rate within a band, or only reported (for conjectures) — and whether it
held. A :class:`Verdict` collects the comparisons of one theorem check with its figures and runtime.
Both are frozen and serialise with ``to_dict()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Comparison",
    "FigureData",
    "Series",
    "Verdict",
    "compare_close",
    "compare_le",
    "compare_ge",
    "compare_nondecreasing",
    "compare_in_band",
    "report_value",
    "jsonable",
    "RELATIONS",
]

#: How an assertion reads; the value is what the report prints between theory and measured.
RELATIONS = {
    "close": "≈",
    "le": "≤",
    "ge": "≥",
    "nondecreasing": "non-decreasing",
    "in_band": "∈",
    "reported": "(reported)",
}


def jsonable(x: Any) -> Any:
    """JSON-friendly number: floats stay floats (inf/nan as strings), arrays become lists."""
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


@dataclass(frozen=True)
class Comparison:
    """One quantity compared between theory and measurement.

    Attributes
    ----------
    name : str
        What is compared, e.g. ``"angle to the ℓ2 SVM at t = 1e100"``.
    theory : float or str
        The theory's value (a number, or a short text such as ``"0 (exact)"``).
    measured : float
        The measured value.
    relation : str
        One of ``close``, ``le``, ``ge``, ``nondecreasing``, ``in_band``, ``reported``.
    tolerance : str
        The tolerance, stated (e.g. ``"rtol=1e-6, atol=1e-9"``).
    passed : bool
        Whether the assertion held (always True for ``reported``).
    note : str
        Why this tolerance, or what the number means.
    """

    name: str
    theory: Any
    measured: Any
    relation: str
    tolerance: str
    passed: bool
    note: str = ""

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise ValueError(
                f"relation must be one of {sorted(RELATIONS)}; got {self.relation!r}."
            )

    @property
    def reads(self) -> str:
        """The assertion as text, e.g. ``measured ≤ theory``."""
        return f"measured {RELATIONS[self.relation]} theory"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "theory": jsonable(self.theory),
            "measured": jsonable(self.measured),
            "relation": self.relation,
            "reads": self.reads,
            "tolerance": self.tolerance,
            "passed": bool(self.passed),
            "note": self.note,
        }


def compare_close(name: str, theory: float, measured: float, *, rtol: float, atol: float,
                  note: str = "") -> Comparison:
    """``|measured - theory| <= atol + rtol * |theory|`` (both tolerances always given)."""
    err = abs(float(measured) - float(theory))
    ok = bool(np.isfinite(measured) and err <= atol + rtol * abs(float(theory)))
    return Comparison(name, float(theory), float(measured), "close",
                      f"rtol={rtol:g}, atol={atol:g}", ok, note)


def compare_le(name: str, measured: float, bound: float, *, atol: float = 0.0,
               note: str = "") -> Comparison:
    """``measured <= bound + atol`` (an inequality or an upper bound from the theory)."""
    ok = bool(np.isfinite(measured) and float(measured) <= float(bound) + atol)
    return Comparison(name, float(bound), float(measured), "le", f"atol={atol:g}", ok, note)


def compare_ge(name: str, measured: float, bound: float, *, atol: float = 0.0,
               note: str = "") -> Comparison:
    """``measured >= bound - atol``."""
    ok = bool(np.isfinite(measured) and float(measured) >= float(bound) - atol)
    return Comparison(name, float(bound), float(measured), "ge", f"atol={atol:g}", ok, note)


def compare_nondecreasing(name: str, series, *, atol: float, rtol: float = 0.0,
                          note: str = "") -> Comparison:
    """Every step of ``series`` satisfies ``s[k+1] >= s[k] - (atol + rtol |s[k]|)``.

    ``measured`` is the most negative normalised step (0 when the series never decreases).
    """
    s = np.asarray(series, dtype=np.float64)
    if s.size < 2:
        raise ValueError(f"series for {name!r} needs at least 2 points; got {s.size}.")
    steps = np.diff(s)
    slack = atol + rtol * np.abs(s[:-1])
    worst = float(np.min(steps))
    ok = bool(np.all(np.isfinite(s)) and np.all(steps >= -slack))
    return Comparison(name, "non-decreasing", worst, "nondecreasing",
                      f"rtol={rtol:g}, atol={atol:g} per step", ok, note)


def compare_in_band(name: str, measured: float, low: float, high: float, *, theory: float,
                    note: str = "") -> Comparison:
    """``low <= measured <= high`` (a fitted rate or exponent within a declared band)."""
    ok = bool(np.isfinite(measured) and low <= float(measured) <= high)
    return Comparison(name, float(theory), float(measured), "in_band",
                      f"band [{low:g}, {high:g}]", ok, note)


def report_value(name: str, measured: float, *, theory: Any = "conjectured",
                 note: str = "") -> Comparison:
    """A measured value reported without an assertion (for conjectures): never fails."""
    return Comparison(name, theory, float(measured), "reported", "—", True, note)


@dataclass(frozen=True)
class Series:
    """One plotted line: ``x`` and ``y`` of equal length, with a label."""

    x: tuple
    y: tuple
    label: str
    style: str = "-"

    @classmethod
    def of(cls, x, y, label: str, style: str = "-") -> Series:
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise ValueError(f"Series {label!r}: x has {x.size} points but y has {y.size}.")
        return cls(tuple(x.tolist()), tuple(y.tolist()), label, style)

    def to_dict(self) -> dict:
        return {"x": jsonable(list(self.x)), "y": jsonable(list(self.y)), "label": self.label,
                "style": self.style}


@dataclass(frozen=True)
class FigureData:
    """A figure as data (drawn by :mod:`theory.report`, so verdicts stay serialisable).

    Attributes
    ----------
    name : str
        File stem, e.g. ``"soudry_direction_error"``.
    caption : str
    series : tuple of Series
    xlabel, ylabel : str
    xscale, yscale : {'linear', 'log', 'symlog'}
    """

    name: str
    caption: str
    series: tuple
    xlabel: str = ""
    ylabel: str = ""
    xscale: str = "linear"
    yscale: str = "linear"

    def to_dict(self) -> dict:
        return {"name": self.name, "caption": self.caption, "xlabel": self.xlabel,
                "ylabel": self.ylabel, "xscale": self.xscale, "yscale": self.yscale,
                "series": [s.to_dict() for s in self.series]}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one theorem check.

    Attributes
    ----------
    theorem_id : str
    title : str
    comparisons : tuple of Comparison
    figures : tuple of FigureData
    runtime : float
        Wall-clock seconds of the check.
    instance : dict
        A JSON-friendly summary of the instance checked (sizes, seed, hyper-parameters).
    kind : str
        The claim kind of the theorem (``limit``, ``rate``, ``conjecture``, …).
    error : str
        Non-empty when the check could not be carried out (then ``passed`` is False).
    """

    theorem_id: str
    title: str
    comparisons: tuple
    figures: tuple = ()
    runtime: float = 0.0
    instance: dict = field(default_factory=dict)
    kind: str = ""
    error: str = ""

    @property
    def passed(self) -> bool:
        """True when the check ran and every asserted comparison held."""
        return not self.error and bool(self.comparisons) and all(
            c.passed for c in self.comparisons)

    @property
    def status(self) -> str:
        """``passed``, ``failed``, ``reported`` or ``error``.

        ``reported``: nothing but reported values, or a conjecture whose asserted side conditions
        (the hypotheses it is stated under) all hold — a conjecture is never "passed".
        """
        if self.error:
            return "error"
        if self.comparisons and all(c.relation == "reported" for c in self.comparisons):
            return "reported"
        if self.kind == "conjecture" and self.passed:
            return "reported"
        return "passed" if self.passed else "failed"

    def with_runtime(self, runtime: float) -> Verdict:
        from dataclasses import replace

        return replace(self, runtime=float(runtime))

    def to_dict(self) -> dict:
        return {
            "theorem_id": self.theorem_id,
            "title": self.title,
            "kind": self.kind,
            "status": self.status,
            "passed": self.passed,
            "runtime": float(self.runtime),
            "instance": {k: jsonable(v) for k, v in self.instance.items()},
            "comparisons": [c.to_dict() for c in self.comparisons],
            "figures": [f.to_dict() for f in self.figures],
            "error": self.error,
        }
