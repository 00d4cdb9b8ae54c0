"""A summary of a loaded model: what ``placer inspect`` shows, as one result object."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from placer.costs.roofline import OpTime
from placer.frontends.onnx_graph import GraphNode, OpGraph

#: How many of the dearest ops the summary lists.
TOP_OPS = 10


@dataclass(frozen=True)
class OpFigure:
    """One op in the list of the dearest ops."""

    name: str
    op_type: str
    flops: float
    param_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "flops": self.flops,
            "params": self.param_count,
        }


@dataclass(frozen=True)
class OpCosts:
    """One op's predicted time on each device group, and why (``--costs-detail``);
    ``recomputes``: an earlier op computes its value, which the runtime computes once
    (:mod:`placer.frontends.cse`; free with ``--fusion runtime``)."""

    name: str
    op_type: str
    times: tuple[OpTime, ...]
    recomputes: bool = False

    def to_dict(self, groups: tuple[str, ...]) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "recomputes": self.recomputes,
            "devices": {g: t.to_dict() for g, t in zip(groups, self.times, strict=True)},
        }


@dataclass(frozen=True)
class ModelSummary:
    """Figures of a whole model at the chosen input shapes.

    Parameters
    ----------
    name : str
        The model's name.
    nodes, edges : int
        Size of the operator graph.
    op_histogram : tuple of (str, int)
        Op types and how many nodes have each, commonest first.
    params : int
        Learned parameters.
    param_bytes : float
        Bytes of all constant tensors (weights and stored statistics).
    flops : float
        Forward FLOPs of one pass at the chosen batch size.
    activation_bytes : float
        Sum of every op's output bytes.
    peak_activation_bytes : float
        The most activation bytes live at once over a pass (what inference keeps).
    input_bytes : float
        Size of the graph inputs.
    dtype_bytes : int
        Bytes per element of the main floating-point type.
    dearest : tuple of OpFigure
        The ops with the most FLOPs, dearest first (at most :data:`TOP_OPS`).
    unknown_ops : tuple of str
        Op types without a FLOP formula.
    unknown_shapes : tuple of str
        Tensors whose shapes were estimated.
    tensor_count : int
        Tensors whose shapes the costs need, ``unknown_shapes`` among them.
    notes : tuple of str
        Other caveats of the figures.
    groups : tuple of str
        The device groups ``costs`` gives times on (``--costs-detail``).
    costs : tuple of OpCosts
        Every op's predicted time on each of ``groups``, in graph order; empty unless
        asked for.
    """

    name: str
    nodes: int
    edges: int
    op_histogram: tuple[tuple[str, int], ...]
    params: int
    param_bytes: float
    flops: float
    activation_bytes: float
    input_bytes: float
    dtype_bytes: int
    dearest: tuple[OpFigure, ...]
    unknown_ops: tuple[str, ...]
    unknown_shapes: tuple[str, ...]
    notes: tuple[str, ...]
    tensor_count: int = 0
    peak_activation_bytes: float = 0.0
    groups: tuple[str, ...] = ()
    costs: tuple[OpCosts, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the JSON/YAML renderers."""
        return {
            "name": self.name,
            "nodes": self.nodes,
            "edges": self.edges,
            "op_histogram": dict(self.op_histogram),
            "params": self.params,
            "param_bytes": self.param_bytes,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "input_bytes": self.input_bytes,
            "dtype_bytes": self.dtype_bytes,
            "dearest_ops": [op.to_dict() for op in self.dearest],
            "unknown_ops": list(self.unknown_ops),
            "unknown_shapes": list(self.unknown_shapes),
            "tensor_count": self.tensor_count,
            "notes": list(self.notes),
            **({"costs": [row.to_dict(self.groups) for row in self.costs]} if self.costs else {}),
        }


def inspect_model(
    graph: OpGraph,
    times: Sequence[tuple[GraphNode, tuple[OpTime, ...]]] = (),
    groups: tuple[str, ...] = (),
) -> ModelSummary:
    """Summarise ``graph``: op histogram, parameters, FLOPs, memory, dearest ops.

    Examples
    --------
    >>> from placer.frontends.onnx_graph import GraphNode
    >>> node = GraphNode("fc", "Gemm", 8.0, 0.0, 0.0, 2, 8.0, 4.0, True)
    >>> summary = inspect_model(OpGraph("m", (node,), (), 8.0, 4, ()))
    >>> summary.to_dict()["flops"], summary.to_dict()["params"]
    (8.0, 2)
    """
    histogram = Counter(node.op_type for node in graph.nodes)
    ranked = sorted(range(len(graph.nodes)), key=lambda i: (-graph.nodes[i].flops, i))
    dearest = tuple(
        OpFigure(graph.nodes[i].name, graph.nodes[i].op_type, graph.nodes[i].flops,
                 graph.nodes[i].param_count)
        for i in ranked[:TOP_OPS]
    )  # fmt: skip
    ranked_types = tuple(sorted(histogram.items(), key=lambda item: (-item[1], item[0])))
    costs = tuple(OpCosts(node.name, node.op_type, row, node.recomputes) for node, row in times)
    # the graph's own totals and caveats, in the order of ModelSummary's fields
    return ModelSummary(
        graph.name, len(graph.nodes), len(graph.edges), ranked_types,
        graph.total_params, graph.total_param_bytes, graph.total_flops,
        graph.activation_bytes, graph.input_bytes, graph.dtype_bytes, dearest,
        graph.unknown_ops, graph.unknown_shapes, graph.notes, graph.tensor_count,
        graph.peak_activation_bytes, groups, costs,
    )  # fmt: skip
