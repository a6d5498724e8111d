"""Theorems as objects: statement, source, hypotheses, claim kind, default instance, random
instances, and a ``check`` that returns a :class:`~theory.verdict.Verdict`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._verdict import Verdict

__all__ = ["Source", "Theorem", "CLAIM_KINDS"]

log = logging.getLogger(__name__)

#: What kind of claim a theorem makes; it decides how its comparisons read.
CLAIM_KINDS = {
    "identity": "exact identity (equal within numerical tolerance)",
    "limit": "limit (the measured gap shrinks towards the theory's value)",
    "monotonicity": "monotonicity (non-decreasing along the dynamics)",
    "rate": "rate (a fitted rate within a declared band)",
    "bound": "inequality or bound (measured ≤ or ≥ the theory's value)",
    "scaling": "scaling law (a fitted exponent, with a confidence interval)",
    "conjecture": "conjecture (the measured gap is reported, never forced to pass)",
}


@dataclass(frozen=True)
class Source:
    """Where a theorem comes from, down to the theorem number."""

    authors: str
    year: int
    title: str
    arxiv: str = ""
    where: str = ""

    def cite(self) -> str:
        arx = f", arXiv:{self.arxiv}" if self.arxiv else ""
        where = f", {self.where}" if self.where else ""
        return f"{self.authors} ({self.year}), {self.title}{arx}{where}"

    def short(self) -> str:
        """``Soudry et al. 2018, arXiv:1710.10345`` — for tables."""
        names = [a.strip() for a in self.authors.replace(" & ", ", ").split(",") if a.strip()]
        last = names[0].split()[-1] if names else "?"
        who = last if len(names) == 1 else (f"{last} & {names[1].split()[-1]}" if len(names) == 2
                                            else f"{last} et al.")
        return f"{who} {self.year}" + (f", arXiv:{self.arxiv}" if self.arxiv else "")

    def to_dict(self) -> dict:
        return {"authors": self.authors, "year": self.year, "title": self.title,
                "arxiv": self.arxiv, "where": self.where, "cite": self.cite()}


@dataclass(frozen=True)
class Theorem:
    """A checkable theorem.

    Attributes
    ----------
    id : str
        Short identifier used on the command line (e.g. ``soudry-direction``).
    title : str
    source : Source
    statement : str
        The claim in LaTeX (inline math with ``$…$``).
    hypotheses : tuple of str
    kind : str
        A key of :data:`CLAIM_KINDS`.
    make_instance : callable ``(seed: int, **overrides) -> dict``
        Builds the built-in default instance (deterministic in ``seed``).
    check_instance : callable ``(instance: dict) -> Verdict``
        The check; it may be given a deliberately broken instance and must then fail.
    strategy : callable ``() -> hypothesis strategy`` of instances, or None
        Random (small, bounded) instances for property tests. Imported lazily: hypothesis is a test
        dependency only.
    quick : bool
        Part of ``marginflow verify --quick``.
    """

    id: str
    title: str
    source: Source
    statement: str
    hypotheses: tuple
    kind: str
    make_instance: Callable[..., dict]
    check_instance: Callable[[dict], Verdict]
    strategy: Callable[[], Any] | None = None
    quick: bool = True
    tags: tuple = field(default_factory=tuple)

    def __post_init__(self):
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"kind must be one of {sorted(CLAIM_KINDS)}; got {self.kind!r}.")

    def default_instance(self, seed: int = 0) -> dict:
        """The built-in instance for ``seed``."""
        return self.make_instance(seed)

    def check(self, instance: dict | None = None, *, seed: int = 0) -> Verdict:
        """Run the check on ``instance`` (the default instance for ``seed`` when omitted).

        The returned verdict carries the wall-clock runtime. Errors the check raises propagate:
        a check that cannot be carried out is not a pass.
        """
        if instance is None:
            instance = self.default_instance(seed)
        start = time.perf_counter()
        verdict = self.check_instance(instance)
        runtime = time.perf_counter() - start
        log.info("%s: %s in %.2f s", self.id, verdict.status, runtime)
        return verdict.with_runtime(runtime)

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "source": self.source.to_dict(),
                "statement": self.statement, "hypotheses": list(self.hypotheses),
                "kind": self.kind, "kind_text": CLAIM_KINDS[self.kind], "quick": self.quick}
