"""The DP that knows each stage's neighbours' kinds (placer.solvers.dp.neighbours) against
brute force: a lower bound on every contiguous placement, a real plan, and exact where
no transfer can pass over a stage (chains)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.problem import DeviceClass, DeviceKind, LinkCost, Op, Problem
from placer.solvers import SolverOptions
from placer.solvers.blocks import contract
from placer.solvers.dp.neighbours import neighbour_run, solve_neighbours
from placer.solvers.dp.search import _ideal_lattice, _Stages
from tests.solvers.test_dp_links import cluster_problems
from tests.strategies import brute_force, describe


def _neighbours(problem):
    """``(plan, value)`` of the neighbour DP over the problem's full lattice."""
    blocks = contract(problem)
    options = SolverOptions()
    stages = _Stages(blocks, _ideal_lattice(blocks, 10**6, options))
    run = neighbour_run(problem, blocks)
    assert run is not None
    placement, value, _ = solve_neighbours(problem, blocks, run, stages, math.inf, options)
    return placement, value


def _optimum(problem):
    try:
        return brute_force(problem, contiguous=True)
    except InfeasiblePlacement:
        return None


@settings(max_examples=150, deadline=None)
@given(cluster_problems())
def test_its_value_bounds_every_contiguous_placement(problem) -> None:
    """Below the optimum, always; its plan a valid placement no better than the optimum,
    and the optimum itself when it costs what the DP charged."""
    expected = _optimum(problem)
    placement, value = _neighbours(problem)
    if expected is None:
        assert placement is None and value == math.inf, describe(problem)
        return
    assert placement is not None, describe(problem)
    assert value <= expected + 1e-9, describe(problem)
    evaluation = evaluate(problem, placement)
    assert evaluation.valid, evaluation.violations
    assert evaluation.max_load >= expected - 1e-9
    if evaluation.max_load <= value + 1e-9:
        assert evaluation.max_load == pytest.approx(expected, abs=1e-9), describe(problem)


@settings(max_examples=100, deadline=None)
@given(cluster_problems(training=True))
def test_its_value_bounds_every_contiguous_training_placement(problem) -> None:
    """As above, with backward ops: gradients flow from later stages to earlier ones,
    so a stage may receive what a stage after it sends."""
    test_its_value_bounds_every_contiguous_placement.hypothesis.inner_test(problem)


@settings(max_examples=150, deadline=None)
@given(cluster_problems(chain=True))
def test_it_is_exact_on_a_chain(problem) -> None:
    """No transfer passes over a stage of a chain: every stage is charged its neighbours'
    true links, so the value is the optimum and the plan costs it."""
    expected = _optimum(problem)
    placement, value = _neighbours(problem)
    if expected is None:
        assert placement is None, describe(problem)
        return
    assert value == pytest.approx(expected, abs=1e-9), describe(problem)
    assert evaluate(problem, placement).max_load == pytest.approx(expected, abs=1e-9)


def _op(key, name, latency, out=0.0, color=None, backward=False) -> Op:
    """An op every kind runs, needing no memory, with ``out`` bytes of output; in a
    colour of its own unless ``color`` names another's."""
    return Op(key=key, name=name, latency=latency, supported=(True,) * len(latency),
              size_bytes=0.0, transfer_cost=0.0, color=key if color is None else color,
              output_bytes=out, backward=backward)  # fmt: skip


def _two_gpus_and_a_cpu(fast: LinkCost, slow: LinkCost):
    """``(kinds, links)``: two GPUs and a CPU, ``slow`` between a GPU and the CPU."""
    kinds = (
        DeviceKind("gpu", DeviceClass.ACCELERATOR, 2, math.inf),
        DeviceKind("cpu", DeviceClass.CPU, 1, math.inf),
    )
    return kinds, ((fast, slow), (slow, fast))


def test_a_transfer_over_a_stage_is_charged_no_more_than_it_costs() -> None:
    """``p -> r`` passes over the CPU stage that holds ``q``: the best plan sends it GPU to
    GPU, and the DP must not charge it the CPU's slow link (its bound would then exceed
    the optimum)."""
    kinds, links = _two_gpus_and_a_cpu(LinkCost(0.0, 0.01), LinkCost(0.0, 10.0))
    # p2 is kept with p (one colour), so that the stage of q comes after p's
    ops = (_op(0, "p", (5.0, 50.0), 10.0), _op(1, "p2", (0.0, 0.0), 1.0, color=0),
           _op(2, "q", (50.0, 5.0)), _op(3, "r", (5.0, 50.0)))  # fmt: skip
    problem = Problem("skip", ops, ((1, 2), (2, 3), (0, 3)), kinds, links=links)
    expected = _optimum(problem)
    placement, value = _neighbours(problem)
    assert value <= expected + 1e-9
    assert evaluate(problem, placement).max_load == pytest.approx(expected)


@pytest.mark.parametrize(("into", "out_of"), [(10.0, 10.0), (5.0, 20.0)])
def test_a_cpu_stage_inside_a_residual_block_is_charged_its_links(into, out_of) -> None:
    """A CPU stage holds the middle of a residual block (``q``), the residual ``p -> r``
    passing over it, as a host CPU between GPU stages does on a transformer: the stage
    before it sends ``q``'s input (``into`` bytes) over the slow link and the stage after
    receives its output (``out_of``) over it, with the residual over the fast one.
    Neither CPU neighbour is clean or receiving in the plain sense, yet the DP must charge
    each its true load, whichever is the bottleneck, so its bound is the optimum."""
    kinds, links = _two_gpus_and_a_cpu(LinkCost(0.0, 0.01), LinkCost(0.0, 0.2))
    # p and its norm n share a block; q (the MLP) is cheap only on the CPU
    ops = (_op(0, "p", (5.0, 50.0), 1.0), _op(1, "n", (0.0, 0.0), into, color=0),
           _op(2, "q", (50.0, 1.0), out_of), _op(3, "r", (5.0, 50.0)))  # fmt: skip
    problem = Problem("residual", ops, ((0, 1), (1, 2), (2, 3), (0, 3)), kinds, links=links)
    expected = _optimum(problem)
    assert expected == pytest.approx(5.0 + max(into, out_of) * 0.2 + 1 * 0.01)  # gpu, cpu, gpu
    placement, value = _neighbours(problem)
    assert value == pytest.approx(expected, abs=1e-9)
    assert evaluate(problem, placement).max_load == pytest.approx(expected, abs=1e-9)


def test_a_gradient_from_a_later_stage_is_charged_no_more_than_its_link() -> None:
    """In training, ``c``'s gradient flows back to both ``a`` and ``b``: the stage of ``b``
    receives it from ``c``'s CPU over a fast link, not from its neighbour ``a`` over the
    slow one.  Charging it the link to the previous stage would put the bound above the
    optimum (9 against 5.2)."""
    slow, fast = LinkCost(0.0, 2.0), LinkCost(0.0, 0.1)
    kinds = (
        DeviceKind("gpu", DeviceClass.ACCELERATOR, 1, math.inf),
        DeviceKind("other", DeviceClass.ACCELERATOR, 1, math.inf),
        DeviceKind("cpu", DeviceClass.CPU, 1, math.inf),
    )
    links = ((fast, slow, fast), (slow, fast, fast), (fast, fast, fast))
    nothing = (0.0, 0.0, 0.0)
    ops = (_op(0, "a", (5, 5, 50)), _op(1, "b", (5, 50, 50)), _op(2, "c", (50, 50, 5)),
           _op(3, "a/grad", nothing, color=0, backward=True),
           _op(4, "b/grad", nothing, color=1, backward=True),
           _op(5, "c/grad", nothing, 2.0, color=2, backward=True))  # fmt: skip
    edges = ((0, 1), (0, 2), (1, 2), (5, 3), (5, 4), (4, 3))
    problem = Problem("gradients", ops, edges, kinds, links=links)
    expected = _optimum(problem)
    assert expected == pytest.approx(5.2)  # other: a, gpu: b, cpu: c
    placement, value = _neighbours(problem)
    assert value == pytest.approx(expected, abs=1e-9)  # the fastest link left is c's
    assert evaluate(problem, placement).max_load == pytest.approx(expected)
