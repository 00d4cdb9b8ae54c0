"""Coarsening keeps every total exact and the graph acyclic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.frontends.coarsen import coarsen
from placer.frontends.onnx_graph import GraphEdge, GraphNode, OpGraph, load_onnx
from tests.frontends.test_onnx_graph import LIGHT_MODELS


def node(name: str, flops: float, params: int = 0) -> GraphNode:
    return GraphNode(name, "Op", flops, 1.0, 2.0, params, 4.0 * params, 2.0, True)


def graph_of(flops: list[float], edges: list[tuple[int, int]]) -> OpGraph:
    nodes = tuple(node(f"n{i}", f, i) for i, f in enumerate(flops))
    return OpGraph("g", nodes, tuple(GraphEdge(u, v, f"t{u}", 8.0) for u, v in edges), 0.0, 4, ())


def check_invariants(original: OpGraph, merged: OpGraph) -> None:
    assert merged.total_flops == pytest.approx(original.total_flops)
    assert merged.total_params == original.total_params
    assert merged.activation_bytes == pytest.approx(original.activation_bytes)
    members = [name for n in merged.nodes for name in n.members]
    assert sorted(members) == sorted(n.name for n in original.nodes)
    assert all(edge.src < edge.dst for edge in merged.edges)  # topological order


def test_cheap_node_joins_its_only_producer():
    g = graph_of([100.0, 0.01, 100.0], [(0, 1), (1, 2)])
    merged = coarsen(g)
    assert [n.members for n in merged.nodes] == [("n0", "n1"), ("n2",)]
    assert [(e.src, e.dst, e.tensor) for e in merged.edges] == [(0, 1, "t1")]
    check_invariants(g, merged)


def test_diamond_is_not_merged_into_a_cycle():
    # n1 and n2 are cheap; n3 reads both, so merging must not loop n0 -> n3 -> n0.
    g = graph_of([100.0, 0.0, 0.0, 100.0], [(0, 1), (0, 2), (1, 3), (2, 3), (0, 3)])
    check_invariants(g, coarsen(g))


def test_fraction_must_be_a_fraction():
    with pytest.raises(ValueError, match="max_flops_fraction"):
        coarsen(graph_of([1.0], []), max_flops_fraction=2.0)


@st.composite
def dags(draw):
    n = draw(st.integers(1, 9))
    flops = draw(st.lists(st.sampled_from([0.0, 0.001, 1.0, 50.0]), min_size=n, max_size=n))
    pairs = [(u, v) for v in range(n) for u in range(v)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    return graph_of(flops, edges)


@settings(max_examples=150, deadline=None)
@given(dags(), st.sampled_from([0.0, 0.01, 0.5]))
def test_coarsening_random_dags_keeps_totals_and_order(graph, fraction):
    check_invariants(graph, coarsen(graph, fraction))


def test_resnet50_coarsens_to_fewer_nodes_with_the_same_totals():
    graph = load_onnx(next(p for p in LIGHT_MODELS if p.stem == "light_resnet50"))
    merged = coarsen(graph)
    assert len(merged.nodes) < len(graph.nodes) / 2
    check_invariants(graph, merged)
    assert {n.op_type for n in merged.nodes} >= {"Conv", "Gemm"}
