"""Helpers shared by the catalogue modules: fits, direction errors, instance plumbing."""

from __future__ import annotations

import numpy as np

# line_figure lives in theory.checking (public: the reports use it too); re-exported here for
# the catalogue modules
from ..checking import line_figure  # noqa: F401

__all__: list[str] = []


def unit(v: np.ndarray, axis=None) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=axis, keepdims=axis is not None)


def direction_error(W: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``|| w/||w|| − ref/||ref|| ||_2`` for each row of ``W`` (shape (T, d)) or one vector."""
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    return np.linalg.norm(unit(W, axis=1) - unit(ref)[None, :], axis=1)


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(lx, ly, 1)[0])


def semilog_rate(t, y) -> float:
    """Least-squares slope of ``log y`` against ``t`` (an exponential rate; negative = decay)."""
    return float(np.polyfit(np.asarray(t, float), np.log(np.asarray(y, float)), 1)[0])


def merge(defaults: dict, overrides: dict) -> dict:
    """``defaults`` updated with ``overrides``; unknown keys are refused with the known ones."""
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValueError(f"unknown instance parameter(s) {sorted(unknown)}; "
                         f"known: {sorted(defaults)}.")
    return {**defaults, **overrides}


class ScaledBlocks:
    """A right-hand side with some blocks' velocities multiplied by ``factor``.

    Builds deliberately broken instances (no longer a gradient flow) that a check must fail.
    ``flow`` is any callable ``flow(t, y)`` with an ordered ``blocks`` mapping name -> shape.
    """

    jac = None

    def __init__(self, flow, blocks, factor: float):
        if isinstance(blocks, str):
            blocks = (blocks,)
        unknown = set(blocks) - set(flow.blocks)
        if unknown:
            raise ValueError(f"blocks {sorted(unknown)} are not in the flow's blocks "
                             f"{list(flow.blocks)}.")
        self._flow, self.blocks, self._factor = flow, flow.blocks, float(factor)
        sizes = [int(np.prod(shape)) for shape in flow.blocks.values()]
        self._mask = np.repeat([name in blocks for name in flow.blocks], sizes)

    def __call__(self, t, y):
        out = np.array(self._flow(t, y), dtype=np.float64)
        out[self._mask] *= self._factor
        return out

