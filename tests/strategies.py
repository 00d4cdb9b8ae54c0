"""Hypothesis strategies for small random workloads, and a brute-force oracle."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.frontends.workload import parse_workload
from placer.graphs import topological_order
from placer.problem import DeviceClass, Placement, Problem


@st.composite
def workloads(draw, max_forward: int = 10, training: bool | None = None) -> Problem:
    """A random workload in the reference format: a forward DAG, optionally backward
    ops mirroring it, shared colour classes, unsupported ops and binding memory caps.

    The device count shrinks as the graph grows so that brute force stays cheap.
    """
    n = draw(st.integers(1, max_forward))
    accelerators = draw(st.integers(0 if n <= 7 else 1, 3 if n <= 7 else 2))
    cpus = draw(st.integers(0 if accelerators else 1, 1))
    if training is None:
        training = draw(st.booleans())
    latency = st.one_of(st.just(0.0), st.floats(0, 10, allow_nan=False).map(lambda x: round(x, 2)))
    nodes, edges = [], []
    colour = list(range(n))
    for a, b in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2)):
        colour[b] = colour[a]  # shared weights: two forward ops that must share a device
    for i in range(n):
        nodes.append(
            {
                "id": i,
                "supportedOnFpga": draw(st.sampled_from([1, 1, 1, 0])),
                "cpuLatency": draw(latency),
                "fpgaLatency": draw(latency),
                "size": draw(st.sampled_from([0.0, 1.0, 2.0, 3.0])),
                "isBackwardNode": 0,
                "colorClass": colour[i],
            }
        )
    costs = [round(draw(st.floats(0, 3)), 2) for _ in range(2 * n + 1)]
    for v in range(1, n):
        for u in sorted(draw(st.sets(st.integers(0, v - 1), max_size=3))):
            edges.append({"sourceId": u, "destId": v, "cost": costs[u]})
    if training:
        orphan_class = n + 100
        for i in range(n):
            if draw(st.integers(0, 4)) == 0:
                continue  # some forward ops have no backward op
            nodes.append(
                {
                    "id": n + i,
                    "supportedOnFpga": draw(st.sampled_from([1, 1, 0])),
                    "cpuLatency": draw(latency),
                    "fpgaLatency": draw(latency),
                    "size": draw(st.sampled_from([0.0, 1.0])),
                    "isBackwardNode": 1,
                    "colorClass": orphan_class if draw(st.integers(0, 9)) == 0 else colour[i],
                }
            )
        backward = {node["id"] - n for node in nodes if node["isBackwardNode"]}
        for edge in list(edges):
            u, v = edge["sourceId"], edge["destId"]
            if u in backward and v in backward:
                edges.append({"sourceId": n + v, "destId": n + u, "cost": costs[n + v]})
        for i in backward:
            edges.append({"sourceId": i, "destId": n + i, "cost": costs[i]})
        for edge in list(edges):
            u, v = edge["sourceId"], edge["destId"]
            if v < n and v in backward and draw(st.booleans()):
                # the backward op of v reads v's input, as gradients of real layers do
                edges.append({"sourceId": u, "destId": n + v, "cost": costs[u]})
        readers = st.sampled_from(sorted(backward) or [None])
        for u, w in draw(st.lists(st.tuples(st.integers(0, n - 1), readers), max_size=2)):
            if w is not None:  # a stashed activation read by any gradient op
                edges.append({"sourceId": u, "destId": n + w, "cost": costs[u]})
    total = sum(node["size"] for node in nodes)
    cap = draw(st.sampled_from([math.ceil(total / max(accelerators, 1)) + s for s in (0, 1, 3)]))
    document = {
        "maxSizePerFPGA": float(cap),
        "maxFPGAs": accelerators,
        "maxCPUs": cpus,
        "nodes": nodes,
        "edges": edges,
    }
    return parse_workload(document, name="random")


def brute_force(problem: Problem, *, contiguous: bool = True) -> float:
    """Least max-load over every valid placement, by enumeration; raises
    InfeasiblePlacement if there is none.

    Colour classes are assigned whole (any other assignment is invalid); devices of one
    kind are interchangeable, so each class takes an already used device of a kind or
    the next unused one.
    """
    colours = sorted({op.color for op in problem.ops})
    kinds = problem.kinds
    first = [sum(k.count for k in kinds[:i]) for i in range(len(kinds))]
    best = math.inf

    def assignments(i: int, used: list[int]):
        if i == len(colours):
            yield ()
            return
        for k, kind in enumerate(kinds):
            for d in range(min(used[k] + 1, kind.count)):
                grown = used[:]
                grown[k] = max(used[k], d + 1)
                for rest in assignments(i + 1, grown):
                    yield (first[k] + d, *rest)

    position = {c: i for i, c in enumerate(colours)}
    kind_of = [device.kind for device in problem.devices]
    # each class's compute on each kind, and the arcs between classes: a placement's
    # compute per device bounds its max-load from below (transfers and side computations
    # only add), so one that cannot beat the best so far is not evaluated, and the stage
    # graph (whether it is contiguous) follows from the arcs between classes
    work = [[0.0] * len(kinds) for _ in colours]
    for op in problem.ops:
        for k in range(len(kinds)):
            work[position[op.color]][k] += op.latency[k]
    class_arcs = {
        (position[problem.ops[u].color], position[problem.ops[v].color])
        for u, v in problem.pipeline_edges
        if problem.ops[u].color != problem.ops[v].color
    }
    for choice in assignments(0, [0] * len(kinds)):
        compute = [0.0] * len(problem.devices)
        for c, d in enumerate(choice):
            compute[d] += work[c][kind_of[d]]
        if max(compute) >= best:
            continue
        if contiguous:
            arcs = {(choice[a], choice[b]) for a, b in class_arcs if choice[a] != choice[b]}
            if topological_order(range(len(compute)), arcs) is None:
                continue  # evaluate would find it invalid: the same test, without the rest
        placement = Placement(tuple(choice[position[op.color]] for op in problem.ops))
        evaluation = evaluate(problem, placement, require_contiguous=contiguous)
        if evaluation.valid:
            best = min(best, evaluation.max_load)
    if math.isinf(best):
        raise InfeasiblePlacement("brute force found no valid placement")
    return best


def describe(problem: Problem) -> str:
    kinds = ", ".join(
        f"{k.count}x{k.name}{'' if k.device_class is DeviceClass.CPU else f'({k.memory_bytes})'}"
        for k in problem.kinds
    )
    return f"{len(problem.ops)} ops, {len(problem.edges)} edges, {kinds}"

