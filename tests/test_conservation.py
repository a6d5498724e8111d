"""Tests for theory.conservation: symbolic proofs (and failures) of the balancedness laws, and
the numeric check along integrated trajectories of the compiled flows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from theory.symbolic import (
    LAM,
    compile_flow,
    conserved_quantities,
    deep_linear_net,
    derive_gradient_flow,
    derive_minnorm_flow,
    diagonal_linear_net,
    linear_chain,
    linear_model,
    prove_conserved,
)

# Integrator tolerances (DOP853) and the drift allowed on O(1) quantities over t <= 3:
# global error ~ 1e2 * rtol in practice; 1e-7 sits well above it.
ODE_RTOL = 1e-11
ODE_ATOL = 1e-12
DRIFT_ATOL = 1e-7


@pytest.mark.parametrize("depth", [2, 3, 6])
@pytest.mark.parametrize("weight_decay", [False, True])
def test_deep_linear_balancedness_is_proved(depth, weight_decay):
    m = deep_linear_net([2, 3, 3, 2, 2, 3, 1][: depth + 1])
    loss = "logistic" if m.output_dim == 1 else "squared"
    flow = derive_gradient_flow(m, loss, weight_decay=weight_decay)
    laws = conserved_quantities(m)
    assert sorted(laws) == [f"D{l}" for l in range(1, depth)]
    for name, Q in laws.items():
        proof = prove_conserved(flow, name)
        assert proof.holds, proof.status
        assert proof.status == "proved"
        if weight_decay:
            # Q' = -2 lam Q exactly (docs/theory.md §3)
            residual = (proof.derivative + 2 * LAM * Q).doit().expand().doit()
            assert residual == sp.ZeroMatrix(*Q.shape)
        else:
            assert proof.derivative == sp.ZeroMatrix(*Q.shape)


def test_chain_and_diagonal_laws_are_proved():
    chain = linear_chain(4, d=2)
    laws = conserved_quantities(chain)
    w, a2 = chain.block("w").symbol, chain.block("a2").symbol
    # D1 = a2^2 - ||w||^2 in matrix form
    assert (laws["D1"] - (a2.T * a2 - w.T * w)).doit() == sp.ZeroMatrix(1, 1)
    for wd in (False, True):
        flow = derive_gradient_flow(chain, "exp", weight_decay=wd)
        assert all(prove_conserved(flow, q).holds for q in laws)
        dflow = derive_gradient_flow(diagonal_linear_net(3), "logistic", weight_decay=wd)
        assert prove_conserved(dflow, "uv").holds
    assert conserved_quantities(linear_model(3)) == {}


def test_non_conserved_quantity_fails():
    m = deep_linear_net([2, 3, 1])
    flow = derive_gradient_flow(m, "squared")
    W1, W2 = (b.symbol for b in m.block_list)
    proof = prove_conserved(flow, W2.T * W2 + W1 * W1.T)  # sum instead of difference
    assert not proof.holds and proof.status.startswith("not proved")
    d = diagonal_linear_net(2)
    u = d.block("u").symbol
    assert not prove_conserved(derive_gradient_flow(d, "exp"), sp.HadamardProduct(u, u)).holds
    # with weight decay, the plain-flow claim "Q' = 0" is false: the proof object says -2 lam Q
    wd = derive_gradient_flow(m, "squared", weight_decay=True)
    p = prove_conserved(wd, "D1")
    assert p.holds and p.derivative != sp.ZeroMatrix(3, 3)


def test_wrong_flow_fails():
    m = deep_linear_net([2, 3, 1])
    flow = derive_gradient_flow(m, "squared")
    # double the speed of W1 only: no longer a gradient flow, balancedness breaks
    wrong = dataclasses.replace(flow, rhs_list=(2 * flow.rhs_list[0], flow.rhs_list[1]))
    assert not prove_conserved(wrong, "D1").holds
    # the Minnorm flow's -beta*theta term also breaks exact conservation (no weight-decay claim)
    mm = derive_minnorm_flow(m, task="regression", n=3)
    assert not prove_conserved(mm, conserved_quantities(m)["D1"]).holds


@pytest.mark.parametrize("lam", [0.0, 0.4])
def test_balancedness_along_integrated_trajectory(lam, rng):
    # numeric counterpart: D_l(t) = exp(-2 lam t) D_l(0) along the compiled flow (DOP853)
    m = deep_linear_net([3, 4, 2, 1])
    flow = derive_gradient_flow(m, "logistic", weight_decay=True)
    f = compile_flow(flow, jacobian=False).bind(
        X=rng.standard_normal((8, 3)), y=rng.choice([-1.0, 1.0], size=8), lam=lam
    )
    y0 = rng.standard_normal(flow.size) * 0.7
    T = 3.0
    sol = solve_ivp(f, (0, T), y0, method="DOP853", rtol=ODE_RTOL, atol=ODE_ATOL)
    assert sol.success

    def D(y):
        W = f.unpack(y)
        return [W["W2"].T @ W["W2"] - W["W1"] @ W["W1"].T,
                W["W3"].T @ W["W3"] - W["W2"] @ W["W2"].T]

    for D0, DT in zip(D(y0), D(sol.y[:, -1]), strict=True):
        np.testing.assert_allclose(DT, np.exp(-2 * lam * T) * D0, rtol=0, atol=DRIFT_ATOL)
    # and the trajectory really moved (the invariant is not trivially satisfied)
    assert np.linalg.norm(sol.y[:, -1] - y0) > 0.1


def test_proof_object_latex_and_dict():
    flow = derive_gradient_flow(deep_linear_net([2, 2, 1]), "squared")
    p = prove_conserved(flow, "D1")
    assert r"\frac{d}{dt}" in p.latex()
    json.dumps(p.to_dict())


def test_bad_arguments_raise():
    m = deep_linear_net([2, 2, 1])
    flow = derive_gradient_flow(m, "squared")
    with pytest.raises(ValueError, match="'D7'"):
        prove_conserved(flow, "D7")
    with pytest.raises(TypeError, match="GradientFlow"):
        prove_conserved("flow", "D1")
    with pytest.raises(ValueError, match="method='matrix'"):
        prove_conserved(derive_gradient_flow(m, "squared", method="entrywise", n=2), "D1")
