"""Derivation reports: model → loss → symbolic flow → conservation proofs → closed forms →
generated code → numerical comparison, as one :class:`~theory.report.Report`.

:func:`derive_report` is what ``marginflow derive`` writes. Every number in the numerical part is
checked against something independent: the generated right-hand side against the hand-written
numpy flow of :mod:`solvers.flows`, conserved quantities against their initial values along an
integrated trajectory, and the limit against a closed form or a certified convex program.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..checking import Verdict, compare_close, compare_le, report_value
from ..symbolic import (
    compile_flow,
    conserved_quantities,
    deep_linear_net,
    derive_gradient_flow,
    diagonal_linear_net,
    get_loss,
    gunasekar_projection,
    linear_chain,
    linear_model,
    prove_conserved,
    saxe_mode_ode,
    saxe_mode_solution,
)
from ._report import Code, Equation, Paragraph, Report, Table, verdict_blocks

_log = logging.getLogger(__name__)

__all__ = ["MODELS", "MODEL_ALIASES", "DerivationSpec", "build_model", "derive_report",
           "derive_user_report", "load_user_model"]

#: Models ``marginflow derive`` knows.
MODELS = ("linear", "linear_chain", "deep_linear", "diagonal")
#: Old (CLI) spellings still accepted as ``DerivationSpec.model`` (issue 13: one vocabulary; the
#: canonical names are those of ``theory.symbolic``'s ``Model.name`` and ``solvers.flows.MODELS``).
MODEL_ALIASES = {"linear-chain": "linear_chain", "deep-linear": "deep_linear"}

#: Integrator tolerance of the numerical part, and the layered tolerances checked against it.
ODE_RTOL, ODE_ATOL = 1e-10, 1e-12
#: Generated vs hand-written right-hand side: both are float64 evaluations of the same formula.
RHS_RTOL, RHS_ATOL = 1e-10, 1e-12
#: Conserved quantities along the trajectory: drift relative to the quantity's scale, well above
#: the integrator's rtol (errors accumulate over ~1e3 steps).
CONSERVATION_RTOL = 1e-6
#: Limits: the flow is integrated to a horizon where the loss is ≤ 1e-16 · initial; the distance
#: to the closed-form / certified limit is then at the integrator's accuracy times conditioning.
LIMIT_RTOL, LIMIT_ATOL = 1e-5, 1e-8
#: Step budget of the integration: the built-in models take 300-2700 steps (LSODA or DOP853,
#: tests/benchmarks/bench_flows_width.py); deep-linear 50^6 from the orthogonal init of
#: :func:`initial_state` takes ~1000 DOP853 steps. From the old 0.3 x N(0, 1) entries it was
#: stiff (DOP853 would need ~5.6e5 steps; BDF-Krylov reached t = 6.7 of 200 in 390 s; issue 9.3,
#: docs/theory.md §2.5).
ODE_MAX_STEPS = 20_000

#: Default initial scale σ of the numerical part (``DerivationSpec.init_scale`` overrides it).
#: deep_linear: every layer ``W_l = σ Q_l`` with ``Q_l`` Haar-random (semi-)orthogonal, so
#: ``||W_l||_2 = σ`` at every width (Saxe, McClelland & Ganguli 2014, "random orthogonal
#: initialisation"); an entry-wise Gaussian init grows like ``σ (√d_{l-1} + √d_l)`` with the
#: width, and the stiffness of the flow like the end-to-end gain ``∏||W_l||²`` (docs/theory.md
#: §2.5). Other models: entries ``N(0, σ²)``, as before.
INIT_SCALE_DEEP_LINEAR = {"squared": 1.0, "classification": 0.4}
INIT_SCALE_ENTRYWISE = {"linear_chain": 1.0, "default": 0.3, "classification": 0.1}


@dataclass(frozen=True)
class DerivationSpec:
    """What to derive: model name and sizes, loss, weight decay, seed of the numerical part."""

    model: str = "deep_linear"
    depth: int = 3
    widths: tuple = (3, 4, 4, 2)
    d: int = 4
    loss: str = "squared"
    weight_decay: float = 0.0
    seed: int = 0
    #: σ of the initial state (see :data:`INIT_SCALE_DEEP_LINEAR`); ``None``: the default.
    init_scale: float | None = None

    def __post_init__(self):
        model = MODEL_ALIASES.get(self.model, self.model)
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS} (or {sorted(MODEL_ALIASES)}); "
                             f"got {self.model!r}.")
        object.__setattr__(self, "model", model)
        s = self.init_scale
        if s is not None and (isinstance(s, bool) or not isinstance(s, int | float | np.floating)
                              or not (np.isfinite(s) and s > 0)):
            raise ValueError(f"init_scale (--init-scale) must be a positive finite number, the "
                             f"layer norm of the orthogonal deep-linear init or the entry std of "
                             f"the others; got {s!r}. Omit it for the default.")

    def to_dict(self) -> dict:
        return {"model": self.model, "depth": self.depth, "widths": list(self.widths),
                "d": self.d, "loss": self.loss, "weight_decay": self.weight_decay,
                "seed": self.seed, "init_scale": self.init_scale}



def _blocks_paragraph(model, degree_text: str):
    """The report's sentence on the flat state layout and the degree of homogeneity."""
    return Paragraph("Parameter blocks (flat state in this order, C-order): "
                     + ", ".join(f"${sp.latex(b.symbol)}$ {b.shape}" for b in model.block_list)
                     + f"; {degree_text}.")

def build_model(spec: DerivationSpec):
    """The symbolic model of ``spec``."""
    if spec.model == "linear":
        return linear_model(spec.d)
    if spec.model == "linear_chain":
        return linear_chain(spec.depth, spec.d)
    if spec.model == "deep_linear":
        return deep_linear_net(tuple(spec.widths))
    if spec.model == "diagonal":
        return diagonal_linear_net(spec.d)
    raise ValueError(f"model must be one of {MODELS}; got {spec.model!r}.")


# ----------------------------------------------------------------------------- numerical part


def _data(spec: DerivationSpec, model, rng):
    """A small problem for the numerical comparison, matching the model's task."""
    from solvers.datasets import make_separable, make_underdetermined, make_whitened_regression

    d_in = model.input_dim
    k = model.output_dim
    if spec.loss != "squared":
        X, y = make_separable(30, d_in, gap=0.3, seed=rng)
        return {"X": X, "y": y}
    if spec.model == "deep_linear":
        X, Y = make_whitened_regression(4 * d_in + 8, d_in, k, seed=rng)
        return {"X": X, "Y": Y}
    n = max(1, d_in // 2)
    X, y = make_underdetermined(n, d_in, seed=rng) if d_in > 1 else (np.ones((1, 1)),
                                                                      np.ones(1))
    return {"X": X, "Y": y.reshape(-1, 1) if k == 1 else y}


def _hand_written(spec: DerivationSpec, data):
    from solvers import flows as rhs

    X = data["X"]
    y = data.get("y", data.get("Y"))
    if spec.loss == "squared" and y.ndim == 2 and y.shape[1] == 1 and spec.model != "deep_linear":
        y = y[:, 0]
    kw = {"loss": spec.loss, "weight_decay": spec.weight_decay}
    if spec.model == "linear":
        return rhs.linear_flow(X, y, **kw)
    if spec.model == "linear_chain":
        return rhs.chain_flow(X, y, depth=spec.depth, **kw)
    if spec.model == "deep_linear":
        return rhs.deep_linear_flow(X, y, widths=tuple(spec.widths), **kw)
    return rhs.diagonal_flow(X, y, **kw)


def _haar_orthogonal(shape, rng) -> np.ndarray:
    """A Haar-random matrix of ``shape`` with orthonormal rows or columns (Mezzadri 2007)."""
    m, n = shape
    q, r = np.linalg.qr(rng.standard_normal((max(m, n), min(m, n))))
    q = q * np.sign(np.diag(r))           # the sign fix that makes Q Haar-distributed
    return q if m >= n else q.T


def initial_state(spec: DerivationSpec, flow, data, rng) -> tuple[np.ndarray, dict]:
    """The initial state of the numerical part and its description ``(y0, init)``.

    deep_linear: ``W_l = σ Q_l``, ``Q_l`` Haar (semi-)orthogonal, ``||W_l||_2 = σ`` at any width.
    When every width is equal (all layers square) this init is balanced
    (``W_{l+1}ᵀW_{l+1} = W_l W_lᵀ = σ² I``), and along a balanced flow no singular value of
    ``W_L⋯W_1`` reaches 0, so the sign of its determinant is invariant (Arora, Cohen & Hazan
    2018, Theorem 1; docs/theory.md §2.5) and a target ``Σ_yx`` of the other sign is not
    reached (measured at 50^6: the loss stays at ½ s_min² = 0.5). The first row of ``W_1`` is
    then negated (``init["sign_flipped"]`` says so).
    Other models: entries ``N(0, σ²)``, drawn exactly as before.
    ``init`` records the rule, σ and whether σ was the default (for the report and its JSON).
    """
    classification = spec.loss != "squared"
    if spec.model != "deep_linear":
        default = (INIT_SCALE_ENTRYWISE["classification"] if classification else
                   INIT_SCALE_ENTRYWISE.get(spec.model, INIT_SCALE_ENTRYWISE["default"]))
        sigma = default if spec.init_scale is None else float(spec.init_scale)
        return sigma * rng.standard_normal(flow.size), {
            "rule": "entries N(0, σ²)", "scale": sigma, "default": spec.init_scale is None,
            "sign_flipped": False}
    default = INIT_SCALE_DEEP_LINEAR["classification" if classification else "squared"]
    sigma = default if spec.init_scale is None else float(spec.init_scale)
    layers = [sigma * _haar_orthogonal(b.shape, rng) for b in flow.block_list]
    flipped = False
    widths = tuple(spec.widths)
    if not classification and len(set(widths)) == 1:
        X, Y = data["X"], data["Y"]
        target = np.linalg.slogdet(Y.T @ X / X.shape[0])[0]
        gain = np.sum([np.linalg.slogdet(W)[0] < 0 for W in layers]) % 2
        if target != 0 and (target < 0) != bool(gain):
            layers[0][0] *= -1.0
            flipped = True
    y0 = np.concatenate([W.ravel() for W in layers])
    return y0, {"rule": "W_l = σ Q_l, Q_l Haar (semi-)orthogonal (Saxe et al. 2014)",
                "scale": sigma, "default": spec.init_scale is None, "sign_flipped": flipped}


def _numerical_part(spec, model, flow, compiled, proofs):
    """Integrate the generated flow and compare it with independent references."""
    from solvers.flows import integrate
    from solvers.programs import solve_min_norm

    rng = np.random.default_rng(spec.seed)
    data = _data(spec, model, rng)
    params = dict(data)
    if spec.weight_decay:
        params["lam"] = spec.weight_decay
    bound = compiled.bind(**params)
    hand = _hand_written(spec, data)

    comps, figures = [], []
    # 1. generated code vs the hand-written numpy flow at random states
    errs = []
    for _ in range(5):
        y0 = rng.standard_normal(flow.size)
        a, b = bound(0.0, y0), hand(0.0, y0)
        errs.append(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
    comps.append(compare_close("generated vs hand-written RHS (max rel. difference)", 0.0,
                               max(errs), rtol=0.0, atol=RHS_RTOL,
                               note="two float64 evaluations of the same formula"))

    # 2. integrate from a small random init and check the conservation laws numerically
    # small init, but not so small that a deep chain sits at the saddle at 0 for the whole run;
    # deep_linear: orthogonal layers of norm σ at every width (initial_state)
    y0, init = initial_state(spec, flow, data, rng)
    log_time = spec.loss != "squared"
    t_end = 1e30 if log_time else 200.0
    t_eval = (np.logspace(-2, 30, 161) if log_time else np.linspace(0, t_end, 401))
    # method='auto': LSODA with the generated Jacobian for small P, DOP853 (explicit, no P x P
    # matrix; its step budget names BDF-Krylov if the flow turns out stiff) above
    # solvers.flows.DENSE_JACOBIAN_LIMIT; the choice is recorded in the verdict
    # (instance["integrator_choice"]) and logged
    _log.info("derive: integrating P = %d parameters to t = %g", flow.size, t_end)
    traj = integrate(bound, y0, (0.0, t_end), rtol=ODE_RTOL, atol=ODE_ATOL, t_eval=t_eval,
                     log_time=log_time, jac=bound.jac, method="auto", max_steps=ODE_MAX_STEPS)
    _log.info("derive: %s took %d steps in %.1f s", traj.method, traj.n_steps, traj.wall_time)
    t = traj.times
    loss_curve = np.array([hand.loss_value(s) for s in traj.states])
    figures.append(("loss", "Loss along the integrated flow", "loss",
                    [(t[1:] if log_time else t, loss_curve[1:] if log_time else loss_curve,
                      "L(θ(t))")], "log" if log_time else "linear", "log"))

    quantities = conserved_quantities(model)
    if quantities:
        drift_curves = []
        lam_factor = np.exp(-2.0 * spec.weight_decay * t)
        for name, q in quantities.items():
            fq = _numeric_quantity(q, flow)
            vals = np.array([fq(flow.unpack(s)) for s in traj.states])
            q0 = vals[0]
            expected = q0[None] * lam_factor.reshape((-1,) + (1,) * q0.ndim)
            # relative to |q(0)|, or to |θ(0)|² when the init is balanced (q(0) = 0 up to
            # rounding, e.g. square orthogonal layers of equal norm)
            scale_q = np.linalg.norm(q0)
            if scale_q <= 1e-12 * float(y0 @ y0):
                scale_q = float(y0 @ y0)
            drift = np.array([np.linalg.norm(v - e) for v, e in zip(vals, expected, strict=True)])
            comps.append(compare_le(
                f"max drift of {name} along the trajectory (relative)",
                float(drift.max() / scale_q), 0.0, atol=CONSERVATION_RTOL,
                note="conserved exactly (decays as e^{-2λt} with weight decay); "
                     f"integrator rtol {ODE_RTOL:g}"))
            drift_curves.append((t[1:], np.maximum(drift[1:] / scale_q, 1e-18), name))
        figures.append(("conservation", "Drift of the conserved quantities (relative)",
                        "relative drift",
                        drift_curves, "log" if log_time else "linear", "log"))

    # 3. the limit against an independent reference
    final = traj.states[-1]
    beta = hand.end_to_end(final)
    X = data["X"]
    if spec.loss == "squared" and spec.weight_decay == 0:
        Y = data["Y"]
        if spec.model == "deep_linear":
            ref = np.linalg.lstsq(X, Y, rcond=None)[0].T          # (k, d): Y X⁺, XᵀX/n = I
            comps.append(compare_close("||E(∞) − Y X⁺||_F / ||Y X⁺||_F", 0.0,
                                       np.linalg.norm(beta - ref) / np.linalg.norm(ref),
                                       rtol=0.0, atol=LIMIT_RTOL,
                                       note="full-rank whitened X: the unique minimiser"))
        elif spec.model == "linear":
            w0 = flow.unpack(y0)["w"].ravel()
            ref = gunasekar_projection(X, Y.ravel(), w0)
            comps.append(compare_close("||w(∞) − (w₀ + X⁺(y − Xw₀))|| / ||ref||", 0.0,
                                       np.linalg.norm(beta.ravel() - ref) / np.linalg.norm(ref),
                                       rtol=0.0, atol=LIMIT_RTOL,
                                       note="Gunasekar et al. 2018: projection of w₀"))
        else:
            mn = solve_min_norm(X, Y.ravel(), norm=1 if spec.model == "diagonal" else 2)
            comps.append(compare_close("residual ||X β(∞) − y|| / ||y||", 0.0,
                                       np.linalg.norm(X @ beta.ravel() - Y.ravel())
                                       / np.linalg.norm(Y), rtol=0.0, atol=LIMIT_RTOL,
                                       note="the flow interpolates"))
            comps.append(report_value(
                f"distance of β(∞) to the minimum-ℓ{1 if spec.model == 'diagonal' else 2} "
                f"interpolant (relative)",
                np.linalg.norm(beta.ravel() - mn.w) / np.linalg.norm(mn.w),
                theory="small only from small/balanced init",
                note="chain: non-minimal from unbalanced init (the conserved D fixes it); "
                     "diagonal: → minimum ℓ1 as the init scale → 0"))
    elif spec.loss != "squared":
        from solvers.programs import solve_max_margin

        svm = solve_max_margin(X, data["y"], norm=2)
        b = beta.ravel()
        cos = float(b @ svm.w / (np.linalg.norm(b) * np.linalg.norm(svm.w)))
        comps.append(report_value("cosine of β(t_end) with the ℓ2 SVM", cos, theory=1.0,
                                  note="linear predictors; → 1 for the linear model "
                                       "(Soudry et al. 2018)"))
    verdict = Verdict("derive", f"numerical comparison ({spec.model}, {spec.loss})",
                      tuple(comps), tuple(_figure(*f) for f in figures),
                      instance={**spec.to_dict(), "n": X.shape[0], "init": init,
                                "integrator": traj.method, "steps": traj.n_steps,
                                "integrator_choice": traj.message.rpartition("[")[2].rstrip("]")})
    return verdict


def _figure(name, caption, ylabel, curves, xscale, yscale):
    from ..checking import line_figure

    return line_figure(f"derive_{name}", caption, curves, xlabel="t", ylabel=ylabel,
                       xscale=xscale, yscale=yscale)


def _numeric_quantity(q, flow):
    """A numpy function of the named blocks evaluating the matrix expression ``q``.

    The matrix expression is printed as matrix products (``W2.T @ W2 - W1 @ W1.T``), never
    expanded entry by entry: ``as_explicit()`` took 176 s for four 12 x 12 balancedness laws
    (issue 9.3) and grows like width³ sympy terms.
    """
    syms = [b.symbol for b in flow.block_list]
    f = sp.lambdify(syms, q, "numpy")

    def evaluate(values):
        args = [np.asarray(values[b.name], dtype=np.float64).reshape(tuple(int(k) for k in
                                                                           b.symbol.shape))
                for b in flow.block_list]
        return np.asarray(f(*args), dtype=np.float64)

    return evaluate


# ----------------------------------------------------------------------------- the report


def _stage(start: float, what: str, *args) -> None:
    """One progress line per finished stage of a derivation (issue 14.13: a pipe or a CI log
    sees the symbolic part advance; the ``marginflow`` command prints it on stderr)."""
    _log.info("derive: " + what + ", %.1f s", *args, time.perf_counter() - start)


def derive_report(spec: DerivationSpec, *, numerical: bool = True) -> Report:
    """The derivation report of ``spec``: symbolic derivation, proofs, code, comparison."""
    start = time.perf_counter()
    model = build_model(spec)
    loss = get_loss(spec.loss)
    flow = derive_gradient_flow(model, loss, weight_decay=bool(spec.weight_decay))
    _stage(start, "gradient flow derived (P = %d parameters)", flow.size)
    quantities = conserved_quantities(model)
    proofs = {name: prove_conserved(flow, q) for name, q in quantities.items()}
    _stage(start, "%d conservation laws proved symbolically", len(proofs))
    compiled = compile_flow(flow)
    _stage(start, "code generated")
    t_symbolic = time.perf_counter() - start

    blocks: list = [
        Paragraph(f"Model: {spec.model}", heading=1),
        _blocks_paragraph(model, f"degree of homogeneity $L = {model.degree}$"),
        Paragraph("Loss", heading=1),
        Paragraph(_loss_text(loss)),
        Paragraph("Gradient flow", heading=1),
        Paragraph("Derived at the matrix level (one derivative with respect to the end-to-end "
                  "map, then the chain rule through the product), so its size is linear in the "
                  "depth and independent of the widths."
                  + (" Weight decay adds $-\\lambda\\theta$." if spec.weight_decay else "")),
        Equation(flow.latex()),
        Paragraph("Conservation laws", heading=1),
    ]
    if proofs:
        rows = []
        for name, proof in proofs.items():
            blocks.append(Equation(proof.latex()))
            rows.append((name, proof.status, "yes" if proof.holds else "NO"))
        blocks.append(Table(("quantity", "symbolic proof", "holds"), tuple(rows)))
    else:
        blocks.append(Paragraph("This model has no balancedness law (one parameter block)."))
    disc_blocks, disc_payload, _ = discovery_blocks(model, bool(spec.weight_decay))
    _stage(start, "conservation-law discovery done")
    blocks += disc_blocks
    blocks.append(Paragraph("Closed forms", heading=1))
    blocks += _closed_form_blocks(spec)
    blocks += [Paragraph("Generated code", heading=1),
               Paragraph("lambdify with common-subexpression elimination; matrix products kept "
                         "as matrix products."),
               Code(compiled.source)]
    payload = {"spec": spec.to_dict(), "flow": flow.to_dict(),
               "proofs": {k: p.to_dict() for k, p in proofs.items()},
               "discovery": disc_payload,
               "timings": {"symbolic_and_codegen_s": t_symbolic}}
    if numerical:
        verdict = _numerical_part(spec, model, flow, compiled, proofs)
        verdict = verdict.with_runtime(time.perf_counter() - start - t_symbolic)
        blocks += [Paragraph("Numerical comparison", heading=1),
                   Paragraph(_init_text(verdict.instance["init"]))]
        blocks += verdict_blocks(verdict)[1:]
        payload["verdict"] = verdict.to_dict()
    return Report(f"marginflow derivation: {spec.model}", tuple(blocks), payload)


def _init_text(init: dict) -> str:
    text = (f"Initial state: {init['rule']}, σ = {init['scale']:g} "
            f"({'default' if init['default'] else 'set by --init-scale'}).")
    if init["sign_flipped"]:
        text += (" The first row of $W_1$ was negated: from this balanced init of square "
                 "layers the sign of $\\det(W_L\\cdots W_1)$ cannot change along the flow, and "
                 "it was opposite to that of $\\det\\Sigma_{yx}$, which would make the minimiser "
                 "unreachable (docs/theory.md §2.5).")
    return text


def _loss_text(loss) -> str:
    if loss.ell is not None:
        q = loss.ell.variables[0]
        return (f"{loss.name} loss, a {loss.reduction} over examples of "
                f"$\\ell({sp.latex(q)}) = {sp.latex(loss.ell.expr)}$ of the margins "
                f"$q_i = y_i f(\\theta; x_i)$.")
    return (f"{loss.name} loss, the {loss.reduction} "
            f"$\\mathcal{{L}} = \\frac{{1}}{{2n}} \\sum_i \\|f(\\theta; x_i) - y_i\\|^2$.")


def _closed_form_blocks(spec: DerivationSpec) -> list:
    out = []
    if spec.model in ("deep_linear", "linear_chain") and spec.loss == "squared":
        L = spec.depth if spec.model == "linear_chain" else len(spec.widths) - 1
        out.append(Paragraph("Saxe, McClelland & Ganguli 2014 (whitened inputs, balanced "
                             "init aligned with the SVD of $\\Sigma_{yx}$): each mode "
                             "strength obeys"))
        out.append(Equation(sp.latex(saxe_mode_ode(L))))
        if L == 2:
            sol = saxe_mode_solution()
            out.append(Paragraph("with solution (sympy, checked by substitution):"))
            out.append(Equation("u(t) = " + sp.latex(sol)))
        out.append(Paragraph("Arora, Cohen & Hazan 2018 (balanced init): the end-to-end map "
                             "follows"))
        out.append(Equation(r"\dot W = -\sum_{j=1}^{L} (W W^\top)^{\frac{j-1}{L}} G\, "
                            r"(W^\top W)^{\frac{L-j}{L}}"))
    elif spec.model == "linear" and spec.loss == "squared":
        out.append(Paragraph("Gunasekar et al. 2018: from $w_0$ the flow converges to the "
                             "projection of $w_0$ onto $\\{Xw = y\\}$:"))
        out.append(Equation(r"w_\infty = w_0 + X^{+}(y - X w_0)"))
    elif spec.loss != "squared":
        out.append(Paragraph("Soudry et al. 2018 (linear model, separable data): "
                             "$w(t) = \\hat w \\log t + \\rho(t)$ with $\\rho$ bounded, "
                             "$\\hat w$ the ℓ2 max-margin solution."))
    else:
        out.append(Paragraph("No closed form is implemented for this model and loss."))
    return out


# ----------------------------------------------------------------------------- user models
#: Generated RHS vs central finite differences of the loss (h = 1e-6): truncation O(h²) and
#: cancellation O(eps·𝓛/h) ~ 1e-10 relative; 1e-6 leaves a wide margin and still catches a
#: wrong derivative (an O(1) relative error).
FD_STEP, FD_RTOL = 1e-6, 1e-6
#: Horizon of the classification losses for user models (log-time integration).
USER_T_END_LOG = 1e6


def load_user_model(spec: str):
    """The :class:`~theory.symbolic.Model` named by ``spec`` (``package.module:factory`` or
    ``path/to/file.py:factory``); a factory is called with no arguments.

    **Loading a module runs its code**: only load modules you trust.
    """
    from .._loading import load_object
    from ..symbolic import Model

    obj = load_object(spec, what="--model")
    if callable(obj) and not isinstance(obj, Model):
        obj = obj()
    if not isinstance(obj, Model):
        raise TypeError(f"--model {spec!r} must be a theory.symbolic.Model or a factory "
                        f"returning one; got {type(obj).__name__}.")
    return obj


def _user_data(model, loss_name: str, rng):
    if loss_name == "squared":
        n = 8
        return {"X": rng.standard_normal((n, model.input_dim)),
                "Y": rng.standard_normal((n, model.output_dim))}
    from solvers.datasets import make_separable

    X, y = make_separable(30, model.input_dim, gap=0.3, seed=rng)
    return {"X": X, "y": y}


def _numeric_loss(model, loss_name: str, data):
    """𝓛(θ) from ``sympy.lambdify`` of the model outputs (independent of the generated code)."""
    from solvers.losses import loss_value

    theta = model.parameter_entries()
    x = model.input_symbol
    xs = [x[j, 0] for j in range(model.input_dim)]
    fs = [sp.lambdify(theta + xs, o, "numpy") for o in model.output_entries()]
    X = data["X"]

    def value(y):
        cols = [np.broadcast_to(np.asarray(f(*y, *X.T), dtype=float), (X.shape[0],))
                for f in fs]
        F = np.column_stack(cols)
        if loss_name == "squared":
            return float(np.sum((F - data["Y"]) ** 2) / (2 * X.shape[0]))
        return float(loss_value(data["y"] * F[:, 0], loss_name))

    return value


def derive_user_report(model, *, loss: str = "squared", weight_decay: float = 0.0, seed: int = 0,
                       numerical: bool = True) -> Report:
    """The derivation report of a user model (:meth:`theory.symbolic.Model.from_expression`).

    Symbolic part: outputs, computed homogeneity, flow, generated code. Numerical part: the
    generated right-hand side against finite differences of the loss evaluated by
    ``sympy.lambdify`` (a second, independent implementation), then the integrated flow.
    """
    from ..symbolic import Model

    if not isinstance(model, Model):
        raise TypeError(f"model must be a theory.symbolic.Model; got {type(model).__name__}.")
    start = time.perf_counter()
    loss_obj = get_loss(loss)
    flow = derive_gradient_flow(model, loss_obj, weight_decay=bool(weight_decay))
    _stage(start, "gradient flow derived (P = %d parameters)", flow.size)
    compiled = compile_flow(flow)
    _stage(start, "code generated")
    t_symbolic = time.perf_counter() - start
    outs = [o.xreplace({model.input_symbol[j, 0]: sp.Symbol(f"x_{j + 1}")
                        for j in range(model.input_dim)}) for o in model.output_entries()]
    deg = ("homogeneous of degree $L = " + sp.latex(model.degree) + "$ (computed)"
           if model.degree is not None else "not homogeneous (computed)")
    blocks: list = [
        Paragraph(f"Model: {model.name} (user model)", heading=1),
        _blocks_paragraph(model, deg),
        *[Equation(f"f_{{{o + 1}}}(\\theta; x) = {sp.latex(e)}") for o, e in enumerate(outs)],
        Paragraph("Loss", heading=1),
        Paragraph(_loss_text(loss_obj)),
        Paragraph("Gradient flow", heading=1),
        Paragraph("Derived entry-wise for one generic input (the generic path for user models); "
                  "$\\Gamma_o = \\partial\\mathcal{L}/\\partial F_o$ per example."
                  + (" Weight decay adds $-\\lambda\\theta$." if weight_decay else "")),
        Equation(flow.latex()),
    ]
    disc_blocks, disc_payload, laws = discovery_blocks(model, bool(weight_decay))
    _stage(start, "conservation-law discovery done")
    blocks += disc_blocks
    blocks += [Paragraph("Generated code", heading=1), Code(compiled.source)]
    payload = {"model": model.to_dict(), "loss": loss, "weight_decay": weight_decay,
               "seed": seed, "flow": flow.to_dict(), "discovery": disc_payload,
               "timings": {"symbolic_and_codegen_s": t_symbolic}}
    if numerical:
        verdict = _user_numerical_part(model, loss, weight_decay, seed, flow, compiled,
                                       laws if not weight_decay else ())
        verdict = verdict.with_runtime(time.perf_counter() - start - t_symbolic)
        blocks += [Paragraph("Numerical comparison", heading=1)]
        blocks += verdict_blocks(verdict)[1:]
        payload["verdict"] = verdict.to_dict()
    return Report(f"marginflow derivation: {model.name}", tuple(blocks), payload)


def _user_numerical_part(model, loss, weight_decay, seed, flow, compiled, laws=()):
    from solvers.flows import integrate

    rng = np.random.default_rng(seed)
    data = _user_data(model, loss, rng)
    params = dict(data)
    if weight_decay:
        params["lam"] = weight_decay
    bound = compiled.bind(**params)
    value = _numeric_loss(model, loss, data)
    y0 = 0.5 * rng.standard_normal(flow.size)
    r0 = bound(0.0, y0)
    if not np.all(np.isfinite(r0)):
        bad = sorted({name for name, v in flow.unpack(np.where(np.isfinite(r0), 0.0, 1.0)).items()
                      if np.any(v)})
        raise ValueError(f"model {model.name!r} is not differentiable at the initial state: the "
                         f"gradient of block(s) {bad} is not finite there.")
    comps = []
    errs = []
    for _ in range(3):
        y = 0.5 * rng.standard_normal(flow.size)
        g = np.array([(value(y + FD_STEP * e) - value(y - FD_STEP * e)) / (2 * FD_STEP)
                      for e in np.eye(flow.size)])
        g = -g - (weight_decay * y if weight_decay else 0.0)
        errs.append(np.linalg.norm(bound(0.0, y) - g) / max(np.linalg.norm(g), 1e-300))
    comps.append(compare_close("generated RHS vs −∇𝓛 by finite differences of lambdify "
                               "(max rel. difference)", 0.0, float(max(errs)), rtol=0.0,
                               atol=FD_RTOL, note=f"central differences, h = {FD_STEP:g}"))
    # a user model may be of high degree: a moderate horizon (the built-in linear models go to
    # 1e30; a degree-3 net under the logistic loss took minutes to get there)
    log_time = loss != "squared"
    t_end = USER_T_END_LOG if log_time else 200.0
    t_eval = (np.logspace(-2, np.log10(t_end), 121) if log_time
              else np.linspace(0, t_end, 401))
    traj = integrate(bound, y0, (0.0, t_end), rtol=ODE_RTOL, atol=ODE_ATOL, t_eval=t_eval,
                     log_time=log_time, jac=bound.jac)
    t = traj.times
    curve = np.array([value(s) for s in traj.states])
    # the flow is gradient flow of 𝓛 + (λ/2)||θ||²: that objective is non-increasing
    objective = curve + 0.5 * weight_decay * np.sum(traj.states**2, axis=1)
    comps.append(report_value("loss at t_end / loss at t = 0", float(curve[-1] / curve[0]),
                              theory="non-increasing along gradient flow"))
    comps.append(compare_le("max increase of 𝓛 + (λ/2)||θ||² between samples (relative)",
                            float(max(np.max(np.diff(objective)), 0.0) / objective[0]), 0.0,
                            atol=CONSERVATION_RTOL,
                            note=f"gradient flow decreases its objective; integrator rtol "
                                 f"{ODE_RTOL:g}"))
    if laws:
        theta = model.parameter_entries()
        f_h = sp.lambdify([theta], list(laws), "numpy")
        H = np.array([np.asarray(f_h(s), dtype=float) for s in traj.states])
        scale = np.maximum(np.abs(H[0]), float(y0 @ y0))
        comps.append(compare_le("max drift of the discovered laws along the trajectory "
                                "(relative)", float(np.max(np.abs(H - H[0]) / scale)), 0.0,
                                atol=CONSERVATION_RTOL,
                                note=f"{len(laws)} laws; integrator rtol {ODE_RTOL:g}"))
    fig = _figure("loss", "Loss along the integrated flow", "loss",
                  [(t[1:] if log_time else t, curve[1:] if log_time else curve, "L(θ(t))")],
                  "log" if log_time else "linear", "log")
    return Verdict("derive", f"numerical comparison ({model.name}, {loss})", tuple(comps),
                   (fig,), instance={"model": model.name, "loss": loss, "seed": seed,
                                     "n": data["X"].shape[0], "integrator": traj.method,
                                     "steps": traj.n_steps})


# ----------------------------------------------------------------------------- discovery section
#: find_conserved (degree ≤ 2) runs in the report up to this many parameters (D = 36 took 40 s
#: on the shared machine); count_conserved up to COUNT_MAX_D (bench_discovery: D = 50 in 21 s).
DISCOVERY_MAX_D, COUNT_MAX_D = 24, 50


def discovery_blocks(model, weight_decay: bool):
    """Report blocks for the discovered conservation laws and the completeness count
    (Marcotte, Gribonval & Peyré 2023; docs/theory.md §11): ``(blocks, payload, laws)``."""
    from ..symbolic import count_conserved, find_conserved

    blocks = [Paragraph("Discovered conservation laws", heading=1)]
    D = model.n_params
    try:
        if D <= DISCOVERY_MAX_D:
            res = find_conserved(model, 2, weight_decay=weight_decay)
            blocks.append(Paragraph(
                "Every polynomial law of degree ≤ 2 conserved by the gradient flow of **every** "
                "loss of the outputs" + (" with weight decay" if weight_decay else "")
                + ", found by exact linear algebra over the rationals and proved by sympy "
                "(Marcotte, Gribonval & Peyré 2023):"))
            for h, pr in zip(res.laws, res.proofs, strict=True):
                blocks.append(Equation(sp.latex(h) + r" = \text{const}"
                                       + ("" if pr.holds else r"\quad\text{(NOT proved)}")))
            if not res.laws:
                blocks.append(Paragraph("No polynomial law of degree ≤ 2."))
            blocks.append(Paragraph(res.statement[0].upper() + res.statement[1:] + "."))
            return blocks, res.to_dict(), res.laws
        if D <= COUNT_MAX_D:
            cnt = count_conserved(model, weight_decay=weight_decay)
            blocks.append(Paragraph(
                f"D = {D} > {DISCOVERY_MAX_D}: the polynomial search is skipped (cost); the "
                f"Lie-algebra count gives {cnt.status}."))
            return blocks, {"count": cnt.to_dict()}, ()
        blocks.append(Paragraph(f"D = {D} > {COUNT_MAX_D}: discovery skipped (cost)."))
        return blocks, {"skipped": f"D = {D}"}, ()
    except ValueError as exc:  # e.g. an output that is not polynomial in x
        blocks.append(Paragraph(f"Discovery not applicable: {exc}"))
        return blocks, {"not_applicable": str(exc)}, ()
