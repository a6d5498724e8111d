"""Argument checks shared by the solvers. Messages name the argument, the value and the fix."""

from __future__ import annotations

import numpy as np

__all__: list[str] = []


def _describe(a: np.ndarray) -> str:
    return f"array of shape {a.shape} and dtype {a.dtype}"


def as_float_array(value, name: str, *, ndim: int | tuple[int, ...], allow_empty: bool = False
                   ) -> np.ndarray:
    """``value`` as a finite float64 array of the given dimension(s), or raise ValueError.

    Complex input is refused (TypeError), never silently truncated to its real part.
    """
    raw = value if isinstance(value, np.ndarray) else None
    if raw is None:
        try:
            raw = np.asarray(value)
        except (TypeError, ValueError):
            raw = None
    if raw is not None and (raw.dtype.kind == "c" or (
            raw.dtype.kind == "O" and any(isinstance(v, complex) for v in raw.ravel()[:10000]))):
        raise TypeError(
            f"{name} must be real; got a complex array of shape {raw.shape}. Pass the real part "
            f"explicitly (np.real({name})) if the imaginary part is known to be zero."
        )
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a real numeric array; got {type(value).__name__} ({exc}). "
            f"Pass a numpy array of floats."
        ) from exc
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(
            f"{name} must be {want}; got {_describe(a)}. "
            + ("Reshape it, e.g. X.reshape(n, -1) with one example per row."
               if 2 in dims else "Pass a flat vector, e.g. y.ravel().")
        )
    if not allow_empty and a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); pass at least one example.")
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(
            f"{name} contains {bad} non-finite value(s) (NaN or inf); "
            f"remove or impute them before calling."
        )
    return a


def check_X(X, name: str = "X") -> np.ndarray:
    """Check a design matrix of shape ``(n, d)`` (one example per row)."""
    X = as_float_array(X, name, ndim=2, allow_empty=True)
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one example.")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {X.shape}); pass at least one column.")
    return X


def check_labels(y, n: int, name: str = "y") -> np.ndarray:
    """Check classification labels: shape ``(n,)``, values in ``{-1, +1}``."""
    y = as_float_array(y, name, ndim=1)
    if y.shape[0] != n:
        raise ValueError(
            f"{name} has {y.shape[0]} entries but X has {n} rows; pass one label per example."
        )
    bad = ~np.isin(y, (-1.0, 1.0))
    if np.any(bad):
        vals = np.unique(y[bad])[:5]
        raise ValueError(
            f"{name} must contain only -1 and +1; found {vals.tolist()}. "
            f"Map {{0, 1}} labels with y = 2 * y - 1."
        )
    return y


def check_targets(y, n: int, name: str = "y") -> np.ndarray:
    """Check regression targets of shape ``(n,)`` or ``(n, k)``."""
    y = as_float_array(y, name, ndim=(1, 2))
    if y.shape[0] != n:
        raise ValueError(
            f"{name} has {y.shape[0]} rows but X has {n}; pass one target per example."
        )
    return y


def check_norm(norm) -> float:
    """Return the ℓp exponent as a float in [1, inf], accepting 1, 2, inf, 'inf', 'l1', ..."""
    aliases = {"inf": np.inf, "linf": np.inf, "l_inf": np.inf, "max": np.inf,
               "l1": 1.0, "l2": 2.0, "fro": 2.0, "euclidean": 2.0}
    if isinstance(norm, str):  # "2", "1.5", "inf", "l1", ...: parsed with float(), never eval'd
        p = aliases.get(norm.strip().lower(), norm.strip())
    else:
        p = norm
    if isinstance(p, (complex, np.complexfloating)):
        raise TypeError(f"norm must be a real p >= 1; got the complex number {norm!r}.")
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise ValueError(
            f"norm must be a real p >= 1 or one of 1, 2, 'inf'; got {norm!r}."
        ) from None
    if not (p >= 1.0):
        raise ValueError(f"norm must satisfy p >= 1 (a norm); got {norm!r}. Use 1, 2 or 'inf'.")
    return p


def check_rtol(value, name: str, default: float, *, allow_zero: bool = False) -> float:
    """A relative tolerance: ``None`` gives ``default``; otherwise a real number in ``(0, 1)``
    (``[0, 1)`` with ``allow_zero``), else ValueError/TypeError naming the argument."""
    if value is None:
        return float(default)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise TypeError(f"{name} must be a real number in (0, 1); got {value!r} of type "
                        f"{type(value).__name__}. Pass e.g. {name}={default:g}.")
    v = float(value)
    lo_ok = v >= 0.0 if allow_zero else v > 0.0
    if not (np.isfinite(v) and lo_ok and v < 1.0):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be a relative tolerance in {interval}; got {value!r}. "
                         f"Pass e.g. {name}={default:g} (the default).")
    return v


def dual_exponent(p: float) -> float:
    """The Hölder conjugate ``q`` with ``1/p + 1/q = 1``."""
    if p == 1.0:
        return np.inf
    if np.isinf(p):
        return 1.0
    return p / (p - 1.0)
