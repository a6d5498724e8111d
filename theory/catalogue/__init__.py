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
import warnings

from ..checking import Theorem

__all__ = ["catalogue", "get_theorem", "select", "load_plugin", "theorem_origin",
           "plugin_errors", "PluginWarning", "ENTRY_POINT_GROUP"]

#: Source modules, in the order the catalogue lists them.
MODULES: tuple[str, ...] = (
    "soudry2018", "gunasekar2018", "lyu_li2019", "tsilivis2024", "arora2018",
    "saxe2014", "bansal2018", "banburski2019", "song2021", "gunasekar2017",
    "marcotte2023",
    "woodworth2020", "gunasekar2018_mirror", "azulay2021",
)


#: Entry-point group through which an installed package adds theorems (``pyproject.toml``:
#: ``[project.entry-points."marginflow.theorems"] mine = "mypkg.theorems"``); the value names a
#: module with ``THEOREMS``, or a sequence of theorems, or a callable returning one.
ENTRY_POINT_GROUP = "marginflow.theorems"


class PluginWarning(UserWarning):
    """A plug-in theorem module could not be loaded (the built-in catalogue still runs)."""


_PLUGINS: dict[str, tuple[Theorem, ...]] = {}   # origin -> theorems, loaded by load_plugin
_ENTRY_POINTS: list | None = None                # [(origin, theorems)], loaded once
_ERRORS: list[str] = []                          # one line per plugin that failed to load


def _theorems_of(obj, origin: str) -> tuple[Theorem, ...]:
    if isinstance(obj, types.ModuleType):
        if not hasattr(obj, "THEOREMS"):
            raise TypeError(f"{origin}: module has no THEOREMS (a tuple of theory.Theorem).")
        obj = obj.THEOREMS
    elif callable(obj) and not isinstance(obj, Theorem):
        obj = obj()
    if isinstance(obj, Theorem):
        obj = (obj,)
    theorems = tuple(obj)
    bad = [t for t in theorems if not isinstance(t, Theorem)]
    if bad:
        raise TypeError(f"{origin}: THEOREMS must hold theory.Theorem objects; got "
                        f"{type(bad[0]).__name__}.")
    return theorems


def _record_error(line: str) -> None:
    if line not in _ERRORS:
        _ERRORS.append(line)
        warnings.warn(line, PluginWarning, stacklevel=3)


def plugin_errors() -> tuple[str, ...]:
    """One line per plug-in that failed to load (module and exception), in load order."""
    return tuple(_ERRORS)


def _entry_point_sources() -> list:
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        found = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(getattr(ep, "dist", None), "name", None)
            origin = f"entry point {ep.name} = {ep.value}" + (f" ({dist})" if dist else "")
            try:
                found.append((origin, _theorems_of(ep.load(), origin)))
            except Exception as exc:  # noqa: BLE001 -- one line; the built-ins still run
                _record_error(f"plugin {ep.value!r} ({origin}) failed to load: "
                              f"{type(exc).__name__}: {exc}")
        _ENTRY_POINTS = found
    return _ENTRY_POINTS


def _sources() -> list:
    out = [(f"built-in theory.catalogue.{name}",
            tuple(importlib.import_module(f"{__name__}.{name}").THEOREMS)) for name in MODULES]
    return out + _entry_point_sources() + list(_PLUGINS.items())


def _origins() -> dict[str, str]:
    """``theorem id -> origin``; ValueError naming both origins on a clash."""
    seen: dict[str, str] = {}
    for origin, theorems in _sources():
        for t in theorems:
            if t.id in seen:
                if origin.startswith("built-in") and seen[t.id].startswith("built-in"):
                    # a programming error in the catalogue itself
                    raise RuntimeError(f"duplicate theorem ids in the catalogue: [{t.id!r}]")
                raise ValueError(f"theorem id {t.id!r} is defined twice: by {seen[t.id]} and "
                                 f"by {origin}; rename one of them.")
            seen[t.id] = origin
    return seen


def theorem_origin(theorem_id: str) -> str:
    """Where a theorem comes from: ``built-in theory.catalogue.<paper>``, ``plugin <path>``
    or ``entry point <name> = <module> (<distribution>)``."""
    origins = _origins()
    if theorem_id not in origins:
        raise ValueError(f"unknown theorem id {theorem_id!r}; run `marginflow list`.")
    return origins[theorem_id]


def load_plugin(target: str, *, strict: bool = False) -> tuple[Theorem, ...]:
    """Load the theorems of a plug-in module (``package.module`` or ``path/to/file.py``).

    **Importing the module runs its code**: load only modules you trust. The module must define
    ``THEOREMS`` (a tuple of :class:`theory.Theorem`). Its theorems join :func:`catalogue`.

    A module that fails to import gives one line (module and exception) in
    :func:`plugin_errors` and a :class:`PluginWarning`, and is skipped (``strict=True``:
    :class:`theory._loading.PluginError` instead), so the built-in catalogue still runs. An id
    that clashes with a theorem already known raises ValueError naming both origins.
    """
    from .._loading import PluginError, load_module

    origin = f"plugin {target}"
    if origin in _PLUGINS:
        return _PLUGINS[origin]
    try:
        theorems = _theorems_of(load_module(target, what="plugin"), origin)
    except (PluginError, TypeError) as exc:
        if strict:
            raise
        _record_error(str(exc))
        return ()
    _PLUGINS[origin] = theorems
    try:
        _origins()
    except ValueError:
        del _PLUGINS[origin]
        raise
    return theorems


def catalogue() -> tuple[Theorem, ...]:
    """Every theorem marginflow knows, in catalogue order: the built-in papers, then the
    theorems of installed packages (entry-point group ``marginflow.theorems``), then plug-ins
    loaded with :func:`load_plugin`. Theorem ids are unique (ValueError naming both origins)."""
    _origins()
    return tuple(t for _, theorems in _sources() for t in theorems)


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
