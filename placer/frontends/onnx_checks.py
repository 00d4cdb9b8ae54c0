"""Checks an ONNX model must pass before placer costs it, each failure one line.

ONNX files come from anywhere, and a malformed one must not be placed as if it were
sound, crash placer, or hang ONNX shape inference. :func:`check_model` runs before shape
inference and refuses, naming the node (by placer's name for it) and what is wrong:

- text that is not UTF-8: graph, node, op type, domain, tensor and attribute names and
  string attribute values (protobuf hands such a string over as ``bytes``);
- broken single static assignment: a tensor produced twice (by two nodes, or by a node
  and also a graph input or initializer), a node reading a tensor that no earlier node,
  graph input or initializer defines, a graph output with an empty name or that nothing
  makes; in ``If``, ``Loop`` and ``Scan`` bodies too, where names of enclosing scopes
  may be read but not redefined;
- a node without outputs;
- attributes: ``ref_attr_name`` (meaningful only inside a function), no type, strings
  that are not UTF-8, a type other than the op's schema declares, a required attribute
  missing (ops of domains the model imports), and an ``Einsum`` equation that is not
  well formed (ONNX shape inference loops forever on some, ``....->`` for one);
- tensors of more than :data:`MAX_ELEMENTS` elements or with negative dimensions
  (initializers, constants; :func:`check_elements` for the shapes found later).

:data:`MAX_FIGURE` bounds the FLOPs and bytes of one operator, so that the sums later
stages form stay finite.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import onnx
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto

from placer.errors import ModelLoadError
from placer.frontends.onnx_nodes import placer_name

__all__ = [
    "MAX_ELEMENTS",
    "MAX_FIGURE",
    "attribute_kind",
    "check_elements",
    "check_model",
    "einsum_problem",
]

#: Most elements a tensor may hold: 2**53, the largest count a float64 holds exactly
#: (a 32 PiB fp32 tensor, far beyond any device). Larger counts come from absurd
#: dimensions or options (``--batch-size 2**62``), never from a real model.
MAX_ELEMENTS = 2**53
#: Largest batch size or input dimension an option or a plan may give (2**31 - 1).
MAX_DIM = 2**31 - 1
#: Most FLOPs, or bytes, one operator may be costed at (1e40); a model beyond it is
#: refused rather than costed at figures whose sums overflow.
MAX_FIGURE = 1e40

_DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})

#: How messages name each attribute type ("attribute 'x' must be ints, got a float").
_KIND = {
    AttributeProto.FLOAT: "a float",
    AttributeProto.INT: "an int",
    AttributeProto.STRING: "a string",
    AttributeProto.TENSOR: "a tensor",
    AttributeProto.GRAPH: "a graph",
    AttributeProto.SPARSE_TENSOR: "a sparse tensor",
    AttributeProto.TYPE_PROTO: "a type",
    AttributeProto.FLOATS: "floats",
    AttributeProto.INTS: "ints",
    AttributeProto.STRINGS: "strings",
    AttributeProto.TENSORS: "tensors",
    AttributeProto.GRAPHS: "graphs",
    AttributeProto.SPARSE_TENSORS: "sparse tensors",
    AttributeProto.TYPE_PROTOS: "types",
}


def attribute_kind(attr_type: int) -> str:
    """How messages name ONNX attribute type ``attr_type``.

    Examples
    --------
    >>> attribute_kind(AttributeProto.INTS), attribute_kind(AttributeProto.FLOAT)
    ('ints', 'a float')
    """
    return _KIND.get(attr_type, f"type {attr_type}")


def _shown(value: str | bytes) -> str:
    """A name for a message: quoted, escapes visible, cut if very long."""
    text = repr(value) if isinstance(value, bytes) else repr(str(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _readable(value: object) -> bool:
    """Whether a protobuf string field held UTF-8 text (upb returns bytes otherwise; the
    pure-Python protobuf may return text with lone surrogates)."""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_elements(path: Path, what: str, shape: Sequence[int], hint: str = "") -> None:
    """Refuse a tensor shape with a negative dimension or over :data:`MAX_ELEMENTS`.

    Parameters
    ----------
    path : Path
        The model file, for the message.
    what : str
        The tensor, for the message: ``"tensor 'x'"``.
    shape : sequence of int
        Its dimensions.
    hint : str
        Appended to the message: what to change.

    Raises
    ------
    ModelLoadError
        ``PATH: tensor 'x' of shape 4611686018427387904x3 holds 1.4e+19 elements, ...``

    Examples
    --------
    >>> check_elements(Path("m.onnx"), "tensor 'x'", (2**26, 2**26))
    >>> check_elements(Path("m.onnx"), "tensor 'x'", (2**40, 2**20))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    placer.errors.ModelLoadError: m.onnx: tensor 'x' of shape ... holds 1.15e+18 elements, ...
    """
    dims = "x".join(str(d) for d in shape) or "() (a scalar)"
    if any(d < 0 for d in shape):
        raise ModelLoadError(f"{path}: {what} has a negative dimension (shape {dims})")
    count = 1
    for dim in shape:
        count *= dim
        if count > MAX_ELEMENTS:
            break
    if count > MAX_ELEMENTS:
        total = _product_text(shape)
        raise ModelLoadError(
            f"{path}: {what} of shape {dims} holds {total} elements, more than placer "
            f"handles (2**53, about {MAX_ELEMENTS:.3g}){hint}"
        )


def _product_text(shape: Sequence[int]) -> str:
    total = 1
    for dim in shape:
        total *= dim
    try:
        return f"{float(total):.3g}"
    except OverflowError:
        return f"about 10**{len(str(total)) - 1}"


# -- Einsum ---------------------------------------------------------------------------

_EINSUM_TERM = re.compile(r"(?:[A-Za-z]|\.\.\.)*")


def einsum_problem(equation: str, operands: int) -> str | None:
    """What is wrong with Einsum ``equation`` for ``operands`` inputs, or None.

    The grammar is NumPy's, as ONNX specifies it: comma-separated input terms, then
    optionally ``->`` and an output term; a term is letters with at most one ellipsis
    ``...``; spaces are ignored; an output letter appears once and in some input.

    Examples
    --------
    >>> einsum_problem("bij,bjk->bik", 2) is None
    True
    >>> einsum_problem("....->", 1)
    "term '....' is not letters with at most one '...'"
    >>> einsum_problem("ij,jk", 1)
    'the equation has 2 input terms, the node 1 input'
    """
    text = equation.replace(" ", "")
    if text.count("->") > 1:
        return "more than one '->'"
    lhs, arrow, rhs = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != operands:
        plural = "" if operands == 1 else "s"
        return f"the equation has {len(terms)} input terms, the node {operands} input{plural}"
    for term in [*terms, rhs] if arrow else terms:
        if not _EINSUM_TERM.fullmatch(term) or term.count("...") > 1:
            return f"term {term!r} is not letters with at most one '...'"
    if arrow:
        labels = rhs.replace("...", "")
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            return f"output label {repeated[0]!r} appears twice"
        unknown = sorted(set(labels) - set(lhs))
        if unknown:
            return f"output label {unknown[0]!r} is in no input term"
        if "..." in rhs and "..." not in lhs:
            return "the output has '...' but no input term has"
    return None


# -- the model ------------------------------------------------------------------------


def check_model(model: ModelProto, path: Path, folded: Iterable[int] = ()) -> None:
    """Refuse a model placer cannot cost faithfully; see the module's docstring.

    Parameters
    ----------
    model : ModelProto
        As parsed, before shape inference.
    path : Path
        The file, for messages.
    folded : iterable of int
        Positions of the main graph's constant nodes, which placer folds into their
        consumers: they take no part in placer's names of the others.

    Raises
    ------
    ModelLoadError
        ``PATH: node 'NAME' (OpType): what is wrong``, the first problem found.

    Notes
    -----
    One pass over the graph and its subgraphs: time linear in the size of the proto.
    """
    opsets: dict[str, int] = {}
    for opset in model.opset_import:
        if _readable(opset.domain):
            domain = "" if opset.domain == "ai.onnx" else opset.domain
            opsets[domain] = opset.version
    _Checker(path, opsets).graph(model.graph, [], "", frozenset(folded))


#: What defines a tensor besides a node (whose placer name is kept instead).
_GRAPH_INPUT = "a graph input"
_INITIALIZER = "an initializer"


def _maker(origin: str | _Node) -> str:
    return origin if isinstance(origin, str) else f"node {_shown(origin.label)}"


class _Node:
    """A node that made a tensor, kept for messages (formatted only on failure)."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label


class _Checker:
    def __init__(self, path: Path, opsets: Mapping[str, int]) -> None:
        self.path = path
        self.opsets = opsets
        self.schemas: dict[tuple[str, str], onnx.defs.OpSchema | None] = {}

    def fail(self, where: str, message: str) -> ModelLoadError:
        return ModelLoadError(f"{self.path}: {where}{message}")

    def graph(
        self,
        graph: GraphProto,
        outer: list[Mapping[str, str | _Node]],
        where: str,
        folded: frozenset[int] | None = None,
    ) -> None:
        """Check ``graph``; ``outer`` maps the names of enclosing scopes to their makers.

        ``folded`` is given for the main graph only, whose nodes get placer's names for
        them (see :meth:`placer.frontends.onnx_graph._GraphBuilder.build`): the node's name, else
        ``<OpType>_<index>``, with ``_<index>`` after a name an earlier operator has.
        """
        made = self.graph_values(graph, where)
        used: set[str] = set()  # placer's names so far (main graph)
        for index, node in enumerate(graph.node):
            op_type, name = node.op_type, node.name
            if not _readable(op_type):
                raise self.fail(
                    where, f"node {index} (in graph order): the op type is not UTF-8 "
                    f"({_shown(op_type)})"
                )  # fmt: skip
            if not _readable(name):
                raise self.fail(
                    where, f"node {index} ({op_type}, in graph order): the name is not "
                    f"UTF-8 ({_shown(name)})"
                )  # fmt: skip
            if folded is not None and index not in folded:
                label = placer_name(name, op_type, index, used)
            else:
                label = name or f"{op_type}_{index}"  # not an op: never in a plan
            self.node(node, label, made, outer, where)

        for value in graph.output:
            if value.name not in made and not any(value.name in scope for scope in outer):
                raise self.fail(
                    where,
                    f"graph output {_shown(value.name)} is made by no node, graph input or "
                    "initializer",
                )

    def graph_values(self, graph: GraphProto, where: str) -> dict[str, str | _Node]:
        """Check ``graph``'s name, inputs, outputs, ``value_info`` and initializers;
        what defines each of its inputs and initializers (tensor name -> maker)."""
        if not _readable(graph.name):
            raise self.fail(where, f"the graph's name is not UTF-8 ({_shown(graph.name)})")
        made: dict[str, str | _Node] = {}  # tensor -> what defines it
        for role, values in (("graph input", graph.input), ("graph output", graph.output),
                             ("value_info", graph.value_info)):  # fmt: skip
            for position, value in enumerate(values):
                if not _readable(value.name):
                    raise self.fail(
                        where, f"{role} {position} has a name that is not UTF-8 "
                        f"({_shown(value.name)})"
                    )  # fmt: skip
                if role != "value_info" and not value.name:
                    raise self.fail(where, f"{role} {position} has an empty name")
        for value in graph.input:
            if value.name in made:
                raise self.fail(where, f"graph input {_shown(value.name)} is listed twice")
            made[value.name] = _GRAPH_INPUT
        initializers: set[str] = set()
        tensors = [(init.name, init) for init in graph.initializer]
        tensors += [(sparse.values.name, sparse) for sparse in graph.sparse_initializer]
        for name, tensor in tensors:
            if not _readable(name):
                raise self.fail(where, f"an initializer's name is not UTF-8 ({_shown(name)})")
            if not name:
                raise self.fail(where, "an initializer has an empty name")
            if name in initializers:
                raise self.fail(where, f"initializer {_shown(name)} is defined twice")
            initializers.add(name)
            made.setdefault(name, _INITIALIZER)  # an initializer may also be an input
            check_elements(self.path, f"{where}initializer {_shown(name)}", tensor.dims)

        return made

    def node(
        self,
        node: NodeProto,
        label: str,
        made: dict[str, str | _Node],
        outer: list[Mapping[str, str | _Node]],
        where: str,
    ) -> None:
        inputs, outputs = list(node.input), list(node.output)

        def here() -> str:
            return f"{where}node {_shown(label)} ({node.op_type}): "

        if not _readable(node.domain):
            raise self.fail(here(), f"the domain is not UTF-8 ({_shown(node.domain)})")
        for role, names in (("an input", inputs), ("an output", outputs)):
            for name in names:
                if not _readable(name):
                    raise self.fail(here(), f"{role} name is not UTF-8 ({_shown(name)})")
        if not any(outputs):
            raise self.fail(here(), "the node has no outputs")

        self.attributes(node, here, made, outer)

        for name in inputs:
            if name and name not in made and not (outer and any(name in s for s in outer)):
                raise self.fail(
                    here(),
                    f"reads tensor {_shown(name)}, which no earlier node, graph input or "
                    "initializer defines",
                )
        maker = _Node(label)
        for name in outputs:
            if not name:
                continue
            first = made.get(name)
            if first is None and outer:
                first = next((scope[name] for scope in outer if name in scope), None)
            if first is not None:
                raise self.fail(
                    here(),
                    f"tensor {_shown(name)} is produced twice, here and by {_maker(first)}: "
                    "ONNX graphs assign each tensor once",
                )
            made[name] = maker

    def attributes(
        self,
        node: NodeProto,
        here: Callable[[], str],
        made: Mapping[str, str | _Node],
        outer: list[Mapping[str, str | _Node]],
    ) -> None:
        schema = self.schema(node)
        if not node.attribute and (schema is None or not schema.attributes):
            return
        at = here()
        seen: set[str] = set()
        for attr in node.attribute:
            if not _readable(attr.name):
                raise self.fail(at, f"an attribute's name is not UTF-8 ({_shown(attr.name)})")
            what = f"attribute {_shown(attr.name)}"
            if attr.name in seen:
                raise self.fail(at, f"{what} is given twice")
            seen.add(attr.name)
            self.attribute(attr, schema, at, what)
        if schema is not None:
            for name, spec in schema.attributes.items():
                if spec.required and name not in seen:
                    raise self.fail(at, f"the required attribute {name!r} is missing")
        if node.op_type == "Einsum" and node.domain in _DEFAULT_DOMAINS:
            self.einsum(node, at)
        # Bodies read the names defined so far here and in the enclosing scopes.
        scopes = [*outer, made]
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                self.graph(attr.g, scopes, f"{at}attribute {_shown(attr.name)}: ")
            elif attr.type == AttributeProto.GRAPHS:
                for position, graph in enumerate(attr.graphs):
                    inside = f"{at}attribute {_shown(attr.name)}[{position}]: "
                    self.graph(graph, scopes, inside)

    def einsum(self, node: NodeProto, at: str) -> None:
        """Refuse an ``Einsum`` equation its inputs cannot satisfy (shape inference would
        crash or loop on it)."""
        for attr in node.attribute:
            if attr.name == "equation" and attr.type == AttributeProto.STRING:
                equation = attr.s.decode("utf-8")
                problem = einsum_problem(equation, len(node.input))
                if problem is not None:
                    raise self.fail(at, f"equation {_shown(equation)}: {problem}")

    def attribute(self, attr: AttributeProto, schema, at: str, what: str) -> None:
        """Check one attribute of a node: no reference to a function's attribute, a
        valid type (the schema's, if it has one), UTF-8 text, tensors of a size placer
        handles."""
        if attr.ref_attr_name:
            raise self.fail(
                at,
                f"{what} refers to a function's attribute "
                f"({_shown(attr.ref_attr_name)}), which only a node inside a function may",
            )
        if attr.type == AttributeProto.UNDEFINED or attr.type not in _KIND:
            raise self.fail(at, f"{what} has no valid type")
        if attr.type == AttributeProto.STRING and not _utf8(attr.s):
            raise self.fail(at, f"{what} is not UTF-8 text ({_shown(attr.s)})")
        if attr.type == AttributeProto.STRINGS:
            bad = next((s for s in attr.strings if not _utf8(s)), None)
            if bad is not None:
                message = f"{what} holds a string that is not UTF-8 ({_shown(bad)})"
                raise self.fail(at, message)
        expected = schema.attributes.get(attr.name) if schema is not None else None
        if expected is not None and int(expected.type) != attr.type:
            raise self.fail(
                at,
                f"{what} must be {attribute_kind(int(expected.type))}, got "
                f"{attribute_kind(attr.type)}",
            )
        if attr.type == AttributeProto.TENSOR:
            check_elements(self.path, f"{at}{what}", attr.t.dims)
        elif attr.type == AttributeProto.SPARSE_TENSOR:
            check_elements(self.path, f"{at}{what}", attr.sparse_tensor.dims)
        elif attr.type == AttributeProto.TENSORS:
            for tensor in attr.tensors:
                check_elements(self.path, f"{at}{what}", tensor.dims)

    def schema(self, node: NodeProto) -> onnx.defs.OpSchema | None:
        """The op's schema at the model's opset for its domain, if ONNX knows it."""
        domain = "" if node.domain == "ai.onnx" else node.domain
        key = (domain, node.op_type)
        if key not in self.schemas:
            version = self.opsets.get(domain)
            schema = None
            if version is not None:
                try:
                    schema = onnx.defs.get_schema(node.op_type, version, domain)
                except onnx.defs.SchemaError:
                    schema = None
            self.schemas[key] = schema
        return self.schemas[key]
