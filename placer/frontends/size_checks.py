"""Sizes a model's operators cannot run with: the checks ONNX shape inference leaves out.

Shape inference as placer runs it (not strict, so that one op it cannot follow does not
cost the model every shape) gives a ``Conv`` that reads 4 channels through a weight of 3
its output shape, a ``Reshape`` of 12 elements to 3x5 its target shape, and leaves a
``MatMul`` of unequal inner sizes or an ``Add`` of operands that do not broadcast
unknown, which placer would then estimate.  onnxruntime refuses each of these at session
creation or at the first run, so a plan for them is a plan for a model that cannot run:
most often the sizes a user gave (``--input-shape``) are not the model's.  Each rule here
is the runtime's own precondition for the operator (the ONNX operator specification), and
is checked only where every size it compares is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from onnx import GraphProto, NodeProto

from placer.errors import ModelLoadError
from placer.frontends.onnx_nodes import attributes, is_default_domain, placer_name
from placer.frontends.opcost import AttrKind, attribute

Shapes = Mapping[str, "tuple[int, ...] | None"]

#: Operators whose inputs broadcast against each other (numpy's rules).
_BROADCASTING = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "BitShift", "Max", "Min", "Sum", "Mean",
    "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor",
    "Where", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
})  # fmt: skip


def check_sizes(graph: GraphProto, shapes: Shapes, path: Path, hint: str = "") -> None:
    """Refuse the first node of ``graph`` (its main graph) whose known input sizes it
    cannot run with; ``hint`` ends the message (what the user may have got wrong).

    Raises
    ------
    ModelLoadError
        One line naming the file, the node, its operator, the tensors and their sizes.

    Examples
    --------
    >>> from onnx import helper
    >>> node = helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")
    >>> graph = helper.make_graph([node], "g", [], [])
    >>> check_sizes(graph, {"x": (2, 6), "w": (6, 4)}, Path("m.onnx"))
    >>> check_sizes(graph, {"x": (2, 5), "w": (6, 4)}, Path("m.onnx"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    placer.errors.ModelLoadError: m.onnx: MatMul node 'proj' multiplies 'x' (2x5) by 'w' ...
    """
    used: set[str] = set()
    written = {t.name for t in graph.initializer} | {
        name for node in graph.node if node.op_type == "Constant" for name in node.output
    }
    for index, node in enumerate(graph.node):
        name = placer_name(node.name, node.op_type, index, used)
        if not is_default_domain(node) or any(a.name == "broadcast" for a in node.attribute):
            continue  # another domain's op, or one of opset 6's broadcasts along an axis
        rule = _RULES.get(node.op_type)
        if rule is None and node.op_type in _BROADCASTING:
            rule = _broadcast
        problem = rule(node, _Sizes(node, name, shapes, written)) if rule is not None else None
        if problem:
            raise ModelLoadError(
                f"{path}: {node.op_type} node {name!r} {problem}" + (f"; {hint}" if hint else "")
            )


class _Sizes:
    """The known shapes of a node's inputs and outputs, and how a message names them."""

    def __init__(self, node: NodeProto, name: str, shapes: Shapes, written: set[str]) -> None:
        self.node = node
        self.name = name
        self.shapes = shapes
        self.written = written  # the tensors whose values the model holds

    def integer(self, attr: str, default: int) -> int:
        """The node's integer attribute ``attr``, through the typed accessor."""
        where = f"node {self.name!r} ({self.node.op_type})"
        return attribute(attributes(self.node), attr, AttrKind.INT, default, where=where)

    def fixed(self, position: int) -> bool:
        """Whether input ``position``'s values are written in the model."""
        names = self.node.input
        return position < len(names) and names[position] in self.written

    def input(self, position: int) -> tuple[int, ...] | None:
        names = self.node.input
        return self.shapes.get(names[position]) if position < len(names) and names[position] \
            else None  # fmt: skip

    def output(self, position: int) -> tuple[int, ...] | None:
        names = self.node.output
        return self.shapes.get(names[position]) if position < len(names) and names[position] \
            else None  # fmt: skip

    def named(self, position: int, output: bool = False) -> str:
        """``'x' (8x4x224x224)``."""
        name = (self.node.output if output else self.node.input)[position]
        shape = self.output(position) if output else self.input(position)
        return f"{name!r} ({_dims(shape)})"


def _dims(shape: Sequence[int] | None) -> str:
    if shape is None:
        return "?"
    return "x".join(str(d) for d in shape) if shape else "a scalar"


def _conv(node: NodeProto, sizes: _Sizes) -> str | None:
    """``X`` (N, C, ...) and ``W`` (M, C / group, k...): C = W's second size × group."""
    return _channels(sizes, weight_axis=1, group=sizes.integer("group", 1))


def _conv_transpose(node: NodeProto, sizes: _Sizes) -> str | None:
    """``X`` (N, C, ...) and ``W`` (C, M / group, k...): C = W's first size."""
    return _channels(sizes, weight_axis=0)


def _channels(sizes: _Sizes, weight_axis: int, group: int = 1) -> str | None:
    """A convolution's input channels against its weight's ``weight_axis`` size times
    ``group``, where both ranks (equal) are known."""
    x, w = sizes.input(0), sizes.input(1)
    if x is None or w is None:
        return None
    if len(x) != len(w):
        return f"reads {sizes.named(0)} through the weight {sizes.named(1)}: their ranks differ"
    if len(x) < 3:
        return None
    takes = w[weight_axis] * group
    if group >= 1 and x[1] == takes:
        return None
    per = f" ({w[weight_axis]} per group, group {group})" if weight_axis == 1 else ""
    return (f"reads {x[1]} channels from {sizes.named(0)} where its weight {sizes.named(1)} "
            f"takes {takes}{per}")  # fmt: skip


def _matmul(node: NodeProto, sizes: _Sizes) -> str | None:
    """numpy's ``matmul``: the last size of A equals the second last of B (the only one
    of a vector), and the sizes before those two broadcast."""
    a, b = sizes.input(0), sizes.input(1)
    if a is None or b is None or not a or not b:
        return None
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    what = f"multiplies {sizes.named(0)} by {sizes.named(1)}"
    if inner_a != inner_b:
        return f"{what}: {inner_a} and {inner_b} must be equal"
    clash = _unbroadcastable([a[:-2], b[:-2]])
    return f"{what}: their batch sizes {clash} do not broadcast" if clash else None


def _gemm(node: NodeProto, sizes: _Sizes) -> str | None:
    """``A`` (M, K) or its transpose, by ``B`` (K, N) or its transpose."""
    a, b = sizes.input(0), sizes.input(1)
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return None
    k_a = a[0] if sizes.integer("transA", 0) else a[1]
    k_b = b[1] if sizes.integer("transB", 0) else b[0]
    if k_a != k_b:
        return f"multiplies {sizes.named(0)} by {sizes.named(1)}: {k_a} and {k_b} must be equal"
    return None


def _reshape(node: NodeProto, sizes: _Sizes) -> str | None:
    """The same number of elements before and after."""
    data, out = sizes.input(0), sizes.output(0)
    if data is None or out is None or math.prod(data) == math.prod(out):
        return None
    problem = (f"makes {sizes.named(0, output=True)} of {math.prod(out):,} elements from "
               f"{sizes.named(0)} of {math.prod(data):,}")  # fmt: skip
    if sizes.fixed(1):  # a model exported at one batch size or sequence length
        problem += (f" (the model fixes its target shape, {sizes.node.input[1]!r}: it runs "
                    "at the sizes it was exported at)")  # fmt: skip
    return problem


def _concat(node: NodeProto, sizes: _Sizes) -> str | None:
    """Inputs of one rank, equal in every size but the axis's."""
    shapes = [sizes.input(i) for i in range(len(node.input))]
    if len(shapes) < 2 or any(shape is None for shape in shapes):
        return None
    rank = len(shapes[0])
    axis = sizes.integer("axis", 1)  # required since opset 4; Concat-1's default is 1
    axis = axis + rank if axis < 0 else axis
    for i, shape in enumerate(shapes[1:], start=1):
        if len(shape) != rank:
            return f"joins {sizes.named(0)} and {sizes.named(i)}: their ranks differ"
        for d in range(rank):
            if d != axis and shape[d] != shapes[0][d]:
                return (f"joins {sizes.named(0)} and {sizes.named(i)} on axis {axis}: "
                        f"axis {d} differs")  # fmt: skip
    return None


def _broadcast(node: NodeProto, sizes: _Sizes) -> str | None:
    """Every aligned size (from the last) is one size or 1."""
    shapes = [sizes.input(i) for i in range(len(node.input))]
    known = [(i, s) for i, s in enumerate(shapes) if s is not None]
    clash = _unbroadcastable([s for _, s in known])
    if clash is None:
        return None
    named = " and ".join(sizes.named(i) for i, _ in known)
    return f"combines {named}: sizes {clash} do not broadcast"


def _unbroadcastable(shapes: Sequence[Sequence[int]]) -> str | None:
    """The first aligned sizes of ``shapes`` that do not broadcast (``'3 and 4'``), else
    None.

    >>> _unbroadcastable([(8, 1, 5), (4, 5)]), _unbroadcastable([(2, 5), (3, 5)])
    (None, '2 and 3')
    """
    rank = max((len(s) for s in shapes), default=0)
    for back in range(1, rank + 1):
        present = {s[-back] for s in shapes if len(s) >= back}
        if len(present - {1}) > 1:
            return " and ".join(str(d) for d in sorted(present - {1}))
    return None


_RULES: dict[str, Callable[[NodeProto, _Sizes], str | None]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Reshape": _reshape,
    "Concat": _concat,
}
