"""Ops that recompute a value an earlier op computes: a runtime computes it once.

onnxruntime's basic graph optimisations include common-subexpression elimination [1]_:
by value numbering [2]_, every graph input, constant and node output gets an
equivalence class, and a node with the same operation, attributes and classes of
inputs as an earlier node is dropped, its readers reading the earlier node's output.
Equal constants are one class only when small: onnxruntime 1.32 merges two nodes that
read equal initializers (or ``Constant`` values, which it loads as initializers) of at
most 8 elements, and keeps both where they hold 9 or more (measured at its basic level,
``tests/frontends/test_cse.py``).  A weight a node generates (a ``ConstantOfShape``)
is the output of that node, numbered like any other: in a model whose generated
weights are equal, every projection with the same input and an equal weight is
computed once.  In placer's sample BERT-base, before its weights were made distinct,
the query, key and value projections of each layer (and the bias, reshape and
transpose after them) were one computation, 24 of its 48 768-by-768 products.

:func:`recomputed` reproduces the numbering on the ONNX graph, before placer folds
constants: an initializer's class is its type, shape and contents (one of more than
:data:`MAX_SHARED_ELEMENTS` elements, or whose data lies in an external file, is a
class of its own); a node output's class (a folded constant's too) is its op,
attributes, the classes of its inputs and its position among the outputs.  As
onnxruntime treats them, these ops are each a class of their own: ops that draw random
numbers, ops with subgraphs, ops of other domains than the default one (a runtime's
own, ``com.microsoft``'s), ops with a NaN float attribute, and a ``Conv`` whose one
reader a runtime folds into it first (a ``BatchNormalization``, or a ``Mul`` by a
constant).  A node all of whose outputs are in classes an earlier node makes is a
recomputation.  A node that makes a graph output is never one, nor one that a later
node repeats: onnxruntime keeps it, and where it numbers it first, keeps the equal node
after it too (measured), so placer charges both, never less than the runtime runs.  Its
values keep their numbers: what reads the two is one value (the runtime runs it once).
A ``Constant`` is numbered as the initializer it is loaded as, by its contents whatever
its tensor is named.

References
----------
.. [1] onnxruntime, Graph optimizations: basic graph optimizations (constant folding,
   redundant node eliminations, common subexpression elimination, constant sharing).
.. [2] J. Cocke and J. T. Schwartz, "Programming languages and their compilers",
   Courant Institute, 1970 (value numbering).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, numpy_helper

__all__ = ["recomputed"]

#: Ops whose outputs differ from run to run (onnxruntime's non-deterministic ops).
RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform",
                        "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"})  # fmt: skip
#: Ops a runtime folds the constant operation after them into (onnxruntime's
#: Conv-BatchNorm and Conv-Mul fusions run before it numbers values; its Conv-Add
#: fusion, measured, after): two such ops with equal inputs become ops with different
#: weights, which it computes both.
FOLDING_ANCHORS = frozenset({"Conv"})
#: What such an op folds in: a BatchNormalization, or a product with a constant.
_FOLDED = frozenset({"BatchNormalization", "Mul"})
#: Initializers and ``Constant`` values of more elements than this are each a class of
#: their own, as onnxruntime 1.32 treats them at its basic level: it merged ``Add``
#: and ``MatMul`` readers of equal ones of 1 to 8 elements, and kept both readers of
#: equal ones of 9, 16, 64 and 4,096 elements.
MAX_SHARED_ELEMENTS = 8


def recomputed(graph: GraphProto, skip: Collection[int] = (),
               opset: int | None = None) -> dict[int, int]:  # fmt: skip
    """The nodes that recompute values an earlier node computes (see the module's
    docstring), among the nodes not in ``skip`` (the folded constants, which only feed
    the numbering): for each, by position in ``graph.node``, the position of the node
    that first computes them, whose output the runtime gives the node's readers.
    ``opset``: the model's version of the default domain, whose schemas give the
    attributes a node leaves out (the latest where None)."""
    numbers = _Numbers(opset)
    classes: dict[str, int] = {}
    for init in graph.initializer:  # by contents up to 8 elements: a few bytes each
        classes[init.name] = numbers.constant(init)
    constants = set(classes) | {name for node in graph.node if node.op_type == "Constant"
                                for name in node.output}  # fmt: skip
    anchored = {node.output[0] for node in graph.node
                if node.op_type in FOLDING_ANCHORS and node.output}  # fmt: skip
    readers: dict[str, list[NodeProto]] = {}
    for node in graph.node:
        for name in anchored.intersection(node.input):
            readers.setdefault(name, []).append(node)
    outputs = {value.name for value in graph.output}
    made: dict[int, int] = {}  # value -> the node that first computes it
    found: dict[int, int] = {}
    for index, node in enumerate(graph.node):
        value_of = _constant_tensor(node)
        if value_of is not None and node.output and node.output[0]:
            # loaded as an initializer: one value with an equal initializer or Constant
            named = [(node.output[0], numbers.constant(value_of, node.output[0]))]
        else:
            if _folds_its_reader(node, readers, constants):
                kind = numbers.fresh()
            else:
                kind = numbers.node(node, classes)
            named = [(name, numbers.of(("output", kind, position)))
                     for position, name in enumerate(node.output) if name]  # fmt: skip
        classes.update(named)
        if index in skip:
            continue
        values = [value for _, value in named]
        if outputs.intersection(name for name, _ in named):
            continue  # kept, and no later node merges into it; its readers' values do
        if values and all(value in made for value in values):
            found[index] = made[values[0]]
        for value in values:
            made.setdefault(value, index)
    return found


def _folds_its_reader(node: NodeProto, readers: dict[str, list[NodeProto]],
                      constants: set[str]) -> bool:
    """Whether the runtime folds the one node reading ``node``'s output into it first
    (:data:`FOLDING_ANCHORS`)."""
    if node.op_type not in FOLDING_ANCHORS or not _default_domain(node) or not node.output:
        return False
    after = readers.get(node.output[0], [])
    if len(after) != 1 or not _default_domain(after[0]) or after[0].op_type not in _FOLDED:
        return False
    reader = after[0]
    return reader.op_type == "BatchNormalization" or any(
        name in constants for name in reader.input if name != node.output[0])


def _default_domain(node: NodeProto) -> bool:
    return node.domain in ("", "ai.onnx")


def _deterministic(node: NodeProto) -> bool:
    """Whether onnxruntime takes ``node`` for one whose output its inputs decide: an op
    of the default domain that draws no random numbers, has no subgraph and no NaN
    among its float attributes (NaN equals nothing)."""
    if not _default_domain(node) or node.op_type in RANDOM_OPS:
        return False
    for attr in node.attribute:
        if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            return False
        if attr.type == AttributeProto.FLOAT and math.isnan(attr.f):
            return False
        if attr.type == AttributeProto.FLOATS and any(math.isnan(f) for f in attr.floats):
            return False
    return True


class _Numbers:
    """Value numbers: one small integer per distinct key (keys hold numbers, not the
    keys they stand for, so each is hashed in time linear in the node's inputs)."""

    def __init__(self, opset: int | None = None) -> None:
        self._numbers: dict[Hashable, int] = {}
        self._opset = opset
        self._defaults: dict[str, dict[str, bytes]] = {}

    def defaults(self, op_type: str) -> dict[str, bytes]:
        """The default-domain op's attributes that have a default, serialised as a
        node that gives them would: onnxruntime fills them in before it compares nodes
        (a LeakyRelu without ``alpha`` equals one with ``alpha=0.01``, measured)."""
        if op_type not in self._defaults:
            try:
                schema = (onnx.defs.get_schema(op_type) if self._opset is None
                          else onnx.defs.get_schema(op_type, self._opset))  # fmt: skip
            except onnx.defs.SchemaError:
                schema = None
            self._defaults[op_type] = {} if schema is None else {
                name: attr.default_value.SerializeToString()
                for name, attr in schema.attributes.items()
                if attr.default_value.type != AttributeProto.UNDEFINED
            }  # fmt: skip
        return self._defaults[op_type]

    def of(self, key: Hashable) -> int:
        return self._numbers.setdefault(key, len(self._numbers))

    def fresh(self) -> int:
        return self.of(("unique", len(self._numbers)))

    def constant(self, init: TensorProto, name: str | None = None) -> int:
        """The number of a constant tensor (an initializer, or a ``Constant``'s value
        making ``name``): its type, shape and contents up to
        :data:`MAX_SHARED_ELEMENTS` elements, else its own."""
        external = init.data_location == TensorProto.EXTERNAL
        if external or math.prod(init.dims) > MAX_SHARED_ELEMENTS:
            return self.of(("tensor", name or init.name))
        return self.of(("constant", init.data_type, tuple(init.dims), _contents(init)))

    def node(self, node: NodeProto, classes: dict[str, int]) -> int:
        """The number of what ``node`` computes, before its outputs' positions."""
        if not _deterministic(node) or node.op_type == "Constant":
            return self.fresh()  # (a Constant of a tensor value is numbered as one)
        inputs = tuple(
            (classes[name] if name in classes else self.of(("tensor", name))) if name else -1
            for name in node.input
        )
        given = {a.name: a.SerializeToString() for a in node.attribute}
        attrs = tuple(sorted({**self.defaults(node.op_type), **given}.items()))
        return self.of((node.op_type, attrs, inputs))


def _constant_tensor(node: NodeProto) -> TensorProto | None:
    """A default-domain ``Constant``'s value as the tensor onnxruntime loads it as (None
    for another node, or a sparse value)."""
    if node.op_type != "Constant" or not _default_domain(node) or len(node.attribute) != 1:
        return None
    attr = node.attribute[0]
    if attr.type == AttributeProto.TENSOR:
        return attr.t
    if attr.type in _CONSTANT_VALUES:
        return numpy_helper.from_array(_CONSTANT_VALUES[attr.type](attr))
    return None


#: A ``Constant``'s value attribute, other than a tensor, as the array it stands for.
_CONSTANT_VALUES: dict[int, Callable[[AttributeProto], np.ndarray]] = {
    AttributeProto.FLOAT: lambda a: np.array(a.f, np.float32),
    AttributeProto.FLOATS: lambda a: np.array(list(a.floats), np.float32),
    AttributeProto.INT: lambda a: np.array(a.i, np.int64),
    AttributeProto.INTS: lambda a: np.array(list(a.ints), np.int64),
    AttributeProto.STRING: lambda a: np.array(a.s, dtype=object),
    AttributeProto.STRINGS: lambda a: np.array(list(a.strings), dtype=object),
}


def _contents(init: TensorProto) -> Hashable:
    """A small constant's values, whichever field of the proto holds them."""
    try:
        array = numpy_helper.to_array(init)
    except (ValueError, TypeError, KeyError):  # a malformed tensor: compared by its proto
        return _payload(init)
    if array.dtype == object:
        return tuple(array.ravel().tolist())
    return array.tobytes()


def _payload(init: TensorProto) -> bytes:
    """An initializer's contents as bytes, whichever field holds them (serialised
    without its name and doc string, which it gets back)."""
    if init.raw_data:
        return init.raw_data
    name, doc = init.name, init.doc_string
    init.name, init.doc_string = "", ""
    try:
        return init.SerializeToString()
    finally:
        init.name, init.doc_string = name, doc
