"""``marginflow derive``: the derivation report of a model (flow, proofs, code, numerics)."""

from __future__ import annotations

import argparse
import sys

from ._checks import check_output_dir, seed_int

__all__ = ["register", "run"]

#: The models of :data:`theory.reports.MODELS` and their old spellings
#: (:data:`theory.reports.MODEL_ALIASES`), listed here so that building the parser imports no
#: sympy (tests/test_cli.py checks that they agree).
MODELS = ("linear", "linear_chain", "deep_linear", "diagonal")
MODEL_ALIASES = ("linear-chain", "deep-linear")

EXAMPLES = """examples:
  marginflow derive deep_linear --widths 3,4,4,2 --report out/deep
  marginflow derive linear_chain --depth 4 --report out/chain
  marginflow derive linear --d 6 --loss logistic --report out/soudry
  marginflow derive diagonal --d 6 --weight-decay 0.1 --report out/diag --force
  marginflow derive --model mypkg.models:quadratic_net --report out/quad
  marginflow derive --model ./my_model.py:make --loss logistic --report out/mine

--model loads a Python module and calls the factory: this RUNS THE MODULE'S CODE (as pytest
does for plugins). Only pass modules you trust."""


def _widths(text: str) -> tuple[int, ...]:
    try:
        w = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--widths must be comma-separated integers like 3,4,2; got {text!r}") from None
    if len(w) < 2 or min(w) < 1:
        raise argparse.ArgumentTypeError(
            f"--widths needs at least two positive widths (input, ..., output); got {text!r}")
    return w


def register(sub) -> None:
    p = sub.add_parser("derive", help="write the derivation report of a model",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Derive the gradient flow of MODEL symbolically, prove its "
                                   "conservation laws, generate code, integrate it and compare "
                                   "with closed forms and certified programs.",
                       epilog=EXAMPLES)
    p.add_argument("model", choices=MODELS + tuple(MODEL_ALIASES), nargs="?",
                   help="a built-in model (linear-chain and deep-linear are the old spellings "
                        "of linear_chain and deep_linear)")
    p.add_argument("--model", dest="user_model", metavar="MODULE:FACTORY",
                   help="a user model instead: package.module:factory or file.py:factory "
                        "returning a theory.Model (Model.from_expression). Imports and runs "
                        "that module's code: only use modules you trust.")
    p.add_argument("--depth", type=int, default=3, help="depth of a linear chain (default 3)")
    p.add_argument("--widths", type=_widths, default=(3, 4, 4, 2),
                   help="deep linear net widths d_0,...,d_L (default 3,4,4,2)")
    p.add_argument("--d", type=int, default=4, help="input dimension (default 4)")
    p.add_argument("--loss", choices=("squared", "logistic", "exp"), default="squared")
    p.add_argument("--weight-decay", type=float, default=0.0, metavar="LAMBDA")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the data (default 0)")
    p.add_argument("--init-scale", type=float, default=None, metavar="SIGMA",
                   help="scale of the initial state: deep_linear layers are SIGMA times a "
                        "random orthogonal matrix (default 1, 0.4 for logistic/exp), the other "
                        "models have N(0, SIGMA^2) entries (default 0.3; linear_chain 1; "
                        "0.1 for logistic/exp)")
    p.add_argument("--report", metavar="DIR", required=True, help="report directory")
    p.add_argument("--force", action="store_true", help="replace an existing report")
    p.add_argument("--no-numerics", action="store_true",
                   help="symbolic part only (skip integration and comparison)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_output_dir(args.report, "--report", force=args.force)
    if not args.weight_decay >= 0:  # also refuses nan
        raise ValueError(f"--weight-decay must be >= 0; got {args.weight_decay}.")
    for name in ("depth", "d"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be a positive integer; got {getattr(args, name)}.")
    if args.init_scale is not None and args.user_model is not None:
        raise ValueError("--init-scale applies to the built-in models only; drop it with "
                         "--model MODULE:FACTORY.")
    if (args.model is None) == (args.user_model is None):
        raise ValueError("give either a built-in MODEL or --model MODULE:FACTORY (exactly one); "
                         "see `marginflow derive --help`.")
    from solvers.errors import IntegrationError

    try:
        if args.user_model is not None:
            from ..reports import derive_user_report, load_user_model

            model = load_user_model(args.user_model)
            report = derive_user_report(model, loss=args.loss, weight_decay=args.weight_decay,
                                        seed=args.seed, numerical=not args.no_numerics)
        else:
            from ..reports import DerivationSpec, derive_report

            spec = DerivationSpec(model=args.model, depth=args.depth, widths=tuple(args.widths),
                                  d=args.d, loss=args.loss, weight_decay=args.weight_decay,
                                  seed=args.seed, init_scale=args.init_scale)
            report = derive_report(spec, numerical=not args.no_numerics)
    except IntegrationError as exc:
        raise IntegrationError(f"{exc} The symbolic report alone: --no-numerics.",
                               trajectory=exc.trajectory) from exc
    from ..reports import write_report

    path = write_report(report, args.report, force=args.force)
    verdict = report.payload.get("verdict")
    if verdict:
        for c in verdict["comparisons"]:
            mark = "ok " if c["passed"] else "FAIL"
            print(f"{mark} {c['name']}: measured {c['measured']} {c['reads']} {c['theory']}")
    print(f"report written to {path}", file=sys.stderr)
    return 0 if not verdict or verdict["status"] in ("passed", "reported") else 1
