"""autograd.profiler: every op's forward and backward counted once, and the engine restored afterwards."""

import numpy as np

import autograd as ag
from autograd.function import Function


def test_counts_each_op_call_once_forward_and_backward():
    a = ag.tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    b = ag.tensor(np.random.default_rng(1).standard_normal((4, 5)), requires_grad=True)
    with ag.profiler.profile() as prof:
        loss = ((a * b + a).max() + (a - b).min()) * 2.0
        loss.backward()
    calls = {(row["op"], row["phase"]): row["calls"] for row in prof.rows()}
    for op, n in [("Mul", 2), ("Add", 2), ("Sub", 1), ("Max", 1), ("Min", 1)]:
        assert calls[op, "forward"] == n, (op, calls)
        assert calls[op, "backward"] == n, (op, calls)
    assert sum(prof.by_op().values()) <= prof.total_seconds
    assert "ms of the block's" in prof.table()


def test_the_engine_is_restored_and_nothing_is_counted_outside():
    before = {
        cls: (cls.__dict__.get("forward"), cls.__dict__.get("backward")) for cls in Function.registry.values()
    }
    with ag.profiler.profile() as prof:
        pass
    after = {
        cls: (cls.__dict__.get("forward"), cls.__dict__.get("backward")) for cls in Function.registry.values()
    }
    assert before == after
    (ag.ones(3, requires_grad=True) * 2).sum().backward()
    assert prof.rows() == []


def test_an_error_inside_still_restores_the_engine():
    original = Function.registry["autograd.ops.elementwise.Mul"].__dict__["forward"]
    try:
        with ag.profiler.profile():
            raise KeyError("boom")
    except KeyError:
        pass
    assert Function.registry["autograd.ops.elementwise.Mul"].__dict__["forward"] is original
