"""The DP with interchangeable side branches in a fixed order
(:mod:`placer.solvers.dp.branches`).

Its relaxation must never beat the whole graph's optimum: brute force is the oracle, on
random graphs whose source feeds branches (a unit and an optional tail each) into a
chain of consumers, the way an encoder's output feeds every decoder layer's keys and
values, with inference and training graphs, caps that bind, and units whose costs differ.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.frontends.workload import parse_workload
from placer.problem import LinkCost, Problem
from placer.solvers import SolverOptions
from placer.solvers.base import BoundSource
from placer.solvers.blocks import contract
from placer.solvers.dp.branches import (
    Branch,
    _apart,
    branch_classes,
    ordered_bound,
    ordered_relaxation,
)
from placer.solvers.dp.relax import relaxation_bound
from placer.solvers.dp.search import _absorbing, _narrow_only, solve_dp
from tests.solvers.test_dp_relax import encoder_decoder
from tests.strategies import brute_force, describe


@st.composite
def branched(draw, training: bool | None = None) -> Problem:
    """A source (op 1, after op 0; half the time with a second op of its colour), a chain
    of consumers after it, and 2-3 branches from the source into the chain: a unit
    (costed alike, or nearly, or not) and at most one tail each; in training, a backward
    op per forward op, edges mirrored; and half the time, links of different speeds
    between the kinds."""
    if training is None:
        training = draw(st.booleans())
    latency = st.floats(0, 6, allow_nan=False).map(lambda x: round(x, 2))
    main = draw(st.integers(1, 3))
    k = draw(st.integers(2, 3))
    unit = (draw(latency), draw(latency))
    alike = draw(st.sampled_from(["same", "near", "apart"]))
    nodes, edges = [], []

    def node(cpu: float, fpga: float, size: float) -> int:
        nodes.append({"id": len(nodes), "supportedOnFpga": 1, "cpuLatency": cpu,
                      "fpgaLatency": fpga, "size": size, "isBackwardNode": 0,
                      "colorClass": len(nodes)})  # fmt: skip
        return len(nodes) - 1

    costs: dict[int, float] = {}

    def edge(u: int, v: int) -> None:
        if u not in costs:  # edges leaving one node cost the same (the format's rule)
            costs[u] = round(draw(st.floats(0, 2)), 2)
        edges.append({"sourceId": u, "destId": v, "cost": costs[u]})

    first = node(draw(latency), draw(latency), 1.0)
    source = node(draw(latency), draw(latency), 1.0)
    edge(first, source)
    sources = [source]
    if draw(st.booleans()):  # a source block of two ops (one colour), each read apart
        sources.append(node(draw(latency), draw(latency), 0.0))
        nodes[-1]["colorClass"] = source
        edge(first, sources[-1])
    chain = [source]
    for _ in range(main):
        chain.append(node(draw(latency), draw(latency), draw(st.sampled_from([0.0, 1.0]))))
        edge(chain[-2], chain[-1])
    consumers = sorted(draw(st.lists(st.sampled_from(chain[1:]), min_size=k, max_size=k)))
    for consumer in consumers:
        if alike == "same":
            cpu, fpga = unit
        elif alike == "near":
            cpu, fpga = (round(x * draw(st.sampled_from([1.0, 1.01])), 3) for x in unit)
        else:
            cpu, fpga = draw(latency), draw(latency)
        head = node(cpu, fpga, draw(st.sampled_from([0.0, 1.0])))
        edge(draw(st.sampled_from(sources)), head)
        if draw(st.booleans()):
            tail = node(draw(latency), draw(latency), 0.0)
            edge(head, tail)
            head = tail
        edge(head, consumer)
    n = len(nodes)
    if training:
        for i in range(n):
            nodes.append({"id": n + i, "supportedOnFpga": 1, "cpuLatency": draw(latency),
                          "fpgaLatency": draw(latency), "size": 0.0, "isBackwardNode": 1,
                          "colorClass": i})  # fmt: skip
        for e in list(edges):
            edges.append({"sourceId": n + e["destId"], "destId": n + e["sourceId"],
                          "cost": _grad(draw, costs, n + e["destId"])})  # fmt: skip
        for i in range(n):  # the backward op reads its forward op's output
            edges.append({"sourceId": i, "destId": n + i, "cost": _grad(draw, costs, i)})
    total = sum(x["size"] for x in nodes)
    accelerators = draw(st.integers(1, 2))
    cap = draw(st.sampled_from([math.ceil(total / accelerators) + s for s in (0, 1, 3)]))
    document = {"maxSizePerFPGA": float(cap), "maxFPGAs": accelerators,
                "maxCPUs": draw(st.integers(0, 1)), "nodes": nodes, "edges": edges}  # fmt: skip
    problem = parse_workload(document, name="branched")
    if not draw(st.booleans()):
        return problem
    # links of different speeds: each op's transfer becomes bytes over the link crossed
    speeds = st.sampled_from([0.5, 1.0, 2.0])
    table = {(a, b): LinkCost(draw(st.sampled_from([0.0, 0.2])), draw(speeds))
             for a in range(2) for b in range(a, 2)}  # fmt: skip
    links = tuple(tuple(table[min(a, b), max(a, b)] for b in range(2)) for a in range(2))
    ops = tuple(replace(op, output_bytes=op.transfer_cost) for op in problem.ops)
    return replace(problem, ops=ops, links=links)


def _grad(draw, costs: dict[int, float], u: int) -> float:
    """The cost of every edge leaving node ``u`` (drawn at its first edge)."""
    if u not in costs:
        costs[u] = round(draw(st.floats(0, 2)), 2)
    return costs[u]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(branched())
def test_the_ordered_relaxation_never_beats_the_optimum(problem: Problem) -> None:
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        return
    blocks = contract(problem)
    ordered = ordered_relaxation(problem, blocks)
    assume(ordered is not None)
    # every unit of the class is kept, each tail left out, the units ordered
    assert len(ordered.sub.ops) == len(ordered.kept) == len(problem.ops) - sum(
        len(blocks.ops_of_block[b]) for b in ordered.tails
    )
    relaxed = brute_force(ordered.sub)  # a placement of the whole reorders into one of Q
    assert relaxed <= best * (1 + 1e-9) + 1e-9, describe(problem)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(branched())
def test_the_ordered_bound_is_proven_and_its_plan_is_a_plan(problem: Problem) -> None:
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        return
    blocks = contract(problem)
    found = ordered_bound(problem, blocks, SolverOptions(), (_narrow_only, _absorbing),
                          upper=2 * best + 1)  # fmt: skip
    if found is None:
        return  # no class wide enough to reorder
    assert found.branches >= 2
    assert 0 < found.lower <= best * (1 + 1e-9) + 1e-9, describe(problem)
    if found.placement is not None:
        evaluation = evaluate(problem, found.placement)
        assert evaluation.contiguous, evaluation.violations
        if evaluation.valid:
            assert evaluation.max_load >= best - 1e-9


def _encoder_decoder(layers: int) -> Problem:
    """An encoder's output feeding each of ``layers`` decoder layers through a key and a
    value projection (a unit and a tail each), as T5's cross-attention does."""
    nodes, edges = [], []

    def node(fpga: float) -> int:
        nodes.append({"id": len(nodes), "supportedOnFpga": 1, "cpuLatency": 10 * fpga,
                      "fpgaLatency": fpga, "size": 0.0, "isBackwardNode": 0,
                      "colorClass": len(nodes)})  # fmt: skip
        return len(nodes) - 1

    def edge(u: int, v: int) -> None:
        edges.append({"sourceId": u, "destId": v, "cost": 0.1})

    encoder = node(4.0)
    previous = node(1.0)  # the decoder's embedding
    for _ in range(layers):
        attention = node(2.0)
        edge(previous, attention)
        for _projection in ("key", "value"):
            unit, tail = node(0.5), node(0.05)
            edge(encoder, unit)
            edge(unit, tail)
            edge(tail, attention)
        previous = node(2.0)
        edge(attention, previous)
    document = {"maxSizePerFPGA": 10.0, "maxFPGAs": 3, "maxCPUs": 0, "nodes": nodes,
                "edges": edges}  # fmt: skip
    return parse_workload(document, name="encoder-decoder")


def test_the_cross_attention_projections_are_one_class_in_layer_order() -> None:
    problem = _encoder_decoder(4)
    blocks = contract(problem)
    classes = branch_classes(problem, blocks)
    assert len(classes) == 1 and len(classes[0]) == 8
    consumers = [branch.consumer for branch in classes[0]]
    assert consumers == sorted(consumers)
    ordered = ordered_relaxation(problem, blocks)
    assert len(ordered.tails) == 8 and len(ordered.units) == 8
    # the units, in order, are a chain: the ideals no longer multiply
    assert contract(ordered.sub).n_blocks == len(problem.ops) - 8
    exact = solve_dp(problem)  # its ideals, 3^8 subsets of projections a layer, still fit
    assert exact.optimal
    best = exact.objective
    found = ordered_bound(problem, blocks, SolverOptions(), (_narrow_only, _absorbing),
                          upper=2 * best)  # fmt: skip
    assert found is not None and found.lower <= best * (1 + 1e-9)
    # the tails are 2% of the work: the bound stays within a few percent of the optimum
    assert found.lower >= 0.95 * best


def free_op_beside_a_dropped_block() -> Problem:
    """Two free units of a class and a third, costly one (another class), all from one
    source into one free consumer, on one accelerator and a CPU; optimum 1.0."""
    nodes = [
        {"id": i, "supportedOnFpga": 1, "cpuLatency": lat, "fpgaLatency": lat, "size": size,
         "isBackwardNode": 0, "colorClass": i}
        for i, (lat, size) in enumerate([(1.0, 1.0), (0.0, 1.0), (0.0, 0.0), (0.0, 0.0),
                                         (0.0, 0.0), (1.0, 0.0)])
    ]  # fmt: skip
    arcs = [(0, 1), (1, 2), (1, 3), (3, 2), (1, 4), (4, 2), (1, 5), (5, 2)]
    edges = [{"sourceId": u, "destId": v, "cost": 0.0} for u, v in arcs]
    return parse_workload({"maxSizePerFPGA": 2.0, "maxFPGAs": 1, "maxCPUs": 1,
                           "nodes": nodes, "edges": edges}, name="free")  # fmt: skip


def test_a_free_op_left_alone_on_a_device_makes_room_for_the_work_left_out() -> None:
    """The first subproblem drops the three units: what is left is the source's chain and
    the free consumer, which the slack test's contraction absorbed into the source, so
    it missed the placement that gives the consumer and the costly unit a device of
    their own, and proved 2.0 for an optimum of 1.0 (found by the random test above at
    a few thousand examples)."""
    problem = free_op_beside_a_dropped_block()
    best = brute_force(problem)
    found = ordered_bound(problem, contract(problem), SolverOptions(),
                          (_narrow_only, _absorbing), upper=2 * best + 1)  # fmt: skip
    assert found is not None
    assert found.lower <= best * (1 + 1e-9), describe(problem)


def test_the_projections_in_order_prove_what_dropping_them_cannot() -> None:
    """The miniature T5 of the dropped-blocks tests, its ideals capped below what it has:
    with the projections kept in a fixed order the fallback proves the optimum the
    uncapped DP finds (its plan meets the bound), where the graph without them proves
    only a bound below it."""
    problem = encoder_decoder()
    exact = solve_dp(problem)
    assert exact.optimal
    fallback = solve_dp(problem, SolverOptions(max_ideals=150))
    assert fallback.bound_source is BoundSource.DP_RELAXED
    assert "interchangeable side branches in a fixed order" in fallback.notes[-1]
    assert fallback.lower_bound <= exact.objective * (1 + 1e-9)
    assert fallback.optimal
    assert fallback.objective == pytest.approx(exact.objective, rel=1e-9)
    dropping = relaxation_bound(problem, contract(problem), SolverOptions(max_ideals=150),
                                _narrow_only, _absorbing, upper=fallback.objective)  # fmt: skip
    assert dropping.lower < exact.objective * (1 - 1e-3)


def test_where_the_pairs_do_not_fit_the_branches_in_order_raise_the_brackets_bound(
    monkeypatch,
) -> None:
    """With too few ideal pairs allowed for the exact runs, the DP answers with its
    bracket; the DP with the projections in a fixed order (fewer ideals) proves more,
    and still no more than the optimum."""
    problem = encoder_decoder()
    exact = solve_dp(problem)
    assert exact.optimal
    options = SolverOptions(max_pairs=1_000, accept_gap=1e-6)  # the bracket is within 1%
    raised = solve_dp(problem, options)
    assert raised.stats["relaxed_branches"] == 6  # one projection a decoder layer
    assert any("in a fixed order, the DP proves a higher bound" in n for n in raised.notes)
    assert raised.lower_bound <= exact.objective * (1 + 1e-9)
    assert raised.objective >= exact.objective * (1 - 1e-9)
    monkeypatch.setattr("placer.solvers.dp.search.ordered_bound", lambda *args, **kw: None)
    plain = solve_dp(problem, options)
    assert plain.bracketed
    assert raised.lower_bound > plain.lower_bound


def test_units_that_read_different_ops_of_the_source_are_not_one_class() -> None:
    """Ops 0 and 3 are one block (one colour); unit 7 reads op 0, units 4 and 5 read op
    3.  Reordered as one class, op 0's output would reach other stages than it does: the
    bound came out at 8.0 for an optimum of 7.71 (an audit's random workloads)."""
    table = [(0, 3, 6, 10, 1000), (1, 1, 2, 10, None), (2, 3, 15, 0, None),
             (3, 1, 2, 0, 1000), (4, 1, 5, 0, None), (5, 1.01, 5.05, 0, None),
             (6, 0.5, 2.5, 0, None), (7, 1, 2, 10, None), (8, 0.5, 1.0, 0, None),
             (9, 0.5, 1.0, 0, None)]  # fmt: skip
    nodes = []
    for i, fpga, cpu, size, colour in table:
        node = {"id": i, "supportedOnFpga": 1, "cpuLatency": cpu, "fpgaLatency": fpga,
                "size": size, "isBackwardNode": 0}  # fmt: skip
        if colour is not None:
            node["colorClass"] = colour
        nodes.append(node)
    arcs = [(0, 1, 1), (0, 7, 1), (1, 2, 10), (3, 4, 5), (3, 5, 5), (4, 1, 0.1), (5, 6, 2),
            (6, 2, 0.1), (7, 8, 2), (8, 9, 5), (9, 1, 0.5)]  # fmt: skip
    edges = [{"sourceId": u, "destId": v, "cost": c} for u, v, c in arcs]
    problem = parse_workload({"maxSizePerFPGA": 1e6, "maxFPGAs": 2, "maxCPUs": 1,
                              "nodes": nodes, "edges": edges}, name="two-op source")  # fmt: skip
    exact = solve_dp(problem)
    assert exact.optimal and exact.objective == pytest.approx(7.71)
    blocks = contract(problem)
    for branches in branch_classes(problem, blocks):
        read = {tuple(sorted(problem.ops[u].key for u, v in problem.edges
                             if v in blocks.ops_of_block[b.chain[0]])) for b in branches}
        assert len(read) == 1  # every unit of a class reads the same ops
    found = ordered_bound(problem, blocks, SolverOptions(), (_narrow_only, _absorbing),
                          upper=3 * exact.objective, every=True)  # fmt: skip
    assert found is not None
    assert found.lower <= exact.objective * (1 + 1e-9)


def test_a_class_whose_source_or_consumer_another_class_moves_is_left_out() -> None:
    """The proof holds sources and consumers in place: a class that feeds (or reads) a
    chain of another class is not reordered."""
    a = (Branch(0, (1,), 5), Branch(0, (2,), 6))
    b = (Branch(5, (7,), 9), Branch(5, (8,), 9))  # its source is no chain of a's: kept
    c = (Branch(3, (10,), 1), Branch(3, (11,), 2))  # its consumers are a's units
    assert _apart([a, b, c]) == [a, b]
    assert _apart([a, (Branch(1, (12,), 13), Branch(1, (14,), 13))]) == [a]


def test_a_unit_op_that_sends_nothing_out_of_its_block_stays_free() -> None:
    """The ordering arcs leave a unit's first forward op: where, in the model, that op
    sends nothing out of its block (another op of the unit feeds the tail), ``Q`` must
    not charge its transfer for the arcs."""
    nodes = [{"id": i, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 1.0,
              "size": 0.0, "isBackwardNode": 0, "colorClass": colour}
             for i, colour in enumerate([0, 1, 2, 3, 3, 5, 5, 7, 8])]  # fmt: skip
    # 0 -> 1 -> 2 (consumers 1, 2); units {3, 4} and {5, 6} read 0; 3 and 5 send
    # nothing out, 4 and 6 feed the tails 7 and 8
    arcs = [(0, 1, 1.0), (1, 2, 1.0), (0, 3, 1.0), (0, 4, 1.0), (0, 5, 1.0), (0, 6, 1.0),
            (3, 4, 2.0), (5, 6, 2.0), (4, 7, 1.0), (6, 8, 1.0), (7, 1, 1.0), (8, 2, 1.0)]
    edges = [{"sourceId": u, "destId": v, "cost": c} for u, v, c in arcs]
    problem = parse_workload({"maxSizePerFPGA": 100.0, "maxFPGAs": 2, "maxCPUs": 0,
                              "nodes": nodes, "edges": edges}, name="free head")  # fmt: skip
    ordered = ordered_relaxation(problem, contract(problem))
    assert ordered is not None and len(ordered.units) == 4
    heads = [ordered.sub.ops[u] for u in ordered.units if ordered.sub.ops[u].key in (3, 5)]
    assert [op.transfer_cost for op in heads] == [0.0, 0.0]
    assert brute_force(ordered.sub) <= brute_force(problem) * (1 + 1e-9)


def test_a_tails_availability_does_not_rest_on_the_reordered_units() -> None:
    """Source 1 feeds unit 3 (into consumer 2) and unit 4 (through tail 5); the tail is
    left out and counted back.  Where it may run must not depend on where its own unit
    sits in ``Q``, which reorders the units: held there, the bound came out at 3.5 for an
    optimum of 3.0 (the random test finds this at a few thousand examples)."""
    table = [(0.0, 0.0, 1.0), (3.0, 1.0, 1.0), (1.0, 1.0, 0.0), (0.0, 1.0, 0.0),
             (0.0, 1.0, 0.0), (1.0, 1.0, 0.0)]  # (accelerator, cpu, size)  # fmt: skip
    nodes = [{"id": i, "supportedOnFpga": 1, "cpuLatency": cpu, "fpgaLatency": fpga,
              "size": size, "isBackwardNode": 0, "colorClass": i}
             for i, (fpga, cpu, size) in enumerate(table)]  # fmt: skip
    costs = {1: 2.0}
    arcs = [(0, 1), (1, 2), (1, 3), (3, 2), (1, 4), (4, 5), (5, 2)]
    edges = [{"sourceId": u, "destId": v, "cost": costs.get(u, 0.0)} for u, v in arcs]
    problem = parse_workload({"maxSizePerFPGA": 2.0, "maxFPGAs": 1, "maxCPUs": 1,
                              "nodes": nodes, "edges": edges}, name="tail")  # fmt: skip
    best = brute_force(problem)
    assert best == pytest.approx(3.0)
    found = ordered_bound(problem, contract(problem), SolverOptions(),
                          (_narrow_only, _absorbing), upper=2 * best + 1)  # fmt: skip
    assert found is not None and found.branches == 2
    assert found.lower <= best * (1 + 1e-9), describe(problem)


def test_a_bracket_raised_to_the_plan_is_an_optimum(monkeypatch) -> None:
    """Where the reordered branches' bound meets the plan, the bracket's answer is the
    optimum, and says which relaxation proved it (the bound stubbed at the plan)."""
    from placer.solvers.dp import search

    monkeypatch.setattr(search._Search, "ordered", lambda self, lower: (self.best.value, 6))
    problem = encoder_decoder()
    result = solve_dp(problem, SolverOptions(max_pairs=1_000, accept_gap=1e-6))
    assert result.optimal and result.gap == 0
    assert result.bound_source is BoundSource.DP_RELAXED
    assert result.lower_bound == result.objective
    assert "6 interchangeable side branches in a fixed order proves the plan optimal" in (
        result.notes[-1])
    assert result.stats["relaxed_branches"] == 6
