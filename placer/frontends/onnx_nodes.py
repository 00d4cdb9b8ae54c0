"""What an ONNX node reads, through its subgraphs, and the name placer gives it.

The loader (:mod:`placer.frontends.onnx_graph`), its checks
(:mod:`placer.frontends.onnx_checks`) and ``split`` (:mod:`placer.outputs.split`) all walk
nodes and name them the same way: a plan's node names must mean the same ops to each of
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import onnx
from onnx import AttributeProto, GraphProto, NodeProto, TypeProto


def subgraphs(node: NodeProto) -> Iterator[tuple[str, GraphProto]]:
    """``(attribute name, graph)`` of each subgraph of ``node`` (``If``'s branches,
    ``Loop``'s and ``Scan``'s bodies), in attribute order."""
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.name, attr.g
        elif attr.type == AttributeProto.GRAPHS:
            for graph in attr.graphs:
                yield attr.name, graph


def outer_names(graph: GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes (its nested subgraphs included)."""
    defined = {v.name for v in graph.input} | {i.name for i in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(name for name in node.input if name)
        for _, sub in subgraphs(node):
            used |= outer_names(sub)
        defined.update(node.output)
    return used - defined


def node_inputs(node: NodeProto) -> list[str]:
    """Explicit inputs (``""`` for an omitted optional one), then the outer-scope names
    its subgraphs read, sorted.

    >>> from onnx import helper
    >>> node_inputs(helper.make_node("Clip", ["x", "", "hi"], ["y"]))
    ['x', '', 'hi']
    """
    names = list(node.input)
    extra: set[str] = set()
    for _, sub in subgraphs(node):
        extra |= outer_names(sub)
    return names + sorted(extra - set(names))


def node_reads(node: NodeProto) -> list[str]:
    """Every tensor ``node`` reads: :func:`node_inputs` without the omitted ones."""
    return [name for name in node_inputs(node) if name]


def placer_name(name: str, op_type: str, index: int, used: set[str]) -> str:
    """placer's name for the node at position ``index`` of its graph, named ``name``
    (maybe ""), and record it in ``used`` (the names given to the earlier ops).

    The node's name, else ``<OpType>_<index>``; a name already used gets ``_<index>``
    appended.  Plans, measured costs (``--costs``) and ``placer profile`` key ops by it.

    >>> used = set()
    >>> [placer_name(n, "Relu", i, used) for i, n in enumerate(["", "a", "a"])]
    ['Relu_0', 'a', 'a_2']
    """
    label = name or f"{op_type}_{index}"
    if label in used:
        label = f"{label}_{index}"
    used.add(label)
    return label


#: The domains of the standard ONNX operators.
_DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})
#: Largest integer tensor read for its values (shapes of ConstantOfShape, trip counts).
MAX_READ_ELEMENTS = 64


def is_default_domain(node: NodeProto) -> bool:
    """Whether ``node`` is a standard ONNX operator (not a custom or vendor domain's)."""
    return node.domain in _DEFAULT_DOMAINS


def shape_of(type_proto: TypeProto) -> tuple[int, ...] | None:
    """The fully known shape a value's type gives, else None."""
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    dims = type_proto.tensor_type.shape.dim
    if not all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


def attributes(node: NodeProto) -> dict[str, Any]:
    """``node``'s attributes as Python values (``onnx.helper.get_attribute_value``), for
    :func:`placer.frontends.opcost.attribute`, subgraphs left out."""
    values: dict[str, Any] = {}
    for attr in node.attribute:
        if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            continue
        # check_model has refused untyped and function-reference attributes; strings
        # stay bytes, which the typed accessor decodes
        values[attr.name] = onnx.helper.get_attribute_value(attr)
    return values
