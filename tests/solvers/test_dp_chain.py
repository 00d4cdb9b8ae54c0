"""The sweep over a linear order (placer.solvers.dp.chain) against brute force, the ideal
DP over the same order, and the evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.frontends.workload import parse_workload
from placer.problem import DeviceClass, DeviceKind, Op, Problem
from placer.solvers import SolverOptions
from placer.solvers.blocks import contract
from placer.solvers.dp.chain import solve_order
from placer.solvers.dp.costing import Role, costings
from placer.solvers.dp.search import _chain_lattice, _is_chain, _run, _Stages, solve_dp
from tests.strategies import brute_force, workloads


@st.composite
def chain_workloads(draw, max_forward: int = 8) -> Problem:
    """A path of layers (each feeds the next only), forward or training, with random
    latencies, transfer costs, unsupported layers and memory caps."""
    n = draw(st.integers(1, max_forward))
    accelerators = draw(st.integers(0 if n <= 6 else 1, 3 if n <= 6 else 2))
    cpus = draw(st.integers(0 if accelerators else 1, 1))
    training = draw(st.booleans())
    latency = st.floats(0, 10, allow_nan=False).map(lambda x: round(x, 2))
    nodes, edges = [], []
    for i in range(n):
        nodes.append({"id": i, "supportedOnFpga": draw(st.sampled_from([1, 1, 1, 0])),
                      "cpuLatency": draw(latency), "fpgaLatency": draw(latency),
                      "size": draw(st.sampled_from([0.0, 1.0, 2.0])), "isBackwardNode": 0,
                      "colorClass": i})  # fmt: skip
        if i:
            edges.append({"sourceId": i - 1, "destId": i, "cost": round(draw(st.floats(0, 3)), 2)})
        if training:
            nodes.append({"id": n + i, "supportedOnFpga": 1, "cpuLatency": draw(latency),
                          "fpgaLatency": draw(latency), "size": 0.0, "isBackwardNode": 1,
                          "colorClass": i})  # fmt: skip
    if training:
        for i in range(1, n):
            edges.append({"sourceId": n + i, "destId": n + i - 1, "cost": 0.5})
        edges.append({"sourceId": n - 1, "destId": 2 * n - 1, "cost": 0.25})
    total = sum(node["size"] for node in nodes)
    cap = draw(st.sampled_from([math.ceil(total / max(accelerators, 1)) + s for s in (0, 1, 3)]))
    return parse_workload(
        {"maxSizePerFPGA": float(cap), "maxFPGAs": accelerators, "maxCPUs": cpus,
         "nodes": nodes, "edges": edges},
        name="chain",
    )  # fmt: skip


def _optimum(problem: Problem) -> float | None:
    try:
        return brute_force(problem)
    except InfeasiblePlacement:
        return None


@settings(max_examples=150, deadline=None)
@given(chain_workloads())
def test_a_path_is_solved_exactly_without_its_lattice(problem) -> None:
    assert _is_chain(contract(problem))
    best = _optimum(problem)
    try:
        solved = solve_dp(problem, SolverOptions(max_ideals=1))  # the lattice is never built
    except InfeasiblePlacement:
        assert best is None
        return
    assert best is not None and solved.optimal
    assert "linear order" not in " ".join(solved.notes)
    evaluation = evaluate(problem, solved.placement, require_contiguous=True)
    assert evaluation.valid, evaluation.violations
    assert solved.objective == pytest.approx(best, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(workloads(max_forward=8), st.randoms(use_true_random=False))
def test_any_order_gives_a_valid_split_no_worse_than_it_claims(problem, rng) -> None:
    """On any DAG and topological order the sweep's split is a real contiguous
    placement whose true max-load is at most the figure it used, and equal to the ideal
    DP's optimum over that order when its charges are exact."""
    blocks = contract(problem)
    order = list(range(blocks.n_blocks))  # blocks are numbered topologically
    if rng.random() < 0.5:
        order = _random_topological_order(blocks, rng)
    stages = _Stages(blocks, _chain_lattice(order, blocks.n_blocks))
    for run in costings(problem, blocks):
        if run.role is Role.LOWER:
            continue
        placement, value, exact = solve_order(problem, blocks, run, order)
        reference, reference_value, _ = _run(
            problem, blocks, run, stages, math.inf, SolverOptions(max_pairs=math.inf)
        )
        if placement is None:
            assert reference is None
            continue
        evaluation = evaluate(problem, placement, require_contiguous=True)
        assert evaluation.valid, evaluation.violations
        assert evaluation.max_load <= value * (1 + 1e-9) + 1e-9
        assert reference_value <= value * (1 + 1e-9) + 1e-9  # the ideal DP is exact
        if exact:
            assert value == pytest.approx(reference_value, rel=1e-9, abs=1e-9)


def _random_topological_order(blocks, rng) -> list[int]:
    indegree = np.zeros(blocks.n_blocks, dtype=int)
    successors: list[list[int]] = [[] for _ in range(blocks.n_blocks)]
    for u, v in blocks.edges:
        successors[u].append(int(v))
        indegree[v] += 1
    ready = [b for b in range(blocks.n_blocks) if indegree[b] == 0]
    order = []
    while ready:
        b = ready.pop(rng.randrange(len(ready)))
        order.append(b)
        for c in successors[b]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    return order


def test_a_long_chain_is_solved_exactly() -> None:
    """20,000 layers: the ideal DP would visit 2·10⁸ pairs and 50 MB of bitsets."""
    n = 20_000
    rng = np.random.default_rng(7)
    nodes = [{"id": i, "supportedOnFpga": 1, "cpuLatency": float(rng.uniform(1, 9)),
              "fpgaLatency": float(rng.uniform(0.1, 0.9)), "isBackwardNode": 0,
              "colorClass": i, "size": 1.0} for i in range(n)]  # fmt: skip
    edges = [{"sourceId": i - 1, "destId": i, "cost": 0.01} for i in range(1, n)]
    problem = parse_workload(
        {"maxSizePerFPGA": 6000.0, "maxFPGAs": 4, "maxCPUs": 1, "nodes": nodes, "edges": edges}
    )
    solved = solve_dp(problem)
    assert solved.optimal
    evaluation = evaluate(problem, solved.placement, require_contiguous=True)
    assert evaluation.valid
    # four accelerators of 6,000 bytes hold at most 24,000 layers: the work is shared
    fast = sum(node["fpgaLatency"] for node in nodes)
    assert solved.objective >= fast / 5
    assert solved.objective == pytest.approx(evaluation.max_load)


def _many_kinds(n_kinds: int) -> Problem:
    """Three ops on ``n_kinds`` kinds of one device each, all alike."""
    kinds = tuple(DeviceKind(f"k{k}", DeviceClass.ACCELERATOR, 1) for k in range(n_kinds))
    ops = tuple(
        Op(key=i, name=f"op{i}", latency=(1.0,) * n_kinds, supported=(True,) * n_kinds,
           size_bytes=0.0, transfer_cost=0.1, color=i)
        for i in range(3)
    )  # fmt: skip
    return Problem("kinds", ops, ((0, 1), (1, 2)), kinds)


def test_too_many_device_kinds_for_the_dp_place_on_fewer_and_auto_goes_on() -> None:
    """More count states than the DP's tables hold: the DP places on fewer devices (a
    real plan, not proven optimal) and auto hands it to the MILP as a warm start, which
    improves on it or proves it optimal (the plan's solver is the one that found it)."""
    from placer.solvers.auto import solve_auto

    problem = _many_kinds(13)  # 2**13 count states: more than the DP's tables hold
    fewer = solve_dp(problem)
    assert not fewer.optimal and fewer.lower_bound is None
    assert "fewer devices" in fewer.notes[0]
    evaluation = evaluate(problem, fewer.placement, require_contiguous=True)
    assert evaluation.valid and evaluation.max_load == pytest.approx(fewer.objective)
    best = brute_force(problem)
    assert fewer.objective >= best - 1e-9
    solved = solve_auto(problem, SolverOptions(time_limit=20))
    assert solved.objective == pytest.approx(best)
    # the MILP, warm-started from the DP's plan, finds a better plan or proves this one
    if solved.objective < fewer.objective - 1e-12:
        assert solved.solver == "milp"
    else:
        assert solved.solver == "dp" and solved.optimal
        assert "the MILP, warm-started from its plan, proved it optimal" in solved.notes[0]
    assert solve_dp(_many_kinds(12)).optimal  # 4,096 states: still the DP's


def test_fewer_devices_claim_no_bound_even_where_the_relaxation_proved_one() -> None:
    """The DP on fewer devices than the cluster has proves nothing about the cluster:
    where it fell back and the DP without the widest blocks proved a bound for the
    fewer devices, the answer carries neither that bound nor its source (auto read the
    source and formatted a missing gap: a traceback on a 13-kind cluster)."""
    from placer.solvers.auto import solve_auto

    n_kinds = 13
    kinds = tuple(DeviceKind(f"k{k}", DeviceClass.ACCELERATOR, 1) for k in range(n_kinds))
    ops = tuple(
        Op(key=i, name=f"op{i}", latency=(5.0 if i in (0, 6) else 0.01 * i,) * n_kinds,
           supported=(True,) * n_kinds, size_bytes=0.0, transfer_cost=0.1, color=i)
        for i in range(7)
    )  # fmt: skip
    # op 0 feeds five light parallel ops, which feed op 6: too many ideals for a cap of 5
    edges = tuple((0, v) for v in range(1, 6)) + tuple((u, 6) for u in range(1, 6))
    problem = Problem("diamond", ops, edges, kinds)
    fewer = solve_dp(problem, SolverOptions(max_ideals=5))
    assert "fewer devices" in fewer.notes[0]
    assert "widest blocks" in fewer.notes[-1]  # the relaxation ran on the fewer devices
    assert not fewer.optimal and fewer.lower_bound is None and fewer.bound_source is None
    solved = solve_auto(problem, SolverOptions(max_ideals=5, time_limit=10))
    assert solved.objective <= fewer.objective + 1e-12
    assert evaluate(problem, solved.placement).valid


def test_a_kind_left_out_to_fit_the_tables_may_leave_no_placement() -> None:
    """When a kind the DP had to leave out is the only one that runs some op, it says
    so (exit 5), never that no placement exists: the MILP may still find one."""
    from placer.errors import NoPlacementFound

    kinds = tuple(DeviceKind(f"k{k}", DeviceClass.ACCELERATOR, 1) for k in range(13))
    ops = tuple(  # op i runs on kind i alone: every kind is needed
        Op(key=i, name=f"op{i}", latency=(1.0,) * 13,
           supported=tuple(k == i for k in range(13)), size_bytes=0.0, transfer_cost=0.1,
           color=i)
        for i in range(13)
    )  # fmt: skip
    problem = Problem("needs-all", ops, tuple((i, i + 1) for i in range(12)), kinds)
    with pytest.raises(NoPlacementFound, match="device-count states"):
        solve_dp(problem)
