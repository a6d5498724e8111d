"""Discovery of conservation laws (issue 10 §3; Marcotte, Gribonval & Peyré 2023): the laws of
UVᵀ and of two-layer ReLU nets are exactly the paper's, counts on deep linear, diagonal and a
user model match the known balancedness laws, a non-law is refused, weight decay lowers the
count, and the laws hold numerically along flows of two different losses."""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings

from theory.catalogue import marcotte2023 as mod
from theory.symbolic import (
    Model,
    count_conserved,
    deep_linear_net,
    derive_gradient_flow,
    diagonal_linear_net,
    find_conserved,
    prove_conserved,
)


def _uv(n=3, m=3, r=2):
    return mod.model_and_phi(mod.make_instance(0, n=n, m=m, r=r))


def test_uv_laws_are_exactly_the_balancedness_entries():
    model, phi, paper = _uv()
    res = find_conserved(model, 2)
    assert len(res.laws) == 3 and all(p.holds for p in res.proofs)
    theta = model.parameter_entries()
    assert mod._span_rank(list(res.laws) + paper, theta) == 3  # same span, no others
    assert res.count.n_laws == 3 and res.complete
    assert res.statement.startswith("the laws found are complete")


def test_relu_laws_are_per_neuron():
    model, phi, paper = mod.model_and_phi(mod.make_instance(0, arch="relu", n=3, r=3))
    res = find_conserved(model, 2, phi=phi)
    assert len(res.laws) == 3 and res.complete
    assert mod._span_rank(list(res.laws) + paper, model.parameter_entries()) == 3


@pytest.mark.parametrize(("model", "expected"), [
    (deep_linear_net([2, 3, 2]), 6),        # D1 = W2ᵀW2 − W1W1ᵀ: 3×3 symmetric
    (deep_linear_net([2, 3, 3, 2]), 12),    # D1, D2: two 3×3 symmetric
    (diagonal_linear_net(4), 4),            # u ⊙ v
], ids=["deep_linear_232", "deep_linear_2332", "diagonal_4"])
def test_counts_match_known_laws(model, expected):
    assert count_conserved(model).n_laws == expected


def test_user_model_count_and_laws():
    """Quadratic activation f = Σ_j v_j (u_jᵀx)²: per-neuron ||u_j||² − 2 v_j² (degree-2 scaling
    u → c u, v → v / c²), and the count says these are all."""
    model = Model.from_expression("quad", {"U": (2, 2), "v": (2,)},
                                  lambda U, v, x: v.T * (U * x).applyfunc(lambda z: z**2),
                                  input_dim=2)
    res = find_conserved(model, 2)
    U, v = (b.symbol for b in model.block_list)
    expected = [U[j, 0]**2 + U[j, 1]**2 - 2 * v[j, 0]**2 for j in range(2)]
    assert len(res.laws) == 2 and res.complete
    assert mod._span_rank(list(res.laws) + expected, model.parameter_entries()) == 2


def test_non_law_refused_by_prove_conserved():
    model, _, paper = _uv()
    flow = derive_gradient_flow(model, "squared")
    theta = model.parameter_entries()
    assert prove_conserved(flow, paper[0]).holds
    non_law = sum(t**2 for t in theta)  # ||U||² + ||V||²
    proof = prove_conserved(flow, non_law)
    assert not proof.holds and proof.status.startswith("not proved")
    # with weight decay a balancedness entry decays as e^{-2λt}: proved with expected −2λQ
    wd = derive_gradient_flow(model, "squared", weight_decay=True)
    assert prove_conserved(wd, paper[0]).holds


def test_weight_decay_breaks_a_symmetry_and_lowers_the_count():
    model, _, _ = _uv()
    plain, decayed = count_conserved(model), count_conserved(model, weight_decay=True)
    assert (plain.n_laws, decayed.n_laws) == (3, 2)
    assert find_conserved(model, 2, weight_decay=True).laws == ()


def test_first_layer_bias_keeps_the_count_but_changes_the_laws():
    """f = U(Vᵀx + b) = U Wᵀ [x; 1] with W = [V; bᵀ]: the laws become UᵀU − VᵀV − bbᵀ."""
    model = Model.from_expression("uvb", {"U": (2, 2), "V": (2, 2), "b": (2,)},
                                  lambda U, V, b, x: U * (V.T * x + b), input_dim=2)
    res = find_conserved(model, 2)
    U, V, b = (blk.symbol for blk in model.block_list)
    B = (U.T * U - V.T * V - b * b.T).as_explicit()
    expected = [sp.expand(B[i, j]) for i in range(2) for j in range(i, 2)]
    assert mod._span_rank(list(res.laws) + expected, model.parameter_entries()) == 3
    assert len(res.laws) == 3 and res.complete


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_laws_hold_along_flows_of_two_losses(loss):
    model, phi, _ = _uv()
    res = find_conserved(model, 2, count=False)
    assert mod.flow_drift(model, phi, res.laws, loss, seed=3) <= mod.DRIFT_RTOL
    # the same measurement sees a non-law drift: the check can fail
    non_law = [sum(t**2 for t in model.parameter_entries())]
    assert mod.flow_drift(model, phi, non_law, loss, seed=3) > 1e3 * mod.DRIFT_RTOL


def test_bad_input_named():
    model, _, _ = _uv()
    with pytest.raises(ValueError, match="degree must be an int >= 1"):
        find_conserved(model, 0)
    with pytest.raises(TypeError, match="never parsed"):
        find_conserved(model, 2, phi="U*V")
    with pytest.raises(ValueError, match="not parameter entries"):
        find_conserved(model, 2, phi=[sp.Symbol("z")])
    tnet = Model.from_expression("tnet", {"a": (2,)}, lambda a, x: (a.T * x).applyfunc(sp.tanh),
                                 input_dim=2)
    with pytest.raises(ValueError, match="not polynomial in x"):
        count_conserved(tnet)


@pytest.mark.parametrize("theorem", mod.THEOREMS, ids=lambda t: t.id)
def test_catalogue_default_passes_and_broken_claim_fails(theorem):
    assert theorem.check().status == "passed"
    assert theorem.check(theorem.make_instance(0, claimed="norm_sum")).status == "failed"


@settings(max_examples=3, deadline=None)
@given(mod.strategy())
def test_catalogue_random_instances_pass(instance):
    assert mod.check(instance).status == "passed"
