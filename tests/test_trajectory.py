"""Trajectory: the frozen result of solvers.integrate, and the flat-state layout helpers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from solvers.flows._trajectory import Trajectory, normalise_blocks, pack_state, unpack_state

BLOCKS = {"W1": (2, 3), "W2": (1, 2), "b": (4,)}


def _traj(T=5):
    N = 6 + 2 + 4
    states = np.arange(T * N, dtype=float).reshape(T, N)
    return Trajectory(times=np.linspace(0, 1, T), states=states, blocks=BLOCKS, status="success",
                      message="ok", method="LSODA", log_time=False, rtol=1e-10, atol=1e-12,
                      nfev=7, t_events=(np.array([0.5]),), y_events=(states[2:3],))


def test_pack_unpack_roundtrip_in_c_order(rng):
    arrays = {k: rng.standard_normal(s) for k, s in BLOCKS.items()}
    y = pack_state(BLOCKS, arrays)
    # layout contract: blocks in order, each raveled in C order
    expected = np.concatenate([arrays["W1"].ravel(order="C"), arrays["W2"].ravel(), arrays["b"]])
    np.testing.assert_array_equal(y, expected)
    back = unpack_state(BLOCKS, y)
    for k in BLOCKS:
        np.testing.assert_array_equal(back[k], arrays[k])
    stack = unpack_state(BLOCKS, np.stack([y, 2 * y]))
    assert stack["W1"].shape == (2, 2, 3)
    np.testing.assert_array_equal(stack["W1"][1], 2 * arrays["W1"])


def test_pack_rejects_missing_or_misshapen_blocks():
    with pytest.raises(ValueError, match="lacks block 'b'"):
        pack_state(BLOCKS, {"W1": np.zeros((2, 3)), "W2": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="shape"):
        pack_state(BLOCKS, {"W1": np.zeros((3, 2)), "W2": np.zeros((1, 2)), "b": np.zeros(4)})


def test_normalise_blocks():
    assert normalise_blocks(None, 3) == {"y": (3,)}
    assert normalise_blocks([("a", 2), ("b", (1, 3))], 5) == {"a": (2,), "b": (1, 3)}
    with pytest.raises(ValueError, match="hold 12 numbers but the state has 11"):
        normalise_blocks(BLOCKS, 11)
    with pytest.raises(ValueError, match="negative"):
        normalise_blocks({"a": (-1,)})


def test_block_final_and_at():
    tr = _traj()
    assert tr.block("W1").shape == (5, 2, 3)
    np.testing.assert_array_equal(tr.block("b")[-1], tr.states[-1, 8:])
    np.testing.assert_array_equal(tr.final["W2"], tr.states[-1, 6:8].reshape(1, 2))
    np.testing.assert_array_equal(tr.at(0)["W1"], tr.states[0, :6].reshape(2, 3))
    assert tr.ok
    with pytest.raises(KeyError, match="no block 'W3'"):
        tr.block("W3")


def test_frozen_and_read_only():
    tr = _traj()
    with pytest.raises(dataclasses.FrozenInstanceError):
        tr.status = "failed"
    with pytest.raises(ValueError):
        tr.states[0, 0] = 1.0
    with pytest.raises(ValueError):
        tr.block("b")[0, 0] = 1.0


def test_inputs_are_copied():
    states = np.zeros((2, 12))
    tr = Trajectory(times=[0.0, 1.0], states=states, blocks=BLOCKS, status="success", message="",
                    method="LSODA", log_time=False, rtol=1e-10, atol=1e-12)
    states[0, 0] = 5.0
    assert tr.states[0, 0] == 0.0


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError, match="T = len"):
        Trajectory(times=[0.0], states=np.zeros((2, 12)), blocks=BLOCKS, status="success",
                   message="", method="LSODA", log_time=False, rtol=1e-10, atol=1e-12)


def test_to_dict_is_json_serialisable():
    d = json.loads(json.dumps(_traj().to_dict()))
    assert d["blocks"]["W1"] == [2, 3]
    assert d["status"] == "success" and d["nfev"] == 7
    assert len(d["states"]) == 5 and len(d["states"][0]) == 12
    assert d["t_events"] == [[0.5]]
