"""``marginflow kkt``: the approximate-KKT check of a trained homogeneous network from files.

Thin wrapper around :func:`solvers.check_kkt` (Lyu & Li 2019; Tsilivis, Vardi & Kempe 2024
for ℓ1/ℓ∞). Exit status 0 whether or not the point is KKT (the answer is in the output); bad
input raises ``ValueError``/``MarginflowError``, which ``marginflow``'s main wrapper turns into
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json

__all__ = ["register", "run"]

EXAMPLE_KKT = """examples:
  marginflow kkt --weights net.npz --data train.npz
  marginflow kkt --weights net.npz --data train.npz --norm inf --json > kkt.json

  marginflow kkt --weights cnn.pt --data digits.npz         # a conv net, 10 classes

files are recognised by content, not by name. Weights: .npz with W1..WL (W_l of shape
(d_l, d_{l-1}), W_L of shape (K, d_{L-1})) and optionally 'activation' ('relu',
'leaky_relu', 'linear') and 'alpha', or a .pt written by solvers.save_torch (an MLP, or an
nn.Sequential tree of Conv1d/Conv2d, MaxPool/AvgPool/AdaptiveAvgPool, Flatten, Dropout,
Identity, ReLU/LeakyReLU, Linear). Data: .npz with X (n, d) or (n, C, H, W) and y (n,),
nothing else; real numbers only; y in {-1, +1} for a one-output net, class indices 0..K-1 for
a K-output net. Multi-class reports list the support examples with their competing class; conv
nets (any --norm) and MLPs (--norm 2) also the layers contributing most to ε.
exit status: 0 checked (KKT or not: see the verdict), 2 bad input (e.g. misclassified points,
labels out of range, a non-homogeneous layer)."""


class _Default:
    """A default from ``solvers.tolerances.TOLERANCES``, read only when shown or used, so that
    building the parser imports no numerical library."""

    def __init__(self, name: str):
        self.name = name

    def value(self) -> float:
        from solvers.tolerances import TOLERANCES

        return float(getattr(TOLERANCES, self.name))

    def __str__(self) -> str:
        return f"{self.value():g}"


def _resolve(v):
    return v.value() if isinstance(v, _Default) else v


def register(sub) -> None:
    """Add the ``kkt`` subparser to ``sub`` (an ``argparse`` subparsers action)."""
    p = sub.add_parser(
        "kkt", help="check whether a trained homogeneous net is an approximate KKT point",
        description="Best (ε, δ)-KKT certificate of min ½||θ||_p² s.t. y_i f(θ; x_i) >= 1 at the "
                    "rescaled weights θ/q_min^{1/L}, over the multipliers and the Clarke "
                    "subgradients at ReLU kinks (Lyu & Li 2019).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE_KKT)
    p.add_argument("--weights", required=True, metavar="FILE",
                   help="network weights: .npz (W1..WL) or .pt saved by "
                        "solvers.save_torch (read with weights_only=True)")
    p.add_argument("--data", required=True, metavar="FILE", help="data set (.npz with X, y)")
    p.add_argument("--norm", choices=("2", "1", "inf"), default="2",
                   help="geometry of the margin problem (default 2)")
    p.add_argument("--loss", choices=("logistic", "exp"), default="logistic",
                   help="loss defining the natural multipliers (default logistic)")
    p.add_argument("--eps-tol", type=float, default=_Default("kkt_eps_tol"),
                   help="threshold on ε/||θ̃|| (default %(default)s)")
    p.add_argument("--delta-tol", type=float, default=_Default("kkt_delta_tol"),
                   help="threshold on δ/||θ̃||² (default %(default)s)")
    p.add_argument("--support-factor", type=float, default=_Default("kkt_support_factor"),
                   help="candidate supports: q_i <= factor · q_min (default %(default)s)")
    p.add_argument("--norm-rtol", type=float, default=_Default("kkt_norm_rtol"),
                   help="ℓ1/ℓ∞: relative tolerance for zero / tied-at-max coordinates "
                        "(default %(default)s)")
    p.add_argument("--constant-feature", action="store_true",
                   help="append a constant-1 column to X (solvers.augment_constant_feature); a "
                        ".pt file's first Linear may then have a bias (folded into W1), an .npz "
                        "file's W1 must have d + 1 columns")
    p.add_argument("--max-array-mb", type=float, default=None, metavar="MB",
                   help="largest weights/data read from a file, in MiB of float64, checked "
                        "before decompressing (default 256)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=run)


def _n_outputs(net) -> int:
    """``K`` of a loaded net, without touching the data: the rows of ``W_L`` (numpy), or the
    ``out_features``/``out_channels`` of a TorchNet's last parametrised layer (confirmed by a
    forward pass once the data are read)."""
    if hasattr(net, "n_outputs"):
        return int(net.n_outputs)
    last = dict(net.module.named_modules())[net.layers[-1].path]
    return int(getattr(last, "out_features", None) or last.out_channels)


def _details(report, top: int = 5) -> list[str]:
    """Lines naming the largest contributions to ε by layer (from the report's ``extra``; absent
    entries give no line). The support examples with their competing class and the conversion
    notes are already in :meth:`KKTReport.summary`."""
    lines = []
    by_layer = report.extra.get("epsilon_by_layer")
    if by_layer:
        lines.append("  largest contributions to epsilon by layer (||residual||): " + ", ".join(
            f"{name} {v:.3e}" for name, v in by_layer[:top])
            + (f" … ({len(by_layer)} layers)" if len(by_layer) > top else ""))
    return lines


def run(args) -> int:
    """Load the files, run :func:`solvers.check_kkt`, print the summary (or JSON); return 0."""
    from solvers.nets import (
        augment_constant_feature,
        detect_file_format,
        load_data,
        load_torch,
        load_weights,
    )
    from solvers.nets.kkt import check_kkt

    max_bytes = None
    if args.max_array_mb is not None:
        if not args.max_array_mb > 0:
            raise ValueError(f"--max-array-mb must be positive; got {args.max_array_mb}.")
        max_bytes = int(args.max_array_mb * 2**20)
    fmt = detect_file_format(args.weights)
    if fmt == "torch":
        net = load_torch(args.weights, constant_feature=args.constant_feature,
                         max_bytes=max_bytes)
    else:
        net = load_weights(args.weights, max_bytes=max_bytes)
    K = _n_outputs(net)
    X, y = load_data(args.data, max_bytes=max_bytes, n_classes=K)
    if args.constant_feature:
        X = augment_constant_feature(X)
    if not hasattr(net, "n_outputs"):
        try:  # torch's own shape errors name no file and carry a traceback
            k_out = net.outputs(X[:1]).shape[1]
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"data file {args.data!r}: the network in {args.weights!r} cannot take inputs "
                f"of shape {tuple(X.shape[1:])} per example (torch: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); save X with "
                f"the shape the model was trained on, e.g. (n, C, H, W) for a conv net."
            ) from exc
        if k_out != K:
            raise ValueError(f"the network in {args.weights!r} has {k_out} outputs, but its last "
                             f"layer has {K} channels; end it with a Linear layer (or a pool to "
                             f"size 1 and Flatten) so that outputs are class scores.")
    norm = float("inf") if args.norm == "inf" else int(args.norm)
    report = check_kkt(net, X, y, norm=norm, loss=args.loss, eps_tol=_resolve(args.eps_tol),
                       delta_tol=_resolve(args.delta_tol),
                       support_factor=_resolve(args.support_factor),
                       norm_rtol=_resolve(args.norm_rtol))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join([report.summary(), *_details(report)]))
    return 0
