"""What a plan was made for: a fingerprint of the model or workload, and the options it
was costed with (``provenance`` in the plan file).

A plan is only meaningful for the problem it was made for. ``placer place`` records in
the plan a fingerprint of its input and, for an ONNX model, every option that changes
the costs (mode, dtype, optimiser, batch size, input shapes, coarsening, a fingerprint
of the measured costs, and the whole cluster), so that ``evaluate``, ``report`` and
``split`` can re-cost the plan exactly as it was made, and refuse it for another model.

Fingerprints are ``sha256:`` and 64 hex digits:

- of an ONNX model, its graph structure and shapes (:func:`onnx_fingerprint`): nodes,
  their inputs, outputs and attributes, the declared types and shapes of the graph's
  inputs, outputs and initializers, and the values of small integer tensors (shapes,
  axes); not the weights' values, the names of the graph and the file, doc strings or
  value_info annotations;
- of a workload, its nodes and edges with every figure that is costed, and its device
  limits (:func:`workload_fingerprint`);
- of measured costs (``--costs``), the table of times read from the file
  (:func:`costs_fingerprint`), whatever its format.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from placer.choices import DType, Fusion, Mode, Optimizer
from placer.errors import PlanFormatError
from placer.frontends.onnx_checks import MAX_DIM

if TYPE_CHECKING:
    from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto

    from placer.costs.cluster import Cluster
    from placer.problem import Problem

__all__ = [
    "Costing",
    "Provenance",
    "cluster_document",
    "costs_fingerprint",
    "onnx_fingerprint",
    "workload_fingerprint",
]

_PREFIX = "sha256:"
#: Integer tensors up to this many elements count with their values: they are shapes,
#: axes and indices, which change the problem; larger ones and float tensors are weights.
_MAX_VALUE_ELEMENTS = 64


@dataclass(frozen=True)
class Costing:
    """The options an ONNX model was costed with (``placer place`` model options).

    ``costs`` is the fingerprint of the measured costs (``--costs``), None without them;
    ``cluster`` is the cluster itself, so that a plan can be re-costed without its file
    (its groups kept out of the pipeline, by ``--exclude`` or the file, included).
    ``granularity`` and ``cut_at`` are the cut rule the plan was made under
    (:class:`placer.frontends.layers.CutRule`); plans written before them read as ``op`` and None.
    ``fusion`` is what the cost model fused (:mod:`placer.frontends.fusion`); plans written before
    it read as ``none``.
    """

    mode: str
    dtype: str
    optimizer: str
    batch_size: int
    input_shapes: Mapping[str, tuple[int, ...]]
    coarsen: bool
    costs: str | None
    cluster: Cluster
    granularity: str = "op"
    cut_at: str | None = None
    fusion: str = "none"  # plans written before --fusion were costed node by node

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "batch_size": self.batch_size,
            "input_shapes": {name: list(shape) for name, shape in self.input_shapes.items()},
            "coarsen": self.coarsen,
            "costs": self.costs,
            "cluster": cluster_document(self.cluster),
            "granularity": self.granularity,
            "cut_at": self.cut_at,
            "fusion": self.fusion,
        }


#: The keys of a plan's ``provenance`` that :class:`Costing` fills (all or none).
COSTING_KEYS = ("mode", "dtype", "optimizer", "batch_size", "input_shapes", "coarsen",
                "costs", "cluster")  # fmt: skip


@dataclass(frozen=True)
class Provenance:
    """What a plan was made for: the input's fingerprint, and for an ONNX model the
    options it was costed with (None for a workload, which carries its own costs)."""

    fingerprint: str
    costing: Costing | None = None

    def to_dict(self) -> dict[str, Any]:
        """The plan's ``provenance`` object (the README lists its keys)."""
        document: dict[str, Any] = {"fingerprint": self.fingerprint}
        if self.costing is not None:
            document.update(self.costing.to_dict())
        return document

    @staticmethod
    def from_dict(document: Any, source: str) -> Provenance:
        """Read a plan's ``provenance`` object back.

        Raises
        ------
        PlanFormatError
            A field is missing or of the wrong form, or the cluster is not a valid
            cluster description; the message names the field.
        """
        from placer.util.safe_yaml import shown

        def fail(field: str, message: str) -> PlanFormatError:
            return PlanFormatError(f"{source}: provenance.{field}: {message}")

        if not isinstance(document, dict):
            raise PlanFormatError(
                f"{source}: provenance: expected an object, got {shown(document)}"
            )
        fingerprint = document.get("fingerprint")
        if not is_fingerprint(fingerprint):
            raise fail(
                "fingerprint", f"expected 'sha256:' and 64 hex digits, got {shown(fingerprint)}"
            )
        present = [key for key in COSTING_KEYS if key in document]
        if not present:
            return Provenance(fingerprint)
        missing = [key for key in COSTING_KEYS if key not in document]
        if missing:
            raise fail(
                missing[0],
                f"missing (a plan of an ONNX model records all of {', '.join(COSTING_KEYS)})",
            )
        _check_choices(document, fail)
        shapes = _input_shapes(document["input_shapes"], fail)
        _check_costs(document, fail)
        granularity, cut_at = _cut_rule(document, fail)
        fusion = document.get("fusion", Fusion.NONE.value)
        allowed = [c.value for c in Fusion]
        if fusion not in allowed:
            raise fail("fusion", f"expected one of {', '.join(allowed)}, got {shown(fusion)}")
        cluster = read_cluster_document(document["cluster"], f"{source}: provenance.cluster")
        costing = Costing(
            mode=document["mode"],
            dtype=document["dtype"],
            optimizer=document["optimizer"],
            batch_size=document["batch_size"],
            input_shapes=shapes,
            coarsen=document["coarsen"],
            costs=document["costs"],
            cluster=cluster,
            granularity=granularity,
            cut_at=cut_at,
            fusion=fusion,
        )
        return Provenance(fingerprint, costing)


def _check_choices(document: dict, fail) -> None:
    """Check the recorded mode, dtype, optimizer and batch size (``fail(field,
    message)`` makes the error)."""
    from placer.util.safe_yaml import shown

    choices = {"mode": Mode, "dtype": DType, "optimizer": Optimizer}
    for field, choice in choices.items():
        allowed = [c.value for c in choice]
        if document[field] not in allowed:
            got = shown(document[field])
            raise fail(field, f"expected one of {', '.join(allowed)}, got {got}")
    batch = document["batch_size"]
    if not _positive_int(batch):
        expected = f"expected an integer from 1 to {MAX_DIM:,}"
        raise fail("batch_size", f"{expected}, got {shown(batch)}")


def _check_costs(document: dict, fail) -> None:
    """Check the recorded ``--coarsen`` and ``--costs`` table fingerprint."""
    from placer.util.safe_yaml import shown

    if not isinstance(document["coarsen"], bool):
        raise fail("coarsen", f"expected true or false, got {shown(document['coarsen'])}")
    costs = document["costs"]
    if costs is not None and not is_fingerprint(costs):
        raise fail(
            "costs", f"expected null or 'sha256:' and 64 hex digits, got {shown(costs)}"
        )


def _input_shapes(shapes: Any, fail) -> dict[str, tuple[int, ...]]:
    """The recorded ``--input-shape`` values, checked."""
    from placer.util.safe_yaml import shown

    if not isinstance(shapes, dict):
        raise fail(
            "input_shapes", f"expected an object of NAME: [D0, D1, ...], got {shown(shapes)}"
        )
    for name, shape in shapes.items():
        if not isinstance(shape, list) or not shape or not all(map(_positive_int, shape)):
            raise fail(
                f"input_shapes.{name}",
                f"expected a list of integers from 1 to {MAX_DIM:,}, got {shown(shape)}",
            )
    return {name: tuple(shape) for name, shape in shapes.items()}


def _cut_rule(document: dict, fail) -> tuple[str, str | None]:
    """The recorded ``--granularity`` and ``--cut-at`` (``op`` and null for plans
    written before them), checked."""
    from placer.util.safe_yaml import shown

    granularity = document.get("granularity", "op")
    if granularity not in ("op", "layer"):
        raise fail("granularity", f"expected one of op, layer, got {shown(granularity)}")
    cut_at = document.get("cut_at")
    if cut_at is not None:
        if not isinstance(cut_at, str):
            expected = "expected null or a regular expression"
            raise fail("cut_at", f"{expected}, got {shown(cut_at)}")
        if granularity != "op":
            raise fail("cut_at", "expected null in a plan made with --granularity layer")
        try:
            re.compile(cut_at)
        except re.error as err:
            raise fail("cut_at", f"not a regular expression ({err})") from err
    return granularity, cut_at


def is_fingerprint(value: Any) -> bool:
    """Whether ``value`` is a fingerprint: ``sha256:`` and 64 lower-case hex digits."""
    if not isinstance(value, str) or not value.startswith(_PREFIX):
        return False
    digest = value[len(_PREFIX):]
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def short(fingerprint: str) -> str:
    """A fingerprint cut to 12 hex digits, for messages."""
    return fingerprint[: len(_PREFIX) + 12]


def _positive_int(value: Any) -> bool:
    """A batch size or dim the options could have given: 1 to :data:`MAX_DIM`."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DIM


# -- the cluster, in the format of docs/cluster.md ---------------------------------------


def cluster_document(cluster: Cluster) -> dict[str, Any]:
    """``cluster`` in the cluster file format (docs/cluster.md), every figure explicit
    in base units and every link listed, so that reading it back gives the same cluster.

    Examples
    --------
    >>> from placer.costs.cluster_file import default_cluster, parse_cluster
    >>> cluster = default_cluster()
    >>> read_cluster_document(cluster_document(cluster), "<plan>") == cluster
    True
    """
    from placer.costs.cluster import CUSTOM_TYPE

    devices = []
    for group in cluster.groups:
        entry: dict[str, Any] = {"name": group.name}
        if group.type != CUSTOM_TYPE:
            entry["type"] = group.type
        entry.update(
            {
                "class": group.device_class.value,
                "count": group.count,
                "peak_flops": dict(group.peak_flops),
                "memory": group.memory_bytes,
                "memory_bandwidth": group.memory_bandwidth,
                "efficiency": group.efficiency_spec,
                "overhead": group.overhead,
            }
        )
        if group.cache_bytes:
            entry["cache"] = {"size": group.cache_bytes, "bandwidth": group.cache_bandwidth}
        if group.shared_bandwidth:
            entry["shared_bandwidth"] = group.shared_bandwidth
        if group.cores:
            entry["cores"] = list(group.cores)
        if group.host:
            entry["host"] = group.host
        if not group.pipeline:
            entry["pipeline"] = False
        if group.layout != "nchw":
            entry["layout"] = group.layout
        devices.append(entry)
    return {
        "name": cluster.name,
        "devices": devices,
        "links": {
            "default": _link(cluster.default_link),
            "pairs": [
                {"between": list(pair), **_link(link)}
                for pair, link in sorted(cluster.links.items())
            ],
        },
    }


def _link(link: Any) -> dict[str, float]:
    return {"bandwidth": link.bandwidth, "latency": link.latency}


def read_cluster_document(document: Any, source: str) -> Cluster:
    """The cluster a plan records (:func:`cluster_document`), validated as a cluster file.

    Raises
    ------
    PlanFormatError
        The description breaks a rule of the cluster format (the message names the field).
    """
    from placer.costs.cluster_file import parse_cluster
    from placer.errors import ClusterSpecError

    try:
        # JSON is YAML; on one line, so the line number of an error says nothing: dropped
        text = json.dumps(document, allow_nan=False)
        return parse_cluster(text, "<plan>")
    except (TypeError, ValueError) as err:
        raise PlanFormatError(f"{source}: not a cluster description ({err})") from err
    except ClusterSpecError as err:
        message = str(err).removeprefix("<plan>:1:").lstrip()
        raise PlanFormatError(f"{source}: {message}") from err


def cluster_difference(recorded: Cluster, given: Cluster) -> str:
    """How ``given`` costs a problem differently from ``recorded``: the first group or
    link that differs, as a few words; "" when they have the same groups and links (the
    clusters' names may differ).

    Examples
    --------
    >>> from placer.costs.cluster_file import parse_cluster
    >>> a = parse_cluster("devices: [{type: t4, count: 2}]")
    >>> cluster_difference(a, parse_cluster("devices: [{type: t4, count: 4}]"))
    "group 't4' has count 4, not 2"
    >>> cluster_difference(a, parse_cluster("{name: other, devices: [{type: t4, count: 2}]}"))
    ''
    >>> cluster_difference(a, parse_cluster(
    ...     "devices: [{type: t4, count: 2, efficiency: {gemm: 0.5}}]"))
    "group 't4' has efficiency.gemm 0.5, not 0.8"
    """
    names = [group.name for group in recorded.groups]
    given_names = [group.name for group in given.groups]
    if names != given_names:
        return f"groups {', '.join(given_names)}, not {', '.join(names)}"
    for mine, theirs in zip(recorded.groups, given.groups, strict=True):
        if mine.pipeline != theirs.pipeline:
            where = ("in", "out of") if theirs.pipeline else ("out of", "in")
            return (
                f"group {mine.name!r} is {where[0]} the pipeline, not {where[1]} it "
                "(pipeline: false, --exclude)"
            )
        differs = _first_difference("", mine.to_dict(), theirs.to_dict())
        if differs is not None:
            field, ours, given_value = differs
            return f"group {mine.name!r} has {field} {given_value}, not {ours}"
    for pair, link in sorted(recorded.links.items()):
        other = given.links.get(pair)
        if other != link:
            shown = "none" if other is None else f"{other.bandwidth:.6g} B/s, {other.latency:.6g} s"
            return (
                f"the link between {pair[0]!r} and {pair[1]!r} is {shown}, not "
                f"{link.bandwidth:.6g} B/s, {link.latency:.6g} s"
            )
    if set(given.links) != set(recorded.links):
        return "it has links the plan's cluster lacks"
    return ""


def _first_difference(prefix: str, ours, theirs) -> tuple[str, object, object] | None:
    """``(dotted field, ours, theirs)`` of the first field two figure mappings disagree
    on, descending into nested mappings (``efficiency.scalar``); None when equal."""
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        return None if ours == theirs else (prefix, ours, theirs)
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        field = f"{prefix}.{key}" if prefix else str(key)
        if key not in ours or key not in theirs:
            return field, ours.get(key, "none"), theirs.get(key, "none")
        found = _first_difference(field, ours[key], theirs[key])
        if found is not None:
            return found
    return None


# -- fingerprints --------------------------------------------------------------------------


class _Digest:
    """A SHA-256 over a sequence of items, each length-prefixed so no two differ in
    framing only."""

    def __init__(self, kind: str) -> None:
        self._hash = hashlib.sha256()
        self.add(kind)

    def add(self, *items: object) -> None:
        parts = []
        for item in items:
            data = item if isinstance(item, bytes) else _text(item).encode("utf-8", "surrogatepass")
            parts += (b"%d:" % len(data), data)
        self._hash.update(b"".join(parts))

    def hexdigest(self) -> str:
        return _PREFIX + self._hash.hexdigest()


def _text(item: object) -> str:
    # a str is marked so that the node name "1" and the node id 1 differ
    return "s" + item if isinstance(item, str) else repr(item)


def onnx_fingerprint(model: ModelProto) -> str:
    """The fingerprint of an ONNX model's graph structure and shapes (module docstring).

    Notes
    -----
    Linear in the number of nodes, attributes and tensors; weights are never read.
    """
    digest = _Digest("onnx-graph-1")
    for opset in sorted((o.domain, o.version) for o in model.opset_import):
        digest.add("opset", *opset)
    _graph(digest, model.graph)
    for function in model.functions:
        digest.add("function", function.domain, function.name, *function.input, "|",
                   *function.output, "|", *function.attribute)  # fmt: skip
        for node in function.node:
            _node(digest, node)
    return digest.hexdigest()


def _graph(digest: _Digest, graph: GraphProto) -> None:
    for role, values in (("input", graph.input), ("output", graph.output)):
        for value in values:
            digest.add(role, value.name, value.type.SerializeToString(deterministic=True))
    for tensor in graph.initializer:
        _tensor(digest, "initializer", tensor)
    for sparse in graph.sparse_initializer:
        digest.add("sparse", *sparse.dims)
        _tensor(digest, "values", sparse.values)
        _tensor(digest, "indices", sparse.indices)
    for node in graph.node:
        _node(digest, node)
    digest.add("end")


def _node(digest: _Digest, node: NodeProto) -> None:
    digest.add("node", node.op_type, node.domain, node.name, len(node.input), *node.input,
               len(node.output), *node.output)  # fmt: skip
    for attribute in sorted(node.attribute, key=lambda a: a.name):
        _attribute(digest, attribute)


def _attribute(digest: _Digest, attribute: AttributeProto) -> None:
    digest.add("attr", attribute.name, attribute.type, attribute.ref_attr_name)
    digest.add(attribute.f, attribute.i, attribute.s)
    digest.add(len(attribute.floats), *attribute.floats, len(attribute.ints), *attribute.ints)
    digest.add(len(attribute.strings), *attribute.strings)
    if attribute.HasField("t"):
        _tensor(digest, "t", attribute.t)
    if attribute.HasField("sparse_tensor"):
        _tensor(digest, "sparse_values", attribute.sparse_tensor.values)
    for tensor in attribute.tensors:
        _tensor(digest, "tensors", tensor)
    if attribute.HasField("tp"):
        digest.add(attribute.tp.SerializeToString(deterministic=True))
    if attribute.HasField("g"):
        _graph(digest, attribute.g)
    for graph in attribute.graphs:
        _graph(digest, graph)


def _tensor(digest: _Digest, role: str, tensor: TensorProto) -> None:
    digest.add(role, tensor.name, tensor.data_type, len(tensor.dims), *tensor.dims)
    digest.add(*_small_values(tensor))


def _small_values(tensor: TensorProto) -> Iterator[object]:
    """The values of a small integer tensor (a shape, axes), else nothing."""
    from onnx import TensorProto, numpy_helper

    integer = {
        TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
        TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64,
    }  # fmt: skip
    if tensor.data_type not in integer or tensor.data_location == TensorProto.EXTERNAL:
        return
    elements = 1
    for dim in tensor.dims:
        elements *= dim
        if dim < 0 or elements > _MAX_VALUE_ELEMENTS:
            return
    try:
        values = numpy_helper.to_array(tensor).ravel().tolist()
    except Exception:  # a malformed tensor: its loader reports it, the fingerprint need not
        yield "?"
        return
    yield "values"
    yield from values


def workload_fingerprint(problem: Problem) -> str:
    """The fingerprint of a workload read by :func:`placer.frontends.workload.read_workload`: its
    nodes (ids, names, latencies, support, sizes, colour classes, direction), its edges
    and their costs, and its device kinds."""
    digest = _Digest("workload-1")
    for kind in problem.kinds:
        digest.add("kind", kind.name, kind.device_class.value, kind.count, kind.memory_bytes,
                   kind.pays_communication)  # fmt: skip
    for op in problem.ops:
        digest.add("op", op.key, op.name, *op.latency, *op.supported, op.size_bytes,
                   op.transfer_cost, op.color, op.backward)  # fmt: skip
    for u, v in problem.edges:
        digest.add("edge", problem.ops[u].key, problem.ops[v].key)
    return digest.hexdigest()


def costs_fingerprint(measured: Mapping[tuple[str, str], float]) -> str:
    """The fingerprint of a measured-cost table (``--costs``), CSV and JSON alike."""
    digest = _Digest("costs-1")
    for (op, device), seconds in sorted(measured.items()):
        digest.add(op, device, float(seconds))
    return digest.hexdigest()


def input_shapes_text(shapes: Mapping[str, Sequence[int]]) -> str:
    """Input shapes as the ``--input-shape`` options that give them."""
    if not shapes:
        return "no --input-shape"
    return " ".join(
        f"--input-shape {name}={','.join(map(str, dims))}" for name, dims in shapes.items()
    )
