"""The public surface.

Every submodule is imported first (so a submodule that shadowed a public name would show), then
every name in ``__all__`` must be the function, class or value it documents. ``solvers`` never
imports sympy or ``theory``; the symbolic core of ``theory`` imports no solver.
"""

import importlib
import inspect
import pkgutil
import subprocess
import sys
import types

import pytest

import solvers
import theory


def _import_every_submodule(pkg):
    for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)


def test_submodule_imports_shadow_no_public_name():
    import theory.catalogue.bansal2018  # noqa: F401  (the import named in issue 13)
    from solvers import integrate

    assert isinstance(integrate, types.FunctionType)
    _import_every_submodule(solvers)
    _import_every_submodule(theory)
    for pkg in (solvers, theory, solvers.programs, solvers.flows, solvers.nets, solvers.nets.kkt,
                theory.symbolic, theory.checking, theory.reports):
        for name in pkg.__all__:
            value = getattr(pkg, name)
            assert not isinstance(value, types.ModuleType) or name == "catalogue", (
                f"{pkg.__name__}.{name} is a module")


# what each public name of the façades must be: a class, or a plain function
_CLASSES = {
    "solvers": {"Certificate", "MarginSolution", "MinNormSolution", "NuclearNormSolution",
                "Trajectory", "HalpernResult", "HomogeneousMLP", "MarginSummary",
                "TrainingResult", "History", "ShallowRun", "KKTReport", "Tolerances",
                "Potential", "PotentialSolution", "TorchNet", "TorchTrainingResult",
                "MarginflowError", "NotSeparableError", "InconsistentSystemError",
                "NotHomogeneousError", "NotFeasibleError", "SolverError", "IntegrationError",
                "MarginBelowResolutionError", "PrecisionLimitError"},
    "theory": {"Model", "Loss", "GradientFlow", "ConservationProof", "CompiledFlow",
               "BoundFlow", "Theorem", "Source", "Verdict", "Comparison", "FigureData", "Series",
               "Report", "DerivationSpec", "SweepResult",
               "DiscoveredLaws", "LawCount"},
}
_VALUES = {"solvers": {"TOLERANCES"}, "theory": set()}


@pytest.mark.parametrize("pkg", [solvers, theory], ids=["solvers", "theory"])
def test_every_public_name_is_what_it_documents(pkg):
    _import_every_submodule(pkg)
    name_of = pkg.__name__
    for name in pkg.__all__:
        value = getattr(pkg, name)
        if name in _CLASSES[name_of]:
            assert inspect.isclass(value), f"{name_of}.{name} should be a class: {value!r}"
        elif name in _VALUES[name_of]:
            assert not callable(value), name
        elif name == "catalogue":
            listed = value()
            assert listed and all(isinstance(t, theory.Theorem) for t in listed)
        else:  # a function (possibly behind functools.lru_cache)
            fn = getattr(value, "__wrapped__", value)
            assert inspect.isfunction(fn), f"{name_of}.{name} should be a function: {value!r}"
    assert set(_CLASSES[name_of]) <= set(pkg.__all__)


def test_catalogue_is_callable_whichever_import_came_first():
    code = ("import theory.catalogue.bansal2018, theory; from theory import catalogue; "
            "ids = [t.id for t in catalogue()]; assert 'bansal-chain-vs-l2' in ids, ids; "
            "assert theory.catalogue() == catalogue()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_old_spellings_still_resolve():
    assert solvers.normalised_flow is solvers.normalized_flow


def test_solvers_imports_neither_sympy_nor_theory():
    code = ("import sys, solvers; [getattr(solvers, n) for n in solvers.__all__ "
            "if n not in ('from_torch', 'load_torch', 'save_torch')]; "
            "bad = [m for m in ('sympy', 'theory') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_symbolic_core_imports_no_solver():
    # the symbolic core (models, losses, flows, conservation, closed forms, codegen) imports no
    # solver; only the catalogue, reports and the CLI may use solvers.
    code = ("import sys, theory.symbolic; "
            "bad = [m for m in sys.modules if m == 'solvers' or m.startswith('solvers.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
