"""Hostile names cannot inject code into generated source (issue 14, item 14).

Two layers are tested separately: :class:`theory.symbolic.Model` refuses any name that is not a
Python identifier at construction, and :func:`theory.symbolic.compile_flow` on its own (model
validation bypassed) renders free text only inside ``repr()`` literals and refuses non-identifier
symbol names. Each exploit writes a sentinel file and sets a builtins attribute if it runs; on
the code before this fix the first codegen test created the file.
"""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import sympy as sp

from theory.symbolic import (
    Block,
    Model,
    compile_flow,
    derive_gradient_flow,
    diagonal_linear_net,
    linear_model,
)

SENTINEL_ATTR = "_marginflow_pwned"


def _payloads(path):
    """Names that close a docstring / a statement / a string and then run code."""
    code = f"open({str(path)!r}, 'w').write('x'); import builtins; builtins.{SENTINEL_ATTR} = 1"
    return [
        f'x"""\n{code}\n"""',
        f"x'''\n{code}\n'''",
        f"x\\\n{code}\n",
        f"x\n{code}\n#",
        f"x = 1; {code}",
    ]


@pytest.fixture
def sentinel(tmp_path):
    path = tmp_path / "pwned"
    if hasattr(builtins, SENTINEL_ATTR):
        delattr(builtins, SENTINEL_ATTR)
    yield path
    assert not path.exists(), "hostile code ran: the sentinel file was created"
    assert not hasattr(builtins, SENTINEL_ATTR), "hostile code ran: the global was set"


def _data(model, n=3):
    rng = np.random.default_rng(0)
    return {"X": rng.standard_normal((n, model.input_dim)),
            "Y": rng.standard_normal((n, model.output_dim))}


@pytest.mark.parametrize("bad", ["class", "a b", "", "1x", "W1;x", "λ-1"])
def test_model_refuses_non_identifier_name(bad):
    m = linear_model(2)
    with pytest.raises(ValueError, match="Model.name must be a valid Python identifier"):
        Model(name=bad, block_list=m.block_list, degree=1, input_dim=2, output_dim=1,
              end_to_end=m.end_to_end, factors=m.factors)


def test_model_refuses_hostile_names_at_construction(sentinel):
    m = linear_model(2)
    for bad in _payloads(sentinel):
        with pytest.raises(ValueError, match="Model.name"):
            Model(name=bad, block_list=m.block_list, degree=1, input_dim=2, output_dim=1,
                  end_to_end=m.end_to_end, factors=m.factors)
        with pytest.raises(ValueError, match="Block.name"):
            Block(name=bad, shape=(2,), symbol=sp.MatrixSymbol("w", 2, 1))
        with pytest.raises(ValueError, match="symbol name"):
            Block(name="w", shape=(2,), symbol=sp.MatrixSymbol(bad, 2, 1))


def test_model_refuses_hostile_symbol_in_end_to_end(sentinel):
    m = linear_model(2)
    for bad in _payloads(sentinel):
        evil = sp.MatrixSymbol(bad, 1, 2)
        with pytest.raises(ValueError, match="Model.end_to_end: symbol name"):
            Model(name="linear", block_list=m.block_list, degree=1, input_dim=2, output_dim=1,
                  end_to_end=m.end_to_end + evil, factors=None)


def test_codegen_renders_hostile_model_and_loss_names_as_text(sentinel):
    """Model validation bypassed: the name reaches only the docstring, as a literal."""
    for bad in _payloads(sentinel):
        m = linear_model(2)
        object.__setattr__(m, "name", bad)  # bypass Model.__post_init__ on purpose
        flow = derive_gradient_flow(m, "squared")
        object.__setattr__(flow.loss, "name", bad)
        cf = compile_flow(flow)
        out = cf.rhs(0.0, np.ones(2), _data(m))
        assert out.shape == (2,)
        cf.jac(0.0, np.ones(2), _data(m))
        assert bad in cf.rhs.__doc__  # kept verbatim, as data


def test_codegen_refuses_hostile_symbol_names(sentinel):
    """A symbol whose name is code, smuggled past Model validation, is refused by the printer."""
    for bad in _payloads(sentinel):
        m = diagonal_linear_net(2)
        evil = sp.MatrixSymbol(bad, 1, 2)
        object.__setattr__(m, "end_to_end", m.end_to_end + evil)
        flow = derive_gradient_flow(m, "squared")
        with pytest.raises(ValueError, match="symbol name in generated code"):
            compile_flow(flow)


def test_codegen_refuses_hostile_block_and_hyper_names(sentinel):
    for bad in _payloads(sentinel):
        m = linear_model(2)
        flow = derive_gradient_flow(m, "squared", weight_decay=True)
        b = flow.block_list[0]
        object.__setattr__(b, "name", bad)
        with pytest.raises(ValueError, match="block name"):
            compile_flow(flow)
        object.__setattr__(b, "name", "w")
        object.__setattr__(flow, "hyper", (sp.Symbol(bad),))
        with pytest.raises(ValueError, match="hyper-parameter name"):
            compile_flow(flow)
