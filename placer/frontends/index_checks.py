"""Rows a ``Gather`` reads past the end of its table: positions past a model's last.

A language model reads its position embeddings (or rotary tables) with indices it makes
from the sequence length alone: BART's ``arange(seq) + 2`` gathers row 130 of a table of
130 rows at 128 tokens and fails at 129, which onnxruntime reports at the first run
("indices element out of data bounds").  Shape inference does not see it: the output of
such a ``Gather`` has a shape whatever the indices' values.  Where a ``Gather``'s table is
a constant of the model and its indices depend on the graph's inputs through their
shapes only (``Shape``, ``Size``) and on small constants, their values are fixed by the
input sizes: this module computes them, with onnxruntime, on the subgraph that makes them
(each ``Shape`` of a tensor replaced by its inferred value), and refuses indices outside
the table's ``[-rows, rows)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, helper, numpy_helper

from placer.errors import ModelLoadError
from placer.frontends.onnx_nodes import attributes, is_default_domain, placer_name, subgraphs
from placer.frontends.opcost import AttrKind, attribute

#: Nodes a subgraph of indices may hold, and elements its constants may have: larger
#: ones are left unchecked (the loader reads no large tensor's values).
MAX_NODES = 256
MAX_CONSTANT_ELEMENTS = 4096

Shapes = Mapping[str, "tuple[int, ...] | None"]


def check_gather_rows(model: ModelProto, shapes: Shapes, path: Path, hint: str = "") -> None:
    """Refuse the first ``Gather`` of ``model``'s main graph whose indices, fixed by the
    input sizes, fall outside its constant table (``shapes``: the tensors' inferred
    shapes).  Indices it cannot compute this way are left alone.

    Raises
    ------
    ModelLoadError
        One line naming the file, the node, its table and the rows asked for.
    """
    graph = model.graph
    constants = _constants(graph)
    producer = {out: node for node in graph.node for out in node.output if out}
    fixed = {value.name for value in graph.input} | set(constants)
    targets = []
    used: set[str] = set()
    for index, node in enumerate(graph.node):
        name = placer_name(node.name, node.op_type, index, used)
        if node.op_type != "Gather" or not is_default_domain(node) or len(node.input) < 2:
            continue
        table = shapes.get(node.input[0])
        if node.input[0] not in constants or not table:
            continue
        axis = _integer(node, "axis", 0, name)
        axis = axis + len(table) if axis < 0 else axis
        if not 0 <= axis < len(table):
            continue
        nodes = _making(node.input[1], producer, constants, shapes, fixed)
        if nodes is not None:
            targets.append((name, node, table[axis], nodes))
    if not targets:
        return
    values = _computed(model, targets, constants, shapes)
    for (name, node, rows, _), value in zip(targets, values, strict=True):
        if value is None or value.size == 0:
            continue
        low, high = int(value.min()), int(value.max())
        if high >= rows or low < -rows:
            bad = high if high >= rows else low
            raise ModelLoadError(
                f"{path}: Gather node {name!r} reads row {bad} of {node.input[0]!r}, which "
                f"has {rows:,}: the input sizes ask for more positions than the model has"
                + (f"; {hint}" if hint else "")
            )


def _integer(node: NodeProto, attr: str, default: int, name: str = "") -> int:
    """``node``'s integer attribute ``attr``, through the typed accessor."""
    where = f"node {name or node.name!r} ({node.op_type})"
    return attribute(attributes(node), attr, AttrKind.INT, default, where=where)


def _constants(graph: GraphProto) -> dict[str, TensorProto | NodeProto]:
    """The initializers and ``Constant`` outputs of ``graph``, by name."""
    found: dict[str, TensorProto | NodeProto] = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and is_default_domain(node) and node.output:
            found[node.output[0]] = node
    return found


def _making(tensor: str, producer, constants, shapes: Shapes,
            fixed: set[str]) -> list[NodeProto] | None:  # fmt: skip
    """The nodes that make ``tensor`` from the shapes of ``fixed`` tensors (the graph's
    inputs and constants) and small constants only, or None."""
    needed: dict[int, NodeProto] = {}
    stack = [tensor]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        if name in constants:
            if not _small(constants[name]):
                return None
            continue
        node = producer.get(name)
        if node is None or not is_default_domain(node) or any(True for _ in subgraphs(node)):
            return None  # a graph input read for its values, or an op of another domain
        needed[id(node)] = node
        if len(needed) > MAX_NODES:
            return None
        if node.op_type in ("Shape", "Size"):
            # of a graph input or a constant: sizes given, not inferred (an inferred one
            # may be onnxruntime's symbolic guess at a data-dependent size)
            if node.input[0] not in fixed or shapes.get(node.input[0]) is None:
                return None
            continue  # its input's values are not read
        stack.extend(node.input)
    return list(needed.values())


def _small(constant: TensorProto | NodeProto) -> bool:
    if isinstance(constant, NodeProto):
        return all(a.type != a.TENSOR or math.prod(a.t.dims) <= MAX_CONSTANT_ELEMENTS
                   for a in constant.attribute)  # fmt: skip
    return (math.prod(constant.dims) <= MAX_CONSTANT_ELEMENTS
            and constant.data_location != TensorProto.EXTERNAL)  # fmt: skip


def _computed(model: ModelProto, targets, constants, shapes: Shapes):
    """The values of the ``targets``' indices (None where they cannot be computed), from
    one run of the subgraph that makes them, each ``Shape``/``Size`` replaced by its
    value."""
    import onnxruntime as ort

    outputs = [node.input[1] for _, node, _, _ in targets]
    order = {id(node): i for i, node in enumerate(model.graph.node)}
    nodes = {id(n): n for _, _, _, made in targets for n in made}
    body = []
    for node in sorted(nodes.values(), key=lambda n: order[id(n)]):
        if node.op_type in ("Shape", "Size"):
            dims = list(shapes[node.input[0]])
            if node.op_type == "Size":
                value = np.array(math.prod(dims), np.int64)
            else:
                start = _integer(node, "start", 0)
                end = _integer(node, "end", len(dims))
                value = np.array(dims[slice(start, end)], np.int64)
            body.append(helper.make_node("Constant", [], [node.output[0]],
                                         value=numpy_helper.from_array(value)))  # fmt: skip
        else:
            body.append(node)
    read = {name for node in body for name in node.input}
    initializers = [c for name, c in constants.items()
                    if name in read and isinstance(c, TensorProto)]  # fmt: skip
    # the Constant nodes it reads go first (the legacy exporter writes scalars so)
    body[:0] = [c for name, c in constants.items() if name in read and isinstance(c, NodeProto)]
    wanted = list(dict.fromkeys(outputs))
    graph = helper.make_graph(body, "indices", [],
                              [helper.make_empty_tensor_value_info(n) for n in wanted],
                              initializer=initializers)  # fmt: skip
    sub = helper.make_model(graph, opset_imports=list(model.opset_import))
    sub.ir_version = model.ir_version
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(sub.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])  # fmt: skip
        values = dict(zip(wanted, session.run(wanted, {}), strict=True))
    except Exception:  # onnxruntime's errors: a subgraph it cannot run is left unchecked
        return [None] * len(outputs)
    return [np.asarray(values[name]) for name in outputs]
