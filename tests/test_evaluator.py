"""The evaluator, the oracle of every solver test, checked against loads computed by hand.

Each case is small enough to work out on paper; the expected figures are written out
term by term in the comments, not computed by the code under test.
"""

from __future__ import annotations

import math

import pytest

from placer.evaluator import evaluate
from placer.problem import DeviceClass, DeviceKind, LinkCost, Op, Placement, Problem, Replica

GPU = DeviceKind("gpu", DeviceClass.ACCELERATOR, 2, memory_bytes=100.0)
CPU = DeviceKind("cpu", DeviceClass.CPU, 1, pays_communication=False)


def op(key, gpu, cpu, *, size=0.0, transfer=0.0, out=0.0, color=None, supported=(True, True)):
    return Op(key, str(key), (gpu, cpu), supported, size, transfer,
              color if color is not None else hash(key) % 10_000, output_bytes=out)  # fmt: skip


def chain(**links) -> Problem:
    """a -> b -> c -> d; a also feeds c (a skip edge)."""
    ops = (
        op("a", 1.0, 10.0, size=30.0, transfer=0.5, out=100.0),
        op("b", 2.0, 20.0, size=30.0, transfer=0.25, out=200.0),
        op("c", 3.0, 30.0, size=30.0, transfer=0.125, out=300.0),
        op("d", 4.0, 40.0, size=30.0, transfer=1.0, out=0.0),
    )
    edges = ((0, 1), (1, 2), (2, 3), (0, 2))
    return Problem("chain", ops, edges, (GPU, CPU), **links)


def test_transfer_costs_without_links():
    problem = chain()
    # gpu:0 holds a, b; gpu:1 holds c, d
    result = evaluate(problem, Placement((0, 0, 1, 1)))
    first, second = result.stages
    # gpu:0: compute 1 + 2; sends a (to c: 0.5) and b (0.25), each once
    assert (first.compute, first.communication) == (3.0, 0.75)
    # gpu:1: compute 3 + 4; receives a and b: 0.5 + 0.25
    assert (second.compute, second.communication) == (7.0, 0.75)
    assert result.max_load == 7.75
    assert result.valid and result.contiguous
    assert [s.device for s in result.stages] == [0, 1]
    assert first.memory_bytes == 60.0 and second.memory_bytes == 60.0


def test_a_sender_pays_once_for_an_output_read_on_two_devices():
    problem = chain()
    # a on gpu:0, b on gpu:1, c and d on the cpu: a's output goes to gpu:1 and the cpu
    result = evaluate(problem, Placement((0, 1, 2, 2)))
    loads = {s.device: s for s in result.stages}
    assert loads[0].communication == 0.5  # a's transfer, once
    assert loads[1].communication == 0.5 + 0.25  # receives a, sends b
    assert loads[2].communication == 0.0  # the cpu does not pay for communication
    assert loads[2].compute == 30.0 + 40.0
    assert result.max_load == 70.0


def test_links_of_different_speeds():
    nvlink = LinkCost(latency=0.01, seconds_per_byte=0.001)
    pcie = LinkCost(latency=0.1, seconds_per_byte=0.01)
    problem = chain(links=((nvlink, pcie), (pcie, pcie)))
    # a on gpu:0; b on gpu:1; c, d on the cpu
    result = evaluate(problem, Placement((0, 1, 2, 2)))
    loads = {s.device: s for s in result.stages}
    # gpu:0 sends a (100 bytes) to gpu:1 over nvlink (0.01 + 0.1 = 0.11) and to the cpu
    # over pcie (0.1 + 1.0 = 1.1): the sender pays once, at the slowest link
    assert loads[0].communication == pytest.approx(1.1)
    # gpu:1 receives a over nvlink (0.11) and sends b (200 bytes) over pcie (0.1 + 2.0)
    assert loads[1].communication == pytest.approx(0.11 + 2.1)
    assert loads[1].load == pytest.approx(2.0 + 2.21)
    assert result.max_load == pytest.approx(70.0)  # the cpu: 30 + 40, pays nothing


def test_a_replica_is_paid_once_by_each_device_that_reads_it():
    replica = Replica("table", latency=(0.5, 5.0), size_bytes=7.0, readers=(1, 2, 3))
    problem = chain(replicas=(replica,))
    result = evaluate(problem, Placement((0, 0, 1, 1)))
    first, second = result.stages
    # gpu:0 holds b (a reader) and gpu:1 holds c and d (readers): each pays it once
    assert first.compute == 1.0 + 2.0 + 0.5 and first.memory_bytes == 60.0 + 7.0
    assert second.compute == 3.0 + 4.0 + 0.5 and second.memory_bytes == 60.0 + 7.0
    alone = evaluate(problem, Placement((0, 1, 1, 1)))
    # gpu:0 holds only a, which does not read it
    assert alone.stages[0].compute == 1.0 and alone.stages[0].memory_bytes == 30.0


def test_memory_over_the_cap_is_a_violation():
    problem = chain()
    assert evaluate(problem, Placement((0, 0, 0, 1))).valid  # gpu:0 holds 90 of 100 bytes
    result = evaluate(problem, Placement((0, 0, 0, 0)))  # 120 bytes
    assert len(result.violations) == 1 and "gpu:0 holds 120" in result.violations[0]
    # the working memory of a device in use counts in what it holds and in its cap alike:
    # the ops still get memory_bytes
    reserved = chain(reserved_bytes=15.0)
    result = evaluate(reserved, Placement((0, 0, 0, 1)))
    assert result.stages[0].memory_bytes == 90.0 + 15.0 and result.valid
    assert not evaluate(reserved, Placement((0, 0, 0, 0))).valid


def test_unsupported_op_and_split_colour_are_violations():
    ops = list(chain().ops)
    ops[3] = op("d", 4.0, 40.0, supported=(True, False))
    ops[1] = op("b", 2.0, 20.0, color=ops[0].color)  # b must share a's device
    problem = Problem("bad", tuple(ops), chain().edges, (GPU, CPU))
    result = evaluate(problem, Placement((0, 1, 1, 2)))
    assert any("not supported on cpu:0" in v for v in result.violations)
    assert any("colour class" in v for v in result.violations)
    assert not result.valid
    assert math.isfinite(result.max_load)


def test_a_cycle_between_stages_is_not_contiguous():
    problem = chain()
    # a, c on gpu:0 and b on gpu:1: a -> b -> c goes there and back
    result = evaluate(problem, Placement((0, 1, 0, 0)))
    assert not result.contiguous and not result.valid
    assert evaluate(problem, Placement((0, 1, 0, 0)), require_contiguous=False).valid


def test_the_bottleneck_is_the_busiest_stage():
    result = evaluate(chain(), Placement((0, 0, 0, 1)))
    # gpu:0: 1 + 2 + 3 compute, sends c: 0.125; gpu:1: 4 + receives c: 0.125
    assert result.bottleneck.device == 0
    assert result.max_load == 6.125
