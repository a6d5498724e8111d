"""Loading a user's Python object (a model factory, a theorem module) by name or path.

``package.module``, ``package.module:attr``, ``path/to/file.py`` or ``path/to/file.py:attr``.
**Importing a user's module runs its code** (as ``pytest -p`` does for plugins): only load
modules you trust. Nothing here parses, evals or unpickles data; it is an ordinary import.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path

__all__ = ["PluginError", "load_module", "load_object"]

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class PluginError(ValueError):
    """A user module or object could not be loaded (one line: what, where, why)."""


def _split(spec: str) -> tuple[str, str | None]:
    # a Windows drive letter (C:\...) is not an attribute separator
    head, sep, attr = spec.rpartition(":")
    if sep and attr and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", attr) and len(head) > 1:
        return head, attr
    return spec, None


def load_module(target: str, *, what: str = "module"):
    """Import ``target`` (a dotted module name or a ``.py`` path) and return the module.

    Raises
    ------
    PluginError
        One line naming the module and the exception it raised (or why it was not found).
    """
    if not isinstance(target, str) or not target:
        raise PluginError(f"{what} must be a module name or a .py path; got {target!r}.")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise PluginError(f"{what} {target!r}: no such file.")
        # the resolved path, not only the stem, names the module: a/theorems.py and
        # b/theorems.py are two plug-ins and must not replace each other in sys.modules
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        name = "marginflow_user_" + re.sub(r"\W", "_", path.stem) + "_" + digest
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"{what} {target!r}: not an importable Python file.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 -- reported in one line, never a traceback
            sys.modules.pop(name, None)
            raise PluginError(f"{what} {target!r} failed to import: "
                              f"{type(exc).__name__}: {exc}") from exc
        return module
    if not _DOTTED.match(target):
        raise PluginError(f"{what} {target!r} is neither a dotted module name "
                          f"(package.module) nor a .py path.")
    try:
        return importlib.import_module(target)
    except Exception as exc:  # noqa: BLE001 -- reported in one line, never a traceback
        raise PluginError(f"{what} {target!r} failed to import: "
                          f"{type(exc).__name__}: {exc}") from exc


def load_object(spec: str, *, what: str = "object", default_attr: str | None = None):
    """``module:attr`` (or a ``.py`` path with ``:attr``) → the attribute."""
    target, attr = _split(spec)
    attr = attr or default_attr
    if attr is None:
        raise PluginError(f"{what} {spec!r} must name an attribute: module:attr or file.py:attr.")
    module = load_module(target, what=what)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PluginError(f"{what} {spec!r}: module {target!r} has no attribute {attr!r}."
                          ) from None
