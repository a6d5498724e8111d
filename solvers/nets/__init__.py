"""Homogeneous networks: the bias-free MLP (``HomogeneousMLP``), its margins, training loops,
weight files, the PyTorch adapter, two-layer nets of Song et al. (2021), and the KKT checker
(:mod:`solvers.nets.kkt`).

The implementation modules are private; every public name is re-exported here (and from
:mod:`solvers`).
"""

from __future__ import annotations

from ._margins import (
    MarginSummary,
    class_margins,
    layer_balance,
    layer_norms,
    margin_summary,
    margins,
    min_margin,
    multiclass_log_loss,
    normalized_margin,
    parameter_norm,
    smoothed_margin,
    support_mask,
    unit_balance,
)
from ._network import ACTIVATIONS, HomogeneousMLP
from ._shallow import (
    ShallowRun,
    WidthSearch,
    init_shallow,
    minimal_width,
    shallow_forward,
    shallow_jacobian,
    threshold_width,
    train_shallow,
    train_shallow_batch,
)
from ._torch_adapter import augment_constant_feature, from_torch, load_torch, save_torch
from ._torch_net import LayerInfo, TorchNet
from ._torch_training import TorchFitResult, TorchTrainingResult, fit_torch, train_torch
from ._training import TRAINING_METHODS, History, TrainingResult, train
from ._weights_io import (
    MAX_ARRAY_BYTES,
    detect_file_format,
    load_data,
    load_weights,
    save_data,
    save_weights,
)
from .kkt import KKTConfig, KKTReport, check_kkt

__all__ = [
    "HomogeneousMLP", "ACTIVATIONS",
    "MarginSummary", "margins", "min_margin", "parameter_norm", "normalized_margin",
    "smoothed_margin", "support_mask", "layer_norms", "layer_balance", "unit_balance",
    "margin_summary",
    "class_margins", "multiclass_log_loss",
    "train", "TrainingResult", "History", "TRAINING_METHODS",
    "load_weights", "save_weights", "load_data", "save_data",
    "detect_file_format", "MAX_ARRAY_BYTES",
    "from_torch", "load_torch", "save_torch", "augment_constant_feature", "TorchNet", "LayerInfo",
    "train_torch", "TorchTrainingResult",
    "fit_torch", "TorchFitResult",
    "ShallowRun", "WidthSearch", "init_shallow", "shallow_forward", "shallow_jacobian",
    "train_shallow", "train_shallow_batch", "minimal_width", "threshold_width",
    "check_kkt", "KKTReport",
    "KKTConfig",
]
