"""From an operator graph and a cluster to a costed placement problem.

Each op's time on a device group is a roofline estimate plus a per-op overhead:

    t = max(FLOPs / (peak[dtype] · efficiency[class]), bytes / (bandwidth · efficiency))
        + overhead

with ``class`` the op's :class:`~placer.frontends.opcost.OpClass` (GEMM, depthwise Conv, ...), and
``bandwidth`` the cache's when the op's traffic fits in the group's cache, else
memory's.  A view op (``Reshape``, ``Squeeze``, ...) moves nothing and costs the
overhead alone.

and a transfer costs ``latency + bytes / bandwidth`` of the link crossed.  Measured
per-op times (``--costs``) override the estimate op by op.  ``docs/costs.md`` gives the
FLOP and byte formulas; ``docs/cluster.md`` the device figures.

For training, every forward op gets a backward op in its colour class (so the two share
a device), and the edges of the backward graph mirror the forward ones; see
:data:`BACKWARD_FLOP_FACTOR` and :func:`bytes_per_param` for the figures.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
.. [2] Narayanan et al. (2019). PipeDream: Generalized Pipeline Parallelism for DNN
   Training. SOSP.  (1F1B schedule: stage ``s`` of ``S`` keeps ``S - s`` microbatches of
   activations.)
.. [3] Rajbhandari et al. (2020). ZeRO: Memory Optimizations Toward Training Trillion
   Parameter Models. SC.  (16 bytes per parameter for mixed-precision Adam.)
.. [4] NVIDIA (2018). Tensor Ops Made Easier in cuDNN. NVIDIA Technical Blog.  (NCHW
   tensors are converted to NHWC around tensor-core convolutions, at a cost; channels-
   last data avoids it.)
.. [5] Jung et al. (2019). Restructuring Batch Normalization to Accelerate CNN
   Training. MLSys.  (In training, batch normalisation sweeps its input for the batch's
   mean and variance before normalising it, and its backward pass likewise: a
   memory-bound share of CNN training that inference does not have.)
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path

from placer.choices import DType, Fusion, Mode, Optimizer
from placer.costs.cluster import TIME_RANGE, Cluster, DeviceGroup
from placer.errors import InputError, ModelLoadError
from placer.frontends.fusion import Fused, fuse
from placer.frontends.onnx_graph import IN_PLACE_OPS, IN_PLACE_SHARE, GraphNode, OpGraph
from placer.frontends.opcost import OpClass
from placer.problem import DeviceClass, DeviceKind, LinkCost, Op, Problem, Replica, usable_kinds
from placer.util.inputs import load_json, read_text
from placer.util.text import printable
from placer.util.units import MAX_BYTES, format_bytes, format_bytes_apart, parse_number

#: Backward FLOPs as a multiple of forward FLOPs.  Ops with weights (MatMul, Gemm, Conv,
#: ...) compute the gradient of their input and of their weights: 2x.  Other ops only
#: the gradient of their input: 1x.
BACKWARD_FLOP_FACTOR = {"weighted": 2.0, "other": 1.0}
_WEIGHTED = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum", "MatMulInteger"})


def bytes_per_param(dtype: DType, optimizer: Optimizer) -> float:
    """Training memory per parameter: weight + gradient + optimiser state.

    fp32 (and tf32, which stores fp32): 4 (weight) + 4 (gradient) + optimiser state
    (Adam: two fp32 moments, 8; SGD with momentum: 4).  fp16/bf16 (mixed precision):
    2 + 2 + an fp32 master copy (4) + the same fp32 optimiser state, so Adam costs 16
    bytes per parameter either way [3]_.
    """
    state = 8.0 if optimizer is Optimizer.ADAM else 4.0
    if dtype.nbytes == 4:
        return 4.0 + 4.0 + state
    return 2.0 + 2.0 + 4.0 + state


@dataclass(frozen=True)
class CostOptions:
    """How to cost a graph: mode, precision, optimiser, batch, measured times and the
    fusion the runtime applies (:mod:`placer.frontends.fusion`)."""

    mode: Mode = Mode.INFERENCE
    dtype: DType = DType.FP32
    optimizer: Optimizer = Optimizer.ADAM
    batch_size: int = 1
    measured: Mapping[tuple[str, str], float] = field(default_factory=dict)
    fusion: Fusion = Fusion.RUNTIME


def build_problem(graph: OpGraph, cluster: Cluster, options: CostOptions) -> Problem:
    """Cost ``graph`` on ``cluster``.

    Parameters
    ----------
    graph : OpGraph
        Operators with FLOPs and bytes at the chosen batch size.
    cluster : Cluster
        Device groups (one :class:`~placer.problem.DeviceKind` each, for the groups the
        pipeline may use) and links.
    options : CostOptions

    Returns
    -------
    Problem
        Times in seconds; ``samples_per_step`` is the batch size.  Op keys are the ONNX
        node names; a backward op is keyed ``<name>/grad``.  A device kind per group,
        its count capped at the number of colour classes (one per ONNX op:
        :func:`~placer.problem.usable_kinds`).

    Notes
    -----
    Memory per op: inference keeps the op's weights, and every device in use keeps the
    activations live at once at their peak over a pass
    (:attr:`~placer.frontends.onnx_graph.OpGraph.peak_activation_bytes`, ``Problem.reserved_bytes``:
    each kind's room for ops is its memory less that); training
    keeps weights, gradients and optimiser state (:func:`bytes_per_param`) plus the
    op's output activations for every microbatch in flight.  Under 1F1B the first of
    ``S`` stages keeps ``S`` microbatches [2]_; placer charges every stage that worst
    case, with ``S`` the number of devices (each kind's count capped at the number of
    colour classes), so memory estimates err on the safe side.
    """
    groups = cluster.pipeline_groups  # a group kept out of the pipeline is no kind
    scale, fused = _forward_charges(graph, options)
    training = options.mode is Mode.TRAINING
    # inference: activations are freed as the pass goes, so a device keeps at most the
    # peak of those live at once, whatever it holds; training stashes them all
    reserved = 0.0 if training else graph.peak_activation_bytes * scale
    side = set(graph.replicated)
    placed = [i for i in range(len(graph.nodes)) if i not in side]
    kinds = usable_kinds(
        [
            # what is left for the ops (below 0 when not even the activations fit)
            DeviceKind(g.name, g.device_class, g.count, g.memory_bytes - reserved,
                       pays_communication=True, host=g.host)
            for g in groups
        ],
        len(placed),  # colour classes: a backward op shares its forward op's
    )
    # the devices the pipeline can use, not the cluster's count: 10**12 T4s are not
    # 10**12 stages of stashed activations
    stages = sum(kind.count for kind in kinds)
    index = {node: op for op, node in enumerate(placed)}
    ctx = _Context(graph, groups, options, scale, fused, index, stages)
    # transfers run between placed ops only: a side computation is made where it is read
    placed_edges = [e for e in graph.edges if e.src in index and e.dst in index]
    out_bytes, in_bytes = _crossing_bytes(graph, placed_edges, scale)
    ops = [_forward_op(ctx, i, out_bytes[i]) for i in placed]
    edges = [(index[e.src], index[e.dst]) for e in placed_edges]
    if training:
        ops += [_backward_op(ctx, i, in_bytes[i]) for i in placed]
        # the backward graph mirrors the forward one
        n = len(placed)
        edges += [(n + index[e.dst], n + index[e.src]) for e in placed_edges]
    replicas = _replicas(ctx)

    _check_sums(graph.name, ops, groups)
    links = tuple(
        tuple(_link_cost(cluster, a, b) for b in groups) for a in groups
    )
    caveats = _caveats(graph)
    return Problem(
        name=graph.name,
        ops=tuple(ops),
        edges=tuple(dict.fromkeys(edges)),
        kinds=kinds,
        time_unit="s",
        samples_per_step=options.batch_size,
        notes=(*graph.notes, *caveats),
        caveats=caveats,
        cluster=cluster.name,
        links=links,
        replicas=replicas,
        shapes_estimated=len(graph.unknown_shapes),
        tensor_count=graph.tensor_count,
        reserved_bytes=reserved,
    )


@dataclass(frozen=True)
class _Context:
    """What costing each node of a graph needs: the groups it is costed on (one kind
    each), the options, the forward charges' scale and fused kernels
    (:func:`_forward_charges`), the op index of each placed node, and the pipeline's
    device count (stages of stashed activations in training)."""

    graph: OpGraph
    groups: tuple[DeviceGroup, ...]
    options: CostOptions
    scale: float
    fused: Mapping[int, Fused]
    index: dict[int, int]
    stages: int

    @cached_property
    def param_bytes(self) -> float:
        """Training memory per learned parameter (:func:`bytes_per_param`)."""
        return bytes_per_param(self.options.dtype, self.options.optimizer)

    def size_of(self, node: GraphNode) -> float:
        """Bytes ``node`` keeps on its device: its weights, and in training also their
        gradients and optimiser state and its output for every microbatch in flight
        (its activations in inference are in ``Problem.reserved_bytes``)."""
        own = self.weight_size(node.param_count - node.shared_param_count,
                               node.param_bytes - node.shared_param_bytes)  # fmt: skip
        if self.options.mode is not Mode.TRAINING:
            return own
        return own + node.output_bytes * self.scale * self.stages

    def weight_size(self, param_count: int, param_bytes: float) -> float:
        """Bytes a device keeps for weights of ``param_count`` learned parameters in
        ``param_bytes`` of constant tensors: in training also their gradients and
        optimiser state."""
        options, scale = self.options, self.scale
        if options.mode is not Mode.TRAINING:
            return param_bytes * scale
        # constant tensors that are not learned (BatchNorm statistics) stay as they are
        stored = max(param_bytes * scale - param_count * options.dtype.nbytes, 0)
        return param_count * self.param_bytes + stored


def _crossing_bytes(graph: OpGraph, placed_edges, scale: float):
    """``(out_bytes, in_bytes)`` per node: what its output sends (each tensor once) and
    what its inputs receive."""
    out_bytes = [0.0] * len(graph.nodes)
    in_bytes = [0.0] * len(graph.nodes)
    seen: set[tuple[int, str]] = set()
    for edge in placed_edges:
        if (edge.src, edge.tensor) not in seen:
            seen.add((edge.src, edge.tensor))
            out_bytes[edge.src] += edge.bytes * scale
        in_bytes[edge.dst] += edge.bytes * scale
    return out_bytes, in_bytes


def _forward_op(ctx: _Context, i: int, output_bytes: float) -> Op:
    """The :class:`Op` of node ``i``'s forward pass."""
    node = ctx.graph.nodes[i]
    latency = tuple(
        op_time(node, g, ctx.options, PassCost(ctx.scale, fused=ctx.fused.get(i))).seconds
        for g in ctx.groups
    )
    return Op(
        key=node.name,
        name=node.name,
        latency=latency,
        supported=(True,) * len(ctx.groups),
        size_bytes=ctx.size_of(node),
        transfer_cost=0.0,
        color=ctx.index[i],
        output_bytes=output_bytes,
        members=node.members if node.members != (node.name,) else (),
        scopes=node.scopes,
    )


def _backward_op(ctx: _Context, i: int, input_bytes: float) -> Op:
    """The :class:`Op` of node ``i``'s backward pass (``NAME/grad``), on its forward
    op's device; it sends the gradients of the forward op's inputs."""
    node = ctx.graph.nodes[i]
    factor = (
        BACKWARD_FLOP_FACTOR["weighted"]
        if node.op_type in _WEIGHTED or node.param_count
        else BACKWARD_FLOP_FACTOR["other"]
    )
    latency = tuple(
        op_time(node, g, ctx.options, PassCost.backward_of(ctx.scale, factor)).seconds
        for g in ctx.groups
    )
    return Op(
        key=f"{node.name}/grad",
        name=f"{node.name}/grad",
        latency=latency,
        supported=(True,) * len(ctx.groups),
        size_bytes=0.0,
        transfer_cost=0.0,
        color=ctx.index[i],
        backward=True,
        output_bytes=input_bytes,  # gradients of its inputs flow back
        members=tuple(f"{m}/grad" for m in node.members) if node.members != (node.name,) else (),
        scopes=node.scopes,
    )


def _caveats(graph: OpGraph) -> tuple[str, ...]:
    """What every command warns of: op types costed without a FLOP formula."""
    if not graph.unknown_ops:
        return ()
    unknown = sorted(set(graph.unknown_ops))
    return (
        f"no FLOP formula for op type{'s' if len(unknown) > 1 else ''} "
        + ", ".join(unknown) + ": costed by bytes moved only",
    )


def _replicas(ctx: _Context) -> tuple[Replica, ...]:
    """The side computations of ``graph`` as :class:`~placer.problem.Replica` charges.

    A side computation's readers are the placed forward ops that need it, directly or
    through other side computations (a backward op shares its forward op's device).  In
    training it is charged its backward time too when a learned parameter lies
    upstream (T5's bias table), since the gradient flows back through it.
    """
    graph, options, scale, index = ctx.graph, ctx.options, ctx.scale, ctx.index
    side = graph.replicated
    if not side:
        return _shared_weights(ctx, {})
    consumers: dict[int, set[int]] = {s: set() for s in side}
    learned = {s: graph.nodes[s].param_count > 0 for s in side}
    for edge in graph.edges:
        if edge.src in consumers:
            consumers[edge.src].add(edge.dst)
    for s in side:  # topological order: producers settle first
        for edge_dst in consumers[s]:
            if edge_dst in learned:
                learned[edge_dst] |= learned[s]
    needs: dict[int, frozenset[int]] = {}
    for s in reversed(side):
        ops = {index[c] for c in consumers[s] if c in index}
        for c in consumers[s]:
            if c in needs:
                ops |= needs[c]
        needs[s] = frozenset(ops)
    training = options.mode is Mode.TRAINING
    replicas = []
    for s in side:
        node = graph.nodes[s]
        latency = []
        for g in ctx.groups:
            seconds = op_time(node, g, options, PassCost(scale, fused=ctx.fused.get(s))).seconds
            if training and learned[s]:
                kind = "weighted" if node.param_count else "other"
                factor = BACKWARD_FLOP_FACTOR[kind]
                seconds += op_time(node, g, options, PassCost.backward_of(scale, factor)).seconds
            latency.append(seconds)
        readers = sorted(needs[s])
        replicas.append(
            Replica(
                key=node.name,
                latency=tuple(latency),
                size_bytes=ctx.size_of(node),
                readers=tuple(readers),
                members=node.members if node.members != (node.name,) else (),
            )
        )
    return tuple(replicas) + _shared_weights(ctx, needs)


def _shared_weights(ctx: _Context, needs: Mapping[int, frozenset[int]]) -> tuple[Replica, ...]:
    """The weights several nodes read (:class:`~placer.frontends.onnx_graph.SharedWeight`)
    as :class:`~placer.problem.Replica` charges of memory alone: a device keeps each
    once if it holds an op that reads it, or that needs a side computation reading it
    (``needs``: the ops each side computation serves)."""
    replicas = []
    for weight in ctx.graph.shared_weights:
        ops: set[int] = set()
        for reader in weight.readers:
            if reader in ctx.index:
                ops.add(ctx.index[reader])
            else:
                ops |= needs.get(reader, frozenset())
        if ops:
            replicas.append(Replica(
                key=weight.name,
                latency=(0.0,) * len(ctx.groups),
                size_bytes=ctx.weight_size(weight.param_count, weight.param_bytes),
                readers=tuple(sorted(ops)),
                weight=True,
            ))  # fmt: skip
    return tuple(replicas)


def _check_sums(name: str, ops: list[Op], groups: tuple[DeviceGroup, ...]) -> None:
    """Refuse a model whose costs overflow, or lose bytes, once summed over its ops.

    The cluster's ranges keep every time within a million times the op's FLOPs or
    bytes, so only a model of absurd shapes gets here; were it let through, an infinite
    sum would read as an unsupported op or a stage that fits nowhere, and memory summed
    past :data:`~placer.util.units.MAX_BYTES` in different orders would disagree on what fits.

    Raises
    ------
    ModelLoadError
        The ops' total time on a group or bytes sent is past the float range, or their
        memory is over :data:`~placer.util.units.MAX_BYTES`.
    """
    totals = [
        (f"time on {group.name}", lambda op, k=k: op.latency[k]) for k, group in enumerate(groups)
    ]
    totals += [("bytes sent", lambda op: op.output_bytes), ("memory", lambda op: op.size_bytes)]
    for what, figure in totals:
        if not math.isfinite(sum(figure(op) for op in ops)):
            worst = max(ops, key=figure)
            raise ModelLoadError(
                f"{printable(name)}: the ops' {what} is past the float range (op "
                f"{printable(worst.name)} alone: {figure(worst):.3g}); the model's shapes "
                "are too large to cost"
            )
    memory = sum(op.size_bytes for op in ops)
    if memory > MAX_BYTES:
        worst = max(ops, key=lambda op: op.size_bytes)
        need, most = format_bytes_apart(memory, MAX_BYTES)
        raise ModelLoadError(
            f"{printable(name)}: the ops need {need} of memory in all, more "
            f"than placer handles ({most}, up to which sums of bytes are "
            f"exact; op {printable(worst.name)} alone: {format_bytes(worst.size_bytes)})"
        )


class Regime(str, Enum):
    """What decides an op's predicted time (``placer inspect --costs-detail``)."""

    COMPUTE = "compute"  # its FLOPs at its class's rate
    MEMORY = "memory"  # its bytes at the bandwidth of its regime (cache or memory)
    OVERHEAD = "overhead"  # nothing to compute or move: the dispatch alone
    MEASURED = "measured"  # a time from --costs
    FREE = "free"  # nothing at all (a constant folded away)


@dataclass(frozen=True)
class OpTime:
    """An op's predicted time on one device and why: the regime that bounds it, the
    rate it runs at there (FLOP/s or bytes/s), the figures it was charged, and whether
    a fused kernel carries it (:mod:`placer.frontends.fusion`); ``passes``: the seconds of
    the passes its kernel makes besides the roofline's (a layout conversion, a bias
    sweep), included in ``seconds``."""

    seconds: float
    regime: Regime
    op_class: str
    rate: float
    flops: float
    bytes: float
    overhead: float
    fused: bool
    passes: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {"seconds": self.seconds, "regime": self.regime.value, "class": self.op_class,
                "rate": self.rate, "flops": self.flops, "bytes": self.bytes,
                "overhead": self.overhead, "fused": self.fused,
                "passes": self.passes}  # fmt: skip


@dataclass(frozen=True)
class PassCost:
    """Which pass of an op is costed, and how: ``scale`` rescales the model's bytes to
    the costed data type; a backward pass costs ``factor`` times the forward figures;
    ``fused`` says how the runtime's fused kernel charges a forward op
    (:mod:`placer.frontends.fusion`)."""

    scale: float
    factor: float = 1.0
    backward: bool = False
    fused: Fused | None = None

    @classmethod
    def backward_of(cls, scale: float, factor: float) -> PassCost:
        return cls(scale, factor, backward=True)


#: Classes whose ops, on a CPU, stream from memory unless they run in place: an op that
#: writes a fresh buffer meets cold lines (its output's, and operands written long
#: before, as a residual ``Add``'s), whatever its size.  Measured in onnxruntime, one
#: thread, with the optimisations off: the non-in-place elementwise ops of BERT-base and
#: GPT-2 (6 to 9 MB of traffic), ResNet-50's ``Sum`` and ``BatchNormalization`` (1 to 10
#: MB) and MobileNetV2's residual ``Add`` (2 to 7 MB) streamed at 13 to 21 GB/s, the
#: memory's bandwidth (18 GB/s), where the elementwise sweep over a warm cache reaches
#: 45 to 55 GB/s; the in-place activations after them at 26 to 37 GB/s.
FRESH_FROM_MEMORY = frozenset({OpClass.ELEMENTWISE, OpClass.TRANSCENDENTAL, OpClass.REDUCTION,
                               OpClass.SCALAR})


def op_time(node: GraphNode, group: DeviceGroup, options: CostOptions, costed: PassCost) -> OpTime:
    """The time of ``node``'s ``costed`` pass on one device of ``group``, and why."""
    scale, factor, backward, fused = costed.scale, costed.factor, costed.backward, costed.fused
    kind = node.op_class
    if kind is OpClass.GEMM and node.weights_computed and options.fusion is Fusion.NONE:
        kind = OpClass.MATMUL  # its weight is computed at every run: nothing pre-packed
    flops = node.flops * factor
    if fused is not None and not backward and not fused.computes:
        flops = 0.0  # folded away or removed by the runtime
    measured = _measured(options.measured, node.members, group, backward, factor)
    if measured is not None:
        return OpTime(measured, Regime.MEASURED, kind.value, 0.0, flops, 0.0, 0.0, False)
    overhead = group.overhead
    if fused is not None and not backward:
        moved = (fused.bytes_read + fused.bytes_written) * scale
        overhead = overhead if fused.overhead else 0.0
    else:
        moved = _unfused_bytes(node, options.mode, backward, factor) * scale
        if node.in_place and not backward and group.device_class is DeviceClass.CPU:
            moved *= IN_PLACE_SHARE  # a CPU core reads no line before writing it
    inside = fused is not None and not backward
    gone = inside and not fused.computes and moved == 0 and overhead == 0
    if gone or (flops == 0 and moved == 0 and kind is not OpClass.VIEW and not inside):
        return OpTime(0.0, Regime.FREE, kind.value, 0.0, 0.0, 0.0, 0.0, inside)
    unfused = options.fusion is Fusion.NONE
    compute_rate = group.compute_rate(
        options.dtype.value, kind.value, unfused=unfused, shape=node.product_shape,
        kernel=fused.kernel if inside else "",
    )
    # the traffic of one op decides whether it streams from cache or from memory; on a
    # CPU, a computing op that writes a fresh buffer streams from memory whatever its size
    cached = inside or (node.in_place and not backward) \
        or group.device_class is not DeviceClass.CPU \
        or kind not in FRESH_FROM_MEMORY
    stream_rate = group.stream_rate(moved, kind.value, cached=cached)
    compute = flops / compute_rate
    memory = moved / stream_rate if moved else 0.0
    if compute == memory == 0.0:
        regime, rate = Regime.OVERHEAD, 0.0
    elif compute >= memory:
        regime, rate = Regime.COMPUTE, compute_rate
    else:
        regime, rate = Regime.MEMORY, stream_rate
    converted = _layout_conversion(node, group, options, kind) * scale * factor
    passes = 0.0
    if converted:
        passes += converted / group.stream_rate(converted, OpClass.TRANSPOSE.value)
    swept = _bias_sweep(node, group, options, backward) * scale
    if swept:
        # read and written back in place, from the cache when one image's block fits it
        block = node.product_shape.bias_block * scale
        passes += swept / group.stream_rate(block, OpClass.ELEMENTWISE.value)
    seconds = max(compute, memory) + overhead + passes
    return OpTime(seconds, regime, kind.value, rate, flops, moved + converted + swept, overhead,
                  inside, passes)  # fmt: skip


#: Op types whose backward pass reads the one tensor its forward saved (the input, or the
#: output of an activation run in place) and the gradient of the output, and writes the
#: gradient of the input: one activation-sized tensor more than the forward moves.
#: (PyTorch's autograd formulas: ``threshold_backward`` reads the ReLU's output and
#: the gradient, ``_softmax_backward_data`` the softmax's.)
SAVES_ONE = IN_PLACE_OPS | {"Gelu", "HardSwish", "Mish", "Softmax", "LogSoftmax"}


def _unfused_bytes(node: GraphNode, mode: Mode, backward: bool, factor: float) -> float:
    """Bytes (in the model's type) one pass of ``node`` moves run as its own kernel.

    By default a backward pass moves ``factor`` times the forward's traffic.  Training
    changes what two kinds of op move [5]_:

    - ``BatchNormalization`` normalises by statistics of the batch, which a sweep over
      the input computes before the normalising pass reads it again: its forward reads
      the input twice.  Its backward reduces the gradient and the gradient times the
      normalised input (a sweep reading both) before the pass that reads both again
      and writes the input's gradient: five activation-sized tensors, plus the
      parameters and their gradients.
    - an op of :data:`SAVES_ONE` reads what it saved and the gradient, and writes one.
    """
    traffic = node.bytes_read + node.bytes_written
    if mode is not Mode.TRAINING:
        return traffic * factor
    activations = max(node.bytes_read - node.param_bytes, 0.0)
    if node.op_type == "BatchNormalization":
        if backward:
            return 2.0 * (activations + node.bytes_written) + activations + 2.0 * node.param_bytes
        return traffic + activations
    if backward and node.op_type in SAVES_ONE:
        return traffic + node.bytes_written
    return traffic * factor


def _bias_sweep(node: GraphNode, group: DeviceGroup, options: CostOptions,
                backward: bool) -> float:  # fmt: skip
    """Bytes (in the model's type) of the pass that adds a pointwise convolution's bias
    to the output onnxruntime's plain CPU kernel wrote
    (:class:`~placer.frontends.opcost.ProductShape`): the output once, the sweep's
    bandwidth counting what an in-place update moves as one tensor.  Measured (one
    thread, batch 8): 1x1 convolutions of 16 to 96 channels at 112x112 and 24 to 144 at
    56x56 took 2.5 and 0.8 ms more with a bias than without, their outputs 38.5 and
    14.5 MB at 16.6 GB/s.  0 in the runtime's optimised graph (its blocked kernels add
    the bias as they write), on accelerators, and for a backward pass."""
    if backward or options.fusion is not Fusion.NONE or group.device_class is not DeviceClass.CPU:
        return 0.0
    return node.product_shape.bias_bytes  # 0 but for such a convolution


def _layout_conversion(node: GraphNode, group: DeviceGroup, options: CostOptions,
                       kind: OpClass) -> float:  # fmt: skip
    """Bytes (in the model's type) that converting a convolution's activations from
    NCHW to NHWC and back moves, where the group's runtime keeps NCHW tensors
    (``layout: nchw``) and runs the convolution on tensor cores: the costed type's peak
    exceeds fp32's.  cuDNN's tensor-core kernels take NHWC and convert NCHW tensors
    around each call [4]_, reading and writing its input and its output once more
    (each pass of a backward op converts its two tensors likewise).  0 otherwise."""
    if (
        kind is not OpClass.CONV
        or group.layout != "nchw"
        or group.device_class is not DeviceClass.ACCELERATOR
        or group.peak(options.dtype.value) <= group.peak("fp32")
    ):
        return 0.0
    activations = node.bytes_read - node.param_bytes + node.bytes_written
    return 2.0 * max(activations, 0.0)


def _forward_charges(graph: OpGraph, options: CostOptions) -> tuple[float, dict[int, Fused]]:
    """``(scale, fused)``: the factor from the model's float type to ``options.dtype``
    for bytes, and how the runtime's fused kernels charge the nodes (none without
    ``--fusion runtime``)."""
    scale = options.dtype.nbytes / max(graph.dtype_bytes, 1)
    return scale, fuse(graph) if options.fusion is Fusion.RUNTIME else {}


def forward_times(
    graph: OpGraph, cluster: Cluster, options: CostOptions
) -> list[tuple[GraphNode, tuple[OpTime, ...]]]:
    """Every forward op of ``graph`` (side computations included) with its time on each
    pipeline group of ``cluster``, as :func:`build_problem` costs it."""
    groups = cluster.pipeline_groups
    scale, fused = _forward_charges(graph, options)
    return [
        (node, tuple(op_time(node, g, options, PassCost(scale, fused=fused.get(i)))
                     for g in groups))
        for i, node in enumerate(graph.nodes)
    ]


def _measured(
    table: Mapping[tuple[str, str], float],
    members: Sequence[str],
    group: DeviceGroup,
    backward: bool,
    factor: float = 1.0,
) -> float | None:
    """The measured time on ``group`` of the op made of ONNX nodes ``members`` (one, or
    a coarsened group's, whose times add up), or of its backward op if ``backward``;
    None unless the table has a time for each member.

    A node's time is looked up by the group's name, else its type.  A backward op
    without a time of its own takes its forward op's measured time times ``factor``
    (:data:`BACKWARD_FLOP_FACTOR`): the forward measurement scaled as the roofline
    would scale it, rather than the roofline itself.
    """
    total = 0.0
    for name in members:
        candidates = [(f"{name}/grad", 1.0), (name, factor)] if backward else [(name, 1.0)]
        found = next(
            (table[(op, device)] * scale for op, scale in candidates
             for device in (group.name, group.type) if (op, device) in table),
            None,
        )  # fmt: skip
        if found is None:
            return None
        total += found
    return total


def _link_cost(cluster: Cluster, a: DeviceGroup, b: DeviceGroup) -> LinkCost:
    return cluster.link(a.name, b.name).cost()


def read_measured_costs(path: str | Path) -> dict[tuple[str, str], float]:
    """Read measured per-op times (``--costs``).

    CSV with a header ``op,device,seconds`` (``device``: a group name or a catalog
    type; ``op``: an ONNX node name, or ``NAME/grad`` for its backward op), after at
    most one comment line starting with ``#`` (``placer profile`` records there how it
    measured: :mod:`placer.costs.measured`), or JSON
    ``{"OP": {"DEVICE": seconds, ...}, ...}``.  The file is read by
    :func:`placer.util.inputs.read_text` (a regular UTF-8 file), JSON by
    :func:`placer.util.inputs.load_json`.  Each op and device pair is given once: a second
    time would silently replace the first.

    Raises
    ------
    InputError
        Missing or unreadable file, not UTF-8, bad format (a CSV row of other than
        three fields, a JSON key given twice), an op and device given twice, or a time
        that is not a decimal number in :data:`placer.costs.cluster.TIME_RANGE` (0, or a
        picosecond to a day).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise InputError(f"{path}: measured costs must be a .csv or .json file")
    text = read_text(path, what="a measured-costs", error=InputError)
    table: dict[tuple[str, str], float] = {}
    if suffix == ".json":
        document = load_json(text, str(path), error=InputError)  # refuses a key twice
        if not isinstance(document, dict):
            raise InputError(f"{path}: expected an object mapping op names to devices")
        rows = [
            (op, device, seconds, f"{op}.{device}")
            for op, devices in document.items()
            for device, seconds in (
                devices.items() if isinstance(devices, dict) else [(None, None)]
            )
        ]
    else:
        rows = _csv_rows(path, text)
    for op, device, seconds, where in rows:
        if device is None:
            raise InputError(
                f"{path}: {printable(op)}: expected an object mapping devices to seconds"
            )
        value = _seconds(seconds)
        if value is None:
            shown = repr(seconds) if len(repr(seconds)) <= 60 else f"{repr(seconds)[:57]}..."
            raise InputError(
                f"{path}: {printable(where)}: seconds must be a non-negative number "
                f"({TIME_RANGE}), got {printable(shown)}"
            )
        table[(str(op), str(device))] = value
    return table


def _seconds(value: object) -> float | None:
    """A measured time from a CSV cell or a JSON value, or None unless in TIME_RANGE."""
    if isinstance(value, str):
        try:
            value = parse_number(value)  # ASCII decimal: not 1_000, Arabic digits, infinity
        except ValueError:
            return None
    if value not in TIME_RANGE:  # also refuses bools, None, lists, NaN and 1e999
        return None
    return float(value)


#: The columns of a measured-costs CSV, each once.
_CSV_COLUMNS = ("op", "device", "seconds")


def _csv_rows(path: Path, text: str) -> list[tuple[str, str, str, str]]:
    """``(op, device, seconds, where)`` for each row of a measured-costs CSV.

    Raises
    ------
    InputError
        A header of other columns than op, device and seconds (each once), a row of
        other than three fields (an extra one would be dropped unread), an op and
        device given on two rows (naming both lines), or CSV that does not parse.
    """
    skipped = 0  # a first line of comment: how the times were measured
    if text.startswith("#"):
        skipped, text = 1, text.partition("\n")[2]
    # newline="" keeps a line break inside a quoted field; strict mode turns an
    # unterminated quote into an error instead of swallowing the rest of the file
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    first_line: dict[tuple[str, str], int] = {}
    start = 1 + skipped  # the line the row being read starts on
    try:
        header = next(reader, None)
        if header is None or sorted(header) != sorted(_CSV_COLUMNS):
            got = "nothing" if header is None else repr(",".join(header))
            raise InputError(
                f"{path}:{start}: the CSV header must name op, device and seconds, once "
                f"each, got {printable(got[:80])}"
            )
        column = {name: header.index(name) for name in _CSV_COLUMNS}
        start = reader.line_num + 1 + skipped
        for fields in reader:
            if not fields:  # a blank line
                start = reader.line_num + 1 + skipped
                continue
            if len(fields) != len(_CSV_COLUMNS):
                count = f"{len(fields)} field" + ("" if len(fields) == 1 else "s")
                raise InputError(
                    f"{path}:{start}: expected op, device and seconds, got {count}"
                )
            op, device, seconds = (fields[column[name]] for name in _CSV_COLUMNS)
            if (op, device) in first_line:
                raise InputError(
                    f"{path}:{start}: op {printable(repr(op))} on device "
                    f"{printable(repr(device))} given twice (first at line "
                    f"{first_line[(op, device)]})"
                )
            first_line[(op, device)] = start
            rows.append((op, device, seconds, f"line {start}"))
            start = reader.line_num + 1 + skipped
    except csv.Error as err:
        hint = " (a quote opened here is never closed)" if "end of data" in str(err) else ""
        raise InputError(f"{path}:{start}: not valid CSV: {err}{hint}") from err
    return rows
