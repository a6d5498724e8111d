"""Approximate-KKT check of a trained homogeneous network (Lyu & Li 2019; Tsilivis et al. 2024).

``check_kkt(net, X, y)`` returns a :class:`KKTReport`. The implementation modules are private:
``_problem`` (the rescaled net, candidates and kinks), ``_qp`` (the ℓ2 program over Clarke
subgradients), ``_lp`` (the ℓ1/ℓ∞ generalised-stationarity programs), ``_solve`` (assembling and
solving them; :class:`KKTConfig`), ``_report`` (:class:`KKTReport`) and ``_check``
(:func:`check_kkt`, validation and orchestration).
"""

from __future__ import annotations

from ._check import KKTReport, check_kkt
from ._solve import KKTConfig

__all__ = ["check_kkt", "KKTReport", "KKTConfig"]
