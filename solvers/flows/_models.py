"""One vocabulary for the models and state blocks of the flows (issue 13, "one vocabulary").

The names are shared with :mod:`theory` (``Model.name`` of :mod:`theory.symbolic`): a compiled
symbolic flow and its hand-written twin in :mod:`solvers.flows` have the same model name, the
same block names in the same order, and the same ``pack``/``unpack``.

=============  ==========================================  =====================================
model          parameter blocks                            extra blocks of other flow kinds
=============  ==========================================  =====================================
linear         ``w`` (d,) or (k, d)                        Minnorm: ``mu`` (n,) or (n, k), last
linear_chain   ``w`` (d,), ``a2``, ..., ``aL`` (scalars)   normalised/polar: ``rho`` (scalar),
deep_linear    ``W1``, ..., ``WL`` (d_l, d_{l-1})          last
diagonal       ``u``, ``v`` (d,)
=============  ==========================================  =====================================
"""

from __future__ import annotations

import warnings

import numpy as np

MODELS = ("linear", "linear_chain", "deep_linear", "diagonal")
"""The canonical model names, in both :mod:`solvers` and :mod:`theory`."""

MODEL_ALIASES = {
    "chain": "linear_chain",           # solvers' name before issue 13
    "linear-chain": "linear_chain",    # the CLI spelling
    "deep-linear": "deep_linear",      # the CLI spelling
    "diagonal_linear": "diagonal",     # theory's Model.name before issue 13
}
"""Old spellings still accepted on input (never produced on output)."""

MULTIPLIER = "mu"
"""Name of the Minnorm multiplier block (was ``"lambda"`` in solvers: a Python keyword)."""

RADIUS = "rho"
"""Name of the radius block of the normalised and polar flows (the last block)."""


def canonical_model(model) -> str:
    """The canonical name of ``model`` (an alias from :data:`MODEL_ALIASES` or a name of
    :data:`MODELS`).

    Raises
    ------
    ValueError
        If ``model`` is neither.
    """
    name = MODEL_ALIASES.get(model, model) if isinstance(model, str) else model
    if name not in MODELS:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}.")
    return name


def pack_arguments(blocks, values, arrays) -> dict:
    """Merge the two spellings of ``pack`` and map the old block names onto ``blocks``.

    ``pack(mapping)`` and ``pack(**arrays)`` (or both) are the same call. Old names accepted:
    ``lambda`` for ``mu`` (deprecated: a keyword, it needed ``pack(**{"lambda": ...})``) and a
    vector ``a`` of shape ``(L-1,)`` for the chain scalars ``a2, ..., aL`` (a convenience).
    """
    if values is None:
        merged = {}
    elif hasattr(values, "keys"):
        merged = dict(values)
    else:
        raise TypeError(f"pack takes a mapping name -> array and/or keyword arrays; got "
                        f"{type(values).__name__}. Call pack(w=w0) or pack({{'w': w0}}).")
    dup = sorted(set(merged) & set(arrays))
    if dup:
        raise ValueError(f"blocks {dup} were given both in the mapping and as keywords; give "
                         f"each block once.")
    merged.update(arrays)
    # twin of the same rule in theory/symbolic/_flows.py (theory.symbolic
    # imports no solver): keep both identical; tests/test_twins.py pins that they accept
    # the same calls
    if "lambda" in merged and "lambda" not in blocks and MULTIPLIER in blocks:
        if MULTIPLIER in merged:
            raise ValueError("both 'mu' and its old name 'lambda' were given; pass only mu=.")
        warnings.warn("the Minnorm multiplier block is now named 'mu'; pass mu= instead of "
                      "**{'lambda': ...}.", DeprecationWarning, stacklevel=3)
        merged[MULTIPLIER] = merged.pop("lambda")
    scalars = [k for k in blocks if k[:1] == "a" and k[1:].isdigit()]
    if "a" in merged and "a" not in blocks and scalars:
        if any(k in merged for k in scalars):
            raise ValueError(f"give the chain scalars either as a= (a vector) or as "
                             f"{', '.join(scalars)}, not both.")
        a = np.asarray(merged.pop("a"), dtype=np.float64)
        if a.shape != (len(scalars),):
            raise ValueError(f"a must be the vector ({', '.join(scalars)}) of shape "
                             f"({len(scalars)},); got shape {a.shape}.")
        merged.update({k: a[i] for i, k in enumerate(scalars)})
    return merged
