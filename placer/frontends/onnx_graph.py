"""Read an ONNX model into an operator graph with per-operator costs, never its weights.

The model is loaded with ``load_external_data=False``: parameter counts come from the
shapes of initializers and of the tensors that ``Constant`` / ``ConstantOfShape`` nodes
generate, so a model whose external weight files are absent loads just as well. Nodes
that compute on constants only (:func:`constant_nodes`: the weight generators, and an
``Unsqueeze`` or ``Transpose`` of a weight, say) are not operators of their own: runtimes
fold them once when the session starts, so their outputs count as weights of the
operator that consumes them. Symbolic dimensions of the graph inputs are fixed from
``batch_size`` and ``input_shapes`` before shape inference runs: ONNX's, then, for the
tensors it leaves unknown, onnxruntime's symbolic shape inference.

The cost formulas live in :mod:`placer.frontends.opcost` and are written out in ``docs/costs.md``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, numpy_helper

from placer.errors import ModelLoadError
from placer.frontends.cse import recomputed
from placer.frontends.index_checks import check_gather_rows
from placer.frontends.layers import node_scope
from placer.frontends.onnx_checks import MAX_FIGURE, check_elements, check_model
from placer.frontends.onnx_nodes import (
    MAX_READ_ELEMENTS,
    attributes,
    is_default_domain,
    node_inputs,
    placer_name,
    shape_of,
    subgraphs,
)
from placer.frontends.opcost import (
    CONTROL_INPUTS,
    STATE_INPUTS,
    UNSHAPED,
    AttrKind,
    OpClass,
    OpContext,
    ProductShape,
    TensorInfo,
    attribute,
    element_bytes,
    op_cost,
)
from placer.frontends.opcost import op_class as classify
from placer.frontends.shapes import (
    drop_recorded_shapes,
    fix_input_dims,
    fixed_dims_overridden,
    infer_shapes,
    inferred_shapes,
    real_inputs,
    tensor_shapes,
)
from placer.frontends.size_checks import check_sizes
from placer.util.inputs import read_bytes
from placer.util.text import first_line

_FLOAT_TYPES = frozenset(
    {
        TensorProto.FLOAT,
        TensorProto.FLOAT16,
        TensorProto.BFLOAT16,
        TensorProto.DOUBLE,
        TensorProto.FLOAT8E4M3FN,
        TensorProto.FLOAT8E4M3FNUZ,
        TensorProto.FLOAT8E5M2,
        TensorProto.FLOAT8E5M2FNUZ,
    }
)
_INT_TYPES = frozenset(
    {
        TensorProto.INT64,
        TensorProto.INT32,
        TensorProto.INT16,
        TensorProto.INT8,
        TensorProto.UINT64,
        TensorProto.UINT32,
        TensorProto.UINT16,
        TensorProto.UINT8,
    }
)
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
#: Nodes that make a constant tensor out of (almost) nothing: their output is a weight.
_GENERATORS = frozenset({"Constant", "ConstantOfShape"})
#: Ops whose output may differ from one run to the next: never constant. Dropout is
#: random in training mode, which an input or (before opset 7) an attribute turns on.
_RANDOM_OPS = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
        "Dropout",
    }
)
#: Ops that read only their input's shape: what they derive holds none of its parameters.
_METADATA_OPS = frozenset({"Shape", "Size"})
#: Largest model file read: protobuf cannot parse a message over 2 GiB (larger models
#: keep their weights in external files, which placer does not read).
MAX_MODEL_BYTES = 2 * 2**30


@dataclass(frozen=True)
class GraphNode:
    """One operator of the model with its cost figures.

    Parameters
    ----------
    name : str
        The ONNX node name, or ``<OpType>_<index>`` for an unnamed node (index in
        ``graph.node`` order).
    op_type : str
        The ONNX op type.
    flops : float
        Forward FLOPs at the chosen input shapes (a multiply-add is 2 FLOPs).
    bytes_read, bytes_written : float
        Memory traffic: all inputs (weights included) and all outputs; for ``If``,
        ``Loop`` and ``Scan``, the traffic of the subgraph nodes that run.
    param_count : int
        Learned parameters this op holds (BatchNorm running statistics excluded), counted
        at the initializers and generated tensors its weights derive from: those it owns
        and those of the weights it shares with other ops.
    param_bytes : float
        Bytes of all constant tensors this op holds (running statistics included), as it
        reads them: a weight folded from a computation on constants counts its own size.
    output_bytes : float
        Size of the op's outputs (the activations it produces).
    has_formula : bool
        Whether a FLOP formula covers the op (and every op of its subgraphs).
    members : tuple of str
        Names of the ONNX nodes this node stands for; ``(name,)`` unless coarsened.
    scopes : tuple of str
        Module scope of each member (:func:`placer.frontends.layers.node_scope`; "" where it has
        none), in the order of ``members``; ``()`` when not known.
    op_class : OpClass, optional
        What limits the op (:class:`placer.frontends.opcost.OpClass`); by default that of
        ``op_type`` (:func:`placer.frontends.opcost.op_class`).
    weights_computed : bool
        Whether a weight it reads is computed by nodes placer folds (``ConstantOfShape``,
        a ``Transpose`` of an initializer) rather than stored: a runtime that does not
        fold constants computes it at every run, and cannot pre-pack it.
    product_shape : ProductShape
        For a product or convolution, the GEMM it runs as
        (:class:`~placer.frontends.opcost.ProductShape`: multiply-adds per output
        element, and a convolution's output channels per group, output positions per
        image and largest stride): kernels run far from peak when these are small
        (:meth:`placer.costs.cluster.DeviceGroup.compute_rate`); zeros for other ops.
    in_place : bool
        Whether onnxruntime runs it in place (an activation of :data:`IN_PLACE_OPS`
        reading a tensor another node made and nothing else reads): run alone on a CPU,
        it moves :data:`IN_PLACE_SHARE` of its counted bytes at the sweep's bandwidth.
    recomputes : bool
        Whether an earlier op computes the same value from the same inputs
        (:func:`placer.frontends.cse.recomputed`): a runtime that eliminates common
        subexpressions computes it once (:mod:`placer.frontends.fusion`).
    shared_param_count, shared_param_bytes : int, float
        The part of ``param_count`` and ``param_bytes`` in weights other ops read too
        (:class:`SharedWeight`): a device holds each such weight once, whichever of its
        readers it holds.
    """

    name: str
    op_type: str
    flops: float
    bytes_read: float
    bytes_written: float
    param_count: int
    param_bytes: float
    output_bytes: float
    has_formula: bool
    members: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    op_class: OpClass | None = None
    weights_computed: bool = False
    product_shape: ProductShape = UNSHAPED
    in_place: bool = False
    recomputes: bool = False
    shared_param_count: int = 0
    shared_param_bytes: float = 0.0

    def __post_init__(self) -> None:
        if not self.members:
            object.__setattr__(self, "members", (self.name,))
        if self.op_class is None:
            object.__setattr__(self, "op_class", classify(self.op_type))


@dataclass(frozen=True)
class GraphEdge:
    """Tensor ``tensor`` flowing from node ``src`` to node ``dst`` (indices into
    ``OpGraph.nodes``); ``bytes`` is its size."""

    src: int
    dst: int
    tensor: str
    bytes: float


#: Weights of fewer elements than this that several nodes read are charged to the first
#: of them alone, as other weights are: a scalar every layer reads (GELU's ``0.5``)
#: would otherwise tie every stage to every other in the solvers' tables (where memory
#: can bind) for 4 bytes; a stage holding only its later readers is short of 64 bytes
#: at most for each.  From this size up (a LayerNorm weight shared by every layer, Llama's
#: rotary tables, T5's tied embedding and LM head), each device holding a reader holds
#: the weight: charged once, twenty 64 KB weights read twice each let a plan "fit" a
#: device 1.3 MB short (an audit's model).
SHARED_MIN_ELEMENTS = 9


@dataclass(frozen=True)
class SharedWeight:
    """A weight several nodes read (a tied weight, a layer applied twice): each device
    that holds one of ``readers`` (indices into ``OpGraph.nodes``) holds it once.
    ``param_count`` and ``param_bytes`` are its figures, as :class:`GraphNode`'s."""

    name: str
    param_count: int
    param_bytes: float
    readers: tuple[int, ...]


@dataclass(frozen=True)
class OpGraph:
    """A model as a costed operator DAG, nodes in topological order.

    Parameters
    ----------
    name : str
        The model's graph name (the file stem when the graph has none, or the name an
        exporter gives every graph: :func:`model_name`).
    nodes : tuple of GraphNode
        Operators in topological order.
    edges : tuple of GraphEdge
        One per (producer, consumer, tensor); graph inputs and weights are no edges.
    input_bytes : float
        Size of the graph inputs (the data fed to the first stage).
    dtype_bytes : int
        Bytes per element of the model's main floating-point type.
    unknown_ops : tuple of str
        Op types without a FLOP formula (costed by their bytes only).
    unknown_shapes : tuple of str
        Tensors whose shapes neither ONNX's nor onnxruntime's shape inference could
        tell; each was given the shape of the largest input of the op producing it.
    notes : tuple of str
        Caveats of the estimate (an unknown loop trip count, failed shape inference).
    replicated : tuple of int
        Indices of the side computations (:func:`side_computations`): nodes that every
        stage reading them recomputes, so they are never placed nor sent.
    shape_constants : tuple of (str, tuple of int)
        The output and value of each ``Shape``/``Size`` node folded because its input's
        shape is known (``placer split`` writes them as constants).
    tensor_count : int
        Tensors made by the model's nodes that a node or graph output reads: those
        whose shapes the costs need, ``unknown_shapes`` among them.
    input_shapes : tuple of (str, tuple of int)
        Each graph input that is not a weight, in graph order, with its shape once
        ``--batch-size`` and ``--input-shape`` are applied.
    shared_weights : tuple of SharedWeight
        The weights several nodes read, each held once per device holding a reader.
    repeats : tuple of (int, int)
        ``(node, original)`` for each node that recomputes (``GraphNode.recomputes``)
        the value of the node ``original``: the runtime computes it once, and the
        node's readers read the original's output.
    """

    name: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    input_bytes: float
    dtype_bytes: int
    unknown_ops: tuple[str, ...]
    unknown_shapes: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    replicated: tuple[int, ...] = ()
    shape_constants: tuple[tuple[str, tuple[int, ...]], ...] = ()
    tensor_count: int = 0
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    shared_weights: tuple[SharedWeight, ...] = ()
    repeats: tuple[tuple[int, int], ...] = ()

    @property
    def total_flops(self) -> float:
        """Forward FLOPs of the whole model."""
        return math.fsum(node.flops for node in self.nodes)

    @property
    def total_params(self) -> int:
        """Learned parameters of the whole model."""
        owned = sum(node.param_count - node.shared_param_count for node in self.nodes)
        return owned + sum(weight.param_count for weight in self.shared_weights)

    @property
    def total_param_bytes(self) -> float:
        """Bytes of all constant tensors (weights and stored statistics)."""
        owned = [node.param_bytes - node.shared_param_bytes for node in self.nodes]
        return math.fsum(owned + [weight.param_bytes for weight in self.shared_weights])

    @property
    def activation_bytes(self) -> float:
        """Bytes of all activations: the sum of every op's outputs."""
        return math.fsum(node.output_bytes for node in self.nodes)

    @property
    def peak_activation_bytes(self) -> float:
        """The most activation bytes live at once when the nodes run in their order,
        each output freed once its last reader has run (the graph's outputs and inputs
        kept throughout): the working memory of an inference pass, as a runtime that
        frees activations as it goes (onnxruntime's arena) needs it.

        Every stage of a contiguous placement runs its nodes in this order, and a tensor
        live at some point of a stage's run is live at that point of the whole run, so
        no stage needs more than this.

        Examples
        --------
        >>> nodes = tuple(GraphNode(n, "Relu", 0, 0, 0, 0, 0, b, True)
        ...               for n, b in [("a", 4.0), ("b", 8.0), ("c", 2.0)])
        >>> edges = (GraphEdge(0, 1, "x", 4.0), GraphEdge(1, 2, "y", 8.0))
        >>> OpGraph("g", nodes, edges, 1.0, 4, ()).peak_activation_bytes  # input, x, y
        13.0
        """
        last_reader = list(range(len(self.nodes)))  # a node nobody reads: kept
        read = [False] * len(self.nodes)
        for edge in self.edges:
            last_reader[edge.src] = max(last_reader[edge.src], edge.dst)
            read[edge.src] = True
        freed_at: list[list[int]] = [[] for _ in self.nodes]
        for i, last in enumerate(last_reader):
            if read[i]:
                freed_at[last].append(i)
        live = peak = self.input_bytes
        for i, node in enumerate(self.nodes):
            live += node.output_bytes
            peak = max(peak, live)
            live -= math.fsum(self.nodes[j].output_bytes for j in freed_at[i])
        return peak


def load_onnx(
    path: str | PathLike[str],
    *,
    batch_size: int | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> OpGraph:
    """Load an ONNX model as a costed operator graph, without reading its weights.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file. External weight files may be present or absent.
    batch_size : int, optional
        Value of the first dimension of every graph input whose first dimension is
        symbolic (and of every other dimension sharing its symbol); by default the
        first dim of the ``input_shapes`` if they agree on one, else 1.  Given (the
        user's ``--batch-size``), it is refused where no input takes it.
    input_shapes : mapping of str to sequence of int, optional
        Full shapes of named graph inputs (``--input-shape NAME=D0,D1,...``); they
        resolve the symbols they cover in other inputs, and must give each symbol one
        size, the batch size for the symbol of an input they leave out.

    Returns
    -------
    OpGraph
        One node per ONNX node, with FLOPs, bytes and parameter counts; the nodes that
        compute on constants only (:func:`constant_nodes`) are folded into their
        consumers.

    Raises
    ------
    ModelLoadError
        One line naming the file, tensor or operator at fault: a missing, unreadable or
        non-regular file, a graph without nodes (or with constant ones only), a model
        failing :func:`placer.frontends.onnx_checks.check_model` (names that are not UTF-8, a
        tensor produced twice, an attribute of the wrong type, a malformed Einsum
        equation, ...), an input name unknown to the model, graph-input dimensions that
        neither ``batch_size`` nor ``input_shapes`` resolve, a symbolic dimension that
        ``input_shapes`` give two sizes (two inputs, or an input and the batch size
        another input's first dimension takes), a tensor of more than
        :data:`~placer.frontends.onnx_checks.MAX_ELEMENTS` elements, or an operator costed at more
        than :data:`~placer.frontends.onnx_checks.MAX_FIGURE` FLOPs or bytes.

    Notes
    -----
    Time and memory are linear in the size of the graph proto (weights excluded) plus
    the cost of shape inference: ONNX's, then, where it leaves a tensor that some node
    reads unknown, onnxruntime's symbolic one (:func:`symbolic_shapes`). The tensors
    both leave unknown are listed in ``unknown_shapes``, out of ``tensor_count``.
    """
    path = Path(path)
    input_shapes = dict(input_shapes or {})
    explicit = batch_size is not None
    if batch_size is None:
        leading = {int(shape[0]) for shape in input_shapes.values() if shape and shape[0] >= 1}
        batch_size = leading.pop() if len(leading) == 1 else 1
    if batch_size < 1:
        raise ModelLoadError(f"--batch-size must be a positive integer, got {batch_size}")
    original = read_checked_model(path)
    model, changed = fix_input_dims(original, path, batch_size, input_shapes, explicit=explicit)
    fixed = model
    model, notes = inferred_shapes(model, changed)
    needed, known = tensor_shapes(model.graph)
    if needed - known:
        _check_overrides(original, path, batch_size, input_shapes, model)
    builder = _GraphBuilder(model, path, notes)
    given = "see --input-shape" if input_shapes else "see --batch-size" if explicit else ""
    try:
        check_sizes(model.graph, builder.shapes, path, given)
    except ModelLoadError:
        _confirm_sizes(fixed, path, given)
    check_gather_rows(model, builder.shapes, path, given)
    return replace(builder.build(), tensor_count=len(needed))


def _confirm_sizes(model: ModelProto, path: Path, given: str) -> None:
    """Check the sizes again on the shapes ONNX shape inference derives from the inputs'
    and weights' sizes alone, and refuse only what they show.

    The shapes the loader costs with also hold the shapes a model records (which its
    editing may have left stale: a pruned Conv whose output still says 8 channels runs in
    onnxruntime, with a warning) and onnxruntime's symbolic inference's (which merges an
    unknown data-dependent size with the one it meets, a guess): neither is a reason to
    refuse a model the runtime runs.  Called only when :func:`check_sizes` refused.

    Raises
    ------
    ModelLoadError
        From :func:`check_sizes`, where the derived shapes show it too.
    """
    bare = ModelProto()
    bare.CopyFrom(model)
    drop_recorded_shapes(bare.graph)
    derived = infer_shapes(bare)
    if derived is not None:
        check_sizes(derived.graph, _GraphBuilder(derived, path, ()).shapes, path, given)


def _check_overrides(model: ModelProto, path: Path, batch_size: int,
                     input_shapes: dict[str, Sequence[int]],
                     inferred: ModelProto) -> None:  # fmt: skip
    """Refuse ``--input-shape`` sizes for dims the model fixes where they leave tensor
    shapes unknown (in ``inferred``, the model at those sizes) that the model's own
    sizes let shape inference find: a 256-wide input to a 512-by-512 weight is a
    mistake, not a model to cost on guessed shapes.  (Another size for a fixed dim the
    shapes still follow, a CNN's image at 320 pixels where it was exported at 224,
    stands.)

    Raises
    ------
    ModelLoadError
        Naming the input, the axis and both sizes, and the first node whose output
        shape inference lost.
    """
    overrides = fixed_dims_overridden(model, input_shapes)
    if not overrides:
        return
    needed, found = tensor_shapes(inferred.graph)
    unknown = len(needed - found)
    own = {name: list(dims) for name, dims in input_shapes.items()}
    for name, axis, size, _ in overrides:
        own[name][axis] = size
    declared, changed = fix_input_dims(model, path, batch_size, own)
    declared, _ = inferred_shapes(declared, changed)
    wanted, known = tensor_shapes(declared.graph)
    if len(wanted - known) >= unknown:
        return  # the model's own sizes leave as many unknown: not the override's doing
    name, axis, size, given = overrides[0]
    fixed = ",".join(str(d) for d in own[name])
    first = _first_unknown(inferred.graph, needed - found)
    raise ModelLoadError(
        f"{path}: --input-shape gives {name} axis {axis} the size {given}, where the model "
        f"fixes {size}: with it, shape inference leaves {unknown:,} of {len(needed):,} "
        f"tensor shapes unknown{f', from {first} on' if first else ''} (with {size}, "
        f"{len(wanted - known):,}); pass --input-shape {name}={fixed}"
    )


def _first_unknown(graph: GraphProto, unknown: set[str]) -> str:
    """``"<OpType> node '<name>'"`` of the first node of ``graph`` that makes a tensor
    of ``unknown``, where shape inference lost the sizes (onnxruntime's run usually
    fails there too); "" if none does."""
    used: set[str] = set()
    for index, node in enumerate(graph.node):
        name = op_name(node, index, used)
        if any(output in unknown for output in node.output):
            return f"{node.op_type} node {name!r}"
    return ""


def read_checked_model(path: Path) -> ModelProto:
    """:func:`read_model`, then :func:`placer.frontends.onnx_checks.check_model`: a model safe to
    infer shapes on, fingerprint and cost (one-line ModelLoadError otherwise)."""
    model = read_model(path)
    # Before shape inference, which loops forever on some malformed models.
    check_model(model, path, constant_nodes(model.graph))
    return model


def read_model(path: Path) -> ModelProto:
    """Parse ``path`` as an ONNX model without external data; one-line errors.

    The file is read through :func:`placer.util.inputs.read_bytes`: a regular file of at most
    :data:`MAX_MODEL_BYTES` (a FIFO or a device is refused at once), then parsed from
    memory in the format its extension names (binary protobuf unless it is a text one).
    """
    data = read_bytes(path, what="an ONNX model", error=ModelLoadError, max_bytes=MAX_MODEL_BYTES)
    fmt = onnx.serialization.registry.get_format_from_file_extension(path.suffix)
    try:
        model = onnx.load_model_from_string(data, format=fmt or "protobuf")
    except Exception as err:  # protobuf and onnx raise many unrelated types here
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"{path}: not a readable ONNX model ({reason})") from err
    if not model.graph.node:
        raise ModelLoadError(f"{path}: not an ONNX model with operators (its graph has no nodes)")
    return model


# -- constant folding ------------------------------------------------------------------


def read_model_with_weights(path: Path) -> ModelProto:
    """The model read safely (:func:`read_model`), with its external weights, which
    ONNX's loader only takes from beside the model: to run it, not to cost it.

    Raises
    ------
    ModelLoadError
        As :func:`read_model`, or an external weight file is missing or unreadable.
    """
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    model = read_model(path)
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        weights = path.parent / location
        if location and not weights.is_file():
            raise ModelLoadError(
                f"{path}: its weights file {weights} is missing (the model was saved with "
                "its weights apart, or exported as a graph only): running it needs them"
            )
    try:
        load_external_data_for_model(model, str(path.parent))
    except Exception as err:  # onnx raises many unrelated types here
        raise ModelLoadError(
            f"{path}: cannot load the model with its weights ({first_line(err)})"
        ) from err
    return model


def op_name(node: NodeProto, index: int, used: set[str]) -> str:
    """placer's name for ``node``, at position ``index`` of its graph's nodes, and record
    it in ``used`` (the names given to the earlier ops of the graph).

    The node's name, else ``<OpType>_<index>``; a name already used gets ``_<index>``
    appended.  Plans, measured costs (``--costs``) and ``placer profile`` key ops by it.

    Examples
    --------
    >>> from onnx import helper
    >>> used = set()
    >>> [op_name(helper.make_node("Relu", ["x"], ["y"], name=n), i, used)
    ...  for i, n in enumerate(["", "a", "a"])]
    ['Relu_0', 'a', 'a_2']
    """
    return placer_name(node.name, node.op_type, index, used)


def folded_nodes(main: GraphProto, graph: OpGraph) -> frozenset[int]:
    """Positions in ``main.node`` of the nodes :func:`load_onnx` folded into their
    consumers (:func:`constant_nodes`), ``graph`` being what it made of ``main``: the
    ``Shape`` and ``Size`` nodes whose values it found count as constant."""
    shape_values = dict(graph.shape_constants)
    static = {
        node.input[0]: () for node in main.node
        if node.output and node.output[0] in shape_values
    }  # fmt: skip
    return constant_nodes(main, static)


def op_positions(main: GraphProto, graph: OpGraph, path: Path) -> dict[int, str]:
    """placer's name (:func:`op_name`) of every node of ``main`` that is an op of
    ``graph``, by position in ``main.node``; the folded nodes (:func:`folded_nodes`)
    are left out.

    Raises
    ------
    ModelLoadError
        ``graph`` was not made from ``main`` (a node of either is not in the other).
    """
    folded = folded_nodes(main, graph)
    ops = iter(graph.nodes)
    op = next(ops, None)
    used: set[str] = set()
    names: dict[int, str] = {}
    for index, node in enumerate(main.node):
        if index in folded:
            continue
        name = op_name(node, index, used)
        if op is None or op.name != name or op.op_type != node.op_type:
            raise ModelLoadError(f"{path}: node {name!r} does not match placer's graph")
        names[index] = name
        op = next(ops, None)
    if op is not None:
        raise ModelLoadError(f"{path}: op {op.name!r} of placer's graph is not in the model")
    return names


def constant_nodes(
    graph: GraphProto, static: Mapping[str, Sequence[int]] | None = None
) -> frozenset[int]:
    """Positions in ``graph.node`` of the nodes that compute on constants only.

    A node is *constant* when :func:`computable_anywhere` holds (default domain,
    deterministic, no subgraph, no graph output) and it

    - is a ``Shape`` or ``Size`` of a tensor whose shape ``static`` gives (its value is
      known once the input dims are fixed: ONNX Runtime's constant folding folds it too),
    - or reads at least one tensor, unless it is a ``Constant``, and only initializers,
      sparse initializers and outputs of constant nodes.

    Runtimes compute such nodes once, when the session starts (ONNX Runtime's constant
    folding), so they cost nothing per sample: :func:`load_onnx` folds them into their
    consumers and ``placer split`` copies them into every stage that reads them.

    Parameters
    ----------
    graph : GraphProto
        A graph whose nodes are in topological order, as ONNX requires. Names it reads
        from enclosing scopes count as run-time values.

    Returns
    -------
    frozenset of int
        Indices into ``graph.node``.

    Notes
    -----
    One pass over the nodes: time linear in the size of the graph proto.

    Examples
    --------
    >>> import numpy as np
    >>> from onnx import helper, numpy_helper
    >>> w = numpy_helper.from_array(np.zeros((2, 3), np.float32), "w")
    >>> nodes = [
    ...     helper.make_node("Transpose", ["w"], ["wt"]),
    ...     helper.make_node("MatMul", ["x", "wt"], ["y"]),
    ... ]
    >>> sorted(constant_nodes(helper.make_graph(nodes, "g", [], [], [w])))
    [0]
    """
    constant = {init.name for init in graph.initializer}
    constant |= {sparse.values.name for sparse in graph.sparse_initializer}
    outputs = {value.name for value in graph.output}
    static = static or {}
    found: list[int] = []
    for index, node in enumerate(graph.node):
        reads = [name for name in node.input if name]
        if not computable_anywhere(node, outputs):
            continue
        if (node.op_type in _METADATA_OPS and len(reads) == 1 and reads[0] in static) or (
            (reads or node.op_type == "Constant") and all(name in constant for name in reads)
        ):
            found.append(index)
            constant.update(name for name in node.output if name)
    return frozenset(found)


def _metadata_value(node: NodeProto, shape: Sequence[int]) -> tuple[int, ...]:
    """What ``Shape`` (with its ``start``/``end``) or ``Size`` of a tensor of ``shape``
    makes: a vector, or ``(size,)`` for the scalar ``Size``."""
    if node.op_type == "Size":
        return (math.prod(shape),)
    rank = len(shape)
    bounds = {"start": 0, "end": rank}
    for attr in node.attribute:
        if attr.name in bounds and attr.type == AttributeProto.INT:
            bounds[attr.name] = attr.i
    start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in bounds.values())
    return tuple(int(d) for d in shape[start:end])


def computable_anywhere(node: NodeProto, outputs: Collection[str]) -> bool:
    """Whether ``node`` may be computed by the runtime once, or in several stages alike:
    in the default ONNX domain (what a custom op does is unknown), deterministic (not
    ``RandomNormal``, ``RandomUniform``, their ``*Like`` variants, ``Multinomial``,
    ``Bernoulli`` or ``Dropout``, random when training), without subgraph (``If``,
    ``Loop``, ``Scan``), and making none of the graph ``outputs`` (the model must keep
    an op that makes each).  Folded constants and side computations are such nodes."""
    return (
        is_default_domain(node)
        and node.op_type not in _RANDOM_OPS
        and next(subgraphs(node), None) is None
        and not any(name in outputs for name in node.output)
    )


#: Learned parameters a side computation may read, with those of every side computation
#: it depends on (T5's relative-position bias table has 256; an embedding table has
#: millions and starts the model's main path).
MAX_SIDE_PARAMS = 2**16
#: FLOPs a side computation may take, with every side computation it depends on, as a
#: fraction of the model's: recomputing it in every stage must stay negligible.
MAX_SIDE_FLOPS_FRACTION = 1e-3


def side_computations(
    nodes: Sequence[GraphNode],
    edges: Sequence[GraphEdge],
    eligible: Sequence[bool],
) -> tuple[int, ...]:
    """The nodes that depend only on graph inputs and constants, not on activations.

    A node is a *side computation* when it is ``eligible`` (:func:`computable_anywhere`:
    default domain, deterministic, no subgraph, no graph output), every node it reads from
    is a side computation itself, some node reads it, and together with the side
    computations it depends on it reads at most :data:`MAX_SIDE_PARAMS` learned
    parameters and takes at most :data:`MAX_SIDE_FLOPS_FRACTION` of the model's FLOPs.
    Position ids, rotary cos/sin tables and the expansion of an attention mask are; an
    embedding lookup (millions of parameters), the first convolution of a CNN (a
    percent of its FLOPs) and everything after them are not.

    Each stage that holds a reader recomputes the side computations it needs, the way
    runtimes and ``placer split`` treat folded weights, so they are never placed nor
    sent (:class:`placer.problem.Replica`).  Taking them out of the placed graph removes
    the freedom to place each of them anywhere before its first reader, which
    multiplies the ideals of the DAG: a mask is read by every layer of a transformer.

    Parameters
    ----------
    nodes, edges : sequence
        The graph, nodes in topological order.
    eligible : sequence of bool
        Per node, whether it may be recomputed at all.

    Returns
    -------
    tuple of int
        Indices into ``nodes``, ascending.

    Notes
    -----
    Each candidate's set of side ancestors is built from its producers' sets, and only
    while it stays within the limits: time O(E + S²) for S side computations.

    Examples
    --------
    >>> def node(name, params=0, flops=1.0):
    ...     return GraphNode(name, "Op", flops, 0, 0, params, 0, 0, True)
    >>> nodes = [node("mask"), node("embed", 10**6), node("attn", 0, 1e6), node("lonely")]
    >>> edges = [GraphEdge(0, 2, "m", 4.0), GraphEdge(1, 2, "h", 4.0)]
    >>> side_computations(nodes, edges, [True] * 4)
    (0,)
    """
    producers: list[set[int]] = [set() for _ in nodes]
    read = [False] * len(nodes)
    for edge in edges:
        producers[edge.dst].add(edge.src)
        read[edge.src] = True
    max_flops = MAX_SIDE_FLOPS_FRACTION * math.fsum(node.flops for node in nodes)
    cone: list[frozenset[int] | None] = [None] * len(nodes)  # side ancestors, itself too
    for i in range(len(nodes)):
        if not eligible[i] or any(cone[p] is None for p in producers[i]):
            continue
        ancestors = frozenset({i}).union(*(cone[p] for p in producers[i]))
        params = sum(nodes[a].param_count for a in ancestors)
        flops = math.fsum(nodes[a].flops for a in ancestors)
        if params <= MAX_SIDE_PARAMS and flops <= max_flops:
            cone[i] = ancestors
    # one that nobody reads would be computed by no stage: it stays an op to place
    return tuple(i for i in range(len(nodes)) if cone[i] is not None and read[i])


# -- building the graph ----------------------------------------------------------------


#: Activations onnxruntime's CPU provider may run in place (``MayInplace(0, 0)``): the
#: output overwrites the input when nothing else reads it.
IN_PLACE_OPS = frozenset({"Relu", "Clip", "LeakyRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid",
                          "Softplus", "Softsign", "Tanh", "ThresholdedRelu"})  # fmt: skip
#: The share of its counted bytes an op run in place on a CPU moves.  The sweep that
#: measures bandwidth (``placer calibrate``) writes a fresh buffer, whose lines a core reads
#: before it writes them (write-allocate): it moves 4 bytes for every 3 it counts, so
#: its counted bandwidth is 3/4 of the memory's.  An op in place writes the lines it has
#: just read and moves what it counts: at the sweep's counted bandwidth, 3/4 of its bytes.
IN_PLACE_SHARE = 0.75


#: Graph names exporters give every model (torch's dynamo and TorchScript exporters,
#: tf2onnx): no name at all for telling plans and tables apart.
EXPORTER_NAMES = frozenset({"main_graph", "torch_jit", "torch-jit-export", "tf2onnx", "graph"})


def model_name(graph_name: str, path: Path) -> str:
    """The name a model goes by: its graph's, unless that is empty or an exporter's
    generic one (``main_graph``), then its file's stem.

    >>> model_name("main_graph", Path("models/llama.onnx")), model_name("bert", Path("x.onnx"))
    ('llama', 'bert')
    """
    return graph_name if graph_name and graph_name not in EXPORTER_NAMES else path.stem


def _unnamed(op_type: str, *figures, op_class: OpClass = OpClass.OTHER, **rest) -> GraphNode:
    """A node's cost figures before it gets its name and place: a :class:`GraphNode`
    named ``""`` (:meth:`_GraphBuilder.build` names it), of class ``op_class`` (by default
    :attr:`OpClass.OTHER`, as control flow and subgraphs are, not ``op_type``'s)."""
    return GraphNode("", op_type, *figures, op_class=op_class, **rest)


@dataclass(frozen=True)
class _Weights:
    """The constant tensors of one graph scope.

    ``tensors`` holds initializers and the outputs of folded nodes; ``sources`` maps each
    to the learned tensors it holds (itself for an initializer or a generator's output,
    the sources of its inputs for a derived tensor); ``folded`` indexes ``graph.node``.
    """

    tensors: Mapping[str, TensorInfo]
    sources: Mapping[str, frozenset[str]]
    folded: frozenset[int]
    computed: frozenset[str] = frozenset()  # outputs of folded nodes: no initializers


@dataclass
class _Owned:
    """What the ops costed so far in one graph scope already own."""

    tensors: set[str] = field(default_factory=set)  # charged to param_bytes
    sources: set[str] = field(default_factory=set)  # counted in param_count
    # tensors several nodes read: each reader holds them, with this many parameters
    shared: dict[str, int] = field(default_factory=dict)

    def claim(self, weights: _Weights, name: str) -> int:
        """The learned parameters of the sources of ``name`` not yet counted, now
        counted (so an Unsqueeze or Cast of a weight is not counted again)."""
        fresh = weights.sources[name] - self.sources
        self.sources |= fresh
        return sum(weights.tensors[source].numel for source in fresh)


def _weight_inputs(node: NodeProto, weights: _Weights) -> Iterator[tuple[int, str]]:
    """``(position, name)`` of each weight ``node`` reads, but at a position that
    steers the op (a shape, axes, indices: :data:`CONTROL_INPUTS`)."""
    control = CONTROL_INPUTS.get(node.op_type, frozenset())
    for position, name in enumerate(node_inputs(node)):
        if name in weights.tensors and position not in control:
            yield position, name


class _GraphBuilder:
    """Walks the (shape-inferred) model once and produces the :class:`OpGraph`."""

    def __init__(self, model: ModelProto, path: Path, notes: tuple[str, ...]) -> None:
        self.model = model
        self.path = path
        self.notes: list[str] = list(notes)
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        self.types: dict[str, int] = {}
        self.ints: dict[str, tuple[int, ...]] = {}
        self.unknown_ops: set[str] = set()
        self.unknown_shapes: list[str] = []
        #: values of the Shape/Size nodes folded because their input's shape is known
        self.shape_constants: dict[str, tuple[int, ...]] = {}
        self.readers: Counter[str] = Counter()  # how many nodes and graph outputs read each
        self.produced: set[str] = set()  # tensors some node makes
        self._record_graph(model.graph)
        self.dtype_bytes = self._main_dtype_bytes()

    # shape table ---------------------------------------------------------------

    def _static_shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensors whose shape inference found every dim (none estimated yet)."""
        return {name: shape for name, shape in self.shapes.items() if shape is not None}

    def _record(self, name: str, shape: tuple[int, ...] | None, elem_type: int) -> None:
        if shape is not None:
            check_elements(self.path, f"tensor {name!r}", shape)
        if shape is not None or name not in self.shapes:
            self.shapes[name] = shape
        if elem_type:
            self.types[name] = elem_type

    def _record_graph(self, graph: GraphProto) -> None:
        for value in (*graph.input, *graph.value_info, *graph.output):
            self._record(value.name, shape_of(value.type), value.type.tensor_type.elem_type)
        for init in graph.initializer:
            self._record(init.name, tuple(init.dims), init.data_type)
            self._read_ints(init.name, init)
        for sparse in graph.sparse_initializer:
            self._record(sparse.values.name, tuple(sparse.dims), sparse.values.data_type)
        self.readers.update(value.name for value in graph.output)
        for node in graph.node:
            self.readers.update(name for name in node.input if name)
            self.produced.update(name for name in node.output if name)
            if node.op_type == "Constant" and is_default_domain(node):
                self._record_constant(node)
            for _, sub in subgraphs(node):
                self._record_graph(sub)

    def _read_ints(self, name: str, tensor: TensorProto) -> None:
        """Keep the values of small integer tensors (shapes, trip counts)."""
        if (
            tensor.data_type in _INT_TYPES
            and math.prod(tensor.dims) <= MAX_READ_ELEMENTS
            and tensor.data_location != TensorProto.EXTERNAL
        ):
            try:
                values = numpy_helper.to_array(tensor)
            except Exception:  # an unreadable small tensor stays unknown
                return
            self.ints[name] = tuple(int(v) for v in np.asarray(values).reshape(-1))

    def _record_constant(self, node: NodeProto) -> None:
        if not node.output:
            return
        name = node.output[0]
        for attr in node.attribute:
            if attr.name == "value":
                self._record(name, tuple(attr.t.dims), attr.t.data_type)
                self._read_ints(name, attr.t)
            elif attr.name == "sparse_value":
                self._record(
                    name, tuple(attr.sparse_tensor.dims), attr.sparse_tensor.values.data_type
                )
            elif attr.name in ("value_float", "value_int", "value_string"):
                kind = {"value_float": TensorProto.FLOAT, "value_int": TensorProto.INT64}
                self._record(name, (), kind.get(attr.name, TensorProto.STRING))
                if attr.name == "value_int":
                    self.ints[name] = (attr.i,)
            elif attr.name in ("value_floats", "value_ints", "value_strings"):
                count = len(attr.floats) or len(attr.ints) or len(attr.strings)
                kind = {"value_floats": TensorProto.FLOAT, "value_ints": TensorProto.INT64}
                self._record(name, (count,), kind.get(attr.name, TensorProto.STRING))
                if attr.name == "value_ints" and count <= MAX_READ_ELEMENTS:
                    self.ints[name] = tuple(attr.ints)

    def _main_dtype_bytes(self) -> int:
        """Element size of the floating-point type holding the most weight elements."""
        counts: Counter[int] = Counter()
        for init in self.model.graph.initializer:
            if init.data_type in _FLOAT_TYPES:
                counts[init.data_type] += math.prod(init.dims)
        if not counts:
            for value in real_inputs(self.model.graph):
                if value.type.tensor_type.elem_type in _FLOAT_TYPES:
                    counts[value.type.tensor_type.elem_type] += 1
        if not counts:
            return 4
        return max(1, int(element_bytes(counts.most_common(1)[0][0])))

    def info(self, name: str) -> TensorInfo | None:
        shape = self.shapes.get(name)
        if shape is None:
            return None
        return TensorInfo(shape, element_bytes(self.types.get(name, 0), self.dtype_bytes))

    def _estimate(self, name: str, inputs: Iterable[TensorInfo | None]) -> None:
        """Give an output of unknown shape the shape of the op's largest input."""
        known = [info for info in inputs if info is not None]
        shape = max(known, key=lambda info: info.numel).shape if known else ()
        self.shapes[name] = shape
        self.unknown_shapes.append(name)

    # weights -------------------------------------------------------------------

    def _weights(self, graph: GraphProto) -> _Weights:
        """Every constant tensor of ``graph`` and the learned tensors each derives from."""
        tensors: dict[str, TensorInfo] = {}
        for init in graph.initializer:
            tensors[init.name] = TensorInfo(tuple(init.dims), element_bytes(init.data_type))
        for sparse in graph.sparse_initializer:
            info = TensorInfo(tuple(sparse.dims), element_bytes(sparse.values.data_type))
            tensors[sparse.values.name] = info
        sources = {name: frozenset({name}) for name in tensors}
        static = self._static_shapes() if graph is self.model.graph else None
        folded = constant_nodes(graph, static)
        for index in sorted(folded):
            node = graph.node[index]
            if static and node.op_type in _METADATA_OPS and node.input[0] in static:
                value = _metadata_value(node, static[node.input[0]])
                self.shape_constants[node.output[0]] = value
                self.ints.setdefault(node.output[0], value)
        for index in sorted(folded):
            node = graph.node[index]
            if node.op_type == "ConstantOfShape" and node.output[0] and node.input[0] in self.ints:
                elem_type = TensorProto.FLOAT
                for attr in node.attribute:
                    if attr.name == "value":
                        elem_type = attr.t.data_type
                self._record(node.output[0], self.ints[node.input[0]], elem_type)
            inputs = tuple(self.info(name) if name else None for name in node.input)
            # A generator's output is itself the learned tensor; a derived tensor holds the
            # parameters of what it reads, except shapes and indices steering the op.
            control = CONTROL_INPUTS.get(node.op_type, frozenset())
            derived: frozenset[str] = frozenset()
            if node.op_type not in _METADATA_OPS:
                derived = derived.union(
                    *(sources.get(name, ()) for p, name in enumerate(node.input)
                      if name and p not in control)
                )  # fmt: skip
            for name in node.output:
                if not name:
                    continue
                if self.shapes.get(name) is None and name in self.readers:
                    self._estimate(name, inputs)
                info = self.info(name)
                if info is None:  # nobody reads it: it is never made
                    continue
                tensors[name] = info
                sources[name] = frozenset({name}) if node.op_type in _GENERATORS else derived
        computed = frozenset(tensors) - {init.name for init in graph.initializer}
        computed -= {sparse.values.name for sparse in graph.sparse_initializer}
        return _Weights(tensors, sources, folded, computed)

    # costing -------------------------------------------------------------------

    def _cost_nodes(
        self, graph: GraphProto, *, share: bool = False
    ) -> tuple[list[tuple[int, NodeProto, GraphNode]], set[str], list[SharedWeight]]:
        """Figures of every non-folded node of ``graph`` (with its index in graph.node),
        the names of the tensors the folded nodes make, and with ``share`` the weights
        several nodes read (their readers as indices in graph.node); without, each
        weight is charged to the first node that reads it (a subgraph's nodes run on
        the device of the node that holds it)."""
        weights = self._weights(graph)
        owned = _Owned()
        shared = self._shared(graph, weights, owned) if share else []
        costed: list[tuple[int, NodeProto, GraphNode]] = []
        for index, node in enumerate(graph.node):
            if index not in weights.folded:
                label = placer_name(node.name, node.op_type, index, set())
                costed.append((index, node, self._cost_node(node, label, weights, owned)))
        made = {name for i in weights.folded for name in graph.node[i].output if name}
        return costed, made, shared

    @staticmethod
    def _shared(graph: GraphProto, weights: _Weights, owned: _Owned) -> list[SharedWeight]:
        """The weights of at least :data:`SHARED_MIN_ELEMENTS` that several non-folded
        nodes of ``graph`` read, marked shared in ``owned`` with the parameters of their
        sources (each source counted once, for the first of them that derives from it,
        before any node's own weights)."""
        readers: dict[str, list[int]] = {}
        for index, node in enumerate(graph.node):
            if index in weights.folded:
                continue
            for _, name in _weight_inputs(node, weights):
                found = readers.setdefault(name, [])
                if not found or found[-1] != index:
                    found.append(index)
        shared = []
        for name, found in sorted(readers.items(), key=lambda item: item[1][0]):
            if len(found) < 2 or weights.tensors[name].numel < SHARED_MIN_ELEMENTS:
                continue
            count = owned.claim(weights, name)
            owned.tensors.add(name)
            owned.shared[name] = count
            shared.append(SharedWeight(name, count, weights.tensors[name].nbytes, tuple(found)))
        return shared

    def _cost_node(
        self, node: NodeProto, label: str, weights: _Weights, owned: _Owned
    ) -> GraphNode:
        figures = self._figures(node, label, weights, owned)
        values = {
            "FLOPs": figures.flops,
            "bytes read": figures.bytes_read,
            "bytes written": figures.bytes_written,
            "bytes of weights": figures.param_bytes,
        }
        for what, value in values.items():
            if not value <= MAX_FIGURE:  # also NaN
                raise ModelLoadError(
                    f"{self.path}: node {label!r} ({node.op_type}) costs {value:.3g} "
                    f"{what}, more than placer handles ({MAX_FIGURE:.0e}); are its "
                    "dimensions, trip count or --batch-size absurd?"
                )
        return figures

    def _figures(
        self, node: NodeProto, label: str, weights: _Weights, owned: _Owned
    ) -> GraphNode:
        inputs = tuple(self.info(name) if name else None for name in node.input)
        for name in node.output:
            # An output nobody reads (Dropout's mask at inference) is not materialised.
            if name and self.shapes.get(name) is None and name in self.readers:
                self._estimate(name, inputs)
        outputs = tuple(self.info(name) if name else None for name in node.output)

        param_count, param_bytes = 0, 0.0
        state = STATE_INPUTS.get(node.op_type, frozenset())
        computed = reads_weight = False
        shared: dict[str, bool] = {}  # a shared weight it reads: whether as learned
        for position, name in _weight_inputs(node, weights):
            reads_weight = True
            computed |= name in weights.computed
            if name in owned.shared:  # every reader holds it (once per device)
                shared[name] = shared.get(name, False) or position not in state
                continue
            # The device keeps the tensor the op reads (after folding, the runtime holds
            # the derived tensor, not its source): its bytes, once per tensor.
            if name not in owned.tensors:
                owned.tensors.add(name)
                param_bytes += weights.tensors[name].nbytes
            # Learned parameters are the sources', once per source.
            if position not in state:
                param_count += owned.claim(weights, name)
        shared_bytes = sum(weights.tensors[name].nbytes for name in shared)
        shared_count = sum(owned.shared[name] for name, learned in shared.items() if learned)

        output_bytes = sum(info.nbytes for info in outputs if info is not None)
        if node.op_type in _CONTROL_FLOW and is_default_domain(node):
            figures = self._cost_control_flow(
                node, label, inputs, output_bytes, param_count + shared_count,
                param_bytes + shared_bytes,
            )
            return replace(figures, shared_param_count=shared_count,
                           shared_param_bytes=shared_bytes)  # fmt: skip
        try:
            cost = op_cost(OpContext(node.op_type, inputs, outputs, attributes(node), label))
        except ModelLoadError as err:  # an attribute of the wrong type
            raise ModelLoadError(f"{self.path}: {err}") from err
        if not cost.has_formula:
            self.unknown_ops.add(node.op_type)
        kind = cost.op_class
        if kind is OpClass.GEMM and not reads_weight:
            # two activations: nothing for the runtime to pre-pack (a weight an earlier
            # node read too, whose bytes that node holds, is pre-packed all the same)
            kind = OpClass.MATMUL
        return _unnamed(
            node.op_type,
            cost.flops,
            cost.bytes_read,
            cost.bytes_written,
            param_count + shared_count,
            param_bytes + shared_bytes,
            output_bytes,
            cost.has_formula,
            op_class=kind,
            weights_computed=computed,
            product_shape=cost.product_shape,
            in_place=self._in_place(node, weights),
            shared_param_count=shared_count,
            shared_param_bytes=shared_bytes,
        )

    def _in_place(self, node: NodeProto, weights: _Weights) -> bool:
        """Whether onnxruntime runs ``node`` in place: an activation it registers so
        (:data:`IN_PLACE_OPS`) whose input another node made and nothing else reads."""
        if node.op_type not in IN_PLACE_OPS or not is_default_domain(node) or not node.input:
            return False
        source = node.input[0]
        return (source in self.produced and source not in weights.tensors
                and self.readers[source] == 1)  # fmt: skip

    def _subgraph_figures(self, graph: GraphProto) -> GraphNode:
        costed, _, _ = self._cost_nodes(graph)
        # The subgraph's own weights were counted by its nodes that consume them.
        figures = [f for _, _, f in costed]
        return _unnamed(
            "",
            math.fsum(f.flops for f in figures),
            math.fsum(f.bytes_read for f in figures),
            math.fsum(f.bytes_written for f in figures),
            sum(f.param_count for f in figures),
            math.fsum(f.param_bytes for f in figures),
            math.fsum(f.output_bytes for f in figures),
            all(f.has_formula for f in figures),
        )

    def _cost_control_flow(
        self,
        node: NodeProto,
        label: str,
        inputs: tuple[TensorInfo | None, ...],
        output_bytes: float,
        param_count: int,
        param_bytes: float,
    ) -> GraphNode:
        """If: the dearer branch; Loop: body × trip count; Scan: body × sequence length."""
        bodies = [self._subgraph_figures(sub) for _, sub in subgraphs(node)]
        params = param_count + sum(f.param_count for f in bodies)
        stored = param_bytes + math.fsum(f.param_bytes for f in bodies)
        has_formula = all(f.has_formula for f in bodies)
        if not bodies:
            return _unnamed(node.op_type, 0.0, 0.0, output_bytes, params, stored, output_bytes,
                            has_formula)  # fmt: skip
        body = max(bodies, key=lambda f: (f.flops, f.bytes_read + f.bytes_written))
        repeats = 1
        if node.op_type == "Loop":
            trip = self.ints.get(node.input[0]) if node.input and node.input[0] else None
            if trip is not None and len(trip) == 1 and trip[0] >= 0:
                repeats = trip[0]
            else:
                self.notes.append(f"Loop '{label}': trip count unknown, body counted once")
        elif node.op_type == "Scan":
            repeats = self._scan_length(node, label, inputs)
        return _unnamed(
            node.op_type,
            body.flops * repeats,
            body.bytes_read * repeats,
            body.bytes_written * repeats,
            params,
            stored,
            output_bytes,
            has_formula,
        )

    def _scan_length(
        self, node: NodeProto, label: str, inputs: tuple[TensorInfo | None, ...]
    ) -> int:
        attrs = attributes(node)
        where = f"{self.path}: node {label!r} (Scan)"
        n_scan = attribute(attrs, "num_scan_inputs", AttrKind.INT, 0, where=where)
        if not 1 <= n_scan <= len(inputs):
            raise ModelLoadError(
                f"{where}: attribute 'num_scan_inputs' must be between 1 and its "
                f"{len(inputs)} inputs, got {n_scan}"
            )
        scanned = [info for info in inputs[len(inputs) - n_scan :] if info is not None]
        if not scanned or not scanned[0].shape:
            self.notes.append(f"Scan '{label}': sequence length unknown, body counted once")
            return 1
        axes = attribute(attrs, "scan_input_axes", AttrKind.INTS, (), where=where) or (0,)
        rank = len(scanned[0].shape)
        if not -rank <= axes[0] < rank:
            raise ModelLoadError(
                f"{where}: attribute 'scan_input_axes' names axis {axes[0]} of a "
                f"{rank}-dimensional input"
            )
        return scanned[0].shape[axes[0] % rank]

    # assembling ----------------------------------------------------------------

    def _edges(
        self,
        protos: list[NodeProto],
        nodes: list[GraphNode],
        producer: dict[str, int],
        defined: set[str],
    ) -> list[GraphEdge]:
        """One edge per tensor a node reads from an earlier one (the tensors in
        ``defined``, graph inputs and constants, are not edges)."""
        edges: list[GraphEdge] = []
        seen: set[tuple[int, int, str]] = set()
        for position, node in enumerate(protos):
            for tensor in node_inputs(node):
                if not tensor or tensor in defined:
                    continue
                src = producer.get(tensor)
                if src is None or src >= position:
                    raise ModelLoadError(
                        f"{self.path}: node '{nodes[position].name}' reads tensor '{tensor}' "
                        "that no earlier node produces"
                    )
                if (src, position, tensor) in seen:
                    continue
                seen.add((src, position, tensor))
                info = self.info(tensor)
                edges.append(GraphEdge(src, position, tensor, info.nbytes if info else 0.0))
        return edges

    def build(self) -> OpGraph:
        graph = self.model.graph
        costed, folded, shared = self._cost_nodes(graph, share=True)
        if not costed:
            raise ModelLoadError(
                f"{self.path}: every node of the graph computes on constants only, so none "
                "is left to place (its outputs are initializers or graph inputs)"
            )
        nodes: list[GraphNode] = []
        producer: dict[str, int] = {}
        used_names: set[str] = set()
        position_of = {index: position for position, (index, _, _) in enumerate(costed)}
        for position, (index, node, f) in enumerate(costed):
            name = op_name(node, index, used_names)
            nodes.append(replace(f, name=name, members=(name,), scopes=(node_scope(node),)))
            for output in node.output:
                if output:
                    producer[output] = position

        defined = {v.name for v in graph.input} | {i.name for i in graph.initializer} | folded
        defined |= {s.values.name for s in graph.sparse_initializer}
        edges = self._edges([node for _, node, _ in costed], nodes, producer, defined)
        input_bytes = 0.0
        input_shapes = []
        for value in real_inputs(graph):
            info = self.info(value.name)
            input_bytes += info.nbytes if info else 0.0
            if info is not None:
                input_shapes.append((value.name, tuple(int(d) for d in info.shape)))
        outputs = {value.name for value in graph.output}
        eligible = [computable_anywhere(node, outputs) for _, node, _ in costed]
        replicated = side_computations(nodes, edges, eligible)
        # a side computation is computed in each stage that reads it, whether or not an
        # earlier node computes the same value
        placed = {index for index, _, _ in costed}
        opset = next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")),
                     None)  # fmt: skip
        again = recomputed(graph, skip=set(range(len(graph.node))) - placed, opset=opset)
        side = set(replicated)
        repeats = []
        for position, (index, _, _) in enumerate(costed):
            if index in again and position not in side:
                nodes[position] = replace(nodes[position], recomputes=True)
                repeats.append((position, position_of[again[index]]))
        return OpGraph(
            name=model_name(graph.name, self.path),
            nodes=tuple(nodes),
            edges=tuple(edges),
            input_bytes=input_bytes,
            dtype_bytes=self.dtype_bytes,
            unknown_ops=tuple(sorted(self.unknown_ops)),
            unknown_shapes=tuple(dict.fromkeys(self.unknown_shapes)),
            notes=tuple(dict.fromkeys(self.notes)),
            replicated=replicated,
            shape_constants=tuple(self.shape_constants.items()),
            input_shapes=tuple(input_shapes),
            shared_weights=tuple(
                replace(weight, readers=tuple(position_of[i] for i in weight.readers))
                for weight in shared
            ),
            repeats=tuple(repeats),
        )
