"""The result of an ODE integration: times, flat states, the block layout and solver statistics.

Flat-state contract (shared with :mod:`theory`'s compiled flows): the state vector is the
concatenation, in block order, of each parameter block raveled in C order; ``blocks`` is an
ordered mapping ``name -> shape``. :func:`pack_state` and :func:`unpack_state` convert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Trajectory", "pack_state", "unpack_state", "normalise_blocks"]


def normalise_blocks(blocks, size: int | None = None) -> dict[str, tuple[int, ...]]:
    """Return ``blocks`` as an ordered ``dict`` name -> shape tuple, checked against ``size``.

    Parameters
    ----------
    blocks : mapping or sequence of (name, shape) pairs, or None
        ``None`` means a single block ``"y"`` of shape ``(size,)``.
    size : int, optional
        Length of the flat state; when given, the block sizes must add up to it.
    """
    if blocks is None:
        if size is None:
            raise ValueError("blocks is None and no state size was given; pass blocks={'y': (N,)}.")
        return {"y": (int(size),)}
    items = blocks.items() if isinstance(blocks, Mapping) else blocks
    out: dict[str, tuple[int, ...]] = {}
    for name, shape in items:
        shp = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        if any(s < 0 for s in shp):
            raise ValueError(
                f"blocks[{name!r}] has a negative dimension {shp}; pass a valid shape."
            )
        out[str(name)] = shp
    total = sum(int(np.prod(s)) for s in out.values())
    if size is not None and total != size:
        raise ValueError(
            f"blocks {out} hold {total} numbers but the state has {size}; "
            f"pass the block layout of this state (rhs.blocks)."
        )
    return out


def _slices(blocks: Mapping[str, tuple[int, ...]]) -> dict[str, slice]:
    out, start = {}, 0
    for name, shape in blocks.items():
        stop = start + int(np.prod(shape))
        out[name] = slice(start, stop)
        start = stop
    return out


def pack_state(blocks, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Concatenate ``arrays[name].ravel()`` in block order into a flat float64 vector.

    Raises
    ------
    ValueError
        If a block is missing or has the wrong shape.
    """
    blocks = normalise_blocks(blocks)
    parts = []
    for name, shape in blocks.items():
        if name not in arrays:
            raise ValueError(f"arrays lacks block {name!r}; pass all of {list(blocks)}.")
        a = np.asarray(arrays[name], dtype=np.float64)
        if a.shape != shape:
            raise ValueError(f"block {name!r} has shape {a.shape}; the layout expects {shape}.")
        parts.append(a.ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def unpack_state(blocks, y: np.ndarray) -> dict[str, np.ndarray]:
    """Split a flat state ``(N,)`` (or a stack ``(T, N)``) into blocks of shape ``(T, *shape)``.

    The returned arrays are views of ``y`` (no copy).
    """
    y = np.asarray(y, dtype=np.float64)
    blocks = normalise_blocks(blocks, y.shape[-1])
    lead = y.shape[:-1]
    return {name: y[..., sl].reshape(lead + blocks[name]) for name, sl in _slices(blocks).items()}


def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Trajectory:
    """A numerically integrated trajectory ``y(t)`` of an ODE ``ẏ = f(t, y)``.

    Attributes
    ----------
    times : ndarray of shape (T,)
        The reported times, in the original time ``t`` (also when integrated in log-time).
    states : ndarray of shape (T, N)
        The flat state at each reported time (layout given by ``blocks``).
    blocks : dict
        Ordered mapping block name -> shape; the shapes' sizes add up to ``N``.
    status : str
        ``"success"`` (reached the end of ``t_span``), ``"event"`` (a terminal event fired),
        ``"failed"`` (the step size collapsed or the solver gave up) or ``"non-finite"`` (the
        right-hand side or the state became NaN/inf). Only ``success`` and ``event`` are results;
        the others are returned only with ``throw=False``, for diagnosis.
    message : str
        What happened, and for failures what to try.
    method : str
        The scipy integrator used (``"LSODA"``, ``"DOP853"``, ``"Radau"``, ...).
    log_time : bool
        Whether the integration ran in ``s = log(1 + t)``.
    rtol, atol : float
        The tolerances requested from the integrator.
    nfev, njev, nlu : int
        Right-hand side evaluations, Jacobian evaluations and LU decompositions.
    n_steps : int
        Accepted steps.
    wall_time : float
        Seconds spent integrating.
    t_events : tuple of ndarray of shape (k_j,)
        Times at which each event fired (empty tuple without events).
    y_events : tuple of ndarray of shape (k_j, N)
        The states at those times.
    """

    times: np.ndarray
    states: np.ndarray
    blocks: dict
    status: str
    message: str
    method: str
    log_time: bool
    rtol: float
    atol: float
    nfev: int = 0
    njev: int = 0
    nlu: int = 0
    n_steps: int = 0
    wall_time: float = 0.0
    t_events: tuple = field(default_factory=tuple)
    y_events: tuple = field(default_factory=tuple)

    def __post_init__(self):
        times = _readonly(self.times).reshape(-1)
        states = _readonly(self.states)
        if states.ndim != 2 or states.shape[0] != times.shape[0]:
            raise ValueError(
                f"states must have shape (T, N) with T = len(times) = {times.shape[0]}; "
                f"got {states.shape}."
            )
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "blocks", normalise_blocks(self.blocks, states.shape[1]))
        object.__setattr__(self, "t_events", tuple(_readonly(t).reshape(-1) for t in self.t_events))
        object.__setattr__(
            self, "y_events",
            tuple(_readonly(y).reshape(-1, states.shape[1]) for y in self.y_events),
        )

    @property
    def ok(self) -> bool:
        """True when the trajectory is a result (``status`` is ``success`` or ``event``)."""
        return self.status in ("success", "event")

    def block(self, name: str) -> np.ndarray:
        """The block ``name`` along the trajectory: shape ``(T, *blocks[name])``, read-only."""
        if name not in self.blocks:
            raise KeyError(f"no block {name!r}; this trajectory has blocks {list(self.blocks)}.")
        return unpack_state(self.blocks, self.states)[name]

    @property
    def final(self) -> dict[str, np.ndarray]:
        """The last state, split into blocks: name -> array of shape ``blocks[name]``."""
        return unpack_state(self.blocks, self.states[-1])

    def at(self, index: int) -> dict[str, np.ndarray]:
        """The state at ``times[index]``, split into blocks."""
        return unpack_state(self.blocks, self.states[index])

    def to_dict(self) -> dict:
        """JSON-serialisable summary: lists, floats and strings only."""
        return {
            "times": self.times.tolist(),
            "states": self.states.tolist(),
            "blocks": {k: list(v) for k, v in self.blocks.items()},
            "status": self.status,
            "message": self.message,
            "method": self.method,
            "log_time": bool(self.log_time),
            "rtol": float(self.rtol),
            "atol": float(self.atol),
            "nfev": int(self.nfev),
            "njev": int(self.njev),
            "nlu": int(self.nlu),
            "n_steps": int(self.n_steps),
            "wall_time": float(self.wall_time),
            "t_events": [t.tolist() for t in self.t_events],
            "y_events": [y.tolist() for y in self.y_events],
        }
