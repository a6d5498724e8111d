"""Test helpers for theorem authors: run the catalogue's contract on your own theorem.

The contract every built-in theorem meets (and its tests check):

1. its default instance **passes** (status ``passed``, or ``reported`` for conjectures);
2. every declared **broken** instance (a hypothesis violated on purpose) **fails** — a check
   that cannot fail checks nothing;
3. random instances from its ``strategy`` pass.

Use it in a pytest test of your plug-in::

    from theory.testing import assert_theorem_contract
    def test_contract():
        assert_theorem_contract(MY_THEOREM, broken=[{"claimed_degree": 2}])

See ``docs/writing-a-theorem.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checking import Theorem

__all__ = ["ContractResult", "check_theorem_contract", "assert_theorem_contract"]

_OK_STATUSES = ("passed", "reported")


@dataclass(frozen=True)
class ContractResult:
    """The outcome of :func:`check_theorem_contract`.

    Attributes
    ----------
    theorem_id : str
    default_status : str
        Status of the default instance's verdict (must be ``passed``/``reported``).
    broken_statuses : tuple of str
        One per declared broken instance (each must be ``failed``).
    random_statuses : tuple of str
        One per random instance drawn from the theorem's strategy (each must pass).
    problems : tuple of str
        One line per broken clause of the contract; empty when it holds.
    """

    theorem_id: str
    default_status: str
    broken_statuses: tuple
    random_statuses: tuple
    problems: tuple

    @property
    def holds(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"theorem_id": self.theorem_id, "default_status": self.default_status,
                "broken_statuses": list(self.broken_statuses),
                "random_statuses": list(self.random_statuses),
                "problems": list(self.problems), "holds": self.holds}


def _random_instances(theorem: Theorem, n: int, seed: int) -> list:
    if theorem.strategy is None or n == 0:
        return []
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    drawn: list = []

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(theorem.strategy())
    def draw(instance):
        drawn.append(instance)

    draw()
    return drawn[:n]


def check_theorem_contract(theorem: Theorem, *, broken=(), n_random: int = 3, seed: int = 0
                           ) -> ContractResult:
    """Run the catalogue's contract on ``theorem`` (see the module docstring).

    Parameters
    ----------
    theorem : Theorem
    broken : sequence of dict
        Each dict is either keyword overrides for ``theorem.make_instance(seed, **overrides)``
        or, with the key ``"instance"``, a complete instance. Each must make the check fail.
    n_random : int, default 3
        Random instances drawn from ``theorem.strategy()`` (needs hypothesis; skipped when the
        theorem has no strategy — then ``random_statuses`` is empty, which the result says).
    seed : int

    Returns
    -------
    ContractResult
    """
    if not isinstance(theorem, Theorem):
        raise TypeError(f"theorem must be a theory.Theorem; got {type(theorem).__name__}.")
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise ValueError(f"n_random must be an int >= 0; got {n_random!r}.")
    problems = []
    default = theorem.check(seed=seed)
    if default.status not in _OK_STATUSES:
        problems.append(f"default instance: status {default.status!r} (expected passed); "
                        f"{default.error or _first_failure(default)}")
    broken_statuses = []
    for i, b in enumerate(broken):
        if not isinstance(b, dict):
            raise TypeError(f"broken[{i}] must be a dict of overrides or {{'instance': ...}}; "
                            f"got {type(b).__name__}.")
        inst = b["instance"] if "instance" in b else theorem.make_instance(seed, **b)
        status = theorem.check(inst).status
        broken_statuses.append(status)
        if status != "failed":
            problems.append(f"broken instance {i} ({sorted(b)}): status {status!r} "
                            f"(expected failed: the check cannot detect this violation)")
    random_statuses = []
    for j, inst in enumerate(_random_instances(theorem, n_random, seed)):
        v = theorem.check(inst)
        random_statuses.append(v.status)
        if v.status not in _OK_STATUSES:
            problems.append(f"random instance {j}: status {v.status!r}; "
                            f"{v.error or _first_failure(v)}")
    return ContractResult(theorem.id, default.status, tuple(broken_statuses),
                          tuple(random_statuses), tuple(problems))


def assert_theorem_contract(theorem: Theorem, *, broken=(), n_random: int = 3, seed: int = 0,
                            require_broken: bool = True) -> ContractResult:
    """:func:`check_theorem_contract`, raising AssertionError listing every broken clause.

    ``require_broken=True`` (default) also fails when no broken instance is declared.
    """
    result = check_theorem_contract(theorem, broken=broken, n_random=n_random, seed=seed)
    problems = list(result.problems)
    if require_broken and not broken:
        problems.append("no broken instance declared: show that the check can fail "
                        "(pass broken=[{...overrides...}])")
    if problems:
        raise AssertionError(f"theorem {theorem.id!r} breaks the contract:\n  "
                             + "\n  ".join(problems))
    return result


def _first_failure(verdict) -> str:
    for c in verdict.comparisons:
        if not c.passed:
            return f"{c.name}: measured {c.measured} vs theory {c.theory} ({c.tolerance})"
    return ""
