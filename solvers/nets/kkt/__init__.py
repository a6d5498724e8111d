"""Approximate-KKT check of a trained homogeneous network (Lyu & Li 2019; Tsilivis et al. 2024).

``check_kkt(net, X, y)`` returns a :class:`KKTReport`. The implementation modules are private:
``_check`` (the problem and the report), ``_qp`` (the ℓ2 program over Clarke subgradients) and
``_lp`` (the ℓ1/ℓ∞ generalised-stationarity programs).
"""

from __future__ import annotations

from ._check import KKTReport, check_kkt

__all__ = ["check_kkt", "KKTReport"]
