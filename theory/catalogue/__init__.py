"""The theorem catalogue: one module per source paper, each exposing ``THEOREMS``.

``theory.catalogue`` is this package *and* the function that lists the theorems: importing a
paper module (``import theory.catalogue.bansal2018``) binds the package under the name
``theory.catalogue``, so the package itself is callable and ``theory.catalogue()`` returns the
same tuple as :func:`catalogue`, whichever was imported first.

>>> from theory.catalogue import catalogue
>>> [t.id for t in catalogue()][:1]  # doctest: +SKIP
['soudry-direction']
"""

from __future__ import annotations

import importlib
import sys
import types

from ..checking import Theorem

__all__ = ["catalogue", "get_theorem", "select"]

#: Source modules, in the order the catalogue lists them.
MODULES: tuple[str, ...] = (
    "soudry2018", "gunasekar2018", "lyu_li2019", "tsilivis2024", "arora2018",
    "saxe2014", "bansal2018", "banburski2019", "song2021", "gunasekar2017",
    "woodworth2020", "gunasekar2018_mirror", "azulay2021",
)


def catalogue() -> tuple[Theorem, ...]:
    """Every theorem marginflow knows, in catalogue order."""
    out: list[Theorem] = []
    for name in MODULES:
        out.extend(importlib.import_module(f"{__name__}.{name}").THEOREMS)
    ids = [t.id for t in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:  # a programming error in the catalogue itself
        raise RuntimeError(f"duplicate theorem ids in the catalogue: {sorted(dup)}")
    return tuple(out)


def get_theorem(theorem_id: str) -> Theorem:
    """The theorem with this id; ValueError listing the known ids otherwise."""
    for t in catalogue():
        if t.id == theorem_id:
            return t
    known = ", ".join(t.id for t in catalogue())
    raise ValueError(f"unknown theorem id {theorem_id!r}; known ids: {known}. "
                     f"Run `marginflow list` for the catalogue.")


def select(ids=None, *, quick: bool = False) -> tuple[Theorem, ...]:
    """Theorems by id (all when ``ids`` is empty), restricted to the quick subset if asked.

    An id may also name a source module (e.g. ``soudry2018``) to select all its theorems.
    """
    allt = catalogue()
    if ids:
        chosen = []
        for i in ids:
            if i in MODULES:
                chosen += list(importlib.import_module(f"{__name__}.{i}").THEOREMS)
            else:
                chosen.append(get_theorem(i))
    else:
        chosen = list(allt)
    if quick:
        chosen = [t for t in chosen if t.quick]
    return tuple(chosen)


class _CallableCatalogue(types.ModuleType):
    """The package's class: calling it lists the catalogue (see the module docstring)."""

    def __call__(self) -> tuple[Theorem, ...]:
        return catalogue()


sys.modules[__name__].__class__ = _CallableCatalogue
