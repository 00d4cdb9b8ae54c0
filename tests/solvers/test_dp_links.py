"""The DP with per-link transfer costs (clusters) against brute force.

With links of different speeds the DP brackets the contiguous optimum: its plan is no
better than brute force's best, its lower bound no higher, and when it claims
optimality the plan is the optimum.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.problem import DeviceClass, DeviceKind, LinkCost, Op, Problem
from placer.solvers.dp.search import solve_dp
from tests.strategies import brute_force


@st.composite
def cluster_problems(draw, uniform_links: bool = False, chain: bool = False,
                     training: bool = False) -> Problem:  # fmt: skip
    """Up to 7 ops on three kinds; ``chain``: each op feeds only the next; ``training``:
    each op has a backward op in its colour class, the backward edges mirroring the
    forward ones (gradients flow back through the pipeline)."""
    n = draw(st.integers(1, 7))
    counts = [draw(st.integers(1, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 1))]
    kinds = (
        DeviceKind("fast", DeviceClass.ACCELERATOR, counts[0], draw(st.sampled_from([3.0, 6.0]))),
        DeviceKind("slow", DeviceClass.ACCELERATOR, counts[1], 8.0),
        DeviceKind("cpu", DeviceClass.CPU, counts[2], math.inf),
    )
    speeds = st.sampled_from([0.1, 0.5, 1.0, 2.0])
    if uniform_links:
        shared = LinkCost(draw(st.sampled_from([0.0, 0.2])), draw(speeds))
        links = tuple(tuple(shared for _ in kinds) for _ in kinds)
    else:
        table = {}
        for a in range(3):
            for b in range(a, 3):
                table[a, b] = LinkCost(draw(st.sampled_from([0.0, 0.2])), draw(speeds))
        links = tuple(tuple(table[min(a, b), max(a, b)] for b in range(3)) for a in range(3))
    ops = []
    for i in range(n):
        fast = round(draw(st.floats(0, 5)), 2)
        ops.append(
            Op(
                key=i, name=f"op{i}",
                latency=(fast, fast * draw(st.sampled_from([1.0, 2.0, 3.0])), fast * 4),
                supported=(True, draw(st.booleans()), True),
                size_bytes=float(draw(st.integers(0, 3))),
                transfer_cost=0.0, color=i,
                output_bytes=float(draw(st.integers(0, 4))),
            )
        )  # fmt: skip
    edges = [
        (u, v)
        for v in range(1, n)
        for u in ([v - 1] if chain else sorted(draw(st.sets(st.integers(0, v - 1), max_size=2))))
    ]
    if training:
        for i in range(n):
            grad = round(draw(st.floats(0, 5)), 2)
            ops.append(replace(ops[i], key=n + i, name=f"op{i}/grad", backward=True,
                               latency=(grad, grad * 2, grad * 4), size_bytes=0.0,
                               output_bytes=float(draw(st.integers(0, 4)))))  # fmt: skip
        edges += [(n + v, n + u) for u, v in edges]
    return Problem("links", tuple(ops), tuple(edges), kinds, links=links)


def solve_or_none(problem):
    try:
        return solve_dp(problem)
    except InfeasiblePlacement:
        return None


@settings(max_examples=120, deadline=None)
@given(cluster_problems())
def test_bracket_contains_the_optimum(problem) -> None:
    check_bracket(problem)


@settings(max_examples=60, deadline=None)
@given(cluster_problems(training=True))
def test_bracket_contains_the_optimum_in_training(problem) -> None:
    """Gradients flow back: a transfer's sender may come after its receivers."""
    check_bracket(problem)


@settings(max_examples=60, deadline=None)
@given(cluster_problems(training=True))
def test_the_subsets_runs_bracket_the_optimum_in_training(problem) -> None:
    """As above, with the upper and lower runs of every subset of kinds in place of the
    neighbour DP (what the search falls back to where its tables would not fit)."""
    from unittest import mock

    with mock.patch("placer.solvers.dp.search.neighbour_run", return_value=None):
        check_bracket(problem)


@settings(max_examples=100, deadline=None)
@given(cluster_problems(chain=True))
def test_the_bracket_of_a_chain_contains_the_optimum(problem) -> None:
    """A path is solved by the sweep of placer.solvers.dp.chain, brackets included."""
    check_bracket(problem)


def check_bracket(problem) -> None:
    """The DP's plan is real and no better than the optimum, its bound no higher, and an
    optimal claim is the optimum."""
    solved = solve_or_none(problem)
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        assert solved is None
        return
    assert solved is not None
    value = evaluate(problem, solved.placement).max_load
    assert value == pytest.approx(solved.objective)
    assert value >= best - 1e-9
    low = solved.stats.get("contiguous_lower_bound", value)
    assert low <= best + 1e-9
    if solved.optimal:
        assert value == pytest.approx(best, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(cluster_problems(uniform_links=True))
def test_uniform_links_are_exact(problem) -> None:
    solved = solve_or_none(problem)
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        assert solved is None
        return
    assert solved is not None and solved.optimal
    assert solved.objective == pytest.approx(best, abs=1e-9)


def _gpus_and_host(n_ops: int, pcie_seconds_per_byte: float) -> Problem:
    """A chain on two GPUs joined by a fast link and a host CPU behind a slow one."""
    kinds = (
        DeviceKind("gpu", DeviceClass.ACCELERATOR, 2),
        DeviceKind("cpu", DeviceClass.CPU, 1),
    )
    nvlink, pcie = LinkCost(0.0, 0.01), LinkCost(0.0, pcie_seconds_per_byte)
    links = ((nvlink, pcie), (pcie, nvlink))
    ops = tuple(
        Op(key=i, name=f"op{i}", latency=(1.0, 1.2), supported=(True, True), size_bytes=0.0,
           transfer_cost=0.0, color=i, output_bytes=1.0)
        for i in range(n_ops)
    )  # fmt: skip
    edges = tuple((i, i + 1) for i in range(n_ops - 1))
    return Problem("gpus+host", ops, edges, kinds, links=links)


def test_links_of_the_kinds_used_prove_the_optimum() -> None:
    """Charging a CPU stage its real (slow) links proves what the fastest link cannot.

    Every transfer at the GPUs' fast link would let the CPU take an op for 2.02; the
    true optimum is 3.01 (with or without the CPU), which the DP proves by costing
    the placements that use the CPU by the links they can actually cross.
    """
    problem = _gpus_and_host(5, pcie_seconds_per_byte=1.0)
    solved = solve_dp(problem)
    assert solved.optimal
    assert solved.objective == pytest.approx(3.01)
    assert solved.objective == pytest.approx(brute_force(problem))


def test_a_cheap_host_link_puts_the_cpu_to_work() -> None:
    problem = _gpus_and_host(5, pcie_seconds_per_byte=0.02)
    solved = solve_dp(problem)
    assert solved.objective == pytest.approx(brute_force(problem))
    assert solved.objective < 3.0  # two GPUs alone need 3 ops on one of them
    cpu = problem.devices.index(next(d for d in problem.devices if d.name == "cpu:0"))
    assert cpu in solved.placement.device_of_op
